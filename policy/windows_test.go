package policy

import (
	"testing"
	"time"

	"plateau/config"
)

func paris(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// siteWindows is the example configuration: weekdays 07:30-12:00 and
// 13:30-18:00, Christmas off, plus a Sunday 07:30-09:00 window so the DST
// Sundays 2026-03-29 and 2026-10-25 have hours to test.
func siteWindows(t testing.TB) Windows {
	t.Helper()
	var weekly []config.WeeklyWindow
	for _, w := range []config.Window{
		{Days: "mon-fri", From: "07:30", To: "12:00"},
		{Days: "mon-fri", From: "13:30", To: "18:00"},
		{Days: "sun", From: "07:30", To: "09:00"},
	} {
		ww, err := w.Parse()
		if err != nil {
			t.Fatal(err)
		}
		weekly = append(weekly, ww)
	}
	ws, err := NewWindows(paris(t), weekly, []string{"2026-12-25", "2027-01-01"})
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

func at(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.ParseInLocation("2006-01-02 15:04:05.999999999", s, paris(t))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestWindowsContains(t *testing.T) {
	ws := siteWindows(t)
	tests := []struct {
		when string
		want bool
	}{
		{"2026-11-27 07:29:59", false}, // Friday
		{"2026-11-27 07:29:59.999", false},
		{"2026-11-27 07:30:00", true},
		{"2026-11-27 09:00:00", true},
		{"2026-11-27 11:59:59", true},
		{"2026-11-27 11:59:59.999999999", true},
		{"2026-11-27 12:00:00", false},
		{"2026-11-27 12:45:00", false}, // lunch
		{"2026-11-27 13:29:59", false},
		{"2026-11-27 13:30:00", true},
		{"2026-11-27 17:59:59", true},
		{"2026-11-27 18:00:00", false},
		{"2026-11-27 23:00:00", false},
		{"2026-11-27 03:00:00", false},
		{"2026-11-28 09:00:00", false}, // Saturday
		{"2026-11-29 08:00:00", true},  // Sunday window
		{"2026-11-29 10:00:00", false},
		{"2026-11-30 07:30:00", true},  // Monday
		{"2026-12-25 09:00:00", false}, // Christmas, a Friday
		{"2026-12-24 09:00:00", true},
		{"2026-12-24 23:59:59", false},
		{"2027-01-01 14:00:00", false},
		// Spring forward: 02:00 CET -> 03:00 CEST on Sunday 2026-03-29.
		{"2026-03-29 07:29:59", false},
		{"2026-03-29 07:30:00", true},
		{"2026-03-29 08:59:59", true},
		{"2026-03-29 09:00:00", false},
		{"2026-03-30 07:29:59", false},
		{"2026-03-30 07:30:00", true},
		// Fall back: 03:00 CEST -> 02:00 CET on Sunday 2026-10-25.
		{"2026-10-25 07:29:59", false},
		{"2026-10-25 07:30:00", true},
		{"2026-10-25 09:00:00", false},
		{"2026-10-26 07:30:00", true},
		{"2026-10-26 07:29:59", false},
	}
	for _, tt := range tests {
		when := at(t, tt.when)
		if got := ws.Contains(when); got != tt.want {
			t.Errorf("Contains(%s) = %v, want %v", tt.when, got, tt.want)
		}
		// The zone of the argument must not matter, only the instant.
		if got := ws.Contains(when.UTC()); got != tt.want {
			t.Errorf("Contains(%s in UTC) = %v, want %v", tt.when, got, tt.want)
		}
	}
}

// TestWindowsDSTInstants pins the DST days to UTC instants: 07:30 local is
// 06:30 UTC in winter time and 05:30 UTC in summer time.
func TestWindowsDSTInstants(t *testing.T) {
	ws := siteWindows(t)
	tests := []struct {
		utc  string
		want bool
	}{
		{"2026-03-29T05:29:59Z", false}, // 07:29:59 CEST
		{"2026-03-29T05:30:00Z", true},  // 07:30:00 CEST
		{"2026-03-29T06:30:00Z", true},  // 08:30 CEST (would be 07:30 CET)
		{"2026-03-29T06:59:59Z", true},
		{"2026-03-29T07:00:00Z", false}, // 09:00 CEST
		{"2026-10-25T06:29:59Z", false}, // 07:29:59 CET
		{"2026-10-25T06:30:00Z", true},  // 07:30 CET
		{"2026-10-25T05:30:00Z", false}, // 06:30 CET (would be 07:30 CEST)
		{"2026-10-25T07:59:59Z", true},
		{"2026-10-25T08:00:00Z", false},
	}
	for _, tt := range tests {
		u, _ := time.Parse(time.RFC3339, tt.utc)
		if got := ws.Contains(u); got != tt.want {
			t.Errorf("Contains(%s = %s) = %v, want %v", tt.utc, u.In(paris(t)).Format(time.DateTime+" MST"), got, tt.want)
		}
	}
}

func TestWindowsNextClose(t *testing.T) {
	ws := siteWindows(t)
	tests := []struct {
		when, want string // want "" means outside, ok false
	}{
		{"2026-11-27 07:30:00", "2026-11-27 12:00:00"},
		{"2026-11-27 11:59:00", "2026-11-27 12:00:00"},
		{"2026-11-27 12:00:00", ""},
		{"2026-11-27 14:00:00", "2026-11-27 18:00:00"},
		{"2026-11-28 10:00:00", ""},
		{"2026-12-25 10:00:00", ""},
		{"2026-03-29 08:00:00", "2026-03-29 09:00:00"},
		{"2026-10-25 08:00:00", "2026-10-25 09:00:00"},
	}
	for _, tt := range tests {
		got, ok := ws.NextClose(at(t, tt.when))
		if tt.want == "" {
			if ok {
				t.Errorf("NextClose(%s) = %s, want outside", tt.when, got)
			}
			continue
		}
		if want := at(t, tt.want); !ok || !got.Equal(want) {
			t.Errorf("NextClose(%s) = %s %v, want %s", tt.when, got, ok, want)
		}
	}
	// On the DST Sundays the window is 90 real minutes long, as on any other.
	for _, day := range []string{"2026-03-29", "2026-10-25"} {
		open := at(t, day+" 07:30:00")
		end, _ := ws.NextClose(open)
		if d := end.Sub(open); d != 90*time.Minute {
			t.Errorf("%s: window lasts %s, want 1h30m", day, d)
		}
	}
}

func TestWindowsNextCloseFollowsSeams(t *testing.T) {
	loc := paris(t)
	w := func(days, from, to string) config.WeeklyWindow {
		ww, err := config.Window{Days: days, From: from, To: to}.Parse()
		if err != nil {
			t.Fatal(err)
		}
		return ww
	}
	ws, err := NewWindows(loc, []config.WeeklyWindow{
		w("mon", "07:30", "12:00"), w("mon", "12:00", "13:00"), w("mon", "12:30", "14:00"),
		w("tue", "20:00", "24:00"), w("wed", "00:00", "02:00"),
		w("thu", "20:00", "24:00"), w("fri", "00:00", "02:00"),
	}, []string{"2026-11-27"}) // Friday is a holiday
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ when, want string }{
		{"2026-11-23 08:00:00", "2026-11-23 14:00:00"}, // Monday: touching then overlapping
		{"2026-11-24 21:00:00", "2026-11-25 02:00:00"}, // Tuesday night into Wednesday
		{"2026-11-26 21:00:00", "2026-11-27 00:00:00"}, // Thursday night, Friday a holiday
	}
	for _, tt := range tests {
		got, ok := ws.NextClose(at(t, tt.when))
		if want := at(t, tt.want); !ok || !got.Equal(want) {
			t.Errorf("NextClose(%s) = %s %v, want %s", tt.when, got, ok, want)
		}
	}
}

func TestNewWindowsRejects(t *testing.T) {
	loc := paris(t)
	if _, err := NewWindows(nil, nil, nil); err == nil {
		t.Error("nil location accepted")
	}
	if _, err := NewWindows(loc, []config.WeeklyWindow{{From: 600, To: 600}}, nil); err == nil {
		t.Error("empty window accepted")
	}
	if _, err := NewWindows(loc, nil, []string{"25/12/2026"}); err == nil {
		t.Error("bad holiday accepted")
	}
	ws, err := NewWindows(loc, nil, nil)
	if err != nil || ws.Contains(at(t, "2026-11-27 09:00:00")) {
		t.Error("no windows must mean no hours")
	}
	if (Windows{}).Contains(time.Now()) {
		t.Error("zero Windows contains a time")
	}
}

func TestConfigFrom(t *testing.T) {
	var c config.Config
	c.Site.Timezone, c.Site.DefaultRegion = "Europe/Paris", "FR"
	c.Policy.Windows = []config.Window{{Days: "mon-fri", From: "07:30", To: "12:00"}}
	c.Policy.Holidays = []string{"2026-12-25"}
	c.Policy.Limits = config.Limits{PerOperator: 1, PerSite: 500}
	pc, err := ConfigFrom(&c)
	if err != nil {
		t.Fatal(err)
	}
	if pc.Region != "FR" || pc.PerSite != 500 || !pc.Windows.Contains(at(t, "2026-11-27 07:30:00")) ||
		pc.Windows.Contains(at(t, "2026-12-25 09:00:00")) {
		t.Fatalf("got %+v", pc)
	}
	c.Site.Timezone = "Mars/Olympus"
	if _, err := ConfigFrom(&c); err == nil {
		t.Fatal("bad zone accepted")
	}
}
