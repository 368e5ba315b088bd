package policy

import (
	"testing"

	"plateau/config"
)

// Windows open round the clock make NextClose follow a seam every midnight,
// hundreds of them for every call: each must cost no allocation.
func TestNextCloseRoundTheClockAllocates(t *testing.T) {
	ww, err := config.Window{Days: "mon-sun", From: "00:00", To: "24:00"}.Parse()
	if err != nil {
		t.Fatal(err)
	}
	for _, holidays := range [][]string{nil, {"2026-12-25", "2027-01-01"}} {
		ws, err := NewWindows(paris(t), []config.WeeklyWindow{ww}, holidays)
		if err != nil {
			t.Fatal(err)
		}
		now := at(t, "2026-11-27 10:00:00")
		end, ok := ws.NextClose(now)
		if !ok || !end.After(now) {
			t.Fatalf("holidays %v: NextClose = %s %v", holidays, end, ok)
		}
		if holidays != nil && !end.Equal(at(t, "2026-12-25 00:00:00")) {
			t.Errorf("NextClose = %s, want the start of the first holiday", end)
		}
		if n := testing.AllocsPerRun(20, func() { ws.NextClose(now) }); n != 0 {
			t.Errorf("holidays %v: NextClose allocates %v times", holidays, n)
		}
	}
}
