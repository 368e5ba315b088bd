package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
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
	// call.ended is written just after the metric: wait for it.
	eventually(t, "call.ended session_expired", func() (bool, string) {
		ended := auditLines(t, p, "call.ended")
		return strings.Contains(ended, "session_expired"), ended
	})
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

// baresip (Debian's 1.0, no session timer support) is the operator's
// phone of an inbound call: Plateau's INVITE offers a timer, baresip
// answers without one (auto-answer), and the call works as before: no
// timer, bridged and recorded until the carrier hangs up.
func TestSessionTimerRungBaresip(t *testing.T) {
	bin := need(t, "baresip")
	p := startCallServer(t, callOpts{trunkPorts: []int{freePort(t)}})
	dir := t.TempDir()
	port := baresipPort(t)
	account := fmt.Sprintf("<sip:%s@%s;transport=udp>;auth_pass=%s;regint=600;answermode=auto\n", opExt, p.sipAddr(), opPass)
	// A sine as microphone, no speaker: enough to answer and send media.
	config := fmt.Sprintf(`module_path /usr/lib/baresip/modules
sip_listen 127.0.0.1:%d
net_interface 127.0.0.1
module g711.so
module ausine.so
audio_source ausine,440
ausrc_srate 48000
ausrc_channels 2
module_app account.so
module_app menu.so
`, port)
	for name, content := range map[string]string{"accounts": account, "config": config} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out := &lockedBuffer{}
	cmd := exec.CommandContext(ctx, bin, "-f", dir, "-t", "80")
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Skipf("baresip cannot start here: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	defer func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("baresip:\n%s", out.String())
		}
	}()
	eventually(t, "baresip registered", func() (bool, string) {
		r := p.registered()[opExt]
		return strings.Contains(r, fmt.Sprintf("@127.0.0.1:%d", port)), r + "\n" + out.String()
	})
	callIn(t, p, "carrier_call_in.xml", "-d", "3000").mustSucceed(40 * time.Second)
	waitMetric(t, p, mEnded("outside_hangup"), 1)
	if v := p.metricOf(mAnswer); v != 1 {
		t.Errorf("%s = %v, want 1:\n%s", mAnswer, v, out.String())
	}
	eventually(t, "the recording closed", func() (bool, string) {
		files := recordingFiles(t, p)
		return len(files[".wav"]) == 1 && len(files[".json"]) == 1, strings.Join(files[".json"], ", ")
	})
}

// baresipPort is a free port whose next one is free too: baresip 1.0 also
// listens for SIP/TLS on its sip_listen port + 1, and cannot be told not to.
func baresipPort(t *testing.T) int {
	t.Helper()
	for range 50 {
		p := freePort(t)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+1))
		if err != nil {
			continue
		}
		l.Close()
		portMu.Lock()
		portUsed[p+1] = true
		portMu.Unlock()
		return p
	}
	t.Fatal("no two free ports in a row for baresip")
	return 0
}
