package web

import (
	"fmt"
	"net/http"
	"strings"
)

// Languages the consoles speak; the first is the default.
var languages = []string{"fr", "en"}

// langOf picks the request's language: ?lang=, then the cookie, then
// Accept-Language, then French.
func langOf(r *http.Request) string {
	if l := r.URL.Query().Get("lang"); known(l) {
		return l
	}
	if c, err := r.Cookie(langCookie); err == nil && known(c.Value) {
		return c.Value
	}
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		base, _, _ := strings.Cut(strings.ToLower(tag), "-")
		if known(base) {
			return base
		}
	}
	return languages[0]
}

func known(l string) bool { return l == "fr" || l == "en" }

// T returns the message for key in lang, formatted with args; a missing
// key shows as itself (TestCatalogues keeps that from shipping).
func T(lang, key string, args ...any) string {
	m, ok := catalogue[lang][key]
	if !ok {
		m, ok = catalogue[languages[0]][key]
	}
	if !ok {
		return key
	}
	if len(args) > 0 {
		return fmt.Sprintf(m, args...)
	}
	return m
}
