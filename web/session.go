package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"sync"
	"time"
)

// SessionRecord is a login session as kept server-side. The session id
// itself is never stored: only its SHA-256, so a copy of the store does not
// hand out live sessions.
type SessionRecord struct {
	IDHash    string
	Extension string
	CSRF      string // synchroniser token, sent back in forms and X-CSRF-Token
	Source    string // remote address at login
	CreatedAt time.Time
	LastSeen  time.Time
}

// ErrNoSession is what a SessionStore answers for an unknown id.
var ErrNoSession = errors.New("no such session")

// SessionStore keeps sessions. MemorySessions is the default; a store that
// survives restarts can take its place.
type SessionStore interface {
	CreateSession(ctx context.Context, s SessionRecord) error
	Session(ctx context.Context, idHash string) (SessionRecord, error)
	TouchSession(ctx context.Context, idHash string, at time.Time) error
	DeleteSession(ctx context.Context, idHash string) error
	DeleteUserSessions(ctx context.Context, ext string) error
	// PurgeSessions removes sessions idle since before idle or created
	// before created.
	PurgeSessions(ctx context.Context, idle, created time.Time) error
}

// MemorySessions keeps sessions in memory: a restart logs everybody out.
type MemorySessions struct {
	mu sync.Mutex
	m  map[string]SessionRecord
}

// NewMemorySessions returns an empty in-memory session store.
func NewMemorySessions() *MemorySessions { return &MemorySessions{m: map[string]SessionRecord{}} }

func (m *MemorySessions) CreateSession(_ context.Context, s SessionRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m[s.IDHash] = s
	return nil
}

func (m *MemorySessions) Session(_ context.Context, idHash string) (SessionRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.m[idHash]
	if !ok {
		return s, ErrNoSession
	}
	return s, nil
}

func (m *MemorySessions) TouchSession(_ context.Context, idHash string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.m[idHash]; ok {
		s.LastSeen = at
		m.m[idHash] = s
	}
	return nil
}

func (m *MemorySessions) DeleteSession(_ context.Context, idHash string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.m, idHash)
	return nil
}

func (m *MemorySessions) DeleteUserSessions(_ context.Context, ext string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, s := range m.m {
		if s.Extension == ext {
			delete(m.m, k)
		}
	}
	return nil
}

func (m *MemorySessions) PurgeSessions(_ context.Context, idle, created time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, s := range m.m {
		if s.LastSeen.Before(idle) || s.CreatedAt.Before(created) {
			delete(m.m, k)
		}
	}
	return nil
}

// session is the request's view of its session.
type session struct {
	idHash string
	csrf   string
}

const (
	sessionCookie = "plateau_session"
	loginCookie   = "plateau_login" // CSRF token of the login form (double submit)
	langCookie    = "plateau_lang"
	// touchEvery limits writes: last-seen moves at most once a minute.
	touchEvery = time.Minute
)

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error()) // never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashID(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:])
}

func tokensEqual(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// cookieName is a cookie's name on r's connection: over TLS the session
// and login cookies carry the __Host- prefix, which browsers accept only
// from an HTTPS origin, Secure, with Path=/ and no Domain. Whoever can
// rewrite plain HTTP on the LAN (the plain listener's path) can then
// neither plant a session cookie (fixation) nor overwrite one.
func cookieName(r *http.Request, name string) string {
	if r.TLS != nil {
		return "__Host-" + name
	}
	return name
}

func (a *App) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: cookieName(r, name), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || a.deps.SecureCookies,
	})
}

// loadSession resolves the session cookie; nil when there is none or it
// expired (idle or absolute), or its user is no longer active.
func (a *App) loadSession(r *http.Request) (*session, User) {
	c, err := r.Cookie(cookieName(r, sessionCookie))
	if err != nil || c.Value == "" {
		return nil, User{}
	}
	ctx := r.Context()
	h := hashID(c.Value)
	rec, err := a.sessions.Session(ctx, h)
	if err != nil {
		return nil, User{}
	}
	now := a.now()
	if now.Sub(rec.LastSeen) >= a.deps.IdleTimeout || now.Sub(rec.CreatedAt) >= a.deps.MaxSessionAge {
		_ = a.sessions.DeleteSession(ctx, h)
		return nil, User{}
	}
	u, err := a.deps.Store.User(ctx, rec.Extension)
	if err != nil || u.Status != "active" {
		_ = a.sessions.DeleteSession(ctx, h)
		return nil, User{}
	}
	if now.Sub(rec.LastSeen) >= touchEvery {
		_ = a.sessions.TouchSession(ctx, h, now)
	}
	return &session{idHash: h, csrf: rec.CSRF}, User{Extension: u.Extension, DisplayName: u.DisplayName, Role: u.Role}
}
