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
