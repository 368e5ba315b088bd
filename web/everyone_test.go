package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestErrorPages: 404 and 403 are pages in the user's language with a way
// back, not bare text; the API keeps its JSON.
func TestErrorPages(t *testing.T) {
	f := newFixture(t)
	op := f.as("101")
	for _, tt := range []struct {
		c      *client
		path   string
		status int
		want   []string
	}{
		{op, "/nope", http.StatusNotFound, []string{"<h1>Page introuvable</h1>", `href="/operator"`, "Retour à ma page"}},
		{op, "/supervisor", http.StatusForbidden, []string{"<h1>Accès refusé</h1>", `href="/operator"`, "Votre rôle ne donne pas accès"}},
		{op, "/nope?lang=en", http.StatusNotFound, []string{"<h1>Page not found</h1>", "Back to my page"}},
		{f.client(), "/nope", http.StatusNotFound, []string{"<h1>Page introuvable</h1>", `href="/login"`}},
	} {
		res, body := tt.c.get(tt.path)
		if res.StatusCode != tt.status || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d %s", tt.path, res.StatusCode, res.Header.Get("Content-Type"))
		}
		for _, w := range tt.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: no %q in %s", tt.path, w, body)
			}
		}
		if strings.Contains(body, "404 page not found") {
			t.Errorf("%s: Go's bare 404", tt.path)
		}
	}
	if res, body := op.get("/api/v1/nope"); res.StatusCode != 404 || !strings.Contains(body, `"error": "not_found"`) {
		t.Errorf("API 404: %d %s", res.StatusCode, body)
	}
}

// TestSessionExpiry: once the session has expired, the next page or form
// lands on the login page with a message and returns where the user was.
func TestSessionExpiry(t *testing.T) {
	f := newFixture(t)
	sup := f.as("201")
	f.clock.Add(31 * time.Minute) // idle timeout 30 min
	res, _ := sup.get("/supervisor?x=1")
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "expired=1") || !strings.Contains(loc, "next="+url.QueryEscape("/supervisor?x=1")) {
		t.Fatalf("expired page: %d %s", res.StatusCode, loc)
	}
	_, body := sup.get(loc)
	if !strings.Contains(body, "Votre session a expiré") || !strings.Contains(body, `name="next" value="/supervisor?x=1"`) {
		t.Fatalf("login page after expiry: %s", body)
	}
	// A form posted from a page: back to that page.
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/supervisor/monitor", strings.NewReader("operator=101&mode=listen&csrf="+sup.csrf))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Referer", f.srv.URL+"/supervisor")
	res, _ = sup.do(req)
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "expired=1") || !strings.Contains(loc, "next=%2Fsupervisor&") && !strings.HasSuffix(loc, "next=%2Fsupervisor") {
		t.Fatalf("expired form: %d %s", res.StatusCode, loc)
	}
	// Someone who never logged in is not told about an expiry.
	res, _ = f.client().get("/supervisor")
	if loc := res.Header.Get("Location"); strings.Contains(loc, "expired") {
		t.Fatalf("no session, yet expired: %s", loc)
	}
	// Another site's referer is not followed.
	if got := refererPath(&http.Request{Host: "plateau.local", Header: http.Header{"Referer": {"http://evil.example/x"}}}); got != "/" {
		t.Fatalf("foreign referer: %q", got)
	}
}
