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

// startReferOperator runs a REFER scenario as operator 101: it calls
// number, then asks a transfer to target.
func startReferOperator(t *testing.T, p *plateau, scenario, number, target string) *sippProc {
	t.Helper()
	csv := filepath.Join(t.TempDir(), "op.csv")
	row := fmt.Sprintf("SEQUENTIAL\n%s;%s;%s;%s\n", opExt, opPass, number, target)
	if err := os.WriteFile(csv, []byte(row), 0o600); err != nil {
		t.Fatal(err)
	}
	return startSipp(t, "operator "+scenario, scenario, p.sipAddr(), "-inf", csv, "-p", strconv.Itoa(freePort(t)))
}

// A transfer to a number the policy refuses gets 403 with the reason and
// never reaches the carrier; the call goes on.
func TestCallsReferRefused(t *testing.T) {
	carrierPort := freePort(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}})
	carrier := startCarrier(t, carrierPort, "uas_answer.xml")
	op := startReferOperator(t, p, "uac_refer_denied.xml", approved, unapproved)
	op.mustSucceed(30 * time.Second) // 403 NOT_ALLOWLISTED, then its own BYE
	carrier.mustSucceed(15 * time.Second)
	waitMetric(t, p, mEnded("operator_hangup"), 1)
	if got := auditLines(t, p, "policy.decision"); !strings.Contains(got, unapproved) || !strings.Contains(got, "NOT_ALLOWLISTED") {
		t.Errorf("the refused transfer is not audited:\n%s", got)
	}
	if v := p.metricOf(mAnswer); v != 1 {
		t.Errorf("answered %v, want 1 (no transfer leg)", v)
	}
}

// A transfer to an approved number is placed by Plateau itself: the
// carrier gets a second INVITE, the first outside party gets BYE, the
// operator a NOTIFY with 200, and one recording covers it all.
func TestCallsReferAllowed(t *testing.T) {
	const target = "+33240120183"
	carrierPort := freePort(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}})
	approve(t, p, target)
	// Two calls: the original (ended by Plateau's BYE) and the transfer.
	carrier := startCarrier(t, carrierPort, "uas_answer.xml", "-m", "2")
	op := startReferOperator(t, p, "uac_refer_ok.xml", approved, target)
	op.mustSucceed(40 * time.Second)
	carrier.mustSucceed(20 * time.Second)
	waitMetric(t, p, mActive, 0)
	if got := auditLines(t, p, "call.transferred"); !strings.Contains(got, target) {
		t.Errorf("no call.transferred entry for %s:\n%s", target, got)
	}
	files := recordingFiles(t, p)
	if len(files[".wav"]) != 1 {
		t.Errorf("recordings %v, want one WAV for the whole call", files[".wav"])
	}
	auditVerify(t, p)
}
