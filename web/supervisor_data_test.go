package web

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"plateau/dialer"
	"plateau/store"
)

// A campaign saved while one of its operators is suspended keeps them:
// the form lists them ticked and marked, and the dialer accepts keeping a
// suspended operator already on the campaign (never adding one).
func TestCampaignKeepsSuspendedOperator(t *testing.T) {
	cf := newConsoleFixture(t)
	c, err := cf.dial.CreateCampaign(t.Context(), cf.by("201"), dialer.CampaignSpec{Name: "archi", Operators: []string{"101", "102"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := cf.st.SetUserStatus(t.Context(), "102", store.StatusSuspended, cf.clock.Now()); err != nil {
		t.Fatal(err)
	}
	sup := cf.as("201")
	path := fmt.Sprintf("/supervisor/campaigns/%d", c.ID)
	_, body := sup.get(path)
	if !strings.Contains(body, `id="c-op-102" name="operators" value="102" checked`) || !strings.Contains(body, "suspendu, reste sur la campagne") {
		t.Fatalf("suspended operator not listed ticked and marked:\n%s", body)
	}
	if strings.Contains(body, `id="c-op-103"`) {
		t.Fatal("a suspended operator not on the campaign is offered")
	}
	// The supervisor saves the form as shown (both boxes ticked).
	res, body := sup.form(path, url.Values{"name": {"archi renamed"}, "windows": {""}, "operators": {"101", "102"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d %s", res.StatusCode, body)
	}
	got, _ := cf.dial.Campaign(t.Context(), c.ID)
	if !slices.Equal(got.Operators, []string{"101", "102"}) {
		t.Fatalf("operators after save: %v", got.Operators)
	}
	// Adding a suspended operator is still refused.
	res, _ = sup.form(path, url.Values{"name": {"archi"}, "operators": {"101", "102", "103"}})
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("adding suspended 103: %d", res.StatusCode)
	}
	got, _ = cf.dial.Campaign(t.Context(), c.ID)
	if slices.Contains(got.Operators, "103") {
		t.Fatalf("103 added: %v", got.Operators)
	}
}

// The recordings page: the outcome is a select of localised names that
// matches what dispositions wrote; a number is typed the French way; calls
// without conversation are hidden unless asked.
func TestRecordingsPageFilters(t *testing.T) {
	rf := newRecFixture(t)
	if _, err := rf.st.DB().Exec(`UPDATE recordings SET disposition = 'appointment set' WHERE id = 'rec-101'`); err != nil {
		t.Fatal(err)
	}
	rf.addRecording("rec-busy", "101", 0, false, false) // 0:00: a busy call
	sup := rf.as("201")
	_, body := sup.get("/recordings")
	if !strings.Contains(body, `<option value="appointment set">rendez-vous pris</option>`) {
		t.Fatalf("no outcome select with French labels:\n%s", body)
	}
	if strings.Contains(body, "rec-busy") {
		t.Fatal("a call without conversation is listed by default")
	}
	_, body = sup.get("/recordings?all=1")
	if !strings.Contains(body, "rec-busy") {
		t.Fatal("all=1 does not list the call without conversation")
	}
	_, body = sup.get("/recordings?disposition=" + url.QueryEscape("appointment set"))
	if !strings.Contains(body, "rec-101") || strings.Contains(body, "rec-102") || !strings.Contains(body, "<td>rendez-vous pris</td>") {
		t.Fatalf("outcome filter:\n%s", body)
	}
	res, body := sup.get("/recordings?number=" + url.QueryEscape("02 40 12 34 56"))
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "rec-101") || !strings.Contains(body, "rec-102") {
		t.Fatalf("national number: %d", res.StatusCode)
	}
	res, body = sup.get("/recordings?number=" + url.QueryEscape("02 40 12 34 5x"))
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "écrivez-le par exemple 02 40 12 34 56 ou") {
		t.Fatalf("bad number: %d", res.StatusCode)
	}
}
