package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// WebSession is a web console login session (migration 0006). IDHash is
// the SHA-256 of the session id: the id itself is never stored.
type WebSession struct {
	IDHash    string
	Extension string
	CSRF      string
	Source    string
	CreatedAt time.Time
	LastSeen  time.Time
}

// CreateWebSession stores a new session.
func (s *Store) CreateWebSession(ctx context.Context, w WebSession) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO web_sessions (id_hash, extension, csrf, source, created_at, last_seen)
		VALUES (?,?,?,?,?,?)`, w.IDHash, w.Extension, w.CSRF, w.Source, formatTime(w.CreatedAt), formatTime(w.LastSeen))
	if err != nil {
		return fmt.Errorf("create web session for %s: %w", w.Extension, err)
	}
	return nil
}

// WebSession returns a session by the hash of its id; ErrNotFound if none.
// It runs on every console request, so its statement is prepared once.
func (s *Store) WebSession(ctx context.Context, idHash string) (WebSession, error) {
	st, err := s.prepared(ctx, `SELECT id_hash, extension, csrf, source, created_at, last_seen FROM web_sessions WHERE id_hash = ?`)
	if err != nil {
		return WebSession{}, err
	}
	var w WebSession
	var created, seen string
	err = st.QueryRowContext(ctx, idHash).Scan(&w.IDHash, &w.Extension, &w.CSRF, &w.Source, &created, &seen)
	if errors.Is(err, sql.ErrNoRows) {
		return w, fmt.Errorf("web session: %w", ErrNotFound)
	}
	if err != nil {
		return w, fmt.Errorf("web session: %w", err)
	}
	w.CreatedAt, w.LastSeen = parseTime(created), parseTime(seen)
	return w, nil
}

// TouchWebSession records activity on a session.
func (s *Store) TouchWebSession(ctx context.Context, idHash string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE web_sessions SET last_seen = ? WHERE id_hash = ?`, formatTime(at), idHash)
	return err
}

// DeleteWebSession ends one session (logout, expiry).
func (s *Store) DeleteWebSession(ctx context.Context, idHash string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM web_sessions WHERE id_hash = ?`, idHash)
	return err
}

// DeleteUserWebSessions ends every session of a user (suspension).
func (s *Store) DeleteUserWebSessions(ctx context.Context, ext string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM web_sessions WHERE extension = ?`, ext)
	return err
}

// PurgeWebSessions removes sessions last seen before idle or created before
// created.
func (s *Store) PurgeWebSessions(ctx context.Context, idle, created time.Time) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM web_sessions WHERE last_seen < ? OR created_at < ?`,
		formatTime(idle), formatTime(created))
	return err
}
