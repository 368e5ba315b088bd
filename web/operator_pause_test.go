package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"plateau/dialer"
)

// TestOperatorPause: the operator console has the pause control (the four
// reasons, « Reprendre »), the state survives a reload (the page and GET
// /api/v1/me/pause say it), and while paused the server hands out no
// contact and places no call; after « Reprendre » the loop goes on.
func TestOperatorPause(t *testing.T) {
	cf := newConsoleFixture(t)
	cf.register("101")
	c := cf.campaign("archi", csvTwo, true)
	op := cf.as("101")
	_, page := op.get("/operator")
	for _, want := range []string{`id="pause-card"`, `id="pause-reason"`, `<option value="visit">parloir / visite</option>`,
		`<option value="medical">infirmerie</option>`, `<option value="movement">mouvement</option>`, `<option value="training">formation</option>`,
		`data-pause=""`, `<p id="pause-resume" hidden>`, "Reprendre"} {
		if !strings.Contains(page, want) {
			t.Errorf("operator page lacks %q", want)
		}
	}
	pauseState := func() (string, bool) {
		t.Helper()
		res, body := op.api("GET", "/api/v1/me/pause", nil)
		var out map[string]any
		if res.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &out) != nil {
			t.Fatalf("GET pause: %d %s", res.StatusCode, body)
		}
		_, since := out["since"]
		return out["reason"].(string), since
	}
	if r, since := pauseState(); r != "" || since {
		t.Fatalf("not paused yet: %q %v", r, since)
	}
	// A lease in hand, then a pause: next, open and call are refused.
	next := fmt.Sprintf("/api/v1/campaigns/%d/next", c.ID)
	res, body := op.api("POST", next, nil)
	var lease dialer.Lease
	if res.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &lease) != nil {
		t.Fatalf("next: %d %s", res.StatusCode, body)
	}
	if res, _ := op.api("POST", "/api/v1/me/pause", map[string]string{"reason": "visit"}); res.StatusCode != http.StatusOK {
		t.Fatalf("pause: %d", res.StatusCode)
	}
	if r, since := pauseState(); r != "visit" || !since {
		t.Fatalf("paused: %q %v", r, since)
	}
	for _, p := range []string{next, next + "/", fmt.Sprintf("/api/v1/contacts/%d/call", lease.Contact.ID), fmt.Sprintf("/api/v1/contacts/%d/open", lease.Contact.ID)} {
		res, body := op.api("POST", p, nil)
		if res.StatusCode != http.StatusConflict || !strings.Contains(body, `"error": "paused"`) || !strings.Contains(body, "Vous êtes en pause") {
			t.Errorf("%s while paused: %d %s", p, res.StatusCode, body)
		}
	}
	cf.caller.mu.Lock()
	placed := len(cf.caller.got)
	cf.caller.mu.Unlock()
	if placed != 0 {
		t.Fatalf("a paused operator's call was placed (%d)", placed)
	}
	// Releasing the contact on screen is still allowed.
	if res, _ := op.api("POST", fmt.Sprintf("/api/v1/contacts/%d/release", lease.Contact.ID), nil); res.StatusCode != http.StatusNoContent {
		t.Errorf("release while paused: %d", res.StatusCode)
	}
	// A reload shows the pause and « Reprendre ».
	_, page = op.get("/operator")
	if !strings.Contains(page, `data-pause="visit"`) || !strings.Contains(page, `<p id="pause-resume">`) ||
		!strings.Contains(page, `en pause (parloir / visite)`) || !strings.Contains(page, `id="pause-form" class="filters" novalidate hidden`) {
		t.Fatal("the reloaded page forgot the pause")
	}
	// In English on request.
	_, en := op.get("/operator?lang=en")
	for _, want := range []string{"paused (visit)", "Reason for the pause", `<option value="medical">infirmary</option>`, ">Resume</button>", `"op.pause_on":"Paused ({reason}) since {since}."`} {
		if !strings.Contains(en, want) {
			t.Errorf("English page lacks %q", want)
		}
	}
	if res, body := op.api("POST", next+"?lang=en", nil); res.StatusCode != http.StatusConflict || !strings.Contains(body, "You are paused") {
		t.Errorf("English refusal: %d %s", res.StatusCode, body)
	}
	// Another operator is not paused by it.
	if res, body := cf.as("102").api("GET", "/api/v1/me/pause", nil); res.StatusCode != http.StatusOK || !strings.Contains(body, `"reason": ""`) {
		t.Errorf("102: %d %s", res.StatusCode, body)
	}
	// Supervisors have no pause (and no control on their page).
	if res, _ := cf.as("201").api("GET", "/api/v1/me/pause", nil); res.StatusCode != http.StatusForbidden {
		t.Errorf("supervisor GET pause: %d", res.StatusCode)
	}
	// « Reprendre »: the loop goes on.
	if res, _ := op.api("POST", "/api/v1/me/pause", map[string]string{"reason": ""}); res.StatusCode != http.StatusOK {
		t.Fatalf("resume: %d", res.StatusCode)
	}
	if r, _ := pauseState(); r != "" {
		t.Fatalf("resumed: %q", r)
	}
	if res, body := op.api("POST", next, nil); res.StatusCode != http.StatusOK {
		t.Fatalf("next after resume: %d %s", res.StatusCode, body)
	}
}
