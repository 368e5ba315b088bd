package web

import (
	"context"
	"embed"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"plateau/audit"
	"plateau/dialer"
	"plateau/policy"
	"plateau/recordings"
	"plateau/store"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Decider is the policy engine, for the simulator.
type Decider interface {
	Decide(ctx context.Context, r policy.Request) policy.Decision
}

// Deps are the App's collaborators and settings.
type Deps struct {
	Store    *store.Store
	Audit    *audit.Log
	Policy   Decider
	Sessions SessionStore // nil: StoreSessions on Store
	Location *time.Location
	// Region is the site's default region ("FR"): numbers of that country
	// are shown the national way ("02 40 12 34 56"). "": FR.
	Region string
	// Realm is the SIP realm (sip.realm): the admin console stores a new
	// SIP password as its digest HA1 values in it. "": SIP passwords
	// cannot be set from the console (the CLI can).
	Realm string
	Now   func() time.Time
	Log   *slog.Logger

	// Recordings is the recordings index and RecordingsDir the directory
	// its paths are relative to (recordings.dir). Nil: the recordings
	// routes answer 503 (web/recordings.go).
	Recordings    *recordings.DBIndex
	RecordingsDir string

	// Dialer is the preview dialer (campaigns, queue, click-to-call);
	// nil: its routes answer 404 and the consoles say it is off
	// (web/dialer.go). Calls lists the calls in progress and Monitor rings
	// a supervisor into one (the SIP server); nil: no call is ever shown,
	// monitoring answers 503. TrainingCalls is the default number of
	// coached calls of an operator put in training (0: 5).
	Dialer        *dialer.Service
	Calls         LiveCalls
	Monitor       Monitorer
	TrainingCalls int

	// SecureCookies forces the Secure flag (TLS ended by a proxy); it is
	// set anyway on requests that came over TLS.
	SecureCookies bool
	IdleTimeout   time.Duration // 0: 30 minutes
	MaxSessionAge time.Duration // 0: 12 hours
	// Lockout: MaxUserFailures failed logins for one user (or
	// MaxSourceFailures from one address) within LockoutWindow lock it for
	// LockoutDuration. Zeros: 5, 20, 15 minutes, 15 minutes.
	MaxUserFailures   int
	MaxSourceFailures int
	LockoutWindow     time.Duration
	LockoutDuration   time.Duration
	// StreamInterval is how often the supervisor's live view is pushed;
	// 0: 2 seconds.
	StreamInterval time.Duration
}

// App is the web consoles and the JSON API, behind the login session.
type App struct {
	deps     Deps
	mux      *http.ServeMux
	sessions SessionStore
	locks    *lockout
	pages    *renderer
	log      *slog.Logger
	pauses   pauseBook // operators' declared absences (wallboard_states.go)
}

// NewApp builds the consoles and the API. Mount it at "/" on the Server.
func NewApp(d Deps) (*App, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Location == nil {
		d.Location = time.Local
	}
	def := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&d.IdleTimeout, 30*time.Minute)
	def(&d.MaxSessionAge, 12*time.Hour)
	def(&d.LockoutWindow, 15*time.Minute)
	def(&d.LockoutDuration, 15*time.Minute)
	def(&d.StreamInterval, 2*time.Second)
	if d.MaxUserFailures <= 0 {
		d.MaxUserFailures = 5
	}
	if d.MaxSourceFailures <= 0 {
		d.MaxSourceFailures = 20
	}
	if d.Sessions == nil {
		d.Sessions = StoreSessions{St: d.Store}
	}
	r, err := newRenderer()
	if err != nil {
		return nil, err
	}
	a := &App{deps: d, mux: http.NewServeMux(), sessions: d.Sessions, pages: r, log: d.Log,
		locks: newLockout(d.LockoutWindow, d.LockoutDuration, d.MaxUserFailures, d.MaxSourceFailures)}
	a.routes()
	return a, nil
}

func (a *App) now() time.Time { return a.deps.Now() }

func (a *App) region() string {
	if a.deps.Region == "" {
		return "FR"
	}
	return a.deps.Region
}

// Handle mounts another package's handler behind the session middleware;
// wrap it in RequireRole.
func (a *App) Handle(pattern string, h http.Handler) { a.mux.Handle(pattern, h) }

var (
	all        = []store.Role{store.RoleOperator, store.RoleSupervisor, store.RoleSecurity, store.RoleAdmin}
	operator   = []store.Role{store.RoleOperator}
	supervisor = []store.Role{store.RoleSupervisor, store.RoleAdmin}
	// The store lets security officers and admins decide on the allowlist.
	security = []store.Role{store.RoleSecurity, store.RoleAdmin}
	admin    = []store.Role{store.RoleAdmin}
	// Security staff audit accounts: they read the users list.
	userReaders = []store.Role{store.RoleSecurity, store.RoleAdmin}
)

func (a *App) routes() {
	static, _ := fs.Sub(assets, "static")
	a.mux.Handle("GET /static/", http.StripPrefix("/static/", cacheStatic(http.FileServerFS(static))))
	// Browsers ask for /favicon.ico whatever the page says: the same icon.
	a.mux.Handle("GET /favicon.ico", cacheStatic(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/svg+xml")
		http.ServeFileFS(w, r, static, "favicon.svg")
	})))
	a.mux.HandleFunc("GET /login", a.loginPage)
	a.mux.HandleFunc("POST /login", a.login)
	a.mux.HandleFunc("POST /api/v1/session", a.apiLogin)
	a.mux.Handle("DELETE /api/v1/session", RequireRole(all...)(http.HandlerFunc(a.apiLogout)))
	a.mux.HandleFunc("POST /logout", a.logout)
	a.mux.HandleFunc("GET /{$}", a.home)

	page := func(pattern string, roles []store.Role, h http.HandlerFunc) {
		a.mux.Handle(pattern, RequireRole(roles...)(h))
	}
	page("GET /operator", operator, a.operatorPage)
	page("GET /supervisor", supervisor, a.supervisorPage)
	page("GET /supervisor/events", supervisor, a.supervisorEvents)
	page("GET /security", security, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/security/allowlist", http.StatusSeeOther)
	})
	page("GET /security/allowlist", security, a.allowlistPage)
	page("POST /security/allowlist/decide", security, a.allowlistDecide)
	page("GET /security/allowlist.csv", security, a.allowlistCSV)
	a.securityActions()
	page("GET /security/audit", security, a.auditPage)
	page("GET /security/refused", security, a.refusedPage)
	page("GET /security/simulate", security, a.simulatePage)
	page("POST /security/simulate", security, a.simulatePage)
	page("GET /admin/users", admin, a.usersPage)
	page("POST /admin/users/{ext}/{action}", admin, a.userStatusForm)
	page("POST /admin/users", admin, a.addUserForm)
	page("POST /admin/users/{ext}/password", admin, a.passwordForm)
	page("POST /admin/users/{ext}/role", admin, a.roleForm)

	page("GET /api/v1/me", all, a.apiMe)
	page("GET /api/v1/me/registration", all, a.apiMyRegistration)
	page("GET /api/v1/allowlist", security, a.apiAllowlist)
	page("POST /api/v1/allowlist/approve", security, a.apiAllowlistApprove)
	page("POST /api/v1/allowlist/reject", security, a.apiAllowlistReject)
	page("POST /api/v1/allowlist/{id}/validity", security, a.apiAllowlistValidity)
	page("GET /api/v1/allowlist/export", security, a.allowlistCSV)
	page("GET /api/v1/audit", security, a.apiAudit)
	page("GET /api/v1/audit/verify", security, a.apiAuditVerify)
	page("GET /api/v1/reports/refused", security, a.apiRefused)
	page("POST /api/v1/policy/simulate", security, a.apiSimulate)
	page("GET /api/v1/users", userReaders, a.apiUsers)
	page("POST /api/v1/users/{ext}/{action}", admin, a.apiUserStatus)
	page("POST /api/v1/users", admin, a.apiAddUser)
	page("POST /api/v1/users/{ext}/password", admin, a.apiResetPassword)
	page("POST /api/v1/users/{ext}/role", admin, a.apiChangeRole)
	page("GET /api/v1/operators", supervisor, a.apiOperators)
	a.recordingRoutes()
	a.consoleRoutes()
	a.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, http.StatusNotFound, "not_found", nil)
	})
	// Any other unknown path: the 404 page, with a way back.
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, http.StatusNotFound, "not_found", nil)
	})
}

// ServeHTTP resolves the session, enforces CSRF on state changes, and
// dispatches.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	// same-origin: the site's own pages learn where a form came from (an
	// expired session returns there); nothing leaves for another site.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")
	if l := r.URL.Query().Get("lang"); known(l) {
		http.SetCookie(w, &http.Cookie{Name: langCookie, Value: l, Path: "/", MaxAge: 365 * 24 * 3600,
			HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil || a.deps.SecureCookies})
	}
	s, u := a.loadSession(r)
	if s != nil {
		r = r.WithContext(withUser(r.Context(), u, s))
	}
	if unsafeMethod(r.Method) && !isLogin(r) {
		if s == nil {
			if isAPI(r) {
				WriteError(w, r, http.StatusUnauthorized, "unauthenticated", nil)
			} else {
				http.Redirect(w, r, loginURL(r, refererPath(r)), http.StatusSeeOther)
			}
			return
		}
		if !tokensEqual(s.csrf, csrfFrom(r)) {
			a.log.Warn("csrf token missing or wrong", "path", r.URL.Path, "user", u.Extension, "source", clientIP(r))
			WriteError(w, r, http.StatusForbidden, "csrf", nil)
			return
		}
	}
	a.mux.ServeHTTP(w, r)
}

// isLogin: the two ways in, which cannot have a session yet (the form
// carries its own login token; the API takes JSON only).
func isLogin(r *http.Request) bool {
	return r.URL.Path == "/login" || r.Method == http.MethodPost && r.URL.Path == "/api/v1/session"
}

func unsafeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// csrfFrom reads the token from the header (JSON API) or the form field.
// The JSON API accepts only the header, so a cross-site form can never
// reach it even with a guessed field name.
func csrfFrom(r *http.Request) string {
	if t := r.Header.Get("X-CSRF-Token"); t != "" {
		return t
	}
	if isAPI(r) {
		return ""
	}
	return r.PostFormValue("csrf")
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func urlEscape(s string) string { return url.QueryEscape(s) }

// refererPath is the local page a form was posted from ("/" if unknown or
// another site's), where the user goes back after logging in again.
func refererPath(r *http.Request) string {
	ref, err := url.Parse(r.Referer())
	if err != nil || ref.Host != r.Host || ref.Path == "" {
		return "/"
	}
	if ref.RawQuery != "" {
		return safeNext(ref.Path + "?" + ref.RawQuery)
	}
	return safeNext(ref.Path)
}

func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "private, max-age=300")
		h.ServeHTTP(w, r)
	})
}

// home sends each role to its console.
func (a *App) home(w http.ResponseWriter, r *http.Request) {
	u, ok := CurrentUser(r)
	if !ok {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, homeOf(u.Role), http.StatusSeeOther)
}

func homeOf(r store.Role) string {
	switch r {
	case store.RoleSupervisor:
		return "/supervisor"
	case store.RoleSecurity:
		return "/security/allowlist"
	case store.RoleAdmin:
		return "/admin/users"
	}
	return "/operator"
}

func (a *App) audit(ctx context.Context, e audit.Entry) {
	if a.deps.Audit == nil {
		return
	}
	if _, err := a.deps.Audit.Append(context.WithoutCancel(ctx), e); err != nil {
		a.log.Error("audit append failed", "kind", e.Kind, "actor", e.Actor, "err", err)
	}
}
