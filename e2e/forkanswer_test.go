package e2e

import (
	"strings"
	"testing"
	"time"
)

// A forking carrier (or a forking proxy in front of it) answers one trunk
// INVITE from two called parties (RFC 3261 §13.2.2.4). Before, Plateau
// sent the second 200 OK the first one's ACK and never hung it up: the
// second called party stayed on a line nobody records.

// The second 200 OK comes after the first was taken: Plateau ACKs it and
// BYEs that dialog at once (to its own Contact), audits it, and the first
// call goes on, bridged and recorded, until the operator hangs up.
func TestForkedAnswerHungUp(t *testing.T) {
	carrierPort := freePort(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}})

	// The carrier exits 0 only if the second fork got an ACK and a BYE,
	// then the first a BYE when the operator hung up.
	carrier := startCarrier(t, carrierPort, "uas_fork_answer.xml")
	op := startOperator(t, p, "uac_talk.xml", approved, "-d", "3000")
	op.mustSucceed(45 * time.Second)
	carrier.mustSucceed(30 * time.Second)

	waitMetric(t, p, mEnded("operator_hangup"), 1)
	waitMetric(t, p, mLeg("fork_answer"), 1)
	if v := p.metricOf(mAnswer); v != 1 {
		t.Errorf("%s = %v, want 1 (the second fork is not a call)", mAnswer, v)
	}
	// Audited once the fork's BYE is answered.
	eventually(t, "call.fork_answer hung_up for "+approved, func() (bool, string) {
		fork := auditLines(t, p, "call.fork_answer")
		return strings.Contains(fork, "FORKED_ANSWER") && strings.Contains(fork, "hung_up") && strings.Contains(fork, approved), fork
	})
	eventually(t, "one recording, WAV and sidecar", func() (bool, string) {
		files := recordingFiles(t, p)
		return len(files[".wav"]) == 1 && len(files[".json"]) == 1, strings.Join(append(files[".wav"], files[".json"]...), ", ")
	})
	auditVerify(t, p)
}

// Both forks answer as Plateau cancels: the first 200 OK is a late answer
// (ACK, BYE, call.late_answer); the second comes after that BYE, and is
// still acknowledged and hung up (call.fork_answer).
func TestForkedAnswerAfterCancel(t *testing.T) {
	carrierPort := freePort(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}})

	carrier := startCarrier(t, carrierPort, "uas_fork_after_cancel.xml")
	op := startOperator(t, p, "uac_cancel.xml", approved, "-d", "1000")
	op.mustSucceed(30 * time.Second)
	carrier.mustSucceed(30 * time.Second)

	waitMetric(t, p, mActive, 0)
	waitMetric(t, p, mLeg("late_answer"), 1)
	waitMetric(t, p, mLeg("fork_answer"), 1)
	if v := p.metricOf(mAnswer); v != 0 {
		t.Errorf("%s = %v, want 0 (neither answer is a call)", mAnswer, v)
	}
	eventually(t, "call.fork_answer hung_up for "+approved, func() (bool, string) {
		fork := auditLines(t, p, "call.fork_answer")
		return strings.Contains(fork, "FORKED_ANSWER") && strings.Contains(fork, "hung_up") && strings.Contains(fork, approved), fork
	})
	auditVerify(t, p)
}
