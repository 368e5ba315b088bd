package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// policy.max_call_duration ends a call with BYE on both legs.
func TestCallsMaxDuration(t *testing.T) {
	carrierPort := freePort(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}, policyYAML: "  max_call_duration: 3s\n"})
	carrier := startCarrier(t, carrierPort, "uas_answer.xml") // waits for Plateau's BYE
	op := startOperator(t, p, "uac_hungup.xml", approved)     // waits for Plateau's BYE
	start := time.Now()
	op.mustSucceed(30 * time.Second)
	carrier.mustSucceed(15 * time.Second)
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("call lasted %v with a 3 s limit", d)
	}
	waitMetric(t, p, mEnded("max_duration"), 1)
	if got := auditLines(t, p, "call.ended"); !strings.Contains(got, "max_duration") {
		t.Errorf("no call.ended max_duration in the audit:\n%s", got)
	}
}

// When the time window closes, calls in progress hear the warning tone and
// are ended at the close (window_grace 0).
func TestCallsWindowCloses(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	// The close is at the next minute: between 5 and 35 s away, so that
	// the call is set up before it and the test stays short.
	now := time.Now().In(loc)
	if s := now.Second(); s < 25 {
		time.Sleep(time.Duration(25-s) * time.Second)
	} else if s > 55 {
		time.Sleep(time.Duration(60-s+25) * time.Second)
	}
	now = time.Now().In(loc)
	closeAt := now.Truncate(time.Minute).Add(time.Minute)
	if closeAt.Day() != now.Day() {
		t.Skip("the window would cross midnight")
	}
	carrierPort := freePort(t)
	// The default windows are open all day; this site's only window closes
	// at the next minute.
	p := startPlateau(t, serverOpts{
		users: []user{{opExt, opPass}},
		policyYAML: fmt.Sprintf("  windows: [{days: mon-sun, from: \"00:00\", to: %q}]\n  window_warning: 60s\n  window_grace: 0s\n",
			closeAt.Format("15:04")),
		extraYAML: fmt.Sprintf("trunks:\n  - {name: c, address: \"127.0.0.1:%d\", transport: udp, caller_id: %q, allowed_sources: [%q], options_interval: 0s}\n",
			carrierPort, callerID, trunkSources),
	})
	approve(t, p, approved)
	carrier := startCarrier(t, carrierPort, "uas_answer.xml", "-timeout", "90s")
	op := startOperator(t, p, "uac_wait_bye.xml", approved, "-timeout", "90s")
	op.mustSucceed(90 * time.Second)
	carrier.mustSucceed(15 * time.Second)
	if late := time.Since(closeAt); late > 5*time.Second || late < -time.Second {
		t.Errorf("call ended %v after the window closed", late)
	}
	waitMetric(t, p, mEnded("window_closed"), 1)
	if !strings.Contains(p.logs.String(), "window closing: warning tone") {
		t.Error("no warning tone before the close")
	}
}
