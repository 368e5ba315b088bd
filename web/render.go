package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"plateau/store"
)

// renderer holds one template set per page, each with the layout.
type renderer struct {
	pages map[string]*template.Template
}

func newRenderer() (*renderer, error) {
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	r := &renderer{pages: map[string]*template.Template{}}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New(base).Funcs(template.FuncMap{
			"join": strings.Join, "hasPrefix": strings.HasPrefix,
		}).ParseFS(assets, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", n, err)
		}
		r.pages[base] = t
	}
	return r, nil
}

type navItem struct {
	Href, Key string
	Active    bool
	Count     int // pending work behind the link (proposals to decide)
}

// view is what every page template receives.
type view struct {
	Lang     string
	User     User
	LoggedIn bool
	CSRF     string
	Nav      []navItem
	Title    string // catalogue key
	Flash    string // already localised
	Error    string // already localised
	Path     string
	Data     any
	loc      *time.Location
	query    url.Values
	app      *App
}

// LocalDetail translates a detail another package wrote in English
// (web/localize.go).
func (v *view) LocalDetail(detail string) string {
	if v.app == nil {
		return detail
	}
	return v.app.localDetail(v.Lang, detail)
}

// LocalNote translates a note the software wrote; people's notes as is.
func (v *view) LocalNote(note string) string {
	if v.app == nil {
		return note
	}
	return v.app.localNote(v.Lang, note)
}

// Number shows an E.164 number the site's way ("02 40 12 34 56").
func (v *view) Number(e164 string) string {
	if v.app == nil {
		return e164
	}
	return v.app.number(e164)
}

// T localises a catalogue key.
func (v *view) T(key string, args ...any) string { return T(v.Lang, key, args...) }

// Time shows an instant in the site's time zone.
func (v *view) Time(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(v.loc).Format("02/01/2006 15:04:05")
}

// RoleName localises a role.
func (v *view) RoleName(r store.Role) string { return v.T("role." + string(r)) }

// OtherLang is the language the switch offers.
func (v *view) OtherLang() string {
	if v.Lang == "en" {
		return "fr"
	}
	return "en"
}

// navFor lists what a role may open, and nothing else.
func navFor(role store.Role, path string) []navItem {
	var items []navItem
	add := func(href, key string) {
		items = append(items, navItem{Href: href, Key: key, Active: path == href})
	}
	switch role {
	case store.RoleOperator:
		add("/operator", "nav.operator")
	case store.RoleSupervisor:
		add("/supervisor", "nav.supervisor")
		add("/supervisor/campaigns", "nav.campaigns")
	case store.RoleSecurity, store.RoleAdmin:
		if role == store.RoleAdmin {
			add("/admin/users", "nav.users")
			add("/supervisor", "nav.supervisor")
		}
		add("/security/allowlist", "nav.allowlist")
		add("/security/audit", "nav.audit")
		add("/security/refused", "nav.refused")
		add("/security/simulate", "nav.simulate")
	}
	return append(items, recordingsNav(role, path)...)
}

func (a *App) newView(r *http.Request, title string, data any) *view {
	v := &view{Lang: langOf(r), Title: title, Data: data, Path: r.URL.Path, loc: a.deps.Location,
		query: r.URL.Query(), app: a}
	if u, ok := CurrentUser(r); ok {
		v.User, v.LoggedIn = u, true
		v.Nav = navFor(u.Role, r.URL.Path)
		a.navCounts(r, u, v.Nav)
		if s := currentSession(r); s != nil {
			v.CSRF = s.csrf
		}
	}
	return v
}

func (a *App) render(w http.ResponseWriter, r *http.Request, status int, page string, v *view) {
	t, ok := a.pages.pages[page]
	if !ok {
		http.Error(w, "no template "+page, http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		a.log.Error("render", "page", page, "err", err)
		http.Error(w, T(v.Lang, "err.internal"), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// WriteError answers an error: JSON {"error", "message", "detail"} under
// /api/, plain localised text elsewhere. code is a catalogue key under
// "err." (e.g. "forbidden"); err, if any, is the technical detail.
func WriteError(w http.ResponseWriter, r *http.Request, status int, code string, err error) {
	lang := langOf(r)
	msg := T(lang, "err."+code)
	if isAPI(r) {
		body := map[string]string{"error": code, "message": msg}
		if err != nil {
			body["detail"] = err.Error()
		}
		writeJSON(w, status, body)
		return
	}
	writeErrorPage(w, r, status, msg)
}

// errorData is what the error page shows: the message, what to do, and
// the way back.
type errorData struct {
	Message   string // localised
	Help      string // catalogue key
	Back      string // a local path
	BackLabel string // catalogue key
}

// errorPages is the layout with the error page, parsed once: WriteError is
// a function (other packages' handlers call it), not a method of the App.
var errorPages = template.Must(template.New("error").Funcs(template.FuncMap{"join": strings.Join}).
	ParseFS(assets, "templates/layout.html", "templates/error.html"))

// writeErrorPage answers a browser with a proper page: the message, a
// hint, and a link back to the user's console (or the login page).
func writeErrorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	v := &view{Lang: langOf(r), Title: "errpage.title", Path: r.URL.Path, query: r.URL.Query()}
	d := errorData{Message: msg, Help: "errpage.help", Back: "/login", BackLabel: "errpage.to_login"}
	if u, ok := CurrentUser(r); ok {
		v.User, v.LoggedIn, v.Nav = u, true, navFor(u.Role, r.URL.Path)
		if s := currentSession(r); s != nil {
			v.CSRF = s.csrf
		}
		d.Back, d.BackLabel = homeOf(u.Role), "errpage.to_home"
	}
	switch status {
	case http.StatusNotFound:
		v.Title, d.Help = "errpage.title_404", "errpage.help_404"
	case http.StatusForbidden:
		v.Title, d.Help = "errpage.title_403", "errpage.help_403"
	}
	v.Data = d
	var buf bytes.Buffer
	w.Header().Set("Cache-Control", "no-store")
	if err := errorPages.ExecuteTemplate(&buf, "layout", v); err != nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		fmt.Fprintln(w, msg)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Reason localises a policy reason code; an unknown code shows as is.
func (v *view) Reason(code string) string {
	if _, ok := catalogue[v.Lang]["reason."+code]; ok {
		return v.T("reason." + code)
	}
	return code
}

// Rule localises a policy rule name.
func (v *view) Rule(rule string) string {
	if _, ok := catalogue[v.Lang]["rule."+rule]; ok {
		return v.T("rule." + rule)
	}
	return rule
}

// Details shows an audit entry's details as "key=value" pairs, sorted.
func (v *view) Details(d map[string]any) string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%v", k, d[k]))
	}
	return strings.Join(parts, " ")
}

// Query is the current page's URL with one parameter replaced (pagers).
func (v *view) Query(key string, val any) string {
	q := v.query
	nq := url.Values{}
	for k, vs := range q {
		nq[k] = vs
	}
	nq.Set(key, fmt.Sprint(val))
	return v.Path + "?" + nq.Encode()
}

// navCounts puts on the allowlist link the number of proposals the user
// may decide (others' only: the two-person rule), so security sees work
// waiting from every page. A failed count shows none, logged.
func (a *App) navCounts(r *http.Request, u User, items []navItem) {
	for i := range items {
		if items[i].Href != "/security/allowlist" {
			continue
		}
		es, err := a.deps.Store.Allowlist(r.Context(), store.AllowFilter{Status: store.AllowProposed})
		if err != nil {
			a.log.Warn("nav: pending proposals", "err", err)
			return
		}
		for _, e := range es {
			if e.ProposedBy != u.Extension {
				items[i].Count++
			}
		}
	}
}
