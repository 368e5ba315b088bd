package web

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"plateau/audit"
	"plateau/auth"
	"plateau/config"
	"plateau/policy"
	"plateau/store"
)

const testPassword = "correct-horse-1"

// testClock is an injected clock tests move by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	t     *testing.T
	st    *store.Store
	audit *audit.Log
	app   *App
	clock *testClock
	srv   *httptest.Server
	paris *time.Location
}

type operatorsAdapter struct{ st *store.Store }

func (o operatorsAdapter) Operator(ctx context.Context, ext string) (policy.Operator, bool, error) {
	u, err := o.st.User(ctx, ext)
	if err != nil {
		return policy.Operator{}, false, nil
	}
	return policy.Operator{Extension: u.Extension, Role: string(u.Role), Active: u.Status == store.StatusActive}, true, nil
}

type noCalls struct{}

func (noCalls) Active(context.Context, string) (int, int, error) { return 0, 0, nil }

type readyRecorder struct{}

func (readyRecorder) Ready() error { return nil }

var (
	hashOnce sync.Once
	hash     string
)

func newFixture(t *testing.T, tweak ...func(*Deps)) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "plateau.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	// Monday 2026-03-02 10:00 in Paris.
	clock := &testClock{t: time.Date(2026, 3, 2, 10, 0, 0, 0, paris)}
	hashOnce.Do(func() { hash, _ = auth.HashPassword(testPassword) })
	for _, u := range []store.User{
		{Extension: "101", DisplayName: "Opérateur Un", Role: store.RoleOperator},
		{Extension: "102", DisplayName: "Opérateur Deux", Role: store.RoleOperator},
		{Extension: "103", DisplayName: "Opérateur Suspendu", Role: store.RoleOperator, Status: store.StatusSuspended},
		{Extension: "201", DisplayName: "Superviseure", Role: store.RoleSupervisor},
		{Extension: "301", DisplayName: "Agent Sécurité Un", Role: store.RoleSecurity},
		{Extension: "302", DisplayName: "Agent Sécurité Deux", Role: store.RoleSecurity},
		{Extension: "401", DisplayName: "Admin", Role: store.RoleAdmin},
	} {
		u.WebPassword = hash
		if err := st.AddUser(ctx, u, clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	weekday := [7]bool{false, true, true, true, true, true, false}
	ws, err := policy.NewWindows(paris, []config.WeeklyWindow{{Days: weekday, From: 7*60 + 30, To: 18 * 60}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	engine, err := policy.New(policy.Config{Region: "FR", Windows: ws}, policy.Deps{
		Operators: operatorsAdapter{st}, Allowlist: st, DoNotCall: st, Calls: noCalls{}, Recorder: readyRecorder{}})
	if err != nil {
		t.Fatal(err)
	}
	chain := audit.New(st.DB(), clock.Now)
	d := Deps{Store: st, Audit: chain, Policy: engine, Location: paris, Now: clock.Now, StreamInterval: 50 * time.Millisecond}
	for _, fn := range tweak {
		fn(&d)
	}
	app, err := NewApp(d)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	return &fixture{t: t, st: st, audit: chain, app: app, clock: clock, srv: srv, paris: paris}
}

// client is a browser: a cookie jar and the CSRF token of its session.
type client struct {
	f    *fixture
	hc   *http.Client
	csrf string
}

func (f *fixture) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{f: f, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

var (
	csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	csrfMeta  = regexp.MustCompile(`<meta name="csrf-token" content="([^"]*)"`)
)

// tryLogin posts the login form and returns the response.
func (c *client) tryLogin(ext, pass string) *http.Response {
	c.f.t.Helper()
	_, body := c.get("/login")
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		c.f.t.Fatalf("no csrf field on the login page: %s", body)
	}
	res, _ := c.postForm("/login", url.Values{"csrf": {m[1]}, "username": {ext}, "password": {pass}})
	return res
}

// login logs in and reads the session's CSRF token from a page.
func (c *client) login(ext string) *client {
	c.f.t.Helper()
	res := c.tryLogin(ext, testPassword)
	if res.StatusCode != http.StatusSeeOther {
		c.f.t.Fatalf("login %s: status %d", ext, res.StatusCode)
	}
	_, body := c.get(res.Header.Get("Location"))
	m := csrfMeta.FindStringSubmatch(body)
	if m == nil || m[1] == "" {
		c.f.t.Fatalf("login %s: no csrf meta on %s", ext, res.Header.Get("Location"))
	}
	c.csrf = m[1]
	return c
}

func (f *fixture) as(ext string) *client { return f.client().login(ext) }

func (c *client) do(req *http.Request) (*http.Response, string) {
	c.f.t.Helper()
	res, err := c.hc.Do(req)
	if err != nil {
		c.f.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func (c *client) get(path string) (*http.Response, string) {
	req, _ := http.NewRequest(http.MethodGet, c.f.srv.URL+path, nil)
	return c.do(req)
}

func (c *client) postForm(path string, v url.Values) (*http.Response, string) {
	req, _ := http.NewRequest(http.MethodPost, c.f.srv.URL+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

// form posts a form with the session's CSRF token.
func (c *client) form(path string, v url.Values) (*http.Response, string) {
	if v == nil {
		v = url.Values{}
	}
	v.Set("csrf", c.csrf)
	return c.postForm(path, v)
}

// api posts JSON with the X-CSRF-Token header.
func (c *client) api(method, path string, body any) (*http.Response, string) {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, c.f.srv.URL+path, r)
	req.Header.Set("Content-Type", "application/json")
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	return c.do(req)
}

func (f *fixture) propose(by string, numbers ...string) []int64 {
	f.t.Helper()
	var ps []store.Proposal
	for _, n := range numbers {
		ps = append(ps, store.Proposal{E164: n, Label: "Cabinet " + n[len(n)-2:], Campaign: "archi"})
	}
	es, err := f.st.ProposeAllowlist(context.Background(), store.Change{By: by, Source: "test", At: f.clock.Now()}, ps)
	if err != nil {
		f.t.Fatal(err)
	}
	var ids []int64
	for _, e := range es {
		ids = append(ids, e.ID)
	}
	return ids
}

// audited returns the audit entries of a kind, newest first.
func (f *fixture) audited(kind string) []audit.Record {
	f.t.Helper()
	recs, err := f.audit.List(context.Background(), audit.Filter{Kind: kind, Limit: 1000})
	if err != nil {
		f.t.Fatal(err)
	}
	return recs
}

func decode(t *testing.T, body string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
}
