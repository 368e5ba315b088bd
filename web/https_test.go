package web

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"plateau/certs"
)

// httpsFixture is the App behind a Server with HTTPS on: a plain listener
// and an HTTPS one on 127.0.0.1, a certificate from package certs.
type httpsFixture struct {
	*fixture
	plain, secure string // http://127.0.0.1:P, https://127.0.0.1:Q
	host          string // 127.0.0.1:Q
	roots         *x509.CertPool
	pair          *certs.Pair
	certFile      string
	keyFile       string
	reg           *prometheus.Registry
}

func newHTTPSFixture(t *testing.T) *httpsFixture {
	t.Helper()
	f := newFixture(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "https.crt"), filepath.Join(dir, "https.key")
	writeTestPair(t, certFile, keyFile)
	pair, err := certs.Load(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := certs.LoadCAs(certFile)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s := New(reg, nil, slog.New(slog.DiscardHandler))
	s.Handle("/", f.app)
	host := HTTPSHost("127.0.0.1", tl.Addr().String())
	if err := s.EnableHTTPS(HTTPS{Addr: tl.Addr().String(), TLS: certs.ServerConfig(pair, nil), Host: host, NotAfter: pair.NotAfter}, reg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.serveBoth(ctx, l, tl) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &httpsFixture{fixture: f, plain: "http://" + l.Addr().String(), secure: "https://" + host, host: host,
		roots: roots, pair: pair, certFile: certFile, keyFile: keyFile, reg: reg}
}

func writeTestPair(t *testing.T, certFile, keyFile string) {
	t.Helper()
	c, k, err := certs.SelfSigned([]string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, c, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, k, 0o600); err != nil {
		t.Fatal(err)
	}
}

// browser is a client that trusts the test certificate, keeps cookies
// like a browser (Secure ones only over HTTPS) and follows no redirect.
func (f *httpsFixture) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 20 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.roots}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func send(t *testing.T, hc *http.Client, method, u, ctype, body string, cookies ...*http.Cookie) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	res, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// loginHTTPS logs 101 in through the form over HTTPS and returns its
// session cookie as the server set it.
func (f *httpsFixture) loginHTTPS(t *testing.T, hc *http.Client) *http.Cookie {
	t.Helper()
	_, page := send(t, hc, "GET", f.secure+"/login", "", "")
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no login form over HTTPS:\n%s", page)
	}
	res, _ := send(t, hc, "POST", f.secure+"/login", "application/x-www-form-urlencoded",
		url.Values{"csrf": {m[1]}, "username": {"101"}, "password": {testPassword}}.Encode())
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("login over HTTPS: %d", res.StatusCode)
	}
	for _, c := range res.Cookies() {
		if c.Name == "__Host-"+sessionCookie && c.Value != "" {
			return c
		}
	}
	t.Fatalf("login over HTTPS set no __Host- session cookie: %v", res.Header["Set-Cookie"])
	return nil
}

func TestHTTPSSessionCookieIsSecure(t *testing.T) {
	f := newHTTPSFixture(t)
	hc := f.browser()
	res, _ := send(t, hc, "GET", f.secure+"/login", "", "")
	if got := res.Header.Get("Strict-Transport-Security"); got != hstsHeader {
		t.Errorf("HSTS on /login = %q", got)
	}
	for _, c := range res.Cookies() {
		if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || !strings.HasPrefix(c.Name, "__Host-") || c.Path != "/" || c.Domain != "" {
			t.Errorf("login page cookie %+v: want __Host-, Secure, HttpOnly, SameSite=Strict, Path=/", c)
		}
	}
	c := f.loginHTTPS(t, hc)
	if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Domain != "" {
		t.Errorf("session cookie %+v: want Secure, HttpOnly, SameSite=Strict, Path=/, no Domain", c)
	}
	// The jar (like a browser) sends the Secure cookie over HTTPS…
	if res, body := send(t, hc, "GET", f.secure+"/api/v1/me", "", ""); res.StatusCode != 200 || !strings.Contains(body, `"101"`) {
		t.Fatalf("/api/v1/me over HTTPS: %d %s", res.StatusCode, body)
	}
	// …and, as set, never over plain HTTP to the LAN address users type.
	// (Browsers and Go's jar treat loopback as a secure origin and do send
	// it to http://127.0.0.1: the plain listener ignores it, see
	// TestPlainListenerServesOnlyOperations.)
	lan, _ := cookiejar.New(nil)
	secureURL, _ := url.Parse("https://plateau.atelier.lan/login")
	plainURL, _ := url.Parse("http://plateau.atelier.lan/api/v1/me")
	lan.SetCookies(secureURL, []*http.Cookie{c})
	if len(lan.Cookies(secureURL)) != 1 || len(lan.Cookies(plainURL)) != 0 {
		t.Errorf("the session cookie as set would go over plain HTTP: %v", lan.Cookies(plainURL))
	}
	// HSTS on every HTTPS answer, the operations routes too.
	for _, p := range []string{"/healthz", "/metrics", "/api/v1/me", "/nowhere"} {
		if res, _ := send(t, hc, "GET", f.secure+p, "", ""); res.Header.Get("Strict-Transport-Security") != hstsHeader {
			t.Errorf("HTTPS %s: no HSTS", p)
		}
	}
	// The old cookie name means nothing over HTTPS: a cookie planted
	// without the prefix (over plain HTTP, by a man in the middle) opens
	// no session.
	plain := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.roots}}, CheckRedirect: hc.CheckRedirect}
	if res, _ := send(t, plain, "GET", f.secure+"/api/v1/me", "", "", &http.Cookie{Name: sessionCookie, Value: c.Value}); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("a session id under the unprefixed name over HTTPS: %d, want 401", res.StatusCode)
	}
}

// The plain listener, attacked: every route of the App and every method,
// with and without a live session cookie and a hostile Host header. It
// serves nothing but the operations routes, sets no cookie, resolves no
// session, and redirects only to the configured HTTPS host.
func TestPlainListenerServesOnlyOperations(t *testing.T) {
	f := newHTTPSFixture(t)
	live := f.loginHTTPS(t, f.browser())
	plain := &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		res, body := send(t, plain, "GET", f.plain+p, "", "")
		if res.StatusCode != 200 || len(res.Cookies()) != 0 || res.Header.Get("Strict-Transport-Security") != "" {
			t.Errorf("plain GET %s: %d cookies %v HSTS %q", p, res.StatusCode, res.Cookies(), res.Header.Get("Strict-Transport-Security"))
		}
		if p == "/metrics" && !strings.Contains(body, "plateau_http_plain_redirects_total") {
			t.Errorf("/metrics lacks the plain listener's counters")
		}
	}

	paths := []string{"/", "/login", "/login?next=/operator", "/logout", "/operator", "/supervisor", "/supervisor/events",
		"/security/allowlist", "/security/allowlist.csv", "/admin/users", "/api/v1/session", "/api/v1/me", "/api/v1/allowlist",
		"/api/v1/audit", "/static/app.css", "/favicon.ico", "/debug/pprof/", "/nowhere", "//evil.example/x", "/%2F%2Fevil.example"}
	methods := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
	for _, p := range paths {
		for _, m := range methods {
			for _, withCookie := range []bool{false, true} {
				var cookies []*http.Cookie
				if withCookie {
					cookies = []*http.Cookie{{Name: sessionCookie, Value: live.Value}, {Name: live.Name, Value: live.Value}}
				}
				body := url.Values{"username": {"101"}, "password": {testPassword}}.Encode()
				req, _ := http.NewRequest(m, f.plain+p, strings.NewReader(body))
				req.Host = "evil.example" // an attacker's Host must not become the redirect's
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				for _, c := range cookies {
					req.AddCookie(c)
				}
				res, err := plain.Do(req)
				if err != nil {
					t.Fatalf("plain %s %s: %v", m, p, err)
				}
				got, _ := io.ReadAll(res.Body)
				res.Body.Close()
				name := fmt.Sprintf("plain %s %s (cookie %v)", m, p, withCookie)
				if len(res.Header.Values("Set-Cookie")) != 0 {
					t.Errorf("%s set a cookie: %v", name, res.Header.Values("Set-Cookie"))
				}
				if strings.Contains(string(got), "csrf") || strings.Contains(string(got), "Opérateur") || strings.Contains(string(got), `"101"`) {
					t.Errorf("%s served console content:\n%s", name, got)
				}
				switch m {
				case "GET", "HEAD":
					if res.StatusCode != http.StatusMovedPermanently {
						t.Errorf("%s: %d, want 301", name, res.StatusCode)
						continue
					}
					loc, err := url.Parse(res.Header.Get("Location"))
					if err != nil || loc.Scheme != "https" || loc.Host != f.host || loc.User != nil {
						t.Errorf("%s redirects to %q, want https://%s/...", name, res.Header.Get("Location"), f.host)
						continue
					}
					want, _ := url.Parse(f.plain + p)
					if loc.EscapedPath() != want.EscapedPath() || loc.RawQuery != want.RawQuery {
						t.Errorf("%s redirects to %q: not the same path", name, res.Header.Get("Location"))
					}
				default:
					if res.StatusCode != http.StatusForbidden || res.Header.Get("Location") != "" {
						t.Errorf("%s: %d Location %q, want 403 without a redirect", name, res.StatusCode, res.Header.Get("Location"))
					}
				}
			}
		}
	}
	var n int
	if err := f.st.DB().QueryRow("SELECT COUNT(*) FROM web_sessions").Scan(&n); err != nil || n != 1 {
		t.Errorf("sessions after the attack: %d (%v), want only the live one", n, err)
	}
	// Counted: redirects, refusals, and the cookies seen in clear.
	for name, min := range map[string]float64{"plateau_http_plain_redirects_total": 40, "plateau_http_plain_refused_total": 100,
		"plateau_http_plain_session_cookies_total": 140} {
		if got := gathered(t, f.reg, name); got < min {
			t.Errorf("%s = %v, want at least %v", name, got, min)
		}
	}
	// The live session still works over HTTPS (nothing revoked or planted).
	hc := f.browser()
	if res, _ := send(t, hc, "GET", f.secure+"/api/v1/me", "", "", live); res.StatusCode != 200 {
		t.Errorf("the live session over HTTPS after the attack: %d", res.StatusCode)
	}
}

// An absolute-form request line names another host: the redirect still
// goes to the configured one (raw TCP: net/http's client never sends it).
func TestPlainRedirectIgnoresTheRequestLineHost(t *testing.T) {
	f := newHTTPSFixture(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.plain, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(conn, "GET http://evil.example/login?next=/x HTTP/1.1\r\nHost: evil.example\r\nX-Forwarded-Host: evil.example\r\nConnection: close\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.Header.Get("Location"), f.secure+"/login?next=/x"; res.StatusCode != 301 || got != want {
		t.Fatalf("%d Location %q, want 301 %q", res.StatusCode, got, want)
	}
}

// TLS 1.2 and 1.3 with AEAD suites only: TLS 1.1, and TLS 1.2 with CBC or
// non-forward-secret suites, are refused and counted.
func TestHTTPSRefusesOldTLS(t *testing.T) {
	f := newHTTPSFixture(t)
	addr := f.host
	for _, tc := range []struct {
		name  string
		cfg   *tls.Config
		works bool
	}{
		{"TLS 1.3", &tls.Config{MinVersion: tls.VersionTLS13}, true},
		{"TLS 1.2 ECDHE AES-GCM", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}, true},
		{"TLS 1.1", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, false},
		{"TLS 1.0", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}, false},
		{"TLS 1.2 CBC", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}, false},
		{"TLS 1.2 RSA key exchange", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.RootCAs = f.roots
			cfg.ServerName = "127.0.0.1"
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
			if err == nil {
				conn.Close()
			}
			if (err == nil) != tc.works {
				t.Fatalf("handshake error %v, want success %v", err, tc.works)
			}
		})
	}
	// The server logs the refusals asynchronously: wait for the count.
	for deadline := time.Now().Add(20 * time.Second); gathered(t, f.reg, "plateau_http_tls_handshake_failures_total") < 4; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("plateau_http_tls_handshake_failures_total = %v, want 4", gathered(t, f.reg, "plateau_http_tls_handshake_failures_total"))
		}
	}
	if got := gathered(t, f.reg, "plateau_http_tls_certificate_expiry_timestamp_seconds"); got != float64(f.pair.NotAfter().Unix()) {
		t.Errorf("certificate expiry metric %v, want %d", got, f.pair.NotAfter().Unix())
	}
}

// A renewed certificate is served by the next handshake, without a
// restart (serve calls Reload on SIGHUP and Watch on file change).
func TestHTTPSServesTheRenewedCertificate(t *testing.T) {
	f := newHTTPSFixture(t)
	served := func(roots *x509.CertPool) string {
		conn, err := tls.Dial("tcp", f.host, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return certs.Fingerprint(conn.ConnectionState().PeerCertificates[0].Raw)
	}
	before := served(f.roots)
	if before != f.pair.Fingerprint() {
		t.Fatalf("served %s, pair %s", before, f.pair.Fingerprint())
	}
	writeTestPair(t, f.certFile, f.keyFile)
	if err := f.pair.Reload(); err != nil {
		t.Fatal(err)
	}
	roots, err := certs.LoadCAs(f.certFile)
	if err != nil {
		t.Fatal(err)
	}
	if after := served(roots); after == before || after != f.pair.Fingerprint() {
		t.Fatalf("after renewal served %s (before %s, pair %s)", after, before, f.pair.Fingerprint())
	}
}

func TestEnableHTTPSRefusesBadSettings(t *testing.T) {
	pairDir := t.TempDir()
	cf, kf := filepath.Join(pairDir, "a.crt"), filepath.Join(pairDir, "a.key")
	writeTestPair(t, cf, kf)
	pair, err := certs.Load(cf, kf)
	if err != nil {
		t.Fatal(err)
	}
	weak := certs.ServerConfig(pair, nil)
	weak.MinVersion = tls.VersionTLS10
	for _, tc := range []struct {
		name string
		h    HTTPS
	}{
		{"no host", HTTPS{Addr: "127.0.0.1:8443", TLS: certs.ServerConfig(pair, nil)}},
		{"host with a path", HTTPS{Addr: "127.0.0.1:8443", TLS: certs.ServerConfig(pair, nil), Host: "evil.example/x"}},
		{"host with user info", HTTPS{Addr: "127.0.0.1:8443", TLS: certs.ServerConfig(pair, nil), Host: "a@evil.example"}},
		{"no TLS config", HTTPS{Addr: "127.0.0.1:8443", Host: "127.0.0.1:8443"}},
		{"TLS below 1.2", HTTPS{Addr: "127.0.0.1:8443", TLS: weak, Host: "127.0.0.1:8443"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(prometheus.NewRegistry(), nil, slog.New(slog.DiscardHandler))
			if err := s.EnableHTTPS(tc.h, prometheus.NewRegistry()); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestHTTPSHost(t *testing.T) {
	for _, tc := range []struct{ host, addr, want string }{
		{"127.0.0.1", "127.0.0.1:8443", "127.0.0.1:8443"},
		{"plateau.atelier.local", "0.0.0.0:443", "plateau.atelier.local"},
		{"::1", "[::1]:8443", "[::1]:8443"},
		{"fd00::5", ":443", "[fd00::5]"},
	} {
		if got := HTTPSHost(tc.host, tc.addr); got != tc.want {
			t.Errorf("HTTPSHost(%q, %q) = %q, want %q", tc.host, tc.addr, got, tc.want)
		}
	}
}

func gathered(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if m.GetCounter() != nil {
			return m.GetCounter().GetValue()
		}
		return m.GetGauge().GetValue()
	}
	return -1
}
