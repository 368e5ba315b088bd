package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"plateau/audit"
	"plateau/auth"
	"plateau/store"
)

// dummyHash is checked against when the user is unknown, so that a wrong
// extension costs as much time as a wrong password.
const dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$UWAtfLoykxqs+2jzNkTbfg$bQqBhPD9PjmFwMW9Ie39QW5yExeLbnD3OLAiVD4+yxo"

type loginData struct {
	Username string
	Next     string
	Token    string
	Expired  bool // the session expired: say so (not as a .flash, which confirms a saved form)
}

func (a *App) loginPage(w http.ResponseWriter, r *http.Request) {
	if u, ok := CurrentUser(r); ok {
		http.Redirect(w, r, homeOf(u.Role), http.StatusSeeOther)
		return
	}
	a.showLogin(w, r, http.StatusOK, "", "")
}

func (a *App) showLogin(w http.ResponseWriter, r *http.Request, status int, username, errKey string) {
	tok := randomToken()
	a.setCookie(w, r, loginCookie, tok, 0)
	v := a.newView(r, "login.title", loginData{Username: username, Next: safeNext(r.FormValue("next")), Token: tok,
		Expired: errKey == "" && r.FormValue("expired") == "1"})
	if errKey != "" {
		v.Error = v.T(errKey)
	}
	a.render(w, r, status, "login", v)
}

// safeNext keeps only local paths, so the login page is no open redirect.
// Browsers drop tabs and newlines anywhere in a URL and read a backslash
// as a slash ("/\t/evil" and "/\\evil" are //evil to them): a next with a
// control character, a space or a backslash anywhere is refused whole.
func safeNext(n string) string {
	if !strings.HasPrefix(n, "/") || strings.HasPrefix(n, "//") ||
		strings.ContainsFunc(n, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '\\' }) {
		return ""
	}
	if u, err := url.Parse(n); err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return ""
	}
	return n
}

func (a *App) login(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(cookieName(r, loginCookie))
	if err != nil || !tokensEqual(c.Value, r.PostFormValue("csrf")) {
		WriteError(w, r, http.StatusForbidden, "csrf", nil)
		return
	}
	ext := strings.TrimSpace(r.PostFormValue("username"))
	in := a.signIn(r, ext, r.PostFormValue("password"))
	if in.status == http.StatusInternalServerError {
		WriteError(w, r, in.status, "internal", nil)
		return
	}
	if in.key != "" {
		if in.status == http.StatusBadRequest {
			ext = ""
		}
		a.showLogin(w, r, in.status, ext, in.key)
		return
	}
	a.setCookie(w, r, loginCookie, "", -1)
	a.setCookie(w, r, sessionCookie, in.sessionID, 0)
	next := safeNext(r.PostFormValue("next"))
	if next == "" {
		next = homeOf(in.user.Role)
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// apiLogin is the JSON API's login: POST /api/v1/session
// {"username","password"} → 200 {extension, name, role, csrf_token} and
// the session cookie. It needs no CSRF token (there is no session yet) but
// only takes application/json, which a cross-site form cannot send.
func (a *App) apiLogin(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		WriteError(w, r, http.StatusUnsupportedMediaType, "bad_request", errors.New("the body must be application/json"))
		return
	}
	var body struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&body); err != nil {
		WriteError(w, r, http.StatusBadRequest, "bad_request", fmt.Errorf("login body: %w", err))
		return
	}
	in := a.signIn(r, strings.TrimSpace(body.Username), body.Password)
	if in.key != "" || in.status != 0 {
		code := strings.Replace(in.key, ".", "_", 1) // login.failed → login_failed
		if in.status == http.StatusInternalServerError {
			code = "internal"
		}
		WriteError(w, r, in.status, code, nil)
		return
	}
	a.setCookie(w, r, sessionCookie, in.sessionID, 0)
	writeJSON(w, http.StatusOK, map[string]string{"extension": in.user.Extension, "name": in.user.DisplayName,
		"role": string(in.user.Role), "csrf_token": in.csrf})
}

// apiLogout ends the session: DELETE /api/v1/session → 204.
func (a *App) apiLogout(w http.ResponseWriter, r *http.Request) {
	a.endSession(r)
	a.setCookie(w, r, sessionCookie, "", -1)
	w.WriteHeader(http.StatusNoContent)
}

// signedIn is the outcome of signIn: a session, or why not.
type signedIn struct {
	user      store.User
	sessionID string // for the cookie
	csrf      string // the session's CSRF token
	status    int    // on failure
	key       string // on failure: login.failed, login.locked or login.suspended
}

// signIn checks an extension and password under the lockouts and opens a
// session. Every outcome is audited (web.login); a failure counts towards
// the lockouts.
func (a *App) signIn(r *http.Request, ext, pass string) signedIn {
	ctx := r.Context()
	src := clientIP(r)
	now := a.now()
	rec := audit.Entry{Kind: "web.login", Actor: ext, Subject: ext, Source: src}
	if len(ext) > 64 || len(pass) > 1024 {
		return signedIn{status: http.StatusBadRequest, key: "login.failed"}
	}

	if a.locks.locked("source", lockSource(src), now) || a.locks.locked("user", ext, now) {
		rec.Outcome, rec.Reason = "refused", "locked"
		a.audit(ctx, rec)
		return signedIn{status: http.StatusTooManyRequests, key: "login.locked"}
	}

	u, uerr := a.deps.Store.User(ctx, ext)
	hash := dummyHash
	if uerr == nil && u.WebPassword != "" {
		hash = u.WebPassword
	}
	perr := auth.CheckPassword(hash, pass)
	switch {
	case uerr != nil && !errors.Is(uerr, store.ErrNotFound):
		a.log.Error("login: user lookup", "err", uerr)
		return signedIn{status: http.StatusInternalServerError}
	case uerr != nil || u.WebPassword == "" || perr != nil:
		rec.Outcome, rec.Reason = "failed", "bad_credentials"
		if uerr != nil {
			rec.Reason = "unknown_user"
		}
		a.audit(ctx, rec)
		a.failed(r, ext, src)
		return signedIn{status: http.StatusUnauthorized, key: "login.failed"}
	case u.Status != store.StatusActive:
		rec.Outcome, rec.Reason = "refused", "suspended"
		a.audit(ctx, rec)
		return signedIn{status: http.StatusForbidden, key: "login.suspended"}
	}

	id := randomToken()
	s := SessionRecord{IDHash: hashID(id), Extension: u.Extension, CSRF: randomToken(), Source: src,
		CreatedAt: now, LastSeen: now}
	_ = a.sessions.PurgeSessions(ctx, now.Add(-a.deps.IdleTimeout), now.Add(-a.deps.MaxSessionAge))
	if err := a.sessions.CreateSession(ctx, s); err != nil {
		a.log.Error("login: create session", "err", err)
		return signedIn{status: http.StatusInternalServerError}
	}
	a.locks.succeed(u.Extension)
	rec.Outcome = "ok"
	rec.Details = map[string]any{"role": string(u.Role)}
	a.audit(ctx, rec)
	return signedIn{user: u, sessionID: id, csrf: s.CSRF}
}

// failed counts a failure against the user and the source and audits the
// lock each one triggers.
func (a *App) failed(r *http.Request, ext, src string) {
	now := a.now()
	if ext != "" && a.locks.fail("user", ext, now) {
		a.audit(r.Context(), audit.Entry{Kind: "web.lockout", Actor: ext, Subject: ext, Outcome: "locked",
			Reason: "user", Source: src, Details: map[string]any{"until": now.Add(a.deps.LockoutDuration).UTC().Format("2006-01-02T15:04:05Z")}})
	}
	if a.locks.fail("source", lockSource(src), now) {
		a.audit(r.Context(), audit.Entry{Kind: "web.lockout", Actor: ext, Subject: lockSource(src), Outcome: "locked",
			Reason: "source", Source: src, Details: map[string]any{"until": now.Add(a.deps.LockoutDuration).UTC().Format("2006-01-02T15:04:05Z")}})
	}
}

// lockSource is what the per-source lockout counts by: the address, or for
// IPv6 its /64 (one host picks any address of its /64 at will).
func lockSource(src string) string {
	ip, err := netip.ParseAddr(src)
	if err != nil {
		return src
	}
	if ip = ip.Unmap(); ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

func (a *App) logout(w http.ResponseWriter, r *http.Request) {
	a.endSession(r)
	a.setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// endSession deletes the request's session, audited (web.logout).
func (a *App) endSession(r *http.Request) {
	if s := currentSession(r); s != nil {
		_ = a.sessions.DeleteSession(r.Context(), s.idHash)
		u, _ := CurrentUser(r)
		a.audit(r.Context(), audit.Entry{Kind: "web.logout", Actor: u.Extension, Subject: u.Extension, Outcome: "ok", Source: clientIP(r)})
	}
}
