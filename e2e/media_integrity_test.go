package e2e

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/zaf/g711"

	"plateau/media"
)

// rawCall is an operator call placed by a raw UA with SDP of our choosing.
type rawCall struct {
	u           *rawUA
	uri, ext    string
	tag, callID string
	to, contact string
	answer      string
	local       *net.UDPAddr
	cseq        int
}

func (c *rawCall) msg(method, uri, branch, to, sdp string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s;rport\r\n", method, uri, c.local, branch)
	fmt.Fprintf(&b, "From: <sip:%s@%s>;tag=%s\r\nTo: %s\r\n", c.ext, c.local.IP, c.tag, to)
	fmt.Fprintf(&b, "Call-ID: %s\r\nCSeq: %d %s\r\nMax-Forwards: 70\r\nContact: <sip:%s@%s>\r\n", c.callID, c.cseq, method, c.ext, c.local)
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	if sdp != "" {
		fmt.Fprintf(&b, "Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", len(sdp), sdp)
	} else {
		b.WriteString("Content-Length: 0\r\n\r\n")
	}
	return b.String()
}

// placeRawCall INVITEs number as ext with sdp, answers the challenge, ACKs
// the 200 and returns the call (the answer's SDP in answer).
func placeRawCall(t *testing.T, u *rawUA, ext, pass, number, sdp string) *rawCall {
	t.Helper()
	c := &rawCall{u: u, ext: ext, tag: randHex(4), callID: randHex(8) + "@media", local: u.conn.LocalAddr().(*net.UDPAddr)}
	c.uri = fmt.Sprintf("sip:%s@%s", number, u.server)
	to := "<" + c.uri + ">"
	c.cseq = 1
	b1 := "z9hG4bK" + randHex(6)
	r := u.do(c.msg("INVITE", c.uri, b1, to, sdp), 10*time.Second)
	if r == nil || r.status != 407 {
		t.Fatalf("INVITE %s: want 407, got %+v", number, r)
	}
	u.conn.WriteToUDP([]byte(c.msg("ACK", c.uri, b1, r.get("To"), "")), u.server)
	c.cseq = 2
	b2 := "z9hG4bK" + randHex(6)
	r, body := doWithBody(t, u, c.msg("INVITE", c.uri, b2, to, sdp, authorization(r, ext, pass, c.uri)))
	if r == nil || r.status != 200 {
		t.Fatalf("INVITE %s: %+v, want 200", number, r)
	}
	c.to, c.answer = r.get("To"), body
	c.contact = strings.Trim(r.get("Contact"), "<> ")
	if i := strings.IndexByte(c.contact, '>'); i >= 0 {
		c.contact = c.contact[:i]
	}
	u.conn.WriteToUDP([]byte(c.msg("ACK", c.contact, "z9hG4bK"+randHex(6), c.to, "")), u.server)
	return c
}

// hangup sends BYE and waits for its 200.
func (c *rawCall) hangup(t *testing.T) {
	t.Helper()
	c.cseq = 3
	if r := c.u.do(c.msg("BYE", c.contact, "z9hG4bK"+randHex(6), c.to, ""), 10*time.Second); r == nil || r.status != 200 {
		t.Fatalf("BYE: %+v", r)
	}
}

// A phone that offers PCMU under the dynamic payload type 96 is recorded
// and monitored like any other (main at 12849c6: Plateau's answer kept PT
// 96, the outside party heard the operator, and both the recording's
// operator channel and a supervisor's *1 were silent).
func TestMediaDynamicPayloadTypeRecordedAndMonitored(t *testing.T) {
	carrierPort := freePort(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}})
	if out, err := p.plateauCmd("user", "add", "--role", "supervisor", "--name", "Sup", "--sip-password", supPass, supExt); err != nil {
		t.Fatalf("add supervisor: %v\n%s", err, out)
	}
	carrier := startCarrier(t, carrierPort, "uas_answer_silent.xml")
	waitUDPBound(t, carrierPort)
	lo := netip.MustParseAddr("127.0.0.1")
	dyn := media.Codec{Encoding: media.PCMU, PayloadType: 96}
	epOp, err := media.NewEndpoint(nil, lo, dyn)
	if err != nil {
		t.Fatal(err)
	}
	defer epOp.Close()
	sdp := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 96 101\r\na=rtpmap:96 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
		epOp.LocalAddr().Port())
	call := placeRawCall(t, newRawUA(t, p, "127.0.0.1"), opExt, opPass, approved, sdp)
	if !strings.Contains(call.answer, "m=audio") || !strings.Contains(call.answer, "a=rtpmap:96 PCMU/8000") {
		t.Fatalf("answer does not use the phone's payload type 96:\n%s", call.answer)
	}
	epOp.SetRemote(netip.AddrPortFrom(lo, sdpPort(t, call.answer)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go epOp.Play(ctx, media.Tone(hzOperator, 9*time.Second))

	time.Sleep(4500 * time.Millisecond) // past the recording notice (3.9 s)
	sup, err := media.NewEndpoint(nil, lo, media.PCMU.Codec())
	if err != nil {
		t.Fatal(err)
	}
	defer sup.Close()
	if r := monitorInvite(t, newRawUA(t, p, "127.0.0.1"), supExt, supPass, "*1"+opExt, sup); r.status != 200 {
		t.Fatalf("*1101: %d %q", r.status, r.get("Reason"))
	}
	time.Sleep(2500 * time.Millisecond)
	heard := sup.PCM()
	cancel()
	call.hangup(t)
	carrier.mustSucceed(15 * time.Second)
	if g := media.Goertzel(heard, hzOperator); len(heard) < 50*media.FrameSamples || g < 1e5 {
		t.Errorf("the supervisor's *1 does not hear the operator (%d samples, tone power %.3g)", len(heard), g)
	}

	var files map[string][]string
	eventually(t, "recording WAV", func() (bool, string) {
		files = recordingFiles(t, p)
		return len(files[".wav"]) == 1, "no recording yet"
	})
	wav, err := os.ReadFile(files[".wav"][0])
	if err != nil {
		t.Fatal(err)
	}
	pcm := wav[44:]
	left := make([]int16, 0, len(pcm)/4)
	for i := 4500 * 8 * 4; i+3 < len(pcm) && i < 8500*8*4; i += 4 {
		left = append(left, int16(uint16(pcm[i])|uint16(pcm[i+1])<<8))
	}
	if g := media.Goertzel(left, hzOperator); g < 1e5 {
		t.Fatalf("the recording's operator channel does not hold the operator's voice (tone power %.3g over %d samples)", g, len(left))
	}
}

const hzOperator = 440.0

// waitUDPBound waits until something (SIPp, starting) holds UDP port on
// 127.0.0.1: a raw UA dials faster than SIPp starts.
func waitUDPBound(t *testing.T, port int) {
	t.Helper()
	eventually(t, fmt.Sprintf("UDP port %d bound", port), func() (bool, string) {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			return true, ""
		}
		c.Close()
		return false, "not yet"
	})
	time.Sleep(200 * time.Millisecond)
}

// An inmate's scriptable phone on another LAN address floods a call's
// relay port before the operator's phone sends anything: it is neither
// latched nor answered, the operator is not locked out, and only the
// operator's voice is recorded (main at 12849c6: the first 16 packets from
// anywhere could latch; the attacker got the call's audio and was
// recorded as the operator).
func TestMediaHijackFromAnotherHostRefused(t *testing.T) {
	attackerIP := net.IPv4(127, 0, 0, 2)
	attacker, err := net.ListenUDP("udp", &net.UDPAddr{IP: attackerIP})
	if err != nil {
		skipOrFail(t, "no second loopback address: %v", err)
	}
	defer attacker.Close()
	carrierPort := freePort(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}})
	carrier := startCarrier(t, carrierPort, "uas_answer.xml", "-rtp_echo")
	waitUDPBound(t, carrierPort)
	lo := netip.MustParseAddr("127.0.0.1")
	epOp, err := media.NewEndpoint(nil, lo, media.PCMA.Codec())
	if err != nil {
		t.Fatal(err)
	}
	defer epOp.Close()
	sdp := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
		epOp.LocalAddr().Port())
	call := placeRawCall(t, newRawUA(t, p, "127.0.0.1"), opExt, opPass, approved, sdp)
	relay := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(sdpPort(t, call.answer))}
	epOp.SetRemote(netip.AddrPortFrom(lo, uint16(relay.Port)))

	// The attacker floods first, with its own tone.
	const attackHz = 1000.0
	stop := make(chan struct{})
	flooded := make(chan int)
	go func() {
		n := 0
		tone := media.Tone(attackHz, 20*time.Millisecond)
		buf := make([]byte, 12+media.FrameSamples)
		for i := 0; ; i++ {
			select {
			case <-stop:
				flooded <- n
				return
			default:
			}
			buf[0], buf[1] = 0x80, 8
			buf[2], buf[3] = byte(i>>8), byte(i)
			ts := uint32(i * media.FrameSamples)
			buf[4], buf[5], buf[6], buf[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
			buf[8], buf[9], buf[10], buf[11] = 0xBA, 0xD0, 0xBA, 0xD0
			for j, s := range tone {
				buf[12+j] = g711.EncodeAlawFrame(s)
			}
			if _, err := attacker.WriteToUDP(buf, relay); err == nil {
				n++
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	time.Sleep(300 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go epOp.Play(ctx, media.Tone(hzOperator, 8*time.Second))
	// What the attacker receives, if anything.
	got := make(chan int)
	go func() {
		n := 0
		buf := make([]byte, 1500)
		for {
			attacker.SetReadDeadline(time.Now().Add(9 * time.Second))
			if _, _, err := attacker.ReadFromUDP(buf); err != nil {
				got <- n
				return
			}
			n++
		}
	}()
	time.Sleep(8 * time.Second)
	close(stop)
	sent := <-flooded
	cancel()
	// The carrier echoes: after the notice the operator hears itself back.
	heard := epOp.PCM()
	call.hangup(t)
	carrier.mustSucceed(15 * time.Second)
	if n := <-got; n != 0 {
		t.Fatalf("the attacker received %d packets of the call", n)
	}
	if media.Goertzel(heard, hzOperator) < 1e5 {
		t.Fatalf("the operator was locked out: no echo of its own voice (%d samples)", len(heard))
	}
	if v := p.metricOf(mUnknown); v < float64(sent)/2 {
		t.Errorf("%s = %v for %d packets flooded", mUnknown, v, sent)
	}
	var files map[string][]string
	eventually(t, "recording WAV", func() (bool, string) {
		files = recordingFiles(t, p)
		return len(files[".wav"]) == 1, "no recording yet"
	})
	wav, err := os.ReadFile(files[".wav"][0])
	if err != nil {
		t.Fatal(err)
	}
	var left []int16
	for i := 44; i+3 < len(wav); i += 4 {
		left = append(left, int16(uint16(wav[i])|uint16(wav[i+1])<<8))
	}
	if a, o := media.Goertzel(left, attackHz), media.Goertzel(left, hzOperator); a*100 > o || o < 1e4 {
		t.Fatalf("operator channel: attacker tone power %.3g, operator %.3g: the attacker was recorded as the operator", a, o)
	}
}

// Comfort noise and payload types nobody negotiated never leave Plateau:
// the operator's phone sends them among its audio to a carrier that echoes
// everything back; only audio (and nothing with the text) returns (main at
// 12849c6 forwarded CN verbatim, text included, to the carrier and back).
func TestMediaNonAudioNotRelayed(t *testing.T) {
	carrierPort := freePort(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}})
	carrier := startCarrier(t, carrierPort, "uas_answer.xml", "-rtp_echo")
	waitUDPBound(t, carrierPort)
	phone, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	sdp := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
		phone.LocalAddr().(*net.UDPAddr).Port)
	call := placeRawCall(t, newRawUA(t, p, "127.0.0.1"), opExt, opPass, approved, sdp)
	relay := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(sdpPort(t, call.answer))}

	secret := []byte("MEET AT GATE 3")
	got := map[uint8]int{}
	leaked := false
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			phone.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, _, err := phone.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if n >= 12 {
				got[buf[1]&0x7f]++
			}
			if strings.Contains(string(buf[:n]), string(secret[:4])) {
				leaked = true
			}
		}
	}()
	tone := media.Tone(hzOperator, 20*time.Millisecond)
	pkt := make([]byte, 12+media.FrameSamples)
	for i := range 400 { // 8 s: past the notice (3.9 s), then echoed back
		pt, payload := byte(8), pkt[12:]
		for j, s := range tone {
			payload[j] = g711.EncodeAlawFrame(s)
		}
		b := pkt
		switch i % 10 {
		case 3:
			b = append(pkt[:12:12], secret...)
			pt = 13 // comfort noise carrying text
		case 7:
			b = append(pkt[:12:12], secret...)
			pt = 99 // never negotiated
		}
		b[0], b[1] = 0x80, pt
		b[2], b[3] = byte(i>>8), byte(i)
		ts := uint32(i * media.FrameSamples)
		b[4], b[5], b[6], b[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
		b[8], b[9], b[10], b[11] = 1, 2, 3, 4
		phone.WriteToUDP(b, relay)
		time.Sleep(20 * time.Millisecond)
	}
	call.hangup(t)
	carrier.mustSucceed(15 * time.Second)
	<-done
	if got[8] == 0 {
		t.Fatalf("no audio came back through the carrier's echo: %v", got)
	}
	for pt, n := range got {
		if pt != 8 {
			t.Errorf("%d packets of payload type %d came back through the carrier", n, pt)
		}
	}
	if leaked {
		t.Error("the text reached the carrier and came back")
	}
	for _, reason := range []string{"comfort_noise", "unknown_payload"} {
		if v := p.metricOf(`plateau_rtp_dropped_packets_total{reason="` + reason + `"}`); v < 30 {
			t.Errorf("dropped{%s} = %v, want the 40 sent", reason, v)
		}
	}
}

// A supervisor barges into a call whose operator phone is muted (sends no
// RTP at all): what the outside party hears of the supervisor is on the
// recording's left channel (main at 12849c6 sent it to the outside party
// and recorded nothing: the supervisor's audio was mixed into the
// recording only when an operator packet arrived).
func TestMediaBargeWithMutedOperatorRecorded(t *testing.T) {
	carrierPort := freePort(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}})
	if out, err := p.plateauCmd("user", "add", "--role", "supervisor", "--name", "Sup", "--sip-password", supPass, supExt); err != nil {
		t.Fatalf("add supervisor: %v\n%s", err, out)
	}
	carrier := startCarrier(t, carrierPort, "uas_answer_silent.xml")
	waitUDPBound(t, carrierPort)
	lo := netip.MustParseAddr("127.0.0.1")
	epOp, err := media.NewEndpoint(nil, lo, media.PCMU.Codec()) // never plays: muted
	if err != nil {
		t.Fatal(err)
	}
	defer epOp.Close()
	sdp := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
		epOp.LocalAddr().Port())
	call := placeRawCall(t, newRawUA(t, p, "127.0.0.1"), opExt, opPass, approved, sdp)
	time.Sleep(4500 * time.Millisecond) // past the recording notice

	sup, err := media.NewEndpoint(nil, lo, media.PCMU.Codec())
	if err != nil {
		t.Fatal(err)
	}
	defer sup.Close()
	if r := monitorInvite(t, newRawUA(t, p, "127.0.0.1"), supExt, supPass, "*3"+opExt, sup); r.status != 200 {
		t.Fatalf("*3101: %d %q", r.status, r.get("Reason"))
	}
	sup.SetRemote(netip.AddrPortFrom(lo, sdpPort(t, lastBody)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sup.Play(ctx, media.Tone(supHz, 3*time.Second)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	opHeard := epOp.PCM()
	call.hangup(t)
	carrier.mustSucceed(15 * time.Second)
	if media.Goertzel(opHeard, supHz) < 1e5 {
		t.Errorf("the operator does not hear the barging supervisor (%d samples)", len(opHeard))
	}
	var files map[string][]string
	eventually(t, "recording WAV", func() (bool, string) {
		files = recordingFiles(t, p)
		return len(files[".wav"]) == 1, "no recording yet"
	})
	wav, err := os.ReadFile(files[".wav"][0])
	if err != nil {
		t.Fatal(err)
	}
	var left, right []int16
	for i := 44; i+3 < len(wav); i += 4 {
		left = append(left, int16(uint16(wav[i])|uint16(wav[i+1])<<8))
		right = append(right, int16(uint16(wav[i+2])|uint16(wav[i+3])<<8))
	}
	if g := media.Goertzel(left, supHz); g < 1e4 {
		t.Fatalf("the barging supervisor, heard by the outside party, is not on the recording's left channel (tone power %.3g)", g)
	}
	if g := media.Goertzel(right, supHz); g < 1e4 {
		t.Fatalf("the barging supervisor, heard by the operator, is not on the recording's right channel (tone power %.3g)", g)
	}
}

// The operator's stream restarts its sequence numbers and timestamps on
// the same SSRC (as a carrier did after a re-INVITE): what follows is
// heard and recorded, not dropped as late (main at 12849c6 lost it, ~6 s
// in the recording and in the other party's ear).
func TestMediaSequenceRestartRecorded(t *testing.T) {
	carrierPort := freePort(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}})
	carrier := startCarrier(t, carrierPort, "uas_answer_silent.xml")
	waitUDPBound(t, carrierPort)
	phone, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	sdp := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n",
		phone.LocalAddr().(*net.UDPAddr).Port)
	call := placeRawCall(t, newRawUA(t, p, "127.0.0.1"), opExt, opPass, approved, sdp)
	relay := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(sdpPort(t, call.answer))}
	const before, after = 440.0, 1000.0
	send := func(hz float64, seq uint16, ts uint32, frames int) {
		tone := media.Tone(hz, 20*time.Millisecond)
		b := make([]byte, 12+media.FrameSamples)
		for range frames {
			b[0], b[1] = 0x80, 0
			b[2], b[3] = byte(seq>>8), byte(seq)
			b[4], b[5], b[6], b[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
			b[8], b[9], b[10], b[11] = 0xCA, 0xFE, 0, 1
			for j, s := range tone {
				b[12+j] = g711.EncodeUlawFrame(s)
			}
			phone.WriteToUDP(b, relay)
			seq++
			ts += media.FrameSamples
			time.Sleep(20 * time.Millisecond)
		}
	}
	send(before, 40000, 1<<31, 300) // 6 s: past the notice
	send(after, 20000, 12345, 200)  // restart: lower numbers, new timestamps
	call.hangup(t)
	carrier.mustSucceed(15 * time.Second)
	var files map[string][]string
	eventually(t, "recording WAV", func() (bool, string) {
		files = recordingFiles(t, p)
		return len(files[".wav"]) == 1, "no recording yet"
	})
	wav, err := os.ReadFile(files[".wav"][0])
	if err != nil {
		t.Fatal(err)
	}
	var left []int16
	for i := 44; i+3 < len(wav); i += 4 {
		left = append(left, int16(uint16(wav[i])|uint16(wav[i+1])<<8))
	}
	tail := left[max(0, len(left)-3*8000):]
	if a, b := media.Goertzel(tail, after), media.Goertzel(tail, before); a < 1e5 || a < 10*b {
		t.Fatalf("after the restart the recording's operator channel lacks the new audio (1000 Hz %.3g, 440 Hz %.3g)", a, b)
	}
}
