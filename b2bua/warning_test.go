package b2bua

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
		hs := decisionWarning(refusalOf(tt.d))
		switch {
		case tt.want == "" && len(hs) != 0:
			t.Errorf("%s: got %v, want no Warning", tt.name, hs)
		case tt.want != "" && (len(hs) != 1 || hs[0].Name() != "Warning" || hs[0].Value() != tt.want):
			t.Errorf("%s: got %v, want Warning: %s", tt.name, hs, tt.want)
		}
	}
}

type siteClock struct{ close time.Time }

func (s siteClock) NextClose(time.Time) (time.Time, bool) { return s.close, true }

type numberClock struct {
	siteClock
	own map[string]time.Time
}

func (n numberClock) NextCloseFor(e164 string, t time.Time) (time.Time, bool) {
	if c, ok := n.own[e164]; ok {
		return c, !c.IsZero()
	}
	return n.NextClose(t)
}

// A call to a number with hours of its own ends with them, not at the
// site's close; a plain clock keeps the site's.
func TestWindowCloseFor(t *testing.T) {
	now := time.Date(2026, 12, 7, 11, 59, 30, 0, time.UTC)
	site := now.Add(30 * time.Second)
	own := now.Add(12 * time.Hour)
	nc := numberClock{siteClock{site}, map[string]time.Time{"+33240123456": own, "+33240120000": {}}}
	tests := []struct {
		clock  WindowClock
		number string
		want   time.Time
		ok     bool
	}{
		{nc, "+33240123456", own, true},
		{nc, "+33240120730", site, true},
		{nc, "+33240120000", time.Time{}, false},
		{siteClock{site}, "+33240123456", site, true},
	}
	for _, tt := range tests {
		got, ok := windowCloseFor(tt.clock, tt.number, now)
		if ok != tt.ok || !got.Equal(tt.want) {
			t.Errorf("%T %s: %v, %v; want %v, %v", tt.clock, tt.number, got, ok, tt.want, tt.ok)
		}
	}
}
