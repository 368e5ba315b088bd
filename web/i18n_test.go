package web

import (
	"io/fs"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// TestCatalogues: both languages have exactly the same keys, none empty,
// and the same format verbs.
func TestCatalogues(t *testing.T) {
	verbs := regexp.MustCompile(`%[dsv]`)
	fr, en := catalogue["fr"], catalogue["en"]
	for k, v := range fr {
		e, ok := en[k]
		switch {
		case !ok:
			t.Errorf("key %q missing in English", k)
		case v == "" || e == "":
			t.Errorf("key %q is empty", k)
		case strings.Join(verbs.FindAllString(v, -1), "") != strings.Join(verbs.FindAllString(e, -1), ""):
			t.Errorf("key %q: verbs differ: %q / %q", k, v, e)
		}
	}
	for k := range en {
		if _, ok := fr[k]; !ok {
			t.Errorf("key %q missing in French", k)
		}
	}
}

// TestTemplatesUseKeysOnly: every key a template names exists, and no
// template has words of its own outside {{...}} (markup and punctuation
// only).
func TestTemplatesUseKeysOnly(t *testing.T) {
	keyRE := regexp.MustCompile(`\.T "([a-z_.]+)"`)
	printfRE := regexp.MustCompile(`printf "([a-z_]+)\.%s"`)
	tagRE := regexp.MustCompile(`(?s)<[^>]*>`)
	entityRE := regexp.MustCompile(`&[a-z]+;`)
	actionRE := regexp.MustCompile(`(?s)\{\{.*?\}\}`)
	names, _ := fs.Glob(assets, "templates/*.html")
	for _, n := range names {
		b, _ := fs.ReadFile(assets, n)
		src := string(b)
		for _, m := range keyRE.FindAllStringSubmatch(src, -1) {
			if _, ok := catalogue["fr"][m[1]]; !ok {
				t.Errorf("%s: key %q not in the catalogue", n, m[1])
			}
		}
		for _, m := range printfRE.FindAllStringSubmatch(src, -1) {
			found := false
			for k := range catalogue["fr"] {
				found = found || strings.HasPrefix(k, m[1]+".")
			}
			if !found {
				t.Errorf("%s: no key with prefix %q", n, m[1])
			}
		}
		// Drop the actions, then the tags (with their attributes), then
		// entities: what is left must hold no letter.
		rest := actionRE.ReplaceAllString(src, "")
		rest = entityRE.ReplaceAllString(tagRE.ReplaceAllString(rest, " "), " ")
		for _, line := range strings.Split(rest, "\n") {
			if strings.IndexFunc(line, unicode.IsLetter) >= 0 {
				t.Errorf("%s: literal text %q: use a catalogue key", n, strings.TrimSpace(line))
			}
		}
	}
	// The enumerations the handlers localise by code.
	for _, k := range []string{"status.proposed", "status.approved", "status.rejected", "status.revoked", "status.active",
		"status.suspended", "role.operator", "role.supervisor", "role.security", "role.admin",
		"allowlist.approved_n", "allowlist.rejected_n", "users.done_suspend", "users.done_activate"} {
		if _, ok := catalogue["fr"][k]; !ok {
			t.Errorf("key %q missing", k)
		}
	}
	for _, code := range []string{"unauthenticated", "forbidden", "csrf", "not_found", "bad_request", "bad_filter", "internal",
		"self_approval", "not_approver", "not_proposed", "no_selection", "invalid_e164", "user_inactive", "self_suspend"} {
		if _, ok := catalogue["fr"]["err."+code]; !ok {
			t.Errorf("error code %q has no message", code)
		}
	}
}

func TestLanguageChoice(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	if _, body := c.get("/login"); !strings.Contains(body, `<html lang="fr">`) || !strings.Contains(body, "Mot de passe") {
		t.Fatal("French is not the default")
	}
	res, body := c.get("/login?lang=en")
	if !strings.Contains(body, "Password") || !strings.Contains(body, `<html lang="en">`) {
		t.Fatal("?lang=en is not English")
	}
	var set bool
	for _, ck := range res.Cookies() {
		set = set || (ck.Name == langCookie && ck.Value == "en")
	}
	if !set {
		t.Fatal("?lang=en did not set the cookie")
	}
	if _, body := c.get("/login"); !strings.Contains(body, "Password") {
		t.Fatal("the language cookie is not used")
	}
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/login", nil)
	req.Header.Set("Accept-Language", "en-GB,en;q=0.9,fr;q=0.5")
	if _, body := f.client().do(req); !strings.Contains(body, "Password") {
		t.Fatal("Accept-Language en is not used")
	}
	req.Header.Set("Accept-Language", "de-DE")
	if _, body := f.client().do(req); !strings.Contains(body, "Mot de passe") {
		t.Fatal("an unknown language does not fall back to French")
	}
}
