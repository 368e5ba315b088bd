package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestLoginLogout(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	res := c.tryLogin("301", testPassword)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/security/allowlist" {
		t.Fatalf("login: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	var sess *http.Cookie
	for _, ck := range res.Cookies() {
		if ck.Name == sessionCookie && ck.Value != "" {
			sess = ck
		}
	}
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.Secure {
		t.Fatalf("session cookie: %+v (Secure only over TLS)", sess)
	}
	if len(sess.Value) < 43 {
		t.Fatalf("session id %q is shorter than 32 random bytes", sess.Value)
	}
	// Only the hash of the id is kept.
	if _, err := f.app.sessions.Session(t.Context(), sess.Value); err == nil {
		t.Fatal("session stored under its plain id")
	}
	if _, err := f.app.sessions.Session(t.Context(), hashID(sess.Value)); err != nil {
		t.Fatalf("session not stored under its hash: %v", err)
	}
	_, page := c.get("/security/allowlist")
	c.csrf = csrfMeta.FindStringSubmatch(page)[1]
	res, body := c.get("/api/v1/me")
	if res.StatusCode != 200 || !strings.Contains(body, `"extension": "301"`) || !strings.Contains(body, `"role": "security"`) {
		t.Fatalf("me: %d %s", res.StatusCode, body)
	}
	res, _ = c.form("/logout", nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", res.StatusCode)
	}
	if res, _ := c.get("/api/v1/me"); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("me after logout: %d", res.StatusCode)
	}
	if res, _ := c.get("/security/allowlist"); res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login") {
		t.Fatalf("page after logout: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	var kinds []string
	for _, r := range f.audited("web.login") {
		kinds = append(kinds, r.Entry.Outcome)
	}
	if len(kinds) != 1 || kinds[0] != "ok" {
		t.Fatalf("web.login audited: %v", kinds)
	}
	if n := len(f.audited("web.logout")); n != 1 {
		t.Fatalf("web.logout audited %d times", n)
	}
}

// The form and the JSON API refuse alike, and audit why.
func TestLoginRefusals(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name, ext, pass string
		status          int
		says, code      string // the form's message, the API's error code
		reason          string
	}{
		{"wrong password", "101", "nope-nope-nope", http.StatusUnauthorized, "Identifiant ou mot de passe incorrect", "login_failed", "bad_credentials"},
		{"unknown user", "999", testPassword, http.StatusUnauthorized, "Identifiant ou mot de passe incorrect", "login_failed", "unknown_user"},
		{"suspended", "103", testPassword, http.StatusForbidden, "Ce compte est suspendu", "login_suspended", "suspended"},
	}
	for _, tc := range cases {
		for _, api := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s api=%v", tc.name, api), func(t *testing.T) {
				c := f.client()
				var res *http.Response
				var body, want string
				if api {
					res, body = c.api("POST", "/api/v1/session", map[string]string{"username": tc.ext, "password": tc.pass})
					want = `"error": "` + tc.code + `"`
				} else {
					_, page := c.get("/login")
					tok := csrfField.FindStringSubmatch(page)[1]
					res, body = c.postForm("/login", url.Values{"csrf": {tok}, "username": {tc.ext}, "password": {tc.pass}})
					want = tc.says
				}
				if res.StatusCode != tc.status || !strings.Contains(body, want) || strings.Contains(body, "csrf_token") {
					t.Fatalf("status %d, want %d with %q: %s", res.StatusCode, tc.status, want, body)
				}
				if recs := f.audited("web.login"); len(recs) == 0 || recs[0].Entry.Actor != tc.ext || recs[0].Entry.Reason != tc.reason {
					t.Fatalf("audit: %+v", recs)
				}
			})
		}
	}
}

func TestLoginNeedsItsCSRFToken(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	res, _ := c.postForm("/login", url.Values{"username": {"301"}, "password": {testPassword}})
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("login without token: %d", res.StatusCode)
	}
	c.get("/login") // sets the login cookie
	res, _ = c.postForm("/login", url.Values{"csrf": {"forged"}, "username": {"301"}, "password": {testPassword}})
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("login with a forged token: %d", res.StatusCode)
	}
}

func TestLoginNextIsLocalOnly(t *testing.T) {
	f := newFixture(t)
	for next, want := range map[string]string{"/security/audit": "/security/audit", "//evil.example/": "/security/allowlist",
		"https://evil.example/": "/security/allowlist"} {
		c := f.client()
		_, page := c.get("/login")
		tok := csrfField.FindStringSubmatch(page)[1]
		res, _ := c.postForm("/login", url.Values{"csrf": {tok}, "username": {"301"}, "password": {testPassword}, "next": {next}})
		if got := res.Header.Get("Location"); got != want {
			t.Errorf("next %q: redirected to %q, want %q", next, got, want)
		}
	}
}

func TestLockoutPerUser(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	for i := 0; i < 5; i++ {
		if res := c.tryLogin("101", "wrong-password"); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i, res.StatusCode)
		}
	}
	locks := f.audited("web.lockout")
	if len(locks) != 1 || locks[0].Entry.Subject != "101" || locks[0].Entry.Reason != "user" {
		t.Fatalf("lockout audit: %+v", locks)
	}
	// Locked: even the right password is refused, and the refusal audited.
	res := c.tryLogin("101", testPassword)
	if res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("locked user logged in: %d", res.StatusCode)
	}
	if recs := f.audited("web.login"); recs[0].Entry.Reason != "locked" {
		t.Fatalf("locked attempt audited as %+v", recs[0].Entry)
	}
	// Another user from the same desk is not locked (source limit is 20).
	if res := f.client().tryLogin("102", testPassword); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("other user: %d", res.StatusCode)
	}
	f.clock.Add(15 * time.Minute)
	if res := c.tryLogin("101", testPassword); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("after the lock: %d", res.StatusCode)
	}
}

func TestLockoutPerSource(t *testing.T) {
	f := newFixture(t, func(d *Deps) { d.MaxSourceFailures = 3 })
	c := f.client()
	for _, ext := range []string{"101", "102", "999"} {
		c.tryLogin(ext, "wrong-password")
	}
	if res := c.tryLogin("301", testPassword); res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("source not locked: %d", res.StatusCode)
	}
	locks := f.audited("web.lockout")
	if len(locks) != 1 || locks[0].Entry.Reason != "source" || locks[0].Entry.Subject != "127.0.0.1" {
		t.Fatalf("lockout audit: %+v", locks)
	}
}

func TestSessionIdleExpiry(t *testing.T) {
	f := newFixture(t)
	c := f.as("301")
	f.clock.Add(29 * time.Minute)
	if res, _ := c.get("/api/v1/me"); res.StatusCode != 200 {
		t.Fatalf("at 29 min idle: %d", res.StatusCode)
	}
	f.clock.Add(29 * time.Minute) // 29 min after the last request
	if res, _ := c.get("/api/v1/me"); res.StatusCode != 200 {
		t.Fatalf("29 min after the last request: %d", res.StatusCode)
	}
	f.clock.Add(30 * time.Minute)
	if res, _ := c.get("/api/v1/me"); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("after 30 min idle: %d", res.StatusCode)
	}
}

func TestSessionAbsoluteExpiry(t *testing.T) {
	f := newFixture(t)
	c := f.as("201")
	for i := 0; i < 35; i++ { // active every 20 minutes: 11h40
		f.clock.Add(20 * time.Minute)
		if res, _ := c.get("/api/v1/me"); res.StatusCode != 200 {
			t.Fatalf("after %v: %d", time.Duration(i+1)*20*time.Minute, res.StatusCode)
		}
	}
	f.clock.Add(20 * time.Minute) // 12h
	if res, _ := c.get("/api/v1/me"); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("after 12h: %d", res.StatusCode)
	}
}

func TestSuspensionEndsSessions(t *testing.T) {
	f := newFixture(t)
	op := f.as("101")
	adm := f.as("401")
	if res, body := adm.api("POST", "/api/v1/users/101/suspend", map[string]string{"reason": "enquête"}); res.StatusCode != 200 {
		t.Fatalf("suspend: %d %s", res.StatusCode, body)
	}
	if res, _ := op.get("/api/v1/me"); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("suspended operator still in: %d", res.StatusCode)
	}
	if res := f.client().tryLogin("101", testPassword); res.StatusCode != http.StatusForbidden {
		t.Fatalf("suspended operator logs in: %d", res.StatusCode)
	}
}

func TestCSRF(t *testing.T) {
	f := newFixture(t)
	ids := f.propose("301", "+33240000001")
	c := f.as("302")
	good := c.csrf
	wrong := "x" + good[1:]
	if good[0] == 'x' {
		wrong = "y" + good[1:]
	}
	for _, tc := range []struct {
		name string
		tok  string
	}{{"missing", ""}, {"wrong", wrong}} {
		c.csrf = tc.tok
		if res, body := c.api("POST", "/api/v1/allowlist/approve", map[string]any{"ids": ids}); res.StatusCode != http.StatusForbidden || !strings.Contains(body, `"error": "csrf"`) {
			t.Errorf("API, token %s: %d %s", tc.name, res.StatusCode, body)
		}
		if res, _ := c.postForm("/security/allowlist/decide", url.Values{"csrf": {tc.tok}, "approve_one": {"1"}}); res.StatusCode != http.StatusForbidden {
			t.Errorf("form, token %s: %d", tc.name, res.StatusCode)
		}
		if res, _ := c.postForm("/logout", url.Values{"csrf": {tc.tok}}); res.StatusCode != http.StatusForbidden {
			t.Errorf("logout, token %s: %d", tc.name, res.StatusCode)
		}
	}
	// The JSON API takes the token from the header only.
	c.csrf = ""
	req := url.Values{"csrf": {good}}
	if res, _ := c.postForm("/api/v1/allowlist/reject", req); res.StatusCode != http.StatusForbidden {
		t.Errorf("API with the token as a form field: %d", res.StatusCode)
	}
	// Another session's token is no good either.
	c.csrf = f.as("301").csrf
	if res, _ := c.api("POST", "/api/v1/allowlist/approve", map[string]any{"ids": ids}); res.StatusCode != http.StatusForbidden {
		t.Errorf("another session's token: %d", res.StatusCode)
	}
	if es, _ := f.st.Allowlist(t.Context(), storeFilterProposed()); len(es) != 1 {
		t.Fatalf("a refused request changed the allowlist: %+v", es)
	}
	c.csrf = good
	if res, body := c.api("POST", "/api/v1/allowlist/approve", map[string]any{"ids": ids}); res.StatusCode != 200 {
		t.Fatalf("with the token: %d %s", res.StatusCode, body)
	}
}

// The JSON API's own login: a session and its CSRF token for API clients
// (its refusals are in TestLoginRefusals, its lockout below).
func TestAPILogin(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	res, body := c.api("POST", "/api/v1/session", map[string]string{"username": "201", "password": testPassword})
	var in struct {
		Extension, Role string
		CSRF            string `json:"csrf_token"`
	}
	decode(t, body, &in)
	if res.StatusCode != http.StatusOK || in.Extension != "201" || in.Role != "supervisor" || in.CSRF == "" {
		t.Fatalf("login: %d %s", res.StatusCode, body)
	}
	if res, body := c.get("/api/v1/me"); res.StatusCode != 200 || !strings.Contains(body, `"extension": "201"`) {
		t.Fatalf("me: %d %s", res.StatusCode, body)
	}
	// State changes still need the session's token.
	if res, _ := c.api("DELETE", "/api/v1/session", nil); res.StatusCode != http.StatusForbidden {
		t.Fatalf("logout without the CSRF token: %d", res.StatusCode)
	}
	c.csrf = in.CSRF
	if res, _ := c.api("DELETE", "/api/v1/session", nil); res.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %d", res.StatusCode)
	}
	if res, _ := c.get("/api/v1/me"); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("me after logout: %d", res.StatusCode)
	}
	if n := len(f.audited("web.logout")); n != 1 {
		t.Fatalf("web.logout audited %d times", n)
	}

	// A cross-site form cannot log anyone in: JSON only.
	res, _ = f.client().postForm("/api/v1/session", url.Values{"username": {"201"}, "password": {testPassword}})
	if res.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("form-encoded login: %d, want 415", res.StatusCode)
	}
	if res, _ := f.client().api("POST", "/api/v1/session", "not an object"); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("malformed body: %d, want 400", res.StatusCode)
	}
}

// Failed API logins count towards the same lockout as the form's.
func TestAPILoginLockout(t *testing.T) {
	f := newFixture(t)
	for i := 0; i < 5; i++ {
		if res, _ := f.client().api("POST", "/api/v1/session", map[string]string{"username": "101", "password": "wrong"}); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i, res.StatusCode)
		}
	}
	res, body := f.client().api("POST", "/api/v1/session", map[string]string{"username": "101", "password": testPassword})
	if res.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "login_locked") {
		t.Fatalf("right password while locked: %d %s", res.StatusCode, body)
	}
	if res := f.client().tryLogin("101", testPassword); res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("form login while locked: %d", res.StatusCode)
	}
}
