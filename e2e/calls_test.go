package e2e

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// Calls through the real binary: SIPp as the operator (UAC with digest
// auth) and as the carrier (UAS), G.711 played from SIPp's pcap both ways.

const (
	mIn      = `plateau_rtp_packets_total{direction="in"}`
	mOut     = `plateau_rtp_packets_total{direction="out"}`
	mActive  = "plateau_calls_active"
	mAnswer  = "plateau_calls_answered_total"
	mUnknown = `plateau_rtp_dropped_packets_total{reason="unknown_source"}`
	mHold    = `plateau_rtp_dropped_packets_total{reason="hold"}`
)

func mEnded(why string) string   { return `plateau_calls_ended_total{why="` + why + `"}` }
func mRefused(why string) string { return `plateau_calls_refused_total{reason="` + why + `"}` }

func TestCallsConnectWithMedia(t *testing.T) {
	n := pcapPackets(t, pcapFile)
	carrierPort := freePort(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}})
	in0, out0 := p.metricOf(mIn), p.metricOf(mOut)

	carrier := startCarrier(t, carrierPort, "uas_answer.xml")
	// Talk 8 s: the whole pcap (about 7 s) plays on both sides.
	op := startOperator(t, p, "uac_talk.xml", approved, "-d", "8000")
	op.mustSucceed(45 * time.Second)
	carrier.mustSucceed(15 * time.Second)

	waitMetric(t, p, mActive, 0)
	waitMetric(t, p, mEnded("operator_hangup"), 1)
	if v := p.metricOf(mAnswer); v != 1 {
		t.Errorf("%s = %v, want 1", mAnswer, v)
	}
	in, out := p.metricOf(mIn)-in0, p.metricOf(mOut)-out0
	t.Logf("pcap: %d packets; relay: %v in, %v out", n, in, out)
	// Both pcaps reach the relay (some loss tolerated on a loaded host).
	// Out counts what the relay sends: the outside party's audio to the
	// operator, the operator's once the recording notice is over, and the
	// notice (3.9 s) and tone themselves, in 20 ms packets.
	if in < 0.9*float64(2*n) || in > float64(2*n)+10 {
		t.Errorf("RTP in = %v, want about %d (2 × the pcap)", in, 2*n)
	}
	if out < 0.9*float64(n) || out > in+250 {
		t.Errorf("RTP out = %v, want between %d and in + the prompts (%v + 250)", out, n, in)
	}

	var files map[string][]string
	eventually(t, "recording WAV and sidecar", func() (bool, string) {
		files = recordingFiles(t, p)
		return len(files[".wav"]) == 1 && len(files[".json"]) == 1, "files " + strings.Join(append(files[".wav"], files[".json"]...), ", ")
	})
	if st, err := os.Stat(files[".wav"][0]); err != nil || st.Size() < 44+8000*2*2*5 {
		t.Errorf("recording %s is too short for an 8 s stereo call: %v %v", files[".wav"][0], st.Size(), err)
	}
	side, _ := os.ReadFile(files[".json"][0])
	for _, want := range []string{approved, `"sha256"`, opExt} {
		if !strings.Contains(string(side), want) {
			t.Errorf("sidecar lacks %s:\n%s", want, side)
		}
	}

	dec := auditLines(t, p, "policy.decision")
	if !strings.Contains(dec, "allowed") || !strings.Contains(dec, approved) {
		t.Errorf("audit has no allowed decision for %s:\n%s", approved, dec)
	}
	if ended := auditLines(t, p, "call.ended"); !strings.Contains(ended, "operator_hangup") {
		t.Errorf("audit has no call.ended operator_hangup:\n%s", ended)
	}
	auditVerify(t, p)
}

func TestCallsRefusedNumber(t *testing.T) {
	carrier, carrierPort := newSilentCarrier(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}})

	op := startOperator(t, p, "uac_refused.xml", unapproved)
	op.mustSucceed(30 * time.Second) // the scenario checks 403 and Reason: NOT_ALLOWLISTED
	carrier.heardNothing(t, time.Second)

	if v := p.metricOf(mRefused("NOT_ALLOWLISTED")); v != 1 {
		t.Errorf("%s = %v, want 1", mRefused("NOT_ALLOWLISTED"), v)
	}
	if v := p.metricOf(mAnswer); v != 0 {
		t.Errorf("%s = %v, want 0", mAnswer, v)
	}
	dec := auditLines(t, p, "policy.decision")
	if !strings.Contains(dec, "NOT_ALLOWLISTED") || !strings.Contains(dec, unapproved) {
		t.Errorf("audit has no NOT_ALLOWLISTED refusal for %s:\n%s", unapproved, dec)
	}
	if files := recordingFiles(t, p); len(files[".wav"])+len(files[".json"]) != 0 {
		t.Errorf("a refused call left recordings: %v", files)
	}
}

func TestCallsCancelBeforeAnswer(t *testing.T) {
	carrierPort := freePort(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}})

	// The carrier rings and never answers; it exits 0 only if it received
	// the CANCEL (and answered it 200 and the INVITE 487).
	carrier := startCarrier(t, carrierPort, "uas_ring.xml")
	// The operator cancels 1 s after the 180; exits 0 on 200 then 487.
	op := startOperator(t, p, "uac_cancel.xml", approved, "-d", "1000")
	op.mustSucceed(30 * time.Second)
	carrier.mustSucceed(15 * time.Second)

	waitMetric(t, p, mActive, 0)
	waitMetric(t, p, mEnded("cancelled"), 1)
	if v := p.metricOf(mAnswer); v != 0 {
		t.Errorf("%s = %v, want 0", mAnswer, v)
	}
}

func TestCallsCarrierHangsUp(t *testing.T) {
	carrierPort := freePort(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}})

	carrier := startCarrier(t, carrierPort, "uas_hangup.xml", "-d", "2000")
	op := startOperator(t, p, "uac_hungup.xml", approved)
	carrier.mustSucceed(30 * time.Second) // its BYE got 200 from Plateau
	op.mustSucceed(15 * time.Second)      // Plateau's BYE reached the operator

	waitMetric(t, p, mActive, 0)
	waitMetric(t, p, mEnded("outside_hangup"), 1)
	if ended := auditLines(t, p, "call.ended"); !strings.Contains(ended, "outside_hangup") {
		t.Errorf("audit has no call.ended outside_hangup:\n%s", ended)
	}
}

func TestCallsHoldResume(t *testing.T) {
	carrierPort := freePort(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}})
	hold0 := p.metricOf(mHold)

	carrier := startCarrier(t, carrierPort, "uas_answer.xml")
	// The scenario checks the answers: recvonly to sendonly, then sendrecv.
	op := startOperator(t, p, "uac_hold.xml", approved)
	op.mustSucceed(30 * time.Second)
	carrier.mustSucceed(15 * time.Second)

	waitMetric(t, p, mEnded("operator_hangup"), 1)
	// While on hold the carrier's audio is not sent to the operator.
	if v := p.metricOf(mHold) - hold0; v <= 0 {
		t.Errorf("%s grew by %v during hold, want > 0", mHold, v)
	}
	if n := strings.Count(p.logs.String(), "media updated"); n != 2 {
		t.Errorf("%d 'media updated' log lines, want 2 (hold, resume)", n)
	}
}

func TestCallsInjectedRTPDropped(t *testing.T) {
	carrierPort := freePort(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}})
	drop0 := p.metricOf(mUnknown)

	carrier := startCarrier(t, carrierPort, "uas_answer.xml")
	op := startOperator(t, p, "uac_talk.xml", approved, "-d", "4000")

	port := op.relayPort(t)
	// Let the relay latch onto the operator's real source first.
	time.Sleep(1500 * time.Millisecond)
	intruder, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer intruder.Close()
	const injected = 25
	dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	for i := range injected {
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SequenceNumber: uint16(1000 + i), Timestamp: uint32(160 * i), SSRC: 0xbadc0de},
			Payload: make([]byte, 160)}
		b, _ := pkt.Marshal()
		intruder.WriteToUDP(b, dst)
		time.Sleep(5 * time.Millisecond)
	}
	eventually(t, "injected packets counted as unknown_source", func() (bool, string) {
		v := p.metricOf(mUnknown) - drop0
		return v >= injected, strconv.FormatFloat(v, 'f', -1, 64)
	})
	op.mustSucceed(30 * time.Second)
	carrier.mustSucceed(15 * time.Second)
	waitMetric(t, p, mEnded("operator_hangup"), 1)
}

func TestCallsTrunkFailover(t *testing.T) {
	failing, working := freePort(t), freePort(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{failing, working}})

	bad := startCarrier(t, failing, "uas_503.xml")
	good := startCarrier(t, working, "uas_answer.xml")
	op := startOperator(t, p, "uac_call.xml", approved)
	op.mustSucceed(30 * time.Second)
	bad.mustSucceed(10 * time.Second)
	good.mustSucceed(15 * time.Second)
	waitMetric(t, p, mEnded("operator_hangup"), 1)
	if v := p.metricOf(mAnswer); v != 1 {
		t.Errorf("%s = %v, want 1", mAnswer, v)
	}
}

func TestCallsUnknownSource(t *testing.T) {
	carrier, carrierPort := newSilentCarrier(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}})

	t.Run("no credentials", func(t *testing.T) {
		ua := newRawUA(t, p, "127.0.0.1")
		r := ua.invite(ua.newInvite(opExt, approved, 1, randHex(8)+"@e2e", randHex(4)))
		if r == nil || r.status != 407 || r.get("Proxy-Authenticate") == "" {
			t.Fatalf("INVITE without credentials: %v, want 407 with a challenge", r)
		}
	})
	t.Run("wrong credentials", func(t *testing.T) {
		ua := newRawUA(t, p, "127.0.0.1")
		callID, tag := randHex(8)+"@e2e", randHex(4)
		tx := ua.newInvite(opExt, approved, 1, callID, tag)
		r := ua.invite(tx)
		if r == nil || r.status != 407 {
			t.Fatalf("first INVITE: %v, want 407", r)
		}
		tx2 := ua.newInvite(opExt, approved, 2, callID, tag)
		r = ua.invite(tx2, authorization(r, opExt, "not-the-password", tx2.uri))
		if r == nil || r.status != 407 {
			t.Fatalf("INVITE with a wrong password: %v, want 407 again", r)
		}
	})
	t.Run("right credentials but spoofed From", func(t *testing.T) {
		ua := newRawUA(t, p, "127.0.0.1")
		callID, tag := randHex(8)+"@e2e", randHex(4)
		r := ua.invite(ua.newInvite("102", approved, 1, callID, tag))
		if r == nil || r.status != 407 {
			t.Fatalf("first INVITE: %v, want 407", r)
		}
		tx2 := ua.newInvite("102", approved, 2, callID, tag)
		r = ua.invite(tx2, authorization(r, opExt, opPass, tx2.uri))
		if r == nil || r.status != 403 || !strings.Contains(r.get("Reason"), "FROM_MISMATCH") {
			t.Fatalf("INVITE authenticated as %s with From 102: %v, want 403 FROM_MISMATCH", opExt, r)
		}
	})
	t.Run("another domain from an address no trunk allows", func(t *testing.T) {
		// A carrier calling from 127.0.0.3, which no trunk lists: its From
		// names its own host, not Plateau's. Refused outright, audited.
		ua := newRawUA(t, p, "127.0.0.3")
		r := ua.invite(ua.newInvite("+33612345679", "+33240000000", 1, randHex(8)+"@e2e", randHex(4)))
		if r == nil || r.status != 403 || !strings.Contains(r.get("Reason"), "UNKNOWN_SOURCE") || r.get("Proxy-Authenticate") != "" {
			t.Fatalf("INVITE from a foreign domain at a non-trunk address: %v, want 403 UNKNOWN_SOURCE without a challenge", r)
		}
		dec := auditLines(t, p, "policy.decision")
		if !strings.Contains(dec, "UNKNOWN_SOURCE") || !strings.Contains(dec, "+33612345679") || !strings.Contains(dec, "127.0.0.3") {
			t.Errorf("refusal of the unknown source not audited:\n%s", dec)
		}
	})
	t.Run("from a trunk source", func(t *testing.T) {
		// 127.0.0.2 is the trunk's allowed source: an inbound call. No
		// operator is registered, so nobody can take it.
		ua := newRawUA(t, p, "127.0.0.2")
		r := ua.invite(ua.newInvite("+33612345678", "+33240000000", 1, randHex(8)+"@e2e", randHex(4)))
		if r == nil || r.status != 480 || !strings.Contains(r.get("Reason"), "NO_OPERATOR_AVAILABLE") {
			t.Fatalf("inbound INVITE: %v, want 480 with Reason NO_OPERATOR_AVAILABLE", r)
		}
		dec := auditLines(t, p, "policy.decision")
		if !strings.Contains(dec, "NO_OPERATOR_AVAILABLE") || !strings.Contains(dec, "+33612345678") {
			t.Errorf("inbound refusal not audited:\n%s", dec)
		}
	})
	carrier.heardNothing(t, time.Second)
	if v := p.metricOf(mAnswer); v != 0 {
		t.Errorf("%s = %v, want 0", mAnswer, v)
	}
	if v := p.metricOf(mActive); v != 0 {
		t.Errorf("%s = %v, want 0", mActive, v)
	}
	auditVerify(t, p)
}

func TestCallsDrainOnSIGTERM(t *testing.T) {
	carrierPort := freePort(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}, sipYAML: "  drain_timeout: 30s\n"})

	carrier := startCarrier(t, carrierPort, "uas_answer.xml")
	op := startOperator(t, p, "uac_talk.xml", approved, "-d", "6000")
	waitMetric(t, p, mAnswer, 1)

	p.stopsItself = true
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, "/readyz unready", func() (bool, string) {
		res, err := http.Get("http://127.0.0.1:" + strconv.Itoa(p.httpPort) + "/readyz")
		if err != nil {
			return false, err.Error()
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode == 503 && strings.Contains(string(body), "draining"), res.Status + " " + string(body)
	})
	ua := newRawUA(t, p, "127.0.0.1")
	r := ua.invite(ua.newInvite(opExt, approved, 1, randHex(8)+"@e2e", randHex(4)))
	if r == nil || r.status != 503 {
		t.Errorf("new INVITE while draining: %v, want 503", r)
	}
	select {
	case <-p.done:
		t.Fatalf("plateau exited with a call in progress (%v)", p.exitErr)
	default:
	}

	op.mustSucceed(30 * time.Second) // the call ends normally with its BYE
	carrier.mustSucceed(15 * time.Second)
	select {
	case <-p.done:
		if p.exitErr != nil {
			t.Errorf("plateau exited with %v after draining", p.exitErr)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("plateau did not exit once its last call ended")
	}
	if !strings.Contains(p.logs.String(), "why=operator_hangup") {
		t.Errorf("the call did not end with the operator's BYE:\n%s", tail(p.logs.String(), 3000))
	}
}

// relayPort is the port of Plateau's SDP answer to the operator, which the
// uac_talk scenario writes to relay_port.txt.
func (s *sippProc) relayPort(t *testing.T) int {
	t.Helper()
	var port int
	eventually(t, "relay port from the operator's 200 OK", func() (bool, string) {
		b, err := os.ReadFile(filepath.Join(s.dir, "relay_port.txt"))
		if err != nil {
			return false, err.Error()
		}
		port, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && port > 0, strconv.Quote(string(b))
	})
	return port
}
