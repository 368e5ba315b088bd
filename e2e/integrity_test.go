package e2e

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// Signalling integrity (issue 11): the egress gate, REFER and in-dialog
// matching, tried the way an inmate with a scriptable phone on the LAN
// would. Each test fails on the code before the call pipeline.

const transferTarget = "+33240120183"

// The registrar refuses a Contact at the trunk or at another host: Plateau
// would ring it later (inbound calls, click-to-call, monitoring) with no
// decision. An inbound call then finds no operator instead of bridging
// the carrier to itself.
func TestIntegrityRegistrarRefusesForeignContact(t *testing.T) {
	carrier := newGoCarrier(t, "")
	p := startCallServer(t, callOpts{trunkPorts: []int{carrier.port}})
	cl := newClient(t, p, opExt, opPass)
	for _, contact := range []string{
		fmt.Sprintf("<sip:%s@127.0.0.1:%d>", opExt, carrier.port), // the trunk
		fmt.Sprintf("<sip:%s@127.0.0.5:5060>", opExt),             // another host
	} {
		r := cl.register("Contact: "+contact, "Expires: 3600")
		if !reasonIs(r, 403, "CONTACT_NOT_ALLOWED") {
			t.Errorf("REGISTER with Contact %s answered %v, want 403 CONTACT_NOT_ALLOWED", contact, r)
		}
	}
	auditHas(t, p, "sip.register", "CONTACT_NOT_ALLOWED")
	if got := p.registered(); got[opExt] != "" && got[opExt] != "-" {
		t.Fatalf("a foreign Contact was bound: %v", got)
	}
	// A carrier call now finds nobody to ring: no INVITE reaches the
	// carrier (on the old code it was rung as the operator's phone).
	in := newRawUA(t, p, "127.0.0.2")
	r := in.invite(in.newInvite(approved, opExt, 1, randHex(8)+"@carrier", randHex(4)))
	if r == nil || r.status < 400 {
		t.Errorf("inbound call answered %v, want a refusal", r)
	}
	time.Sleep(500 * time.Millisecond) // an INVITE Plateau would send goes out at once
	if got := carrier.inviteURIs(); len(got) != 0 {
		t.Errorf("the carrier was sent INVITEs %v", got)
	}
	// The phone's own address is still accepted.
	if r := cl.register(fmt.Sprintf("Contact: <sip:%s@%s>", opExt, cl.local()), "Expires: 3600"); r == nil || r.status != 200 {
		t.Errorf("REGISTER of the phone's own address answered %v", r)
	}
}

// referFrom sends a REFER in the operator's dialog d and returns the answer.
func referFrom(d *opDialog, target string, wait time.Duration) *response {
	local := d.ua.conn.LocalAddr().(*net.UDPAddr)
	d.cseq++
	var b strings.Builder
	fmt.Fprintf(&b, "REFER %s SIP/2.0\r\n", d.uri)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\n", local, randHex(6))
	fmt.Fprintf(&b, "From: <sip:%s@%s>;tag=%s\r\nTo: %s\r\n", opExt, local.IP, d.tag, d.to)
	fmt.Fprintf(&b, "Call-ID: %s\r\nCSeq: %d REFER\r\nMax-Forwards: 70\r\n", d.callID, d.cseq)
	fmt.Fprintf(&b, "Contact: <sip:%s@%s>\r\nRefer-To: <sip:%s@127.0.0.1>\r\nContent-Length: 0\r\n\r\n", opExt, local, target)
	return d.ua.do(b.String(), wait)
}

// A REFER while the outside party is still ringing used to hang up a nil
// leg and stop the process. It is refused with a reason, nothing is
// dialled, and Plateau goes on serving.
func TestIntegrityReferBeforeAnswer(t *testing.T) {
	carrier := newGoCarrier(t, "")
	carrier.mu.Lock()
	carrier.ringOnly = approved // rings, never answers
	carrier.mu.Unlock()
	p := startCallServer(t, callOpts{trunkPorts: []int{carrier.port}})
	approve(t, p, transferTarget)
	ua := newRawUA(t, p, "127.0.0.1")
	callID, tag := randHex(8)+"@e2e", randHex(4)
	r := ua.invite(ua.newInvite(opExt, approved, 1, callID, tag))
	if r == nil || r.status != 407 {
		t.Fatalf("first INVITE answered %v, want 407", r)
	}
	// The authenticated INVITE, sent without waiting for its answer.
	tx := ua.newInvite(opExt, approved, 2, callID, tag)
	local := ua.conn.LocalAddr().(*net.UDPAddr)
	sdp := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n",
		local.IP, local.IP, local.Port+2)
	invite := fmt.Sprintf("INVITE %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s;rport\r\nFrom: <sip:%s@%s>;tag=%s\r\nTo: <%s>\r\n"+
		"Call-ID: %s\r\nCSeq: 2 INVITE\r\nMax-Forwards: 70\r\nContact: <sip:%s@%s>\r\n%s\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		tx.uri, local, tx.branch, opExt, local.IP, tag, tx.uri, callID, opExt, local, authorization(r, opExt, opPass, tx.uri), len(sdp), sdp)
	ua.conn.WriteToUDP([]byte(invite), ua.server)
	// Wait for the 180 relayed from the ringing carrier: its To tag makes
	// the REFER look like an in-dialog request of an early dialog.
	var to string
	buf := make([]byte, 65535)
	for deadline := time.Now().Add(15 * time.Second); to == "" && time.Now().Before(deadline); {
		ua.conn.SetReadDeadline(time.Now().Add(time.Second))
		n, _, err := ua.conn.ReadFromUDP(buf)
		if err != nil {
			continue
		}
		if res, err := parseResponse(buf[:n]); err == nil && res.status == 180 {
			to = res.get("To")
		}
	}
	if to == "" {
		t.Fatal("no 180 relayed from the ringing carrier")
	}
	d := &opDialog{ua: ua, callID: callID, tag: tag, uri: tx.uri, to: to, cseq: 2}
	rr := referFrom(d, transferTarget, 10*time.Second)
	if rr == nil || rr.status == 202 || (rr.status != 403 && rr.status != 481) || rr.get("Reason") == "" {
		t.Errorf("REFER before answer answered %v, want 403 or 481 with a Reason", rr)
	}
	time.Sleep(time.Second)
	for _, u := range carrier.inviteURIs() {
		if strings.Contains(u, transferTarget) {
			t.Errorf("the transfer target was dialled before the call was answered: %v", carrier.inviteURIs())
		}
	}
	// Still serving: OPTIONS answered, metrics up, and the call can be
	// cancelled cleanly.
	cl := newClient(t, p, opExt, opPass)
	if r := cl.do(cl.build("OPTIONS"), 5*time.Second); r == nil || r.status != 200 {
		t.Fatalf("OPTIONS after the REFER answered %v: the process is not serving", r)
	}
	cancel := fmt.Sprintf("CANCEL %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s;rport\r\nFrom: <sip:%s@%s>;tag=%s\r\nTo: <%s>\r\n"+
		"Call-ID: %s\r\nCSeq: 2 CANCEL\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", tx.uri, local, tx.branch, opExt, local.IP, tag, tx.uri, callID)
	ua.do(cancel, 5*time.Second)
	waitMetric(t, p, mActive, 0)
}

// quiet waits until the carrier has received no RTP for 600 ms (the
// operator's test phone sends none, so only Plateau's prompts flow).
func quiet(t *testing.T, c *goCarrier) int64 {
	t.Helper()
	last := c.rtpIn.Load()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		time.Sleep(600 * time.Millisecond)
		n := c.rtpIn.Load()
		if n == last {
			return n
		}
		last = n
	}
	t.Fatal("RTP toward the carrier never stopped")
	return 0
}

// Several REFERs in one call: one transfer at a time (491 while one is
// pending), the per-operator limit of 1 holds (a second call is refused
// throughout, one is allowed after), every replaced party is hung up, and
// every new outside party hears the recording notice.
func TestIntegritySeveralRefers(t *testing.T) {
	carrier := newGoCarrier(t, "")
	p := startCallServer(t, callOpts{trunkPorts: []int{carrier.port}})
	approve(t, p, transferTarget)
	ua := newRawUA(t, p, "127.0.0.1")
	r, d := placeCall(t, ua, approved)
	if d == nil {
		t.Fatalf("call answered %v", r)
	}
	accepted := 0
	for i, target := range []string{transferTarget, approved, transferTarget, approved} {
		before := quiet(t, carrier)
		rr := referFrom(d, target, 10*time.Second)
		if rr == nil || rr.status != 202 {
			t.Fatalf("REFER %d answered %v", i, rr)
		}
		accepted++
		// A second REFER at once: refused while the first is pending,
		// or accepted once it is done; never two transfers at a time.
		if again := referFrom(d, target, 10*time.Second); again != nil && again.status == 202 {
			accepted++
		} else if again == nil || again.status != 491 {
			t.Errorf("REFER while one is pending answered %v, want 491", again)
		}
		eventually(t, "the transfers done", func() (bool, string) {
			n := strings.Count(auditLines(t, p, "call.transferred"), "\n")
			return n >= accepted, fmt.Sprintf("%d transferred, %d accepted", n, accepted)
		})
		// The limit holds: the operator's slot is one call's.
		other := newRawUA(t, p, "127.0.0.1")
		if r2, d2 := placeCall(t, other, approved); d2 != nil || !reasonIs(r2, 403, "LIMIT_REACHED") {
			t.Errorf("a second call during the transferred call answered %v, want 403 LIMIT_REACHED", r2)
		}
		// The new outside party hears the notice: Plateau sends it RTP.
		eventually(t, "the notice played to the new party", func() (bool, string) {
			n := carrier.rtpIn.Load() - before
			return n >= 50, fmt.Sprintf("%d RTP packets since the transfer", n)
		})
	}
	// Every replaced party got a BYE: the first call and all transfer legs
	// but the current one.
	eventually(t, "replaced legs hung up", func() (bool, string) {
		return carrier.count("BYE") == accepted, fmt.Sprintf("BYE %d, transfers %d", carrier.count("BYE"), accepted)
	})
	if n := len(carrier.inviteURIs()); n != accepted+1 {
		t.Errorf("carrier INVITEs %d, want %d", n, accepted+1)
	}
	if v := p.metricOf(mActive); v != 1 {
		t.Errorf("calls active %v, want 1", v)
	}
	if r := d.request("BYE", "", ""); r == nil || r.status != 200 {
		t.Fatalf("BYE answered %v", r)
	}
	waitMetric(t, p, mActive, 0)
	eventually(t, "the last leg hung up", func() (bool, string) {
		return carrier.count("BYE") == accepted+1, fmt.Sprint(carrier.count("BYE"))
	})
	if v := p.metricOf("plateau_call_legs_leaked_total"); v > 0 {
		t.Errorf("legs leaked: %v", v)
	}
	// The slot is free again.
	if r, d := placeCall(t, newRawUA(t, p, "127.0.0.1"), approved); d == nil {
		t.Errorf("a call after the transferred one answered %v", r)
	} else {
		d.request("BYE", "", "")
	}
	auditVerify(t, p)
}

// A BYE or a re-INVITE with the call's Call-ID and tags from another host
// is refused (481) and audited: the call goes on and no audio moves to
// that host.
func TestIntegrityInDialogFromAnotherHost(t *testing.T) {
	carrier := newGoCarrier(t, "")
	p := startCallServer(t, callOpts{trunkPorts: []int{carrier.port}})
	ua := newRawUA(t, p, "127.0.0.1")
	r, d := placeCall(t, ua, approved)
	if d == nil {
		t.Fatalf("call answered %v", r)
	}
	attacker := newRawUA(t, p, "127.0.0.3")
	media, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 3)})
	if err != nil {
		t.Fatal(err)
	}
	defer media.Close()
	forged := &opDialog{ua: attacker, callID: d.callID, tag: d.tag, uri: d.uri, to: d.to, cseq: d.cseq + 10}
	mp := media.LocalAddr().(*net.UDPAddr).Port
	if r := forged.request("INVITE", "application/sdp", sdpAt("127.0.0.3", mp)); r == nil || r.status != 481 {
		t.Errorf("re-INVITE from another host answered %v, want 481", r)
	}
	if r := forged.request("BYE", "", ""); r == nil || r.status != 481 {
		t.Errorf("BYE from another host answered %v, want 481", r)
	}
	// No media moved: the carrier's audio keeps going to the phone only.
	media.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 2048)
	if n, _, err := media.ReadFromUDP(buf); err == nil {
		t.Errorf("the other host received %d bytes of the call's media", n)
	}
	if v := p.metricOf(mActive); v != 1 {
		t.Fatalf("calls active %v after the forged requests, want 1", v)
	}
	auditHas(t, p, "call.hijack_attempt", "NOT_DIALOG_PEER")
	if v := p.metricOf(`plateau_sip_in_dialog_rejected_total{reason="source"}`); v < 2 {
		t.Errorf("rejected in-dialog requests %v, want 2", v)
	}
	// The phone itself still can.
	if r := d.request("BYE", "", ""); r == nil || r.status != 200 {
		t.Errorf("the phone's BYE answered %v", r)
	}
	waitMetric(t, p, mActive, 0)
}
