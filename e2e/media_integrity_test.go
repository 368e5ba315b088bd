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
