package web

import (
	"context"
	"errors"
	"time"

	"plateau/store"
)

// StoreSessions keeps sessions in the SQLite store (table web_sessions), so
// they survive a restart; the default when Deps.Store is set.
type StoreSessions struct{ St *store.Store }

func (s StoreSessions) CreateSession(ctx context.Context, r SessionRecord) error {
	return s.St.CreateWebSession(ctx, store.WebSession{IDHash: r.IDHash, Extension: r.Extension, CSRF: r.CSRF,
		Source: r.Source, CreatedAt: r.CreatedAt, LastSeen: r.LastSeen})
}

func (s StoreSessions) Session(ctx context.Context, idHash string) (SessionRecord, error) {
	w, err := s.St.WebSession(ctx, idHash)
	if errors.Is(err, store.ErrNotFound) {
		return SessionRecord{}, ErrNoSession
	}
	if err != nil {
		return SessionRecord{}, err
	}
	return SessionRecord{IDHash: w.IDHash, Extension: w.Extension, CSRF: w.CSRF, Source: w.Source,
		CreatedAt: w.CreatedAt, LastSeen: w.LastSeen}, nil
}

func (s StoreSessions) TouchSession(ctx context.Context, idHash string, at time.Time) error {
	return s.St.TouchWebSession(ctx, idHash, at)
}

func (s StoreSessions) DeleteSession(ctx context.Context, idHash string) error {
	return s.St.DeleteWebSession(ctx, idHash)
}

func (s StoreSessions) DeleteUserSessions(ctx context.Context, ext string) error {
	return s.St.DeleteUserWebSessions(ctx, ext)
}

func (s StoreSessions) PurgeSessions(ctx context.Context, idle, created time.Time) error {
	return s.St.PurgeWebSessions(ctx, idle, created)
}
