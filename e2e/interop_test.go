package e2e

import (
	"strings"
	"testing"
	"time"
)

// Smaller interop points of issue 13 (item 9) against SIPp.

// The carrier's BYE Reason (Q.850) reaches the operator's BYE and the
// call.ended audit entry.
func TestInteropHangupReasonRelayed(t *testing.T) {
	carrierPort := freePort(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}})

	carrier := startCarrier(t, carrierPort, "uas_hangup_reason.xml", "-d", "2000")
	// The operator exits 0 only if Plateau's BYE carries Q.850;cause=16.
	op := startOperator(t, p, "uac_hungup_reason.xml", approved)
	carrier.mustSucceed(30 * time.Second)
	op.mustSucceed(15 * time.Second)

	waitMetric(t, p, mEnded("outside_hangup"), 1)
	if ended := auditLines(t, p, "call.ended"); !strings.Contains(ended, "Q.850;cause=16") {
		t.Errorf("call.ended does not name the carrier's Reason:\n%s", ended)
	}
	auditVerify(t, p)
}

// An inbound offer that only sends (or is inactive) is answered recvonly
// (inactive), not sendrecv (RFC 3264 §6.1).
func TestInteropInboundOfferDirection(t *testing.T) {
	p := startCallServer(t, callOpts{trunkPorts: []int{freePort(t)}})
	phonePort := registerSippPhone(t, p)
	for i, offer := range []string{"sendonly", "inactive"} {
		t.Run(offer, func(t *testing.T) {
			phone := startSipp(t, "operator phone answers", "uas_answer.xml", "-p", phonePort)
			// The carrier checks the direction of Plateau's answer.
			in := callIn(t, p, "carrier_call_in_"+offer+".xml", "-d", "1000")
			in.mustSucceed(40 * time.Second)
			phone.mustSucceed(20 * time.Second)
			waitMetric(t, p, mAnswer, float64(i+1))
			waitMetric(t, p, mActive, 0)
		})
	}
}

// A carrier's INVITE requiring an extension Plateau does not implement as
// a UAS (100rel) gets 420 with Unsupported, not an answer without it.
func TestInteropRequireUnsupported(t *testing.T) {
	p := startCallServer(t, callOpts{trunkPorts: []int{freePort(t)}})
	in := callIn(t, p, "carrier_call_in_require.xml")
	in.mustSucceed(30 * time.Second)
	if v := p.metricOf(mActive); v != 0 {
		t.Errorf("%s = %v, want 0", mActive, v)
	}
}
