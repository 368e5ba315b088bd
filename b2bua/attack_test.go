package b2bua

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"

	"plateau/media"
	psip "plateau/sip"
)

// Attacks on a connected call by its own legitimate peers (an inmate's
// scriptable phone, a hostile carrier): each one tries to make Plateau
// send something (media, a request) to an address that is neither the
// phone's nor a trunk's.

// rtpSink listens for RTP on ip and counts what arrives.
type rtpSink struct {
	conn *net.UDPConn
	got  chan struct{}
}

func newRTPSink(t *testing.T, ip string) *rtpSink {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	s := &rtpSink{conn: c, got: make(chan struct{}, 1)}
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := c.ReadFromUDP(buf); err != nil {
				return
			}
			select {
			case s.got <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() { c.Close() })
	return s
}

func (s *rtpSink) addr() netip.AddrPort { return s.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// sdpAt is an audio offer/answer at a.
func sdpAt(a netip.AddrPort) string {
	return fmt.Sprintf("v=0\r\no=- 2 2 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n",
		a.Addr(), a.Addr(), a.Port())
}

// sendOutsideAudio plays a burst of PCMA from the trunk's media address
// (what the inbound INVITE's SDP announced) into the call's outside leg,
// and reports whether sink received any of it.
func sendOutsideAudio(t *testing.T, e *callEnv, sink *rtpSink, wait time.Duration) bool {
	t.Helper()
	relay := e.relayOf(t) // srtp_test.go
	src := &net.UDPAddr{IP: net.ParseIP("127.0.0.2"), Port: int(e.trunkSrc.addr().Port()) + 1}
	conn, err := net.ListenUDP("udp", src)
	if err != nil {
		t.Skipf("the trunk's media port is taken: %v", err)
	}
	defer conn.Close()
	dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: relay.LocalPort(media.LegOutside)}
	deadline := time.Now().Add(wait)
	for seq := uint16(1); time.Now().Before(deadline); seq++ {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SequenceNumber: seq, Timestamp: uint32(seq) * 160, SSRC: 0x1234}, Payload: make([]byte, 160)}
		b, _ := p.Marshal()
		conn.WriteToUDP(b, dst)
		select {
		case <-sink.got:
			return true
		case <-time.After(20 * time.Millisecond):
		}
	}
	return false
}

// The operator's phone, the dialog's real peer, sends an ACK carrying an
// SDP that points the call's audio at another host of the LAN. The ACK
// is not an offer/answer Plateau asked for here, and in any case the
// operator's media must stay on the operator's phone.
func TestAttackAckSDPMovesOperatorMedia(t *testing.T) {
	e := newCallEnv(t)
	d, r := e.placeInbound("0240123456")
	if d == nil {
		t.Fatalf("inbound call not answered: %q", r)
	}
	sink := newRTPSink(t, "127.0.0.3")
	e.phone.send(e.addr, e.phoneRequest(e.phone, "ACK", 1, "", "application/sdp", sdpAt(sink.addr())))
	if sendOutsideAudio(t, e, sink, 1500*time.Millisecond) {
		t.Error("the caller's audio reached another host after the phone's ACK moved it there")
	}
	if len(e.audit.find("call.media_refused", ReasonMediaMismatch)) == 0 {
		t.Errorf("the refused media address is not audited: %+v", e.audit.entries)
	}
}

// lyingPhone answers every INVITE with a 200 whose SDP points at media
// and whose Contact is contact (its own address when empty), with extra
// headers, and every other request with 200.
func lyingPhone(t *testing.T, media netip.AddrPort, contact, extra string) *net.UDPConn {
	t.Helper()
	return serveRawUDP(t, "127.0.0.1", func(self netip.AddrPort, msg string, reply func(string)) {
		first, _, _ := strings.Cut(msg, "\r\n")
		method, _, _ := strings.Cut(first, " ")
		switch method {
		case "ACK", "SIP/2.0":
		case "INVITE":
			ct := contact
			if ct == "" {
				ct = "sip:101@" + self.String()
			}
			reply(replyTo(msg, "200 OK", "liar", fmt.Sprintf("Contact: <%s>\r\n%sContent-Type: application/sdp\r\n", ct, extra), sdpAt(media)))
		default:
			reply(replyTo(msg, "200 OK", "", "", ""))
		}
	})
}

// serveRawUDP reads SIP messages on a UDP socket of ip until the test
// ends, handing each to handle with the socket's address and a way to
// answer its sender.
func serveRawUDP(t *testing.T, ip string, handle func(self netip.AddrPort, msg string, reply func(string))) *net.UDPConn {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	self := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			handle(self, string(buf[:n]), func(r string) { conn.WriteToUDP([]byte(r), from) })
		}
	}()
	return conn
}

// The operator's phone answers an inbound call (Plateau's INVITE to its
// binding) with an SDP at another host: the caller's audio must not go
// there. The phone's address was validated at REGISTER; its answer's
// media address must be held to the same rule.
func TestAttackPhoneAnswerSDPElsewhere(t *testing.T) {
	e := newCallEnv(t)
	sink := newRTPSink(t, "127.0.0.3")
	ph := lyingPhone(t, sink.addr(), "", "")
	pa := ph.LocalAddr().(*net.UDPAddr).AddrPort()
	if err := e.s.ApplyBindingsForTest(testOperator, []psip.Binding{{Extension: testOperator, Contact: fmt.Sprintf("sip:%s@%s", testOperator, pa),
		Source: pa.String(), Transport: "udp", ExpiresAt: time.Now().Add(2 * time.Hour)}}, nil); err != nil {
		t.Fatal(err)
	}
	d, _ := e.placeInbound("0240123456")
	if d != nil && sendOutsideAudio(t, e, sink, 1500*time.Millisecond) {
		t.Error("the caller's audio reached another host named in the phone's answer")
	}
	if len(e.audit.find("call.media_refused", ReasonMediaMismatch)) == 0 {
		t.Errorf("the refused media address is not audited: %+v", e.audit.entries)
	}
	waitFor(t, "slots released", func() bool { return d != nil || (e.active.Site() == 0 && e.callsLeft() == 0) })
}

// bindLyingPhone makes a lying phone the operator's newest binding.
func bindLyingPhone(t *testing.T, e *callEnv, contact, extra string) netip.AddrPort {
	t.Helper()
	pa := lyingPhone(t, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 4000), contact, extra).LocalAddr().(*net.UDPAddr).AddrPort()
	if err := e.s.ApplyBindingsForTest(testOperator, []psip.Binding{{Extension: testOperator, Contact: fmt.Sprintf("sip:%s@%s", testOperator, pa),
		Source: pa.String(), Transport: "udp", ExpiresAt: time.Now().Add(2 * time.Hour)}}, nil); err != nil {
		t.Fatal(err)
	}
	return pa
}

// The operator's phone answers Plateau's INVITE with a Contact, or a
// Record-Route, naming another host (the carrier, another inmate's
// phone): Plateau's ACK and BYE of that dialog follow them (RFC 3261
// §12.1.2), so they must be checked like the binding. Plateau sends them
// to the binding instead, hangs up and audits.
func TestAttackPhoneAnswerRedirectsDialog(t *testing.T) {
	for _, tc := range []struct{ name, contact, extra string }{
		{"contact at the carrier", "sip:101@CARRIER", ""},
		{"contact at another host", "sip:101@ATTACKER", ""},
		{"contact is a host name", "sip:101@carrier.example:5060", ""},
		{"record-route at the carrier", "", "Record-Route: <sip:CARRIER;lr>\r\n"},
		{"record-route at another host", "", "Record-Route: <sip:ATTACKER;lr>\r\n"},
		// A transport in the Contact changes how a request leaves, never
		// where (sip/transport_route.go): still refused, over TCP too.
		{"contact at the carrier over tcp", "sip:101@CARRIER;transport=tcp", ""},
		{"contact at another host over tcp", "sip:101@ATTACKER;transport=tcp", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newCallEnv(t)
			ca := e.carrier.addr().String()
			at := e.attacker.addr().String()
			contact := strings.ReplaceAll(strings.ReplaceAll(tc.contact, "CARRIER", ca), "ATTACKER", at)
			extra := strings.ReplaceAll(strings.ReplaceAll(tc.extra, "CARRIER", ca), "ATTACKER", at)
			var tcpHits atomic.Int32 // connections to the carrier's or attacker's address over TCP
			if strings.Contains(contact, "transport=tcp") {
				for _, a := range []string{ca, at} {
					l, err := net.Listen("tcp", a)
					if err != nil {
						t.Fatalf("listen tcp %s: %v", a, err)
					}
					t.Cleanup(func() { l.Close() })
					go func() {
						for {
							c, err := l.Accept()
							if err != nil {
								return
							}
							tcpHits.Add(1)
							c.Close()
						}
					}()
				}
			}
			bindLyingPhone(t, e, contact, extra)
			d, _ := e.placeInbound("0240123456")
			if d != nil {
				e.trunkSrc.send(e.addr, e.request(e.trunkSrc, "BYE", d, "0240123456", "", "", ""))
			}
			waitFor(t, "slots released", func() bool { return e.active.Site() == 0 && e.callsLeft() == 0 })
			if n := e.carrier.received("ACK") + e.carrier.received("BYE") + e.attacker.received("ACK") + e.attacker.received("BYE"); n != 0 {
				t.Errorf("%d ACK/BYE sent where the phone's answer pointed", n)
			}
			if n := tcpHits.Load(); n != 0 {
				t.Errorf("%d TCP connections opened where the phone's answer pointed", n)
			}
			if len(e.audit.find("egress.refused", ReasonDestinationRefused)) == 0 {
				t.Errorf("not audited: %+v", e.audit.entries)
			}
		})
	}
}

// An operator suspended from the console while on a call: the call ends
// at once (both legs hung up, call.ended audited with the reason), it does
// not run on until the operator hangs up.
func TestAttackCallOutlivesSuspension(t *testing.T) {
	e := newCallEnv(t)
	d, r := e.placeInbound("0240123456")
	if d == nil {
		t.Fatalf("inbound call not answered: %q", r)
	}
	if n := e.b.EndCallsOf("102", "operator_suspended"); n != 0 {
		t.Errorf("another user's suspension ended %d calls", n)
	}
	if n := e.b.EndCallsOf(testOperator, "operator_suspended"); n != 1 {
		t.Errorf("ended %d calls, want 1", n)
	}
	waitFor(t, "the call's teardown", func() bool { return e.callsLeft() == 0 && e.active.Site() == 0 })
	waitFor(t, "BYE on both legs", func() bool { return e.phone.received("BYE") == 1 && e.trunkSrc.received("BYE") == 1 })
	if len(e.audit.find("call.ended", "operator_suspended")) != 1 {
		t.Errorf("call.ended not audited with the suspension: %+v", e.audit.entries)
	}
}

// A hostile carrier answers with a Contact or a Record-Route naming
// another host (an inmate's phone, any address): Plateau's ACK and BYE
// of that leg follow the answer (RFC 3261 §12.1.2) unless checked. They
// keep going to the trunk; the attempt is audited.
func TestAttackCarrierAnswerRedirectsDialog(t *testing.T) {
	for _, tc := range []struct{ name, contact, extra string }{
		{"contact at another host", "sip:x@ATTACKER", ""},
		{"contact is a host name", "sip:x@sbc.example:5060", ""},
		{"record-route at another host", "", "Record-Route: <sip:ATTACKER;lr>\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			att := newUDPAgent(t, "127.0.0.3", true)
			t.Cleanup(att.close)
			at := att.addr().String()
			liar := lyingPhone(t, netip.MustParseAddrPort("127.0.0.1:4002"), strings.ReplaceAll(tc.contact, "ATTACKER", at), strings.ReplaceAll(tc.extra, "ATTACKER", at))
			e := newCallEnv(t, func(o *CallOptions) { o.Trunks[0].Address = liar.LocalAddr().String() })
			id, _ := clickToCall(t, e) // srtp_test.go
			e.b.Hangup(id, testOperator)
			waitFor(t, "teardown", func() bool { return e.callsLeft() == 0 && e.active.Site() == 0 })
			time.Sleep(200 * time.Millisecond) // a BYE sent to the attacker arrives at once
			if n := att.received("ACK") + att.received("BYE"); n != 0 {
				t.Errorf("%d ACK/BYE sent where the carrier's answer pointed", n)
			}
			if len(e.audit.find("egress.refused", ReasonDestinationRefused)) == 0 {
				t.Errorf("not audited: %+v", e.audit.entries)
			}
		})
	}
}

// A trunk's INVITE whose Contact or Record-Route names a host that is not
// the trunk's is refused before an operator is rung: Plateau's BYE of
// that dialog would go there.
func TestAttackInboundInviteDialogTarget(t *testing.T) {
	e := newCallEnv(t)
	at := e.attacker.addr().String()
	for _, extra := range []string{
		"Record-Route: <sip:" + at + ";lr>\r\n",
	} {
		d := &inboundDialog{callID: fmt.Sprintf("in-%d@carrier", time.Now().UnixNano()), fromTag: "c1"}
		e.trunkSrc.send(e.addr, e.inviteMsg(e.trunkSrc, d, "0240123456", extra))
		if r := e.trunkSrc.final("INVITE", 5*time.Second); statusOf(r) != "403" || !strings.Contains(r, "CONTACT_NOT_ALLOWED") {
			t.Errorf("INVITE with %q answered %q, want 403 CONTACT_NOT_ALLOWED", extra, r)
		}
	}
	// A Contact elsewhere: the request builder writes the sender's own, so
	// build this one by hand.
	d := &inboundDialog{callID: fmt.Sprintf("in-%d@carrier", time.Now().UnixNano()), fromTag: "c2"}
	msg := strings.Replace(e.inviteMsg(e.trunkSrc, d, "0240123456", ""), "Contact: <sip:0240123456@"+e.trunkSrc.addr().String()+">", "Contact: <sip:0240123456@"+at+">", 1)
	e.trunkSrc.send(e.addr, msg)
	if r := e.trunkSrc.final("INVITE", 5*time.Second); statusOf(r) != "403" || !strings.Contains(r, "CONTACT_NOT_ALLOWED") {
		t.Errorf("INVITE with a Contact at another host answered %q, want 403 CONTACT_NOT_ALLOWED", r)
	}
	if n := len(e.phone.invitesReceived()); n != 0 {
		t.Errorf("the operator was rung %d times", n)
	}
	// The trunk's own Contact still connects.
	if d, r := e.placeInbound("0240123456"); d == nil {
		t.Fatalf("a normal inbound call answered %q", r)
	}
}

// `plateau user suspend` runs in another process: the server's sweep
// ends the suspended operator's call on its next pass (called directly
// here rather than waiting for the ticker).
func TestAttackCallOutlivesCLISuspension(t *testing.T) {
	e := newCallEnv(t)
	d, r := e.placeInbound("0240123456")
	if d == nil {
		t.Fatalf("inbound call not answered: %q", r)
	}
	if n := e.b.endInactiveUsers(context.Background()); n != 0 {
		t.Fatalf("the sweep ended %d calls of an active operator", n)
	}
	users := e.users
	u := users[testOperator]
	u.Active = false
	users[testOperator] = u
	if n := e.b.endInactiveUsers(context.Background()); n != 1 {
		t.Errorf("the sweep ended %d calls, want 1", n)
	}
	waitFor(t, "the call's teardown", func() bool { return e.callsLeft() == 0 && e.active.Site() == 0 })
	if len(e.audit.find("call.ended", "user_suspended")) != 1 {
		t.Errorf("call.ended not audited with the suspension: %+v", e.audit.entries)
	}
}

// rawCapture records the requests it receives and refuses INVITEs (486).
type rawCapture struct {
	conn *net.UDPConn
	mu   sync.Mutex
	msgs []string
}

func newRawCapture(t *testing.T, ip string) *rawCapture {
	t.Helper()
	c := &rawCapture{}
	c.conn = serveRawUDP(t, ip, func(_ netip.AddrPort, msg string, reply func(string)) {
		if strings.HasPrefix(msg, "SIP/2.0") {
			return
		}
		c.mu.Lock()
		c.msgs = append(c.msgs, msg)
		c.mu.Unlock()
		if strings.HasPrefix(msg, "INVITE ") {
			reply(replyTo(msg, "486 Busy Here", "busy", "", ""))
		}
	})
	return c
}

func (c *rawCapture) invites() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.msgs {
		if strings.HasPrefix(m, "INVITE ") {
			out = append(out, m)
		}
	}
	return out
}

// With a wide sip.phone_networks, an operator can register a Contact at
// another phone of the workshop (not the REGISTER's own source). Plateau
// may ring it (it is the operator's binding, inside the phone networks),
// but never with auto-answer: a click-to-call would otherwise pick up
// someone else's phone and put the operator's call on it.
func TestAttackAutoAnswerOnlyToTheRegisteringDevice(t *testing.T) {
	e := newCallEnvSetup(t, envSetup{server: func(o *psip.Options) {
		o.PhoneNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	}})
	other := newRawCapture(t, "127.0.0.4")
	oa := other.conn.LocalAddr().(*net.UDPAddr).AddrPort()
	if err := e.s.ApplyBindingsForTest(testOperator, []psip.Binding{{Extension: testOperator, Contact: fmt.Sprintf("sip:%s@%s", testOperator, oa),
		Source: e.phone.addr().String(), Transport: "udp", ExpiresAt: time.Now().Add(2 * time.Hour)}}, nil); err != nil {
		t.Fatal(err)
	}
	outcome := make(chan Outcome, 1)
	if _, err := e.b.ClickToCall(context.Background(), ClickToCallRequest{Operator: testOperator, Number: testApproved, Source: "web"},
		func(o Outcome) { outcome <- o }); err == nil {
		select {
		case <-outcome:
		case <-time.After(10 * time.Second):
			t.Fatal("no outcome")
		}
	}
	waitFor(t, "slots released", func() bool { return e.active.Site() == 0 && e.callsLeft() == 0 })
	inv := other.invites()
	if len(inv) == 0 {
		t.Fatal("the binding was not rung at all (the test proves nothing)")
	}
	for _, m := range inv {
		if strings.Contains(strings.ToLower(m), "answer-after") || strings.Contains(strings.ToLower(m), "autoanswer") {
			t.Errorf("auto-answer sent to a phone that did not register the binding:\n%s", m)
		}
	}
	// The registering device itself still gets auto-answer.
	e.s.ApplyBindingsForTest(testOperator, nil, []psip.Binding{{Extension: testOperator, Contact: fmt.Sprintf("sip:%s@%s", testOperator, oa)}})
	if _, o := clickToCall(t, e); !o.Answered {
		t.Fatalf("own phone: %+v", o)
	}
}

// The operator's phone answers with c=0.0.0.0 (hold, allowed), then a
// laptop on another host sends RTP to the operator's port of the relay,
// hoping to be latched as the operator's media peer and receive the
// caller's audio.
func TestAttackHoldAddressThenLatchFromAnotherHost(t *testing.T) {
	e := newCallEnv(t)
	pa := lyingPhone(t, netip.MustParseAddrPort("0.0.0.0:4000"), "", "").LocalAddr().(*net.UDPAddr).AddrPort()
	if err := e.s.ApplyBindingsForTest(testOperator, []psip.Binding{{Extension: testOperator, Contact: fmt.Sprintf("sip:%s@%s", testOperator, pa),
		Source: pa.String(), Transport: "udp", ExpiresAt: time.Now().Add(2 * time.Hour)}}, nil); err != nil {
		t.Fatal(err)
	}
	d, r := e.placeInbound("0240123456")
	if d == nil {
		t.Fatalf("inbound call not answered: %q", r)
	}
	relay := e.relayOf(t) // srtp_test.go
	laptop := newRTPSink(t, "127.0.0.3")
	opPort := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: relay.LocalPort(media.LegOperator)}
	for seq := uint16(1); seq < 20; seq++ {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SequenceNumber: seq, Timestamp: uint32(seq) * 160, SSRC: 0x4321}, Payload: make([]byte, 160)}
		b, _ := p.Marshal()
		laptop.conn.WriteToUDP(b, opPort)
		time.Sleep(5 * time.Millisecond)
	}
	if sendOutsideAudio(t, e, laptop, 1500*time.Millisecond) {
		t.Error("a host that is not the phone was latched as the operator's media peer and hears the caller")
	}
	e.trunkSrc.send(e.addr, e.request(e.trunkSrc, "BYE", d, "0240123456", "", "", ""))
	waitFor(t, "teardown", func() bool { return e.callsLeft() == 0 })
}
