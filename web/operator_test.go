package web

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"plateau/dialer"
)

// TestOutcomeCorrectionAPI: the operator corrects their outcome for ten
// minutes, a supervisor later, security never; each correction audited.
func TestOutcomeCorrectionAPI(t *testing.T) {
	cf := newConsoleFixture(t)
	c := cf.campaign("archi", csvTwo, true)
	op := cf.as("101")
	var lease dialer.Lease
	_, body := op.api("POST", fmt.Sprintf("/api/v1/campaigns/%d/next", c.ID), nil)
	decode(t, body, &lease)
	id := lease.Contact.ID
	if res, body := op.api("POST", fmt.Sprintf("/api/v1/contacts/%d/dispose", id), map[string]any{"disposition": ""}); res.StatusCode != 400 ||
		!strings.Contains(body, "unknown_disposition") {
		t.Fatalf("empty outcome accepted: %d %s", res.StatusCode, body)
	}
	if res, body := op.api("POST", fmt.Sprintf("/api/v1/contacts/%d/dispose", id), map[string]any{"disposition": "appointment set"}); res.StatusCode != 200 {
		t.Fatalf("dispose: %d %s", res.StatusCode, body)
	}
	correct := fmt.Sprintf("/api/v1/contacts/%d/correct", id)
	if res, body := op.api("POST", correct, map[string]any{"disposition": "busy"}); res.StatusCode != 200 || !strings.Contains(body, `"last_disposition":"busy"`) {
		t.Fatalf("operator correction: %d %s", res.StatusCode, body)
	}
	cf.clock.Add(10*time.Minute + time.Second)
	if res, body := op.api("POST", correct, map[string]any{"disposition": "interested"}); res.StatusCode != http.StatusConflict || !strings.Contains(body, "correction_closed") {
		t.Fatalf("operator after 10 min: %d %s", res.StatusCode, body)
	}
	if res, _ := cf.as("301").api("POST", correct, map[string]any{"disposition": "interested"}); res.StatusCode != http.StatusForbidden {
		t.Fatalf("security corrected: %d", res.StatusCode)
	}
	if res, body := cf.as("201").api("POST", correct, map[string]any{"disposition": "interested", "notes": "vu à l'écoute"}); res.StatusCode != 200 {
		t.Fatalf("supervisor correction: %d %s", res.StatusCode, body)
	}
	recs := cf.audited("dialer.outcome_corrected")
	if len(recs) != 2 {
		t.Fatalf("corrections audited: %d", len(recs))
	}
	var sup bool
	for _, r := range recs {
		sup = sup || (r.Entry.Actor == "201" && r.Entry.Details["from"] == "busy" && r.Entry.Details["to"] == "interested")
	}
	if !sup {
		t.Fatalf("supervisor's correction audit: %+v", recs)
	}
}

// TestCallbacksDueAndHours: a callback outside the calling hours is
// refused (400, its own code); the list marks due, then overdue ones.
func TestCallbacksDueAndHours(t *testing.T) {
	cf := newConsoleFixture(t) // Monday 10:00, site mon-fri 07:30-18:00
	c := cf.campaign("archi", csvTwo, true)
	op := cf.as("101")
	var lease dialer.Lease
	_, body := op.api("POST", fmt.Sprintf("/api/v1/campaigns/%d/next", c.ID), nil)
	decode(t, body, &lease)
	dispose := fmt.Sprintf("/api/v1/contacts/%d/dispose", lease.Contact.ID)
	sunday := time.Date(2026, 3, 8, 3, 0, 0, 0, cf.paris)
	if res, body := op.api("POST", dispose, map[string]any{"disposition": "callback", "callback_at": sunday}); res.StatusCode != 400 ||
		!strings.Contains(body, "callback_outside_hours") || !strings.Contains(body, `"next_open":"2026-03-09T07:30:00+01:00"`) {
		t.Fatalf("Sunday 03:00 callback: %d %s", res.StatusCode, body)
	}
	at := cf.clock.Now().Add(time.Hour)
	if res, body := op.api("POST", dispose, map[string]any{"disposition": "callback", "callback_at": at}); res.StatusCode != 200 {
		t.Fatalf("callback at 11:00: %d %s", res.StatusCode, body)
	}
	type row struct {
		ID      int64  `json:"id"`
		When    string `json:"when"`
		Due     bool   `json:"due"`
		Overdue bool   `json:"overdue"`
	}
	list := func() row {
		var out struct{ Callbacks []row }
		op = cf.as("101") // the clock moves past the idle timeout
		_, body := op.get("/api/v1/me/callbacks")
		decode(t, body, &out)
		if len(out.Callbacks) != 1 {
			t.Fatalf("callbacks: %s", body)
		}
		return out.Callbacks[0]
	}
	if r := list(); r.Due || r.Overdue || r.When != "aujourd'hui 11:00" || r.ID != lease.Contact.ID {
		t.Fatalf("before: %+v", r)
	}
	cf.clock.Add(time.Hour)
	if r := list(); !r.Due || r.Overdue {
		t.Fatalf("at the time: %+v", r)
	}
	cf.clock.Add(15*time.Minute + time.Second)
	if r := list(); !r.Due || !r.Overdue {
		t.Fatalf("15 min late: %+v", r)
	}
	if _, page := op.get("/operator"); !strings.Contains(page, `class="overdue"`) || !strings.Contains(page, `data-contact="`) {
		t.Fatal("the operator page does not mark the overdue callback or make it clickable")
	}
	// Opening it from the list leases it.
	if res, body := op.api("POST", fmt.Sprintf("/api/v1/contacts/%d/open", lease.Contact.ID), nil); res.StatusCode != 200 || !strings.Contains(body, `"callback": true`) && !strings.Contains(body, `"callback":true`) {
		t.Fatalf("open: %d %s", res.StatusCode, body)
	}
}

// TestNoLiveRegionOnClocks: the wallboard's clock and the operator's call
// timer are not announced every second.
func TestNoLiveRegionOnClocks(t *testing.T) {
	cf := newConsoleFixture(t)
	_, page := cf.as("201").get("/supervisor")
	i := strings.Index(page, `<time id="updated">`)
	if i < 0 {
		t.Fatal("no clock on the wallboard")
	}
	if p := strings.LastIndex(page[:i], "<p"); strings.Contains(page[p:i], "aria-live") {
		t.Fatalf("the wallboard clock is in a live region: %s", page[p:i])
	}
	_, page = cf.as("101").get("/operator")
	i = strings.Index(page, `id="call-duration"`)
	if p := strings.LastIndex(page[:i], `<div id="live-call"`); p < 0 || strings.Contains(page[p:i], "aria-live") || strings.Contains(page[p:i], `role="status"><span id="call-duration"`) {
		t.Fatalf("the call timer is in a live region: %s", page[p:i])
	}
}

// TestOperatorPageInEnglish: the operator console on request in English,
// its script's strings too.
func TestOperatorPageInEnglish(t *testing.T) {
	cf := newConsoleFixture(t)
	cf.campaign("archi", csvTwo, true)
	_, page := cf.as("101").get("/operator?lang=en")
	for _, want := range []string{"Phone not connected", "Keyboard shortcuts", `"op.err_choose":"Choose the call`, `"op.code.callback_outside_hours":"This callback`} {
		if !strings.Contains(page, want) {
			t.Errorf("English page lacks %q", want)
		}
	}
	for _, fr := range []string{"Raccourcis", "Téléphone", "Choisissez"} {
		if strings.Contains(page, fr) {
			t.Errorf("English page has French %q", fr)
		}
	}
}
