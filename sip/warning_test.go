package sip

import (
	"testing"
	"time"

	"plateau/policy"
)

func TestDecisionWarning(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	opens := time.Date(2026, 12, 7, 7, 30, 0, 0, loc)
	tests := []struct {
		name string
		d    policy.Decision
		want string // "" means no header
	}{
		{"outside window", policy.Decision{Reason: policy.ReasonOutsideWindow, Opens: opens}, `399 plateau "calling opens Mon 2026-12-07 07:30 CET"`},
		{"outside window, never opens", policy.Decision{Reason: policy.ReasonOutsideWindow}, ""},
		{"other refusal keeps its detail to itself", policy.Decision{Reason: policy.ReasonPolicyError, Detail: "database is locked", Opens: opens}, ""},
		{"allowed", policy.Decision{Allow: true, Reason: policy.ReasonAllowed}, ""},
	}
	for _, tt := range tests {
		hs := decisionWarning(tt.d)
		switch {
		case tt.want == "" && len(hs) != 0:
			t.Errorf("%s: got %v, want no Warning", tt.name, hs)
		case tt.want != "" && (len(hs) != 1 || hs[0].Name() != "Warning" || hs[0].Value() != tt.want):
			t.Errorf("%s: got %v, want Warning: %s", tt.name, hs, tt.want)
		}
	}
}
