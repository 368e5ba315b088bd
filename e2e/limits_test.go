package e2e

import (
	"strings"
	"testing"
	"time"
)

// policy.max_call_duration ends a call with BYE on both legs.
func TestCallsMaxDuration(t *testing.T) {
	carrierPort := freePort(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}, policyYAML: "  max_call_duration: 3s\n"})
	carrier := startCarrier(t, carrierPort, "uas_answer.xml") // waits for Plateau's BYE
	op := startOperator(t, p, "uac_hungup.xml", approved)    // waits for Plateau's BYE
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
