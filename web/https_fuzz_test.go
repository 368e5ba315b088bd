package web

import (
	"bufio"
	"crypto/tls"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// FuzzPlainRedirect: whatever request-target and Host an attacker sends to
// the plain listener, the answer sets no cookie and a redirect goes to the
// configured HTTPS host, with no user info, and carries the request's own
// path: never another site (open redirect) nor a console page.
func FuzzPlainRedirect(f *testing.F) {
	for _, seed := range []string{"/login", "/login?next=/operator", "//evil.example/x", "/\\evil.example", "/%2F%2Fevil.example",
		"http://evil.example/login", "https://user@evil.example:443/", "/@evil.example", "/a/../../b", "/healthz", "/metrics?x=1", "*",
		"/api/v1/me#frag", "/%0d%0aSet-Cookie:%20a=b"} {
		f.Add(seed, "evil.example")
	}
	const host = "plateau.atelier.lan:8443"
	s := New(prometheus.NewRegistry(), nil, slog.New(slog.DiscardHandler))
	if err := s.EnableHTTPS(HTTPS{Addr: "127.0.0.1:8443", TLS: &tls.Config{MinVersion: tls.VersionTLS12}, Host: host}, prometheus.NewRegistry()); err != nil {
		f.Fatal(err)
	}
	h := s.plain()
	f.Fuzz(func(t *testing.T, target, hostHeader string) {
		for _, method := range []string{"GET", "POST"} {
			req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(method + " " + target + " HTTP/1.1\r\nHost: " + hostHeader + "\r\n\r\n")))
			if err != nil {
				return // net/http's server would have answered 400 itself
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			res := w.Result()
			if len(res.Header.Values("Set-Cookie")) != 0 {
				t.Fatalf("%s %q set a cookie", method, target)
			}
			switch res.StatusCode {
			case http.StatusOK: // /healthz, /readyz, /metrics
				if p := req.URL.Path; method != "GET" || p != "/healthz" && p != "/readyz" && p != "/metrics" {
					t.Fatalf("%s %q answered 200", method, target)
				}
			case http.StatusMovedPermanently, http.StatusTemporaryRedirect:
				// The mux's own redirect of an unclean path to one of the
				// operations routes: relative, on this listener.
				if l := res.Header.Get("Location"); strings.HasPrefix(l, "/") && !strings.HasPrefix(l, "//") && !strings.HasPrefix(l, "/\\") {
					if p, _, _ := strings.Cut(l, "?"); p != "/healthz" && p != "/readyz" && p != "/metrics" {
						t.Fatalf("%s %q redirected on plain HTTP to %q", method, target, l)
					}
					continue
				}
				loc, err := url.Parse(res.Header.Get("Location"))
				want := req.URL.Path
				if !strings.HasPrefix(want, "/") {
					want = "/"
				}
				if method != "GET" || res.StatusCode != http.StatusMovedPermanently || err != nil || loc.Scheme != "https" || loc.Host != host || loc.User != nil || loc.Path != want {
					t.Fatalf("%s %q (Host %q) redirected to %q", method, target, hostHeader, res.Header.Get("Location"))
				}
			case http.StatusForbidden:
				if method == "GET" || res.Header.Get("Location") != "" {
					t.Fatalf("%s %q refused with a Location %q", method, target, res.Header.Get("Location"))
				}
			default:
				t.Fatalf("%s %q: %d", method, target, res.StatusCode)
			}
		}
	})
}
