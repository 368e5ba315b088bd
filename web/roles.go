package web

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"plateau/store"
)

// User is the person behind a request's session.
type User struct {
	Extension   string
	DisplayName string
	Role        store.Role
}

type ctxKey int

const (
	userKey ctxKey = iota
	sessionKey
)

// CurrentUser returns the logged-in user of a request that went through
// the App; ok is false when nobody is logged in.
func CurrentUser(r *http.Request) (User, bool) {
	u, ok := r.Context().Value(userKey).(User)
	return u, ok
}

func withUser(ctx context.Context, u User, s *session) context.Context {
	return context.WithValue(context.WithValue(ctx, userKey, u), sessionKey, s)
}

func currentSession(r *http.Request) *session {
	s, _ := r.Context().Value(sessionKey).(*session)
	return s
}

// RequireRole lets through only users whose role is one of roles: 401
// without a session (a redirect to the login page for pages), 403 for
// another role.
func RequireRole(roles ...store.Role) func(http.Handler) http.Handler {
	roles = slices.Clone(roles)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, ok := CurrentUser(r)
			if !ok {
				if isAPI(r) {
					WriteError(w, r, http.StatusUnauthorized, "unauthenticated", nil)
					return
				}
				http.Redirect(w, r, loginURL(r, r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			if !slices.Contains(roles, u.Role) {
				WriteError(w, r, http.StatusForbidden, "forbidden", nil)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// loginURL sends a browser to the login page and back to next; a request
// that carried a session cookie the server no longer knows had its session
// expire, and the login page says so.
func loginURL(r *http.Request, next string) string {
	u := "/login?next=" + urlEscape(next)
	if c, err := r.Cookie(cookieName(r, sessionCookie)); err == nil && c.Value != "" {
		u += "&expired=1"
	}
	return u
}

func isAPI(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/api/") }
