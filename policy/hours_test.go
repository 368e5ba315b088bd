package policy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"plateau/config"
)

// NextOpen answers the question a refused caller asks: when can I call?
func TestWindowsNextOpen(t *testing.T) {
	ws := siteWindows(t)
	tests := []struct {
		when, want string // want "" means never
	}{
		{"2026-11-27 07:29:59", "2026-11-27 07:30:00"}, // Friday, a second early
		{"2026-11-27 07:30:00", "2026-11-27 07:30:00"}, // open: now
		{"2026-11-27 11:59:59", "2026-11-27 11:59:59"},
		{"2026-11-27 12:00:00", "2026-11-27 13:30:00"}, // lunch
		{"2026-11-27 18:00:00", "2026-11-29 07:30:00"}, // Friday evening: Sunday's window
		{"2026-11-28 09:00:00", "2026-11-29 07:30:00"}, // Saturday
		{"2026-11-29 09:00:00", "2026-11-30 07:30:00"}, // Sunday after its window
		{"2026-12-24 18:30:00", "2026-12-27 07:30:00"}, // Christmas is a holiday
		{"2026-12-25 09:00:00", "2026-12-27 07:30:00"},
		{"2026-03-28 20:00:00", "2026-03-29 07:30:00"}, // DST Sunday: still 07:30 on the wall clock
		{"2026-10-24 20:00:00", "2026-10-25 07:30:00"},
	}
	for _, tt := range tests {
		got, ok := ws.NextOpen(at(t, tt.when))
		if !ok || !got.Equal(at(t, tt.want)) {
			t.Errorf("NextOpen(%s) = %v, %v; want %s", tt.when, got.In(paris(t)), ok, tt.want)
		}
		if ok && !ws.Contains(got) {
			t.Errorf("NextOpen(%s) = %v is not inside a window", tt.when, got)
		}
	}
	if got := at(t, "2026-03-29 07:30:00").UTC().Hour(); got != 5 {
		t.Errorf("07:30 CEST is %d:30 UTC, want 5:30", got)
	}
	none, err := NewWindows(paris(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := none.NextOpen(at(t, "2026-11-27 09:00:00")); ok {
		t.Errorf("no windows: NextOpen = %v, want never", got)
	}
	// A single weekday window behind a run of holidays on that weekday.
	mon, _ := config.Window{Days: "mon", From: "07:30", To: "08:00"}.Parse()
	hs := []string{"2026-11-30", "2026-12-07", "2026-12-14"}
	onlyMon, err := NewWindows(paris(t), []config.WeeklyWindow{mon}, hs)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := onlyMon.NextOpen(at(t, "2026-11-28 09:00:00")); !ok || !got.Equal(at(t, "2026-12-21 07:30:00")) {
		t.Errorf("Mondays on holiday: NextOpen = %v, %v; want 2026-12-21 07:30", got, ok)
	}
}

// The demo's configuration: one number open round the clock, the others on
// the site's hours. The site's 07:30 rule is untouched by the number's.
func numberHoursEngine(t *testing.T) *Engine {
	t.Helper()
	always, _ := config.Window{Days: "mon-sun", From: "00:00", To: "24:00"}.Parse()
	demo, err := NewWindows(paris(t), []config.WeeklyWindow{always}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return newEngine(t, func(c *Config, d *Deps) {
		c.NumberWindows = map[string]Windows{approved: demo}
		d.Allowlist = fakeAllow{numbers: map[string]bool{approved: true, "+33240120730": true}}
	})
}

func TestDecideNumberHours(t *testing.T) {
	e := numberHoursEngine(t)
	tests := []struct {
		name, number, when string
		allow              bool
		inDetail           string
		opens, closes      string
	}{
		{"site hours: 07:29:59 refused", "+33240120730", "2026-11-27 07:29:59", false,
			"Fri 2026-11-27 07:29:59 CET is outside the calling hours; calling opens Fri 2026-11-27 07:30 CET", "2026-11-27 07:30:00", ""},
		{"site hours: 07:30:00 allowed", "+33240120730", "2026-11-27 07:30:00", true, "", "", "2026-11-27 12:00:00"},
		{"site hours: Saturday refused until Sunday's window", "02 40 12 07 30", "2026-12-05 10:40:00", false,
			"calling opens Sun 2026-12-06 07:30 CET", "2026-12-06 07:30:00", ""},
		{"site hours: Christmas", "+33240120730", "2026-12-25 09:00:00", false,
			"2026-12-25 is a holiday; calling opens Sun 2026-12-27 07:30 CET", "2026-12-27 07:30:00", ""},
		{"own hours: Saturday 03:00 allowed", approved, "2026-12-05 03:00:00", true, "", "", ""},
		{"own hours: Christmas allowed (its own holidays)", approved, "2026-12-25 09:00:00", true, "", "", ""},
		{"own hours: 07:29:59 allowed", "02 40 12 34 56", "2026-11-27 07:29:59", true, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := e.Decide(context.Background(), Request{Operator: "101", Number: tt.number, Time: at(t, tt.when), Kind: KindOutbound})
			if d.Allow != tt.allow {
				t.Fatalf("got %+v, want allow %v", d, tt.allow)
			}
			if !tt.allow && (d.Reason != ReasonOutsideWindow || d.Rule != RuleWindow) {
				t.Errorf("reason %s rule %s, want OUTSIDE_WINDOW by window", d.Reason, d.Rule)
			}
			if !strings.Contains(d.Detail, tt.inDetail) {
				t.Errorf("detail %q does not say %q", d.Detail, tt.inDetail)
			}
			if tt.opens != "" && !d.Opens.Equal(at(t, tt.opens)) {
				t.Errorf("Opens = %v, want %s", d.Opens, tt.opens)
			}
			if tt.closes != "" && !d.Closes.Equal(at(t, tt.closes)) {
				t.Errorf("Closes = %v, want %s", d.Closes, tt.closes)
			}
		})
	}
	// Round the clock: the call's window never closes within the week.
	d := e.Decide(context.Background(), Request{Operator: "101", Number: approved, Time: at(t, "2026-12-05 03:00:00"), Kind: KindOutbound})
	if !d.Closes.After(at(t, "2026-12-11 23:59:59")) {
		t.Errorf("round-the-clock number closes at %v", d.Closes)
	}
	if c, ok := e.NextCloseFor("+33240120730", at(t, "2026-11-27 17:00:00")); !ok || !c.Equal(at(t, "2026-11-27 18:00:00")) {
		t.Errorf("NextCloseFor site number = %v, %v", c, ok)
	}
	if c, ok := e.NextClose(at(t, "2026-11-27 17:00:00")); !ok || !c.Equal(at(t, "2026-11-27 18:00:00")) {
		t.Errorf("NextClose (site) = %v, %v", c, ok)
	}
	// The demo number at 11:59:30 on a weekday: its call is not cut at noon.
	if c, ok := e.NextCloseFor(approved, at(t, "2026-11-27 11:59:30")); !ok || !c.After(at(t, "2026-12-03 00:00:00")) {
		t.Errorf("NextCloseFor round-the-clock number = %v, %v", c, ok)
	}
}

// ConfigFrom builds number windows from the YAML and refuses a number the
// allowlist could never match.
func TestConfigFromNumberWindows(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "n.wav"), []byte("RIFF"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := `
site: {timezone: Europe/Paris, default_region: FR}
recordings: {notice_prompt: n.wav}
policy:
  windows: [{days: mon-fri, from: "07:30", to: "18:00"}]
  number_windows:
    - numbers: [%s]
      windows: [{days: mon-sun, from: "00:00", to: "24:00"}]
`
	c, err := config.Parse([]byte(strings.Replace(base, "%s", `"+33240123456"`, 1)), dir)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := ConfigFrom(c)
	if err != nil {
		t.Fatal(err)
	}
	if w, ok := pc.NumberWindows["+33240123456"]; !ok || !w.Contains(at(t, "2026-12-05 03:00:00")) {
		t.Errorf("number windows not built: %+v", pc.NumberWindows)
	}
	if pc.Windows.Contains(at(t, "2026-12-05 03:00:00")) {
		t.Error("the site's windows were widened")
	}
	// Looks like E.164 but is not a valid number: refused.
	c, err = config.Parse([]byte(strings.Replace(base, "%s", `"+3324012"`, 1)), dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ConfigFrom(c); err == nil || !strings.Contains(err.Error(), "policy.number_windows[0].numbers[0]") {
		t.Errorf("invalid number: err %v, want it to name the key", err)
	}
	// Not E.164 at all: the config itself refuses it.
	if _, err := config.Parse([]byte(strings.Replace(base, "%s", `"02 40 12 34 56"`, 1)), dir); err == nil ||
		!strings.Contains(err.Error(), "policy.number_windows[0].numbers[0]") {
		t.Errorf("national number: err %v", err)
	}
}
