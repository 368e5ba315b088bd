package web

import (
	"net/http"
	"strings"
	"testing"
)

// The consoles' icon: served without a session, under the CSP, as SVG,
// and named by every page so the browser's request never fails.
func TestFavicon(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	for _, path := range []string{"/favicon.ico", "/static/favicon.svg"} {
		res, body := c.get(path)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", path, res.StatusCode)
		}
		if ct := res.Header.Get("Content-Type"); ct != "image/svg+xml" {
			t.Errorf("GET %s: Content-Type %q", path, ct)
		}
		if !strings.Contains(res.Header.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("GET %s: no CSP", path)
		}
		if !strings.HasPrefix(body, "<svg") || strings.Contains(body, "<script") {
			t.Errorf("GET %s: %q is not a plain SVG", path, body)
		}
	}
	if _, page := c.get("/login"); !strings.Contains(page, `<link rel="icon" href="/static/favicon.svg"`) {
		t.Error("the login page does not name the icon")
	}
}
