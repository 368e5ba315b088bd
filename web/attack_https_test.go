package web

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLoginNextIsNoOpenRedirect: the page a login goes on to (?next=, a
// hidden field an attacker fills in a link sent to a supervisor) stays on
// Plateau however it is written. Browsers drop tabs and newlines anywhere
// in a URL and read a backslash as a slash, so "/\t/evil.example" is
// //evil.example to them: the login would hand the supervisor, just
// authenticated, to a look-alike page asking for the password again.
func TestLoginNextIsNoOpenRedirect(t *testing.T) {
	f := newHTTPSFixture(t)
	for _, next := range []string{
		"//evil.example/", "/\\evil.example/", "\\\\evil.example/", "/\t/evil.example/", "/\n/evil.example/",
		"/\r/evil.example/", "\t//evil.example/", "/\\\t\\evil.example/", "/ /evil.example", "/\x00/evil.example",
		"/\x0b/evil.example", "/\x7f/evil.example", "https://evil.example/", "https:evil.example", "//evil.example@plateau/",
		"/%09/evil.example", "/%2F/evil.example", "/./\t/evil.example",
	} {
		hc := f.browser()
		_, page := send(t, hc, "GET", f.secure+"/login?next="+url.QueryEscape(next), "", "")
		m := csrfField.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no login form")
		}
		// The transport itself: Go's client would refuse to follow (or
		// even parse) the Location a browser follows.
		req, _ := http.NewRequest("POST", f.secure+"/login", strings.NewReader(
			url.Values{"csrf": {m[1]}, "username": {"101"}, "password": {testPassword}, "next": {next}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, c := range hc.Jar.Cookies(req.URL) {
			req.AddCookie(c)
		}
		res, err := hc.Transport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("next %q: login %d", next, res.StatusCode)
		}
		loc := res.Header.Get("Location")
		if to, err := browserResolve(f.secure+"/login", loc); err != nil || to.Host != f.host || to.Scheme != "https" {
			t.Errorf("next %q: Location %q takes the browser to %v (%v)", next, loc, to, err)
		}
		if strings.ContainsAny(loc, "\t\r\n\\\x00") {
			t.Errorf("next %q: Location %q carries characters browsers rewrite", next, loc)
		}
	}
}

// browserResolve is where a browser goes for a Location header on page
// base (WHATWG URL: leading C0 controls and spaces trimmed, tab, CR, LF
// removed anywhere, a backslash read as a slash in http(s) URLs).
func browserResolve(base, loc string) (*url.URL, error) {
	loc = strings.TrimLeftFunc(loc, func(r rune) bool { return r <= ' ' })
	loc = strings.Map(func(r rune) rune {
		switch r {
		case '\t', '\n', '\r':
			return -1
		case '\\':
			return '/'
		}
		return r
	}, loc)
	b, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	return b.Parse(loc)
}

// FuzzSafeNext: whatever next a link carries, what safeNext keeps takes a
// browser to a page of the same site.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/operator", "/login?next=/x", "//evil.example", "/\t/evil.example", "/\\evil", "https://evil.example", "/%2F/evil"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		kept := safeNext(next)
		if kept == "" {
			return
		}
		to, err := browserResolve("https://plateau.test/login", kept)
		if err != nil || to.Scheme != "https" || to.Host != "plateau.test" || to.User != nil {
			t.Fatalf("safeNext(%q) = %q takes a browser to %v (%v)", next, kept, to, err)
		}
	})
}

// TestSessionCookieNameTricks: a live session id under any other spelling
// of the __Host- name (what a man in the middle on plain HTTP can plant:
// case, encoding, spaces, a nameless cookie) opens nothing over HTTPS;
// only the exact __Host- name does.
func TestSessionCookieNameTricks(t *testing.T) {
	f := newHTTPSFixture(t)
	live := f.loginHTTPS(t, f.browser())
	raw := &http.Client{Transport: f.browser().Transport}
	me := func(cookieHeader string) int {
		req, _ := http.NewRequest("GET", f.secure+"/api/v1/me", nil)
		req.Header.Set("Cookie", cookieHeader)
		res, err := raw.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	id := live.Value
	for _, h := range []string{
		"plateau_session=" + id,
		"__host-plateau_session=" + id,
		"__HOST-plateau_session=" + id,
		"__Host-Plateau_Session=" + id,
		"%5F%5FHost-plateau_session=" + id,
		"__Host%2Dplateau_session=" + id,
		"__Host-plateau_session%00=" + id,
		" __Host-plateau_session =" + id + "x",
		"=__Host-plateau_session=" + id,
		"__Secure-plateau_session=" + id,
		"__Host-plateau_login=" + id,
		"__Host-plateau_session=\"" + id + "x\"",
	} {
		if got := me(h); got != http.StatusUnauthorized {
			t.Errorf("Cookie: %s → %d, want 401", h, got)
		}
	}
	if got := me("__Host-plateau_session=" + id); got != http.StatusOK {
		t.Fatalf("the exact name: %d, want 200", got)
	}
	// A planted unprefixed cookie beside the real one changes nothing.
	if got := me("plateau_session=planted; __Host-plateau_session=" + id); got != http.StatusOK {
		t.Errorf("real session beside a planted one: %d, want 200", got)
	}
}

// TestHSTSOnEveryHTTPSAnswer: whatever answers over HTTPS (a static file,
// a directory listing refused, the mux's own redirects and 405s, a HEAD, a
// failed login, an API error, HTTP/2), the answer says HSTS: the first
// answer a browser gets may be any of them.
func TestHSTSOnEveryHTTPSAnswer(t *testing.T) {
	f := newHTTPSFixture(t)
	hc := f.browser()
	h2 := &http.Client{Transport: &http.Transport{TLSClientConfig: hc.Transport.(*http.Transport).TLSClientConfig.Clone(), ForceAttemptHTTP2: true},
		CheckRedirect: hc.CheckRedirect}
	for _, tc := range []struct {
		client       *http.Client
		method, path string
		body         string
		wantProto    int
	}{
		{hc, "GET", "/static/app.css", "", 1},
		{hc, "GET", "/static/", "", 1},
		{hc, "GET", "/static/../../etc/passwd", "", 1},
		{hc, "GET", "/favicon.ico", "", 1},
		{hc, "HEAD", "/login", "", 1},
		{hc, "POST", "/healthz", "", 1},
		{hc, "GET", "/api/v1/nowhere", "", 1},
		{hc, "GET", "/operator", "", 1},
		{hc, "POST", "/login", "username=101&password=x", 1},
		{hc, "POST", "/api/v1/session", `{"username":"101","password":"x"}`, 1},
		{hc, "GET", "//operator", "", 1},
		{h2, "GET", "/login", "", 2},
		{h2, "GET", "/nowhere", "", 2},
	} {
		req, _ := http.NewRequest(tc.method, f.secure+tc.path, strings.NewReader(tc.body))
		if strings.HasPrefix(tc.body, "{") {
			req.Header.Set("Content-Type", "application/json")
		} else if tc.body != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		res, err := tc.client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		res.Body.Close()
		if res.ProtoMajor != tc.wantProto {
			t.Errorf("%s %s: HTTP/%d, want HTTP/%d", tc.method, tc.path, res.ProtoMajor, tc.wantProto)
		}
		if got := res.Header.Get("Strict-Transport-Security"); got != hstsHeader {
			t.Errorf("%s %s (%d, HTTP/%d): Strict-Transport-Security %q", tc.method, tc.path, res.StatusCode, res.ProtoMajor, got)
		}
	}
}

// TestConnectionsPerHostBounded: one host (127.0.0.2) opens many more
// connections than a browser ever needs, on the HTTPS and the plain
// listener, and keeps them: beyond maxConnsPerSource they are closed at
// once and counted, and another host (127.0.0.1) is still served.
func TestConnectionsPerHostBounded(t *testing.T) {
	f := newHTTPSFixture(t)
	for _, target := range []string{f.host, strings.TrimPrefix(f.plain, "http://")} {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 10 * time.Second}
		var held []net.Conn
		for range maxConnsPerSource + 20 {
			c, err := d.Dial("tcp", target)
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
		}
		// The ones beyond the bound are closed by the server: a read
		// ends (EOF or reset) well before the handshake/header timeout.
		// All read at once, for 5 s (the server's own timeouts are 10 s).
		var closed atomic.Int64
		var wg sync.WaitGroup
		deadline := time.Now().Add(5 * time.Second)
		for _, c := range held {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.SetReadDeadline(deadline)
				var b [1]byte
				if _, err := c.Read(b[:]); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
					closed.Add(1)
				}
			}()
		}
		wg.Wait()
		if n := closed.Load(); n != 20 {
			t.Errorf("%s: %d of %d connections from one host closed at once, want the 20 beyond %d", target, n, len(held), maxConnsPerSource)
		}
		res, _ := send(t, f.browser(), "GET", f.secure+"/healthz", "", "")
		if res.StatusCode != 200 {
			t.Errorf("another host while 127.0.0.2 holds %d connections: %d", maxConnsPerSource, res.StatusCode)
		}
		for _, c := range held {
			c.Close()
		}
	}
	if got := gathered(t, f.reg, "plateau_http_connections_refused_total"); got < 40 {
		t.Errorf("plateau_http_connections_refused_total = %v, want at least 40", got)
	}
}

// TestLockoutPerSourceIPv6Host: one IPv6 host picks any address of its /64
// at will (SLAAC privacy addresses, or by hand): guessing passwords across
// accounts from fresh addresses must still hit the per-source lockout.
func TestLockoutPerSourceIPv6Host(t *testing.T) {
	f := newFixture(t)
	login := func(remote, user, pass string) int {
		req := httptest.NewRequest("POST", "/api/v1/session", strings.NewReader(`{"username":"`+user+`","password":"`+pass+`"}`))
		req.Header.Set("Content-Type", "application/json")
		req.RemoteAddr = remote
		w := httptest.NewRecorder()
		f.app.ServeHTTP(w, req)
		return w.Code
	}
	// A new name each time: no per-user lock ever triggers, only the
	// per-source one can stop the spray.
	locked := -1
	for i := range 60 {
		remote := fmt.Sprintf("[2001:db8:0:7::%x]:40000", i+1)
		if code := login(remote, fmt.Sprint(5000+i), "guess"); code == http.StatusTooManyRequests {
			locked = i
			break
		}
	}
	if locked < 0 {
		t.Fatal("60 guesses from 60 addresses of one /64 were never locked out")
	}
	// The lock holds for the whole /64, even with the right password,
	// and not for another host's /64.
	if code := login("[2001:db8:0:7::ffff]:1", "102", testPassword); code != http.StatusTooManyRequests {
		t.Errorf("another address of the locked /64: %d, want 429", code)
	}
	if code := login("[2001:db8:0:8::1]:1", "102", testPassword); code != http.StatusOK && code != http.StatusCreated {
		t.Errorf("a host of another /64: %d, want a session", code)
	}
	t.Logf("locked after %d guesses", locked)
}
