// Package web serves Plateau's HTTP side: health and readiness probes,
// Prometheus metrics (Server), and the web consoles and JSON API (App).
//
// With Server.EnableHTTPS (config http.tls) everything is served over TLS
// with HSTS, and the plain listener keeps only /healthz, /readyz and
// /metrics: other GET/HEAD requests are redirected to the configured
// HTTPS host (never one a request names), other methods refused, and no
// cookie is read or set there (https.go). Over TLS the session and login
// cookies are Secure and named with the __Host- prefix.
//
// # For the engineers of other packages (dialer, recordings…)
//
// App owns the login session. Mount your handlers on the App, not on the
// bare Server, so that they run behind the session middleware:
//
//	app.Handle("GET /api/v1/dialer/next", web.RequireRole(store.RoleOperator)(h))
//	app.Handle("POST /api/v1/dialer/call", web.RequireRole(store.RoleOperator)(h))
//
// Behind the App every request has been through these steps:
//
//   - the session cookie, if any, is checked (idle and absolute expiry, user
//     still active); web.CurrentUser(r) returns the logged-in user;
//   - POST, PUT, PATCH and DELETE need a valid CSRF token: the header
//     X-CSRF-Token for the JSON API (the consoles' pages carry it in
//     <meta name="csrf-token">), or the form field "csrf" for HTML forms.
//     A request without one gets 403 before reaching your handler. API
//     clients log in with POST /api/v1/session (JSON), which answers the
//     session cookie and its csrf_token.
//
// RequireRole(roles...) answers 401 (JSON under /api/, a redirect to the
// login page elsewhere) when nobody is logged in and 403 when the user's
// role is not listed. It is the only check the App makes: deciding that an
// operator may see only their own data is the handler's job, with
// CurrentUser(r).Extension.
//
//	u, ok := web.CurrentUser(r) // u.Extension, u.Role, u.DisplayName
//
// The consoles' own routes (click-to-call, the live call, monitoring,
// training, the campaign pages) and the mounting of the dialer's JSON API
// are listed in dialer.go (consoleRoutes); Deps.Dialer, Deps.Calls and
// Deps.Monitor connect them to package dialer and the SIP server.
//
// Errors: write them with web.WriteError(w, r, status, code, err) so the
// API answers {"error": code, "message": "<localised>", "detail": "..."}
// and a browser gets a page with the message and a way back (403, 404…).
// Localised strings come from the catalogues in messages.go and the
// *_messages.go files (French and English, every key in both:
// TestCatalogues checks it; TestEveryShownStringIsCatalogued walks the
// handlers' error codes and the scripts' keys). English details written by
// other packages (policy decisions, import and campaign checks) are
// translated for people in localize.go.
//
// A request whose session cookie the server no longer knows had its
// session expire: pages redirect to /login?expired=1&next=<where it was>,
// the consoles' scripts do the same on a 401, and typed text is kept in
// sessionStorage until the form is confirmed.
package web
