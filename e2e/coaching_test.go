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

// supervisorPhone registers supervisor ext with SIPp on a port, then a
// SIPp UAS on that port answers what Plateau rings there (a listen
// session) and waits for its BYE.
func supervisorPhone(t *testing.T, p *plateau, ext, pass string) *sippProc {
	t.Helper()
	port := strconv.Itoa(freePort(t))
	csv := filepath.Join(t.TempDir(), "sup.csv")
	os.WriteFile(csv, []byte(fmt.Sprintf("SEQUENTIAL\n%s;%s;3600\n", ext, pass)), 0o600)
	startSipp(t, "supervisor phone registers", "register_auth.xml", p.sipAddr(), "-inf", csv, "-p", port).mustSucceed(30 * time.Second)
	eventually(t, "supervisor "+ext+" registered", func() (bool, string) {
		r := p.registered()
		return r[ext] != "" && r[ext] != "-", fmt.Sprint(r)
	})
	return startSipp(t, "supervisor phone answers", "uas_answer.xml", "-p", port, "-timeout", "60s")
}

// A new operator's first calls ring the on-duty supervisor with a listen
// session, without anyone asking (issue 6: automatic coaching).
func TestCoachingRingsSupervisor(t *testing.T) {
	carrierPort := freePort(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}})
	mustCmd(t, p, "user", "add", "--role", "supervisor", "--name", "Sup", "--sip-password", "sup-201-secret", "201")
	mustCmd(t, p, "user", "train", "--by", "201", "--calls", "1", opExt)
	sup := supervisorPhone(t, p, "201", "sup-201-secret")

	carrier := startCarrier(t, carrierPort, "uas_answer.xml")
	op := startOperator(t, p, "uac_talk.xml", approved, "-d", "5000")
	op.mustSucceed(45 * time.Second)
	carrier.mustSucceed(15 * time.Second)
	sup.mustSucceed(20 * time.Second) // rang, answered, BYE when the call ended

	got := auditLines(t, p, "monitor.coaching")
	if !strings.Contains(got, "offered") || !strings.Contains(got, "201") {
		t.Errorf("no coaching offer to 201 in the audit:\n%s", got)
	}
	if got := auditLines(t, p, "monitor.start"); !strings.Contains(got, "201") {
		t.Errorf("no monitor.start for 201:\n%s", got)
	}
	auditVerify(t, p)
}

// POST /api/v1/monitor from the supervisor console rings the supervisor's
// phone into the operator's live call.
func TestMonitorFromConsole(t *testing.T) {
	carrierPort := freePort(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}})
	mustCmd(t, p, "user", "add", "--role", "supervisor", "--name", "Sup", "--sip-password", "sup-201-secret", "--web-password", "sup-201-web-pass", "201")
	sup := supervisorPhone(t, p, "201", "sup-201-secret")

	carrier := startCarrier(t, carrierPort, "uas_answer.xml")
	op := startOperator(t, p, "uac_talk.xml", approved, "-d", "8000")
	waitMetric(t, p, mAnswer, 1)

	web := webLogin(t, p, "201", "sup-201-web-pass")
	var out map[string]any
	if code := web.api("POST", "/api/v1/monitor", map[string]string{"operator": opExt, "mode": "listen"}, &out); code/100 != 2 {
		t.Fatalf("POST /api/v1/monitor: %d %v", code, out)
	}
	op.mustSucceed(45 * time.Second)
	carrier.mustSucceed(15 * time.Second)
	sup.mustSucceed(20 * time.Second)
	if got := auditLines(t, p, "monitor.start"); !strings.Contains(got, "201") || !strings.Contains(got, "listen") {
		t.Errorf("no listen session of 201 in the audit:\n%s", got)
	}
}
