package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"plateau/media"
)

const (
	supExt  = "201"
	supPass = "sup-secret-201"
	supHz   = 1750.0
	mMon    = "plateau_monitor_sessions_active"
)

// monitorInvite dials a feature code as ext with its media on ep (PCMU
// and telephone-event 101), answering the digest challenge; it ACKs a
// 200 and returns the final response.
func monitorInvite(t *testing.T, u *rawUA, ext, pass, code string, ep *media.Endpoint) *response {
	t.Helper()
	local := u.conn.LocalAddr().(*net.UDPAddr)
	tag, callID := randHex(4), randHex(8)+"@monitor"
	uri := fmt.Sprintf("sip:%s@%s", code, u.server)
	sdp := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
		ep.LocalAddr().Port())
	msg := func(method string, cseq int, branch, to string, extra ...string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s;rport\r\n", method, uri, local, branch)
		fmt.Fprintf(&b, "From: <sip:%s@%s>;tag=%s\r\nTo: %s\r\n", ext, local.IP, tag, to)
		fmt.Fprintf(&b, "Call-ID: %s\r\nCSeq: %d %s\r\nMax-Forwards: 70\r\nContact: <sip:%s@%s>\r\n", callID, cseq, method, ext, local)
		for _, h := range extra {
			b.WriteString(h + "\r\n")
		}
		if method == "INVITE" {
			fmt.Fprintf(&b, "Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", len(sdp), sdp)
		} else {
			b.WriteString("Content-Length: 0\r\n\r\n")
		}
		return b.String()
	}
	to := "<" + uri + ">"
	ack := func(r *response, cseq int, branch string) {
		a := msg("ACK", cseq, branch, r.get("To"))
		u.conn.WriteToUDP([]byte(a), u.server)
	}
	b1 := "z9hG4bK" + randHex(6)
	r := u.do(msg("INVITE", 1, b1, to), 10*time.Second)
	if r == nil || r.status != 407 {
		t.Fatalf("INVITE %s: want 407, got %+v", code, r)
	}
	ack(r, 1, b1)
	b2 := "z9hG4bK" + randHex(6)
	r, body := doWithBody(t, u, msg("INVITE", 2, b2, to, authorization(r, ext, pass, uri)))
	lastBody = body
	if r == nil {
		t.Fatalf("INVITE %s: no final response", code)
	}
	if r.status == 200 {
		ack(r, 2, "z9hG4bK"+randHex(6))
	} else {
		ack(r, 2, b2)
	}
	return r
}

// lastBody is the SDP of the last monitorInvite's final response.
var lastBody string

// doWithBody is rawUA.do keeping the final response's body.
func doWithBody(t *testing.T, u *rawUA, msg string) (*response, string) {
	t.Helper()
	buf := make([]byte, 65535)
	deadline := time.Now().Add(10 * time.Second)
	sent := time.Time{}
	for time.Now().Before(deadline) {
		if time.Since(sent) > time.Second {
			u.conn.WriteToUDP([]byte(msg), u.server)
			sent = time.Now()
		}
		u.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, _, err := u.conn.ReadFromUDP(buf)
		if err != nil {
			continue
		}
		r, err := parseResponse(buf[:n])
		if err != nil || r.status < 200 {
			if err == nil {
				sent = time.Now().Add(time.Hour) // provisional: stop retransmitting
			}
			continue
		}
		_, body, _ := strings.Cut(string(buf[:n]), "\r\n\r\n")
		return r, body
	}
	return nil, ""
}

// sendDTMF sends one RFC 4733 key press (three packets, the last with E)
// from 127.0.0.1 to the monitor's port.
func sendDTMF(t *testing.T, to netip.AddrPort, digit byte) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ts := uint32(time.Now().UnixNano())
	for i := range 3 {
		p := make([]byte, 16)
		p[0], p[1] = 0x80, 101
		binary.BigEndian.PutUint16(p[2:], uint16(100+i))
		binary.BigEndian.PutUint32(p[4:], ts)
		binary.BigEndian.PutUint32(p[8:], 0x5150)
		p[12] = digit - '0'
		p[13] = 10
		if i == 2 {
			p[13] |= 0x80
		}
		binary.BigEndian.PutUint16(p[14:], uint16(160*(i+1)))
		c.WriteToUDPAddrPort(p, to)
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMonitorWhisperAndBarge: operator 101's call runs through Plateau
// (SIPp operator playing the pcap, SIPp carrier echoing what it hears);
// an operator may not monitor; supervisor 201 dials *2101 and whispers a
// 1750 Hz tone, then presses 3 (barge). The carrier's echo is what the
// customer heard: in whisper the supervisor must not get their tone back,
// in barge they must (the positive control).
func TestMonitorWhisperAndBarge(t *testing.T) {
	carrierPort := freePort(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}})
	if out, err := p.plateauCmd("user", "add", "--role", "supervisor", "--name", "Sup", "--sip-password", supPass, supExt); err != nil {
		t.Fatalf("add supervisor: %v\n%s", err, out)
	}
	carrier := startCarrier(t, carrierPort, "uas_answer.xml", "-rtp_echo")
	op := startOperator(t, p, "uac_talk.xml", approved, "-d", "14000")
	waitMetric(t, p, mActive, 1)
	// Past the recording notice (3.9 s, played to the customer alone).
	time.Sleep(4 * time.Second)

	// Nobody but a supervisor or an admin: 403 ROLE_FORBIDDEN.
	ua := newRawUA(t, p, "127.0.0.1")
	epOp, err := media.NewEndpoint(nil, netip.MustParseAddr("127.0.0.1"), media.PCMU.Codec())
	if err != nil {
		t.Fatal(err)
	}
	defer epOp.Close()
	if r := monitorInvite(t, ua, opExt, opPass, "*1"+opExt, epOp); r.status != 403 || !strings.Contains(r.get("Reason"), "ROLE_FORBIDDEN") {
		t.Fatalf("operator dialling *1101: %d %q, want 403 ROLE_FORBIDDEN", r.status, r.get("Reason"))
	}
	// No call on that extension: 404 NO_ACTIVE_CALL.
	sua := newRawUA(t, p, "127.0.0.1")
	ep, err := media.NewEndpoint(nil, netip.MustParseAddr("127.0.0.1"), media.PCMU.Codec())
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	if r := monitorInvite(t, sua, supExt, supPass, "*1199", ep); r.status != 404 || !strings.Contains(r.get("Reason"), "NO_ACTIVE_CALL") {
		t.Fatalf("*1199: %d %q, want 404 NO_ACTIVE_CALL", r.status, r.get("Reason"))
	}

	sua = newRawUA(t, p, "127.0.0.1")
	r := monitorInvite(t, sua, supExt, supPass, "*2"+opExt, ep)
	if r.status != 200 {
		t.Fatalf("*2101: %d %s %q", r.status, r.reason, r.get("Reason"))
	}
	mport := sdpPort(t, lastBody)
	ep.SetRemote(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), mport))
	waitMetric(t, p, mMon, 1)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go ep.Play(ctx, media.Tone(supHz, 8*time.Second))
	time.Sleep(500 * time.Millisecond)
	ep.Reset()
	time.Sleep(2500 * time.Millisecond)
	whisper := ep.PCM()
	sendDTMF(t, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), mport), '3')
	time.Sleep(500 * time.Millisecond)
	ep.Reset()
	time.Sleep(2500 * time.Millisecond)
	barge := ep.PCM()
	cancel()

	if len(whisper) < 100*media.FrameSamples {
		t.Fatalf("supervisor received %d samples in 2.5 s of whisper, want the call's audio", len(whisper))
	}
	var energy float64
	for _, s := range whisper {
		energy += float64(s) * float64(s)
	}
	if energy == 0 {
		t.Fatal("supervisor hears only silence: the call's audio is not mixed")
	}
	leak, back := media.Goertzel(whisper, supHz), media.Goertzel(barge, supHz)
	t.Logf("1750 Hz heard back: whisper %.3g, barge %.3g (call audio energy %.3g)", leak, back, energy/float64(len(whisper)))
	if back < 20*leak || back == 0 {
		t.Errorf("whisper reached the customer (or barge did not): tone power back whisper %.3g vs barge %.3g", leak, back)
	}

	op.mustSucceed(45 * time.Second)
	carrier.mustSucceed(15 * time.Second)
	waitMetric(t, p, mMon, 0) // the supervisor's leg ends with the call
	for kind, want := range map[string]string{"monitor.start": "whisper", "monitor.mode": "barge", "monitor.end": "call_ended", "monitor.refused": "ROLE_FORBIDDEN"} {
		if got := auditLines(t, p, kind); !strings.Contains(got, want) {
			t.Errorf("audit %s lacks %s:\n%s", kind, want, got)
		}
	}
	auditVerify(t, p)
}

// sdpPort reads the m=audio port of a response's SDP.
func sdpPort(t *testing.T, body string) uint16 {
	t.Helper()
	for _, l := range strings.Split(body, "\n") {
		var port uint16
		if _, err := fmt.Sscanf(strings.TrimSpace(l), "m=audio %d", &port); err == nil {
			return port
		}
	}
	t.Fatalf("no m=audio in the answer:\n%s", body)
	return 0
}
