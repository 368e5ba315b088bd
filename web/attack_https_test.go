package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
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
