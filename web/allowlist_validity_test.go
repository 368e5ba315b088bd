package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"plateau/audit"
	"plateau/store"
)

// TestAllowlistValidityForm: security sets and changes the end of an
// approved number from the allowlist page (typed jj/mm/aaaa, valid through
// that day); a past, malformed or empty date is refused next to its field
// and changes nothing; only security may do it, with the CSRF token.
func TestAllowlistValidityForm(t *testing.T) {
	f := newFixture(t)
	ids := f.propose("301", "+33240123456")
	pending := f.propose("301", "+33240999999")[0]
	if _, err := f.st.ApproveAllowlist(t.Context(), f.by("302"), store.Selection{IDs: ids}); err != nil {
		t.Fatal(err)
	}
	id := ids[0]
	path := "/security/allowlist/" + strconv.FormatInt(id, 10) + "/validity"
	c := f.as("302")
	_, body := c.get("/security/allowlist")
	if !strings.Contains(body, `action="`+path+`"`) {
		t.Fatal("no validity form on an approved number")
	}
	if strings.Contains(body, `action="/security/allowlist/`+strconv.FormatInt(pending, 10)+`/validity"`) {
		t.Fatal("validity form on a proposed number")
	}
	end := func() time.Time {
		es, _ := f.st.Allowlist(t.Context(), store.AllowFilter{E164: "+33240123456"})
		return es[0].ValidUntil
	}
	for _, tt := range []struct {
		name, typed string
		status      int
		msg         string
	}{
		{"past", "01/03/2026", http.StatusBadRequest, "La date de fin de validité est déjà passée."},
		{"long ago", "2020-01-01", http.StatusBadRequest, "La date de fin de validité est déjà passée."},
		{"empty", "  ", http.StatusBadRequest, "Indiquez le dernier jour autorisé (jj/mm/aaaa)."},
		{"garbage", "31/13/2026", http.StatusBadRequest, `id="vu-` + strconv.FormatInt(id, 10) + `-error"`},
	} {
		res, body := c.form(path, url.Values{"valid_until": {tt.typed}})
		if res.StatusCode != tt.status || !strings.Contains(body, tt.msg) {
			t.Errorf("%s: %d, want %d and %q", tt.name, res.StatusCode, tt.status, tt.msg)
		}
		// The message is next to this entry's field, which keeps the text.
		if !strings.Contains(body, `aria-describedby="vu-`+strconv.FormatInt(id, 10)+`-error"`) {
			t.Errorf("%s: the error is not tied to the field", tt.name)
		}
		if !end().IsZero() {
			t.Fatalf("%s: a refused end was stored", tt.name)
		}
	}
	// Without CSRF, or as a supervisor or operator: refused.
	if res, _ := c.postForm(path, url.Values{"valid_until": {"31/03/2026"}}); res.StatusCode != http.StatusForbidden {
		t.Errorf("no CSRF: %d", res.StatusCode)
	}
	for _, ext := range []string{"201", "101"} {
		if res, _ := f.as(ext).form(path, url.Values{"valid_until": {"31/03/2026"}}); res.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d", ext, res.StatusCode)
		}
	}
	if !end().IsZero() {
		t.Fatal("a refused request stored an end")
	}
	// Set: valid through 31 March in Paris.
	paris, _ := time.LoadLocation("Europe/Paris")
	res, body := c.form(path, url.Values{"valid_until": {"31/03/2026"}})
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "02 40 12 34 56 : autorisé jusqu&#39;au 31/03/2026 inclus.") {
		t.Fatalf("set: %d %s", res.StatusCode, body)
	}
	if got := end(); !got.Equal(time.Date(2026, 4, 1, 0, 0, 0, 0, paris)) {
		t.Fatalf("end: %s", got)
	}
	// The proposer may shorten it, not extend it alone.
	if res, body := f.as("301").form(path, url.Values{"valid_until": {"30/04/2026"}}); res.StatusCode != http.StatusForbidden ||
		!strings.Contains(body, "un autre agent doit prolonger") {
		t.Errorf("proposer extends: %d", res.StatusCode)
	}
	if res, _ := f.as("301").form(path, url.Values{"valid_until": {"15/03/2026"}}); res.StatusCode != http.StatusOK ||
		!end().Equal(time.Date(2026, 3, 16, 0, 0, 0, 0, paris)) {
		t.Errorf("proposer shortens: %d %s", res.StatusCode, end())
	}
	// A proposed entry has no validity to change; an unknown one is 404.
	if res, _ := c.form("/security/allowlist/"+strconv.FormatInt(pending, 10)+"/validity", url.Values{"valid_until": {"31/03/2026"}}); res.StatusCode != http.StatusConflict {
		t.Errorf("proposed entry: %d", res.StatusCode)
	}
	for _, p := range []string{"/security/allowlist/99999/validity", "/security/allowlist/abc/validity", "/security/allowlist/-1/validity"} {
		if res, _ := c.form(p, url.Values{"valid_until": {"31/03/2026"}}); res.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d", p, res.StatusCode)
		}
	}
	recs, _ := f.audit.List(t.Context(), audit.Filter{Kind: "allowlist.validity"})
	// Two changes, and the proposer's refused extension on its own.
	outcomes := map[string]int{}
	for _, r := range recs {
		outcomes[r.Entry.Outcome]++
	}
	if outcomes["ok"] != 2 || outcomes["refused"] != 1 {
		t.Errorf("allowlist.validity audited %v, want 2 ok and 1 refused", outcomes)
	}
	// The English page says it in English.
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+path+"?lang=en", strings.NewReader(url.Values{"valid_until": {"01/01/2020"}, "csrf": {c.csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if res, body := c.do(req); res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "The end of validity is already past.") {
		t.Errorf("English: %d", res.StatusCode)
	}
}

// TestAllowlistValidityAPI: POST /api/v1/allowlist/{id}/validity.
func TestAllowlistValidityAPI(t *testing.T) {
	f := newFixture(t)
	ids := f.propose("301", "+33240123456")
	if _, err := f.st.ApproveAllowlist(t.Context(), f.by("302"), store.Selection{IDs: ids}); err != nil {
		t.Fatal(err)
	}
	path := "/api/v1/allowlist/" + strconv.FormatInt(ids[0], 10) + "/validity"
	c := f.as("302")
	now := f.clock.Now()
	for _, tt := range []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"past", map[string]any{"valid_until": now.Add(-time.Hour)}, http.StatusBadRequest, "validity_past"},
		{"missing", map[string]any{}, http.StatusBadRequest, "validity_past"},
		{"not a time", map[string]any{"valid_until": "31/03/2026"}, http.StatusBadRequest, "bad_request"},
		{"unknown field", map[string]any{"valid_until": now.Add(time.Hour), "x": 1}, http.StatusBadRequest, "bad_request"},
	} {
		res, body := c.api(http.MethodPost, path, tt.body)
		var e struct{ Error string }
		_ = json.Unmarshal([]byte(body), &e)
		if res.StatusCode != tt.status || e.Error != tt.code {
			t.Errorf("%s: %d %s, want %d %s", tt.name, res.StatusCode, body, tt.status, tt.code)
		}
	}
	if res, _ := f.as("201").api(http.MethodPost, path, map[string]any{"valid_until": now.Add(time.Hour)}); res.StatusCode != http.StatusForbidden {
		t.Errorf("supervisor: %d", res.StatusCode)
	}
	until := now.Add(48 * time.Hour).UTC().Truncate(time.Second)
	res, body := c.api(http.MethodPost, path, map[string]any{"valid_until": until, "note": "fin du marché"})
	var out struct {
		Entry allowEntry `json:"entry"`
	}
	if err := json.Unmarshal([]byte(body), &out); res.StatusCode != http.StatusOK || err != nil || out.Entry.ValidUntil == nil || !out.Entry.ValidUntil.Equal(until) {
		t.Fatalf("set: %d %s", res.StatusCode, body)
	}
	if ok, _ := f.st.IsApproved(t.Context(), "+33240123456", until); ok {
		t.Error("approved at its new end")
	}
}
