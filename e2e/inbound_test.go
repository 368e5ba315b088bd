package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// An inbound call from the carrier's source, from an approved number,
// rings the registered operator (policy-checked and recorded); one from an
// unapproved number is refused and rings nobody.
func TestCallsInbound(t *testing.T) {
	// The trunk makes 127.0.0.2 a carrier source; nothing is dialled out.
	p := startCallServer(t, callOpts{trunkPorts: []int{freePort(t)}})
	// The operator's phone: SIPp registers its port, then a SIPp UAS on
	// the same port answers what Plateau rings there.
	phonePort := registerSippPhone(t, p)
	phone := startSipp(t, "operator phone answers", "uas_answer.xml", "-p", phonePort)

	in := func(caller string) *sippProc {
		csv := filepath.Join(t.TempDir(), "in.csv")
		os.WriteFile(csv, []byte(fmt.Sprintf("SEQUENTIAL\n%s;+33240000000\n", caller)), 0o600)
		// The carrier's trunk source is 127.0.0.2 (callenv's trunkSources).
		return startSipp(t, "carrier call in", "carrier_call_in.xml", p.sipAddr(), "-inf", csv,
			"-i", "127.0.0.2", "-mi", "127.0.0.2", "-p", strconv.Itoa(freePort(t)), "-d", "2000")
	}

	refused := in(unapproved)
	if r := refused.wait(30 * time.Second); r.exit == 0 {
		t.Fatalf("an inbound call from an unapproved number was answered")
	}
	waitMetric(t, p, mRefused("NOT_ALLOWLISTED"), 1)

	in(approved).mustSucceed(40 * time.Second)
	phone.mustSucceed(20 * time.Second)
	waitMetric(t, p, mAnswer, 1)
	waitMetric(t, p, mActive, 0)
	if got := auditLines(t, p, "policy.decision"); !strings.Contains(got, "allowed") {
		t.Errorf("no allowed decision for the inbound call:\n%s", got)
	}
	if files := recordingFiles(t, p); len(files[".wav"]) != 1 {
		t.Errorf("recordings %v, want one", files[".wav"])
	}
	auditVerify(t, p)
}
