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

// Session timers (RFC 4028) toward a phone Plateau rings itself (issue 13
// item 8: an inbound call; click-to-call and supervisors' legs use the
// same code). Before, Plateau's INVITE to the phone offered no timer and
// a phone that died mid-call kept the call, and its recording, open until
// the maximum duration.

// registeredPhone registers operator 101 from a SIPp on a free port, then
// runs scenario (a UAS) on that port to answer what Plateau rings there.
func registeredPhone(t *testing.T, p *plateau, scenario string) *sippProc {
	t.Helper()
	phonePort := strconv.Itoa(freePort(t))
	phoneCSV := filepath.Join(t.TempDir(), "phone.csv")
	os.WriteFile(phoneCSV, []byte(fmt.Sprintf("SEQUENTIAL\n%s;%s;3600\n", opExt, opPass)), 0o600)
	startSipp(t, "operator phone registers", "register_auth.xml", p.sipAddr(), "-inf", phoneCSV, "-p", phonePort).mustSucceed(30 * time.Second)
	eventually(t, "operator 101 registered", func() (bool, string) {
		r := p.registered()
		return r[opExt] != "" && r[opExt] != "-", fmt.Sprint(r)
	})
	return startSipp(t, "operator phone "+scenario, scenario, "-p", phonePort)
}

// callIn has the carrier (from the trunk's source 127.0.0.2) call approved
// with scenario; extra SIPp arguments follow (e.g. -d).
func callIn(t *testing.T, p *plateau, scenario string, extra ...string) *sippProc {
	t.Helper()
	csv := filepath.Join(t.TempDir(), "in.csv")
	os.WriteFile(csv, []byte(fmt.Sprintf("SEQUENTIAL\n%s;+33240000000\n", approved)), 0o600)
	args := append([]string{p.sipAddr(), "-inf", csv, "-i", "127.0.0.2", "-mi", "127.0.0.2", "-p", strconv.Itoa(freePort(t))}, extra...)
	return startSipp(t, "carrier "+scenario, scenario, args...)
}

// The phone makes Plateau the refresher (refresher=uac in its 200): Plateau
// sends an UPDATE within each half interval and the call outlives it.
func TestSessionTimerRungPhonePlateauRefreshes(t *testing.T) {
	p := startCallServer(t, callOpts{trunkPorts: []int{freePort(t)}})
	phone := registeredPhone(t, p, "uas_phone_timer_refresh.xml") // two UPDATEs, 8 s each at most
	callIn(t, p, "carrier_call_in.xml", "-d", "14000").mustSucceed(60 * time.Second)
	phone.mustSucceed(20 * time.Second)
	waitMetric(t, p, mEnded("outside_hangup"), 1)
}

// The phone says it refreshes (refresher=uas) and never does: Plateau ends
// the call (BYE both legs, recording closed) and audits why.
func TestSessionTimerRungPhoneStopsRefreshing(t *testing.T) {
	p := startCallServer(t, callOpts{trunkPorts: []int{freePort(t)}})
	phone := registeredPhone(t, p, "uas_phone_timer_expire.xml") // requires Plateau's BYE within 12 s
	carrier := callIn(t, p, "carrier_call_in_wait_bye.xml")      // requires Plateau's BYE
	phone.mustSucceed(60 * time.Second)
	carrier.mustSucceed(20 * time.Second)

	waitMetric(t, p, mEnded("session_expired"), 1)
	waitMetric(t, p, mActive, 0)
	if ended := auditLines(t, p, "call.ended"); !strings.Contains(ended, "session_expired") {
		t.Errorf("call.ended does not say session_expired:\n%s", ended)
	}
	eventually(t, "the recording closed", func() (bool, string) {
		files := recordingFiles(t, p)
		return len(files[".json"]) == 1, strings.Join(files[".json"], ", ")
	})
	auditVerify(t, p)
}

// The phone's Min-SE is larger than Plateau's offer: 422, and Plateau rings
// it again asking that interval; the phone answers without a timer (as
// baresip or a SIPp phone does) and the call simply works.
func TestSessionTimerRungPhone422(t *testing.T) {
	p := startCallServer(t, callOpts{trunkPorts: []int{freePort(t)}})
	phone := registeredPhone(t, p, "uas_phone_timer_422.xml")
	callIn(t, p, "carrier_call_in.xml", "-d", "2000").mustSucceed(40 * time.Second)
	phone.mustSucceed(20 * time.Second)
	waitMetric(t, p, mEnded("outside_hangup"), 1)
	if v := p.metricOf(mAnswer); v != 1 {
		t.Errorf("%s = %v, want 1", mAnswer, v)
	}
}
