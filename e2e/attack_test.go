package e2e

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// Attacks by an operator's own scriptable phone on where Plateau sends a
// call's later requests: an INVITE's Contact is the dialog's remote target
// and its Record-Route the route set (RFC 3261 §12.1.1), which Plateau's
// BYE and NOTIFY follow. Anything but the phone itself (or a trusted
// proxy) is refused before the call is placed.

// inviteWith sends an INVITE from ua as the operator with the given
// Contact line and extra header lines, answering the 407 challenge, and
// returns the final answer (failures ACKed).
func inviteWith(t *testing.T, ua *rawUA, number, contact string, extra ...string) *response {
	t.Helper()
	callID, tag := randHex(8)+"@e2e", randHex(4)
	local := ua.conn.LocalAddr().(*net.UDPAddr)
	send := func(cseq int, auth string) *response {
		uri := fmt.Sprintf("sip:%s@%s", number, ua.server)
		branch := "z9hG4bK" + randHex(6)
		sdp := sdpAt(local.IP.String(), local.Port+2)
		var b strings.Builder
		fmt.Fprintf(&b, "INVITE %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s;rport\r\n", uri, local, branch)
		fmt.Fprintf(&b, "From: <sip:%s@%s>;tag=%s\r\nTo: <%s>\r\n", opExt, local.IP, tag, uri)
		fmt.Fprintf(&b, "Call-ID: %s\r\nCSeq: %d INVITE\r\nMax-Forwards: 70\r\n%s\r\n", callID, cseq, contact)
		for _, h := range extra {
			b.WriteString(h + "\r\n")
		}
		if auth != "" {
			b.WriteString(auth + "\r\n")
		}
		fmt.Fprintf(&b, "Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", len(sdp), sdp)
		r := ua.do(b.String(), 10*time.Second)
		if r != nil {
			ack := "ACK"
			if r.status < 300 {
				branch = "z9hG4bK" + randHex(6)
			}
			var a strings.Builder
			fmt.Fprintf(&a, "%s %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s;rport\r\n", ack, uri, local, branch)
			fmt.Fprintf(&a, "From: <sip:%s@%s>;tag=%s\r\nTo: %s\r\n", opExt, local.IP, tag, r.get("To"))
			fmt.Fprintf(&a, "Call-ID: %s\r\nCSeq: %d ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", callID, cseq)
			ua.conn.WriteToUDP([]byte(a.String()), ua.server)
		}
		return r
	}
	r := send(1, "")
	if r == nil || r.status != 407 {
		return r
	}
	return send(2, authorization(r, opExt, opPass, fmt.Sprintf("sip:%s@%s", number, ua.server)))
}

func TestAttackOperatorInviteDialogTarget(t *testing.T) {
	carrier := newGoCarrier(t, "")
	p := startCallServer(t, callOpts{trunkPorts: []int{carrier.port}})
	ua := newRawUA(t, p, "127.0.0.1")
	local := ua.conn.LocalAddr().String()
	for _, tc := range []struct {
		name, contact string
		extra         []string
	}{
		{"contact at the carrier", fmt.Sprintf("Contact: <sip:%s@127.0.0.1:%d>", opExt, carrier.port), nil},
		{"contact at another host", fmt.Sprintf("Contact: <sip:%s@127.0.0.3:5060>", opExt), nil},
		{"contact is a host name", fmt.Sprintf("Contact: <sip:%s@phone.example:5060>", opExt), nil},
		{"contact at the unspecified address", fmt.Sprintf("Contact: <sip:%s@0.0.0.0:5060>", opExt), nil},
		{"two contacts", fmt.Sprintf("Contact: <sip:%s@%s>, <sip:%s@127.0.0.3>", opExt, local, opExt), nil},
		{"record-route at the carrier", fmt.Sprintf("Contact: <sip:%s@%s>", opExt, local), []string{fmt.Sprintf("Record-Route: <sip:127.0.0.1:%d;lr>", carrier.port)}},
	} {
		r := inviteWith(t, ua, approved, tc.contact, tc.extra...)
		if !reasonIs(r, 403, "CONTACT_NOT_ALLOWED") {
			t.Errorf("%s: INVITE answered %v, want 403 CONTACT_NOT_ALLOWED", tc.name, r)
		}
	}
	if got := carrier.inviteURIs(); len(got) != 0 {
		t.Errorf("the carrier was dialled %v for INVITEs with a foreign dialog target", got)
	}
	auditHas(t, p, "policy.decision", "CONTACT_NOT_ALLOWED")
	// The phone's own Contact still places the call.
	r, d := placeCall(t, ua, approved)
	if d == nil {
		t.Fatalf("a normal INVITE answered %v", r)
	}
	if r := d.request("BYE", "", ""); r == nil || r.status != 200 {
		t.Errorf("BYE answered %v", r)
	}
	waitMetric(t, p, mActive, 0)
}
