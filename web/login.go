package web

import (
	"errors"
	"net/http"
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
	v := a.newView(r, "login.title", loginData{Username: username, Next: safeNext(r.FormValue("next")), Token: tok})
	if errKey != "" {
		v.Error = v.T(errKey)
	}
	a.render(w, r, status, "login", v)
}

// safeNext keeps only local paths, so the login page is no open redirect.
func safeNext(n string) string {
	if !strings.HasPrefix(n, "/") || strings.HasPrefix(n, "//") || strings.HasPrefix(n, "/\\") {
		return ""
	}
	return n
}

func (a *App) login(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c, err := r.Cookie(loginCookie)
	if err != nil || !tokensEqual(c.Value, r.PostFormValue("csrf")) {
		WriteError(w, r, http.StatusForbidden, "csrf", nil)
		return
	}
	ext := strings.TrimSpace(r.PostFormValue("username"))
	pass := r.PostFormValue("password")
	src := clientIP(r)
	now := a.now()
	rec := audit.Entry{Kind: "web.login", Actor: ext, Subject: ext, Source: src}
	if len(ext) > 64 || len(pass) > 1024 {
		a.showLogin(w, r, http.StatusBadRequest, "", "login.failed")
		return
	}

	if a.locks.locked("source", src, now) || a.locks.locked("user", ext, now) {
		rec.Outcome, rec.Reason = "refused", "locked"
		a.audit(ctx, rec)
		a.showLogin(w, r, http.StatusTooManyRequests, ext, "login.locked")
		return
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
		WriteError(w, r, http.StatusInternalServerError, "internal", nil)
		return
	case uerr != nil || u.WebPassword == "" || perr != nil:
		rec.Outcome, rec.Reason = "failed", "bad_credentials"
		if uerr != nil {
			rec.Reason = "unknown_user"
		}
		a.audit(ctx, rec)
		a.failed(r, ext, src)
		a.showLogin(w, r, http.StatusUnauthorized, ext, "login.failed")
		return
	case u.Status != store.StatusActive:
		rec.Outcome, rec.Reason = "refused", "suspended"
		a.audit(ctx, rec)
		a.showLogin(w, r, http.StatusForbidden, ext, "login.suspended")
		return
	}

	id := randomToken()
	s := SessionRecord{IDHash: hashID(id), Extension: u.Extension, CSRF: randomToken(), Source: src,
		CreatedAt: now, LastSeen: now}
	_ = a.sessions.PurgeSessions(ctx, now.Add(-a.deps.IdleTimeout), now.Add(-a.deps.MaxSessionAge))
	if err := a.sessions.CreateSession(ctx, s); err != nil {
		a.log.Error("login: create session", "err", err)
		WriteError(w, r, http.StatusInternalServerError, "internal", nil)
		return
	}
	a.locks.succeed(u.Extension)
	rec.Outcome = "ok"
	rec.Details = map[string]any{"role": string(u.Role)}
	a.audit(ctx, rec)
	a.setCookie(w, r, loginCookie, "", -1)
	a.setCookie(w, r, sessionCookie, id, 0)
	next := safeNext(r.PostFormValue("next"))
	if next == "" {
		next = homeOf(u.Role)
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// failed counts a failure against the user and the source and audits the
// lock each one triggers.
func (a *App) failed(r *http.Request, ext, src string) {
	now := a.now()
	if ext != "" && a.locks.fail("user", ext, now) {
		a.audit(r.Context(), audit.Entry{Kind: "web.lockout", Actor: ext, Subject: ext, Outcome: "locked",
			Reason: "user", Source: src, Details: map[string]any{"until": now.Add(a.deps.LockoutDuration).UTC().Format("2006-01-02T15:04:05Z")}})
	}
	if a.locks.fail("source", src, now) {
		a.audit(r.Context(), audit.Entry{Kind: "web.lockout", Actor: ext, Subject: src, Outcome: "locked",
			Reason: "source", Source: src, Details: map[string]any{"until": now.Add(a.deps.LockoutDuration).UTC().Format("2006-01-02T15:04:05Z")}})
	}
}

func (a *App) logout(w http.ResponseWriter, r *http.Request) {
	if s := currentSession(r); s != nil {
		_ = a.sessions.DeleteSession(r.Context(), s.idHash)
		u, _ := CurrentUser(r)
		a.audit(r.Context(), audit.Entry{Kind: "web.logout", Actor: u.Extension, Subject: u.Extension, Outcome: "ok", Source: clientIP(r)})
	}
	a.setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
