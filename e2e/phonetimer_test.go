package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Session timers (RFC 4028) toward a phone Plateau rings itself (issue 13
// item 8: an inbound call; click-to-call and supervisors' legs use the
// same code). Before, Plateau's INVITE to the phone offered no timer and
// a phone that died mid-call kept the call, and its recording, open until
// the maximum duration.

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
	need(t, "baresip")
	p := startCallServer(t, callOpts{trunkPorts: []int{freePort(t)}})
	// A sine as microphone, no speaker: enough to answer and send media.
	b := startBaresip(t, baresipOpts{
		account: fmt.Sprintf("<sip:%s@%s;transport=udp>;auth_pass=%s;regint=600;answermode=auto", opExt, p.sipAddr(), opPass),
		config:  []string{"module ausine.so", "audio_source ausine,440", "ausrc_srate 48000", "ausrc_channels 2"},
		quit:    80 * time.Second, timeout: 90 * time.Second,
	})
	b.waitRegistered(p, opExt, fmt.Sprintf("@127.0.0.1:%d", b.port), 15*time.Second)
	callIn(t, p, "carrier_call_in.xml", "-d", "3000").mustSucceed(40 * time.Second)
	waitMetric(t, p, mEnded("outside_hangup"), 1)
	if v := p.metricOf(mAnswer); v != 1 {
		t.Errorf("%s = %v, want 1:\n%s", mAnswer, v, b.out.String())
	}
	eventually(t, "the recording closed", func() (bool, string) {
		files := recordingFiles(t, p)
		return len(files[".wav"]) == 1 && len(files[".json"]) == 1, strings.Join(files[".json"], ", ")
	})
}
