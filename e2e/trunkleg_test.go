package e2e

import (
	"strings"
	"testing"
	"time"
)

// The trunk leg against SIPp playing carriers' habits (issue 13 items 5
// and 6): long ringing, reliable provisionals, a ring timeout after
// provisionals, an answer racing Plateau's CANCEL. Each failed with
// sipgo's WaitAnswer, which gives up after 10 responses without CANCEL or
// ACK and never sends PRACK.

func mLeg(event string) string { return `plateau_trunk_leg_events_total{event="` + event + `"}` }

// 180 every second 15 times, then 200: the call connects and is recorded.
func TestTrunkLegManyProvisionals(t *testing.T) {
	carrierPort := freePort(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}})

	carrier := startCarrier(t, carrierPort, "uas_ring_long.xml")
	op := startOperator(t, p, "uac_talk.xml", approved, "-d", "3000")
	op.mustSucceed(60 * time.Second)
	carrier.mustSucceed(15 * time.Second)

	waitMetric(t, p, mEnded("operator_hangup"), 1)
	if v := p.metricOf(mAnswer); v != 1 {
		t.Errorf("%s = %v, want 1", mAnswer, v)
	}
	eventually(t, "recording WAV and sidecar", func() (bool, string) {
		files := recordingFiles(t, p)
		return len(files[".wav"]) == 1 && len(files[".json"]) == 1, strings.Join(append(files[".wav"], files[".json"]...), ", ")
	})
}

// 183 with Require: 100rel (and a retransmission of it): one PRACK with
// the right RAck, then the call connects.
func TestTrunkLegReliableProvisional(t *testing.T) {
	carrierPort := freePort(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}})

	// The carrier checks Supported: 100rel, Allow: PRACK and the RAck.
	carrier := startCarrier(t, carrierPort, "uas_100rel.xml")
	op := startOperator(t, p, "uac_talk.xml", approved, "-d", "2000")
	op.mustSucceed(45 * time.Second)
	carrier.mustSucceed(15 * time.Second)

	waitMetric(t, p, mEnded("operator_hangup"), 1)
	if v := p.metricOf(mLeg("prack")); v != 1 {
		t.Errorf("%s = %v, want 1 (the retransmitted 183 is not acknowledged twice)", mLeg("prack"), v)
	}
	if v := p.metricOf(mAnswer); v != 1 {
		t.Errorf("%s = %v, want 1", mAnswer, v)
	}
}

// The carrier rings (a 180 every second) and never answers: at the trunk's
// ring timeout Plateau CANCELs it and the operator hears 480.
func TestTrunkLegRingTimeoutCancels(t *testing.T) {
	carrierPort := freePort(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}, trunkYAML: "ring_timeout: 12s"})

	// The carrier exits 0 only after a CANCEL (then 200, 487, ACK).
	carrier := startCarrier(t, carrierPort, "uas_ring_forever.xml")
	op := startOperator(t, p, "uac_unanswered.xml", approved)
	op.mustSucceed(60 * time.Second)
	carrier.mustSucceed(15 * time.Second)

	waitMetric(t, p, mActive, 0)
	if v := p.metricOf(mLeg("cancel")); v != 1 {
		t.Errorf("%s = %v, want 1", mLeg("cancel"), v)
	}
	if v := p.metricOf(mAnswer); v != 0 {
		t.Errorf("%s = %v, want 0", mAnswer, v)
	}
}

// The operator cancels while the carrier answers: the carrier's 200 OK
// crosses Plateau's CANCEL. Plateau ACKs it, then BYEs it, and audits it.
func TestTrunkLegAnswerAfterCancel(t *testing.T) {
	carrierPort := freePort(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}})

	// The carrier exits 0 only if its 200 OK got an ACK, then a BYE.
	carrier := startCarrier(t, carrierPort, "uas_answer_after_cancel.xml")
	op := startOperator(t, p, "uac_cancel.xml", approved, "-d", "1000")
	op.mustSucceed(30 * time.Second)
	carrier.mustSucceed(30 * time.Second)

	waitMetric(t, p, mActive, 0)
	waitMetric(t, p, mLeg("late_answer"), 1)
	if v := p.metricOf(mAnswer); v != 0 {
		t.Errorf("%s = %v, want 0 (the late answer is not a call)", mAnswer, v)
	}
	if late := auditLines(t, p, "call.late_answer"); !strings.Contains(late, "ANSWERED_AFTER_GIVE_UP") || !strings.Contains(late, approved) {
		t.Errorf("audit has no call.late_answer for %s:\n%s", approved, late)
	}
	auditVerify(t, p)
}
