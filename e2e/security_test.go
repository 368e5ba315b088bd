package e2e

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// No bypass: every way an operator (or the carrier) could try to reach the
// outside world without a policy decision or a recording is tried here and
// must fail. Each attempt checks what reached the carrier (a silent
// carrier that must hear nothing, or a Go carrier that counts INVITEs) and
// that the refusal is in the audit log with its reason.
//
// A REFER to an unapproved number is TestCallsReferRefused (refer_test.go):
// 403 NOT_ALLOWLISTED, audited, and the carrier sees only the first call.

// goCarrier is a carrier UAS in Go that counts the INVITE transactions it
// receives: it answers them (200 with PCMA SDP) or redirects them (302).
type goCarrier struct {
	t        *testing.T
	conn     *net.UDPConn
	media    *net.UDPConn
	port     int
	redirect string // a Contact for 302; empty: answer

	rtpIn    atomic.Int64 // RTP packets received from Plateau (any leg)
	ringOnly string       // a number answered 180 only (never 200); under mu

	mu      sync.Mutex
	invites []string          // Request-URIs, one per new INVITE transaction
	finals  map[string][]byte // branch -> final response (retransmissions)
	methods map[string]int
}

func newGoCarrier(t *testing.T, redirect string) *goCarrier {
	t.Helper()
	c := &goCarrier{t: t, redirect: redirect, finals: map[string][]byte{}, methods: map[string]int{}}
	for range 20 {
		port := freePort(t)
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			continue
		}
		c.conn, c.port = conn, port
		break
	}
	if c.conn == nil {
		t.Fatal("no port for the carrier")
	}
	m, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	c.media = m
	t.Cleanup(func() { c.conn.Close(); c.media.Close() })
	go func() { // drain the relay's RTP
		buf := make([]byte, 2048)
		for {
			if _, _, err := m.ReadFromUDP(buf); err != nil {
				return
			}
			c.rtpIn.Add(1)
		}
	}()
	go c.serve()
	return c
}

// sipMsg is a parsed request or response, enough for a UAS.
type sipMsg struct {
	first   string
	headers [][2]string
	body    string
}

func parseSIP(b []byte) sipMsg {
	head, body, _ := strings.Cut(string(b), "\r\n\r\n")
	lines := strings.Split(head, "\r\n")
	m := sipMsg{first: lines[0], body: body}
	for _, l := range lines[1:] {
		if n, v, ok := strings.Cut(l, ":"); ok {
			m.headers = append(m.headers, [2]string{strings.TrimSpace(n), strings.TrimSpace(v)})
		}
	}
	return m
}

func (m sipMsg) get(name string) string {
	for _, h := range m.headers {
		if strings.EqualFold(h[0], name) {
			return h[1]
		}
	}
	return ""
}

func (m sipMsg) all(name string) []string {
	var out []string
	for _, h := range m.headers {
		if strings.EqualFold(h[0], name) {
			out = append(out, h[1])
		}
	}
	return out
}

var branchRE = regexp.MustCompile(`branch=([^;, ]+)`)

// reply builds a response to req copying its Via, From, To (tagged),
// Call-ID and CSeq.
func reply(req sipMsg, status string, tag string, extra []string, body string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %s\r\n", status)
	for _, v := range req.all("Via") {
		fmt.Fprintf(&b, "Via: %s\r\n", v)
	}
	to := req.get("To")
	if !strings.Contains(to, "tag=") && tag != "" {
		to += ";tag=" + tag
	}
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %s\r\n", req.get("From"), to, req.get("Call-ID"), req.get("CSeq"))
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	return []byte(b.String())
}

func (c *goCarrier) serve() {
	buf := make([]byte, 65535)
	local := c.conn.LocalAddr().(*net.UDPAddr)
	for {
		n, from, err := c.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		m := parseSIP(buf[:n])
		f := strings.Fields(m.first)
		if len(f) < 3 || f[0] == "SIP/2.0" {
			continue // responses (to nothing we sent) are ignored
		}
		method := f[0]
		branch := ""
		if s := branchRE.FindStringSubmatch(m.get("Via")); s != nil {
			branch = s[1]
		}
		c.mu.Lock()
		c.methods[method]++
		if method == "INVITE" {
			if final, ok := c.finals[branch]; ok { // a retransmission
				c.mu.Unlock()
				c.conn.WriteToUDP(final, from)
				continue
			}
			c.invites = append(c.invites, f[1])
		}
		c.mu.Unlock()
		switch method {
		case "ACK":
		case "INVITE":
			tag := randHex(4)
			contact := fmt.Sprintf("Contact: <sip:carrier@%s>", local)
			var final []byte
			c.mu.Lock()
			ringOnly := c.ringOnly
			c.mu.Unlock()
			if ringOnly != "" && strings.Contains(f[1], ringOnly) {
				c.conn.WriteToUDP(reply(m, "180 Ringing", tag, []string{contact}, ""), from)
				c.mu.Lock()
				c.finals[branch] = reply(m, "487 Request Terminated", tag, nil, "") // sent on CANCEL
				c.mu.Unlock()
				continue
			}
			if c.redirect != "" {
				final = reply(m, "302 Moved Temporarily", tag, []string{"Contact: <" + c.redirect + ">"}, "")
			} else {
				c.conn.WriteToUDP(reply(m, "180 Ringing", tag, []string{contact}, ""), from)
				mp := c.media.LocalAddr().(*net.UDPAddr).Port
				sdp := fmt.Sprintf("v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n", mp)
				final = reply(m, "200 OK", tag, []string{contact, "Content-Type: application/sdp"}, sdp)
			}
			c.mu.Lock()
			c.finals[branch] = final
			c.mu.Unlock()
			c.conn.WriteToUDP(final, from)
			if c.redirect == "" {
				c.startRTP(m.body)
			}
		default:
			c.conn.WriteToUDP(reply(m, "200 OK", randHex(4), nil, ""), from)
			if method == "CANCEL" {
				c.mu.Lock()
				final := c.finals[branch]
				c.mu.Unlock()
				if final != nil && strings.HasPrefix(string(final), "SIP/2.0 487") {
					c.conn.WriteToUDP(final, from)
				}
			}
		}
	}
}

var (
	sdpPortRE = regexp.MustCompile(`m=audio (\d+)`)
	sdpAddrRE = regexp.MustCompile(`c=IN IP4 ([0-9.]+)`)
)

// startRTP sends 20 ms PCMA packets to the offer's address from the
// carrier's media socket until the carrier is closed (10 minutes at most),
// so the relay and the recorder have audio from the outside leg.
func (c *goCarrier) startRTP(offer string) {
	pm, am := sdpPortRE.FindStringSubmatch(offer), sdpAddrRE.FindStringSubmatch(offer)
	if pm == nil || am == nil {
		return
	}
	port, _ := strconv.Atoi(pm[1])
	dst := &net.UDPAddr{IP: net.ParseIP(am[1]), Port: port}
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		pkt := make([]byte, 12+160)
		pkt[0], pkt[1] = 0x80, 8
		ssrc := uint32(time.Now().UnixNano())
		pkt[8], pkt[9], pkt[10], pkt[11] = byte(ssrc>>24), byte(ssrc>>16), byte(ssrc>>8), byte(ssrc)
		for i := 0; i < 30000; i++ {
			<-tick.C
			seq, ts := uint16(i), uint32(160*i)
			pkt[2], pkt[3] = byte(seq>>8), byte(seq)
			pkt[4], pkt[5], pkt[6], pkt[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
			for j := 12; j < len(pkt); j++ {
				pkt[j] = 0xd5 // A-law silence
			}
			if _, err := c.media.WriteToUDP(pkt, dst); err != nil && errors.Is(err, net.ErrClosed) {
				return
			}
		}
	}()
}

// inviteURIs returns the Request-URIs of the INVITEs received so far.
func (c *goCarrier) inviteURIs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.invites...)
}

func (c *goCarrier) count(method string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.methods[method]
}

// opDialog is an operator call placed by a rawUA, answered and ACKed.
type opDialog struct {
	ua     *rawUA
	callID string
	tag    string
	uri    string
	to     string // To with the remote tag
	cseq   int
	from   string // the operator's extension; opExt when empty
}

// placeCall authenticates an INVITE to number as the operator and returns
// the final response and, on 200, the confirmed dialog.
func placeCall(t *testing.T, ua *rawUA, number string, extra ...string) (*response, *opDialog) {
	t.Helper()
	callID, tag := randHex(8)+"@e2e", randHex(4)
	tx := ua.newInvite(opExt, number, 1, callID, tag)
	r := ua.invite(tx, extra...)
	if r == nil || r.status != 407 {
		return r, nil
	}
	tx2 := ua.newInvite(opExt, number, 2, callID, tag)
	r = ua.invite(tx2, append(extra, authorization(r, opExt, opPass, tx2.uri))...)
	if r == nil || r.status != 200 {
		return r, nil
	}
	d := &opDialog{ua: ua, callID: callID, tag: tag, uri: tx2.uri, to: r.get("To"), cseq: 2}
	d.send("ACK", 2, "z9hG4bK"+randHex(6), "", "")
	return r, d
}

// send writes one in-dialog request without waiting.
func (d *opDialog) send(method string, cseq int, branch, ctype, body string) string {
	local := d.ua.conn.LocalAddr().(*net.UDPAddr)
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", method, d.uri)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;branch=%s;rport\r\n", local, branch)
	from := d.from
	if from == "" {
		from = opExt
	}
	fmt.Fprintf(&b, "From: <sip:%s@%s>;tag=%s\r\nTo: %s\r\n", from, local.IP, d.tag, d.to)
	fmt.Fprintf(&b, "Call-ID: %s\r\nCSeq: %d %s\r\nMax-Forwards: 70\r\n", d.callID, cseq, method)
	fmt.Fprintf(&b, "Contact: <sip:%s@%s>\r\n", from, local)
	if ctype != "" {
		fmt.Fprintf(&b, "Content-Type: %s\r\n", ctype)
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	msg := b.String()
	if method == "ACK" {
		d.ua.conn.WriteToUDP([]byte(msg), d.ua.server)
	}
	return msg
}

// request sends an in-dialog request and returns its final response; a
// failed re-INVITE is ACKed.
func (d *opDialog) request(method, ctype, body string) *response {
	d.ua.t.Helper()
	d.cseq++
	branch := "z9hG4bK" + randHex(6)
	r := d.ua.do(d.send(method, d.cseq, branch, ctype, body), 10*time.Second)
	if method == "INVITE" && r != nil {
		if r.status >= 300 {
			d.send("ACK", d.cseq, branch, "", "")
		} else if r.status == 200 {
			d.send("ACK", d.cseq, "z9hG4bK"+randHex(6), "", "")
		}
	}
	return r
}

func sdpAt(ip string, port int) string {
	return fmt.Sprintf("v=0\r\no=- 1 2 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n", ip, ip, port)
}

// reasonIs checks a refusal's status and Reason text.
func reasonIs(r *response, status int, code string) bool {
	return r != nil && r.status == status && strings.Contains(r.get("Reason"), `text="`+code+`"`)
}

// auditHas fails unless an entry of kind mentions every word.
func auditHas(t *testing.T, p *plateau, kind string, words ...string) {
	t.Helper()
	var got string
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		got = auditLines(t, p, kind)
		for _, line := range strings.Split(got, "\n") {
			ok := true
			for _, w := range words {
				ok = ok && strings.Contains(line, w)
			}
			if ok {
				return
			}
		}
		if time.Now().After(deadline) {
			break
		}
	}
	t.Errorf("no %s audit entry with %q:\n%s", kind, words, got)
}

// Attempts refused before anything is dialled: the carrier hears nothing.
func TestSecurityRefusedBeforeTheTrunk(t *testing.T) {
	carrier, carrierPort := newSilentCarrier(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}})
	failures0 := p.metricOf("plateau_sip_auth_failures_total")

	t.Run("INVITE without credentials", func(t *testing.T) {
		ua := newRawUA(t, p, "127.0.0.1")
		r := ua.invite(ua.newInvite(opExt, approved, 1, randHex(8)+"@e2e", randHex(4)))
		if r == nil || r.status != 407 || r.get("Proxy-Authenticate") == "" {
			t.Fatalf("INVITE without credentials: %v, want 407 with a challenge", r)
		}
	})
	t.Run("INVITE with a wrong password", func(t *testing.T) {
		ua := newRawUA(t, p, "127.0.0.1")
		callID, tag := randHex(8)+"@e2e", randHex(4)
		r := ua.invite(ua.newInvite(opExt, approved, 1, callID, tag))
		tx := ua.newInvite(opExt, approved, 2, callID, tag)
		r = ua.invite(tx, authorization(r, opExt, "guess", tx.uri))
		if r == nil || r.status != 407 {
			t.Fatalf("wrong password: %v, want 407", r)
		}
		if v := p.metricOf("plateau_sip_auth_failures_total") - failures0; v != 1 {
			t.Errorf("auth failures grew by %v, want 1", v)
		}
		eventually(t, "the failure logged with its source", func() (bool, string) {
			logs := p.logs.String()
			return strings.Contains(logs, `msg="sip auth failed"`) && strings.Contains(logs, "method=INVITE user=101 source=127.0.0.1:"), "no log line"
		})
	})
	t.Run("spoofed From", func(t *testing.T) {
		ua := newRawUA(t, p, "127.0.0.1")
		callID, tag := randHex(8)+"@e2e", randHex(4)
		r := ua.invite(ua.newInvite("102", approved, 1, callID, tag))
		tx := ua.newInvite("102", approved, 2, callID, tag)
		r = ua.invite(tx, authorization(r, opExt, opPass, tx.uri))
		if !reasonIs(r, 403, "FROM_MISMATCH") {
			t.Fatalf("From 102 authenticated as 101: %v, want 403 FROM_MISMATCH", r)
		}
		auditHas(t, p, "policy.decision", "refused", "FROM_MISMATCH", opExt)
	})
	t.Run("Request-URI and Route at the carrier", func(t *testing.T) {
		// The operator aims the INVITE at the carrier's own address: a
		// B2BUA takes only the user part as the number.
		ua := newRawUA(t, p, "127.0.0.1")
		callID, tag := randHex(8)+"@e2e", randHex(4)
		target := fmt.Sprintf("sip:%s@127.0.0.1:%d", unapproved, carrierPort)
		route := fmt.Sprintf("Route: <sip:127.0.0.1:%d;lr>", carrierPort)
		tx := ua.newInvite(opExt, unapproved, 1, callID, tag)
		tx.uri = target
		r := ua.invite(tx, route)
		tx2 := ua.newInvite(opExt, unapproved, 2, callID, tag)
		tx2.uri = target
		r = ua.invite(tx2, route, authorization(r, opExt, opPass, tx2.uri))
		if !reasonIs(r, 403, "NOT_ALLOWLISTED") {
			t.Fatalf("INVITE %s: %v, want 403 NOT_ALLOWLISTED", target, r)
		}
		auditHas(t, p, "policy.decision", "refused", "NOT_ALLOWLISTED", unapproved)
	})
	t.Run("SDP pointing the media at another host", func(t *testing.T) {
		ua := newRawUA(t, p, "127.0.0.1")
		callID, tag := randHex(8)+"@e2e", randHex(4)
		r := ua.invite(ua.newInvite(opExt, approved, 1, callID, tag))
		tx := ua.newInvite(opExt, approved, 2, callID, tag)
		// rawUA's SDP says 127.0.0.1; a second c= line at session level
		// cannot be added, so send the whole INVITE by hand.
		r = ua.inviteSDP(tx, sdpAt("127.0.0.3", 40000), authorization(r, opExt, opPass, tx.uri))
		if !reasonIs(r, 403, "MEDIA_ADDRESS_MISMATCH") {
			t.Fatalf("INVITE with c=127.0.0.3 from 127.0.0.1: %v, want 403 MEDIA_ADDRESS_MISMATCH", r)
		}
		auditHas(t, p, "policy.decision", "refused", "MEDIA_ADDRESS_MISMATCH")
	})
	t.Run("feature codes", func(t *testing.T) {
		// An operator may not monitor; an unknown code is not a number.
		for _, c := range []struct {
			dial   string
			status int
			reason string
		}{{"*1101", 403, "ROLE_FORBIDDEN"}, {"*3" + unapproved[1:], 403, "ROLE_FORBIDDEN"}, {"*0" + unapproved[1:], 404, "UNKNOWN_FEATURE"}} {
			ua := newRawUA(t, p, "127.0.0.1")
			callID, tag := randHex(8)+"@e2e", randHex(4)
			r := ua.invite(ua.newInvite(opExt, c.dial, 1, callID, tag))
			tx := ua.newInvite(opExt, c.dial, 2, callID, tag)
			r = ua.invite(tx, authorization(r, opExt, opPass, tx.uri))
			if r == nil || r.status != c.status || (c.reason != "" && !reasonIs(r, c.status, c.reason)) {
				t.Errorf("dial %s: %v, want %d %s", c.dial, r, c.status, c.reason)
			}
		}
		auditHas(t, p, "monitor.refused", "refused", opExt)
		auditHas(t, p, "monitor.refused", "UNKNOWN_FEATURE", "*0"+unapproved[1:])
	})
	t.Run("inbound call from the trunk to an outside number", func(t *testing.T) {
		// From the carrier's source, no credentials, to an approved
		// number: an inbound call rings operators only, never the trunk.
		ua := newRawUA(t, p, "127.0.0.2")
		r := ua.invite(ua.newInvite(approved, approved, 1, randHex(8)+"@e2e", randHex(4)))
		if r == nil || r.status < 400 {
			t.Fatalf("inbound INVITE to %s: %v, want a refusal", approved, r)
		}
		auditHas(t, p, "policy.decision", "refused", approved)
	})
	carrier.heardNothing(t, 2*time.Second)
	if v := p.metricOf(mAnswer); v != 0 {
		t.Errorf("%s = %v, want 0", mAnswer, v)
	}
	if files := recordingFiles(t, p); len(files[".wav"]) != 0 {
		t.Errorf("refused attempts left recordings: %v", files[".wav"])
	}
	auditVerify(t, p)
}

// inviteSDP is rawUA.invite with a given SDP body.
func (u *rawUA) inviteSDP(tx inviteTx, sdp string, extra ...string) *response {
	u.t.Helper()
	local := u.conn.LocalAddr().(*net.UDPAddr)
	var b strings.Builder
	fmt.Fprintf(&b, "INVITE %s SIP/2.0\r\n", tx.uri)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;branch=%s;rport\r\n", local, tx.branch)
	fmt.Fprintf(&b, "From: <sip:%s@%s>;tag=%s\r\nTo: <%s>\r\n", tx.from, local.IP, tx.fromTag, tx.uri)
	fmt.Fprintf(&b, "Call-ID: %s\r\nCSeq: %d INVITE\r\nMax-Forwards: 70\r\n", tx.callID, tx.cseq)
	fmt.Fprintf(&b, "Contact: <sip:%s@%s>\r\n", tx.from, local)
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	fmt.Fprintf(&b, "Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", len(sdp), sdp)
	r := u.do(b.String(), 10*time.Second)
	if r != nil && r.status >= 300 {
		var a strings.Builder
		fmt.Fprintf(&a, "ACK %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s;rport\r\n", tx.uri, local, tx.branch)
		fmt.Fprintf(&a, "From: <sip:%s@%s>;tag=%s\r\nTo: %s\r\n", tx.from, local.IP, tx.fromTag, r.get("To"))
		fmt.Fprintf(&a, "Call-ID: %s\r\nCSeq: %d ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", tx.callID, tx.cseq)
		u.conn.WriteToUDP([]byte(a.String()), u.server)
	}
	return r
}

// A carrier's 302 to an unapproved number is not followed: exactly one
// INVITE reaches the carrier, none reaches the redirect target.
func TestSecurityRedirectNotFollowed(t *testing.T) {
	target, targetPort := newSilentCarrier(t)
	carrier := newGoCarrier(t, fmt.Sprintf("sip:%s@127.0.0.1:%d", unapproved, targetPort))
	p := startCallServer(t, callOpts{trunkPorts: []int{carrier.port}})
	ua := newRawUA(t, p, "127.0.0.1")
	r, d := placeCall(t, ua, approved)
	if d != nil {
		d.request("BYE", "", "")
		t.Fatalf("a redirected call was answered: %v", r)
	}
	if r == nil || r.status < 400 {
		t.Fatalf("redirected call: %v, want a failure", r)
	}
	t.Logf("operator got %d %s after the carrier's 302", r.status, r.reason)
	if r.status >= 300 && r.status < 400 {
		t.Errorf("the 3xx was relayed to the operator (%v): the softphone could follow it", r)
	}
	target.heardNothing(t, 2*time.Second)
	if got := carrier.inviteURIs(); len(got) != 1 || !strings.Contains(got[0], approved) {
		t.Errorf("carrier INVITEs %v, want exactly one, to %s", got, approved)
	}
	auditHas(t, p, "policy.decision", "allowed", approved)
	if strings.Contains(auditLines(t, p, "policy.decision"), unapproved) {
		t.Errorf("the redirect target was decided on, as if it were being dialled")
	}
	waitMetric(t, p, mActive, 0)
	auditHas(t, p, "call.ended", approved)
}

// In a live call: a re-INVITE moving the operator's media elsewhere, SIP
// INFO digits and a second call. The carrier gets one INVITE, no more.
func TestSecurityInCall(t *testing.T) {
	carrier := newGoCarrier(t, "")
	p := startCallServer(t, callOpts{trunkPorts: []int{carrier.port}})
	ua := newRawUA(t, p, "127.0.0.1")
	r, d := placeCall(t, ua, approved)
	if d == nil {
		t.Fatalf("call to %s: %v, want 200", approved, r)
	}
	defer func() {
		if r := d.request("BYE", "", ""); r == nil || r.status != 200 {
			t.Errorf("BYE: %v", r)
		}
		waitMetric(t, p, mActive, 0)
		if got := carrier.inviteURIs(); len(got) != 1 {
			t.Errorf("carrier INVITEs %v, want exactly one (no re-INVITE, second call or transfer leaked)", got)
		}
		if carrier.count("BYE") != 1 {
			t.Errorf("carrier got %d BYE, want 1", carrier.count("BYE"))
		}
		auditVerify(t, p)
	}()

	t.Run("re-INVITE moving the media to another host", func(t *testing.T) {
		r := d.request("INVITE", "application/sdp", sdpAt("127.0.0.3", 40000))
		if !reasonIs(r, 488, "MEDIA_ADDRESS_MISMATCH") {
			t.Fatalf("re-INVITE with c=127.0.0.3: %v, want 488 MEDIA_ADDRESS_MISMATCH", r)
		}
		auditHas(t, p, "call.media_refused", "MEDIA_ADDRESS_MISMATCH", approved, opExt)
		// A legitimate change (hold on the phone's own address) still works.
		local := ua.conn.LocalAddr().(*net.UDPAddr)
		if r := d.request("INVITE", "application/sdp", sdpAt("127.0.0.1", local.Port+4)); r == nil || r.status != 200 {
			t.Errorf("re-INVITE on the phone's own address: %v, want 200", r)
		}
	})
	t.Run("DTMF sent as SIP INFO is audited", func(t *testing.T) {
		r := d.request("INFO", "application/dtmf-relay", "Signal=5\r\nDuration=160\r\n")
		if r == nil || r.status != 200 {
			t.Fatalf("INFO: %v, want 200", r)
		}
		auditHas(t, p, "call.dtmf", opExt, approved, "Signal=5")
	})
	t.Run("a second call while one is active", func(t *testing.T) {
		ua2 := newRawUA(t, p, "127.0.0.1")
		r, d2 := placeCall(t, ua2, approved)
		if d2 != nil {
			d2.request("BYE", "", "")
		}
		if !reasonIs(r, 403, "LIMIT_REACHED") {
			t.Fatalf("second call: %v, want 403 LIMIT_REACHED", r)
		}
		auditHas(t, p, "policy.decision", "refused", "LIMIT_REACHED", opExt)
	})
	t.Run("a second call to the carrier's host while one is active", func(t *testing.T) {
		ua2 := newRawUA(t, p, "127.0.0.1")
		callID, tag := randHex(8)+"@e2e", randHex(4)
		target := fmt.Sprintf("sip:%s@127.0.0.1:%d", approved, carrier.port)
		tx := ua2.newInvite(opExt, approved, 1, callID, tag)
		tx.uri = target
		r := ua2.invite(tx)
		tx2 := ua2.newInvite(opExt, approved, 2, callID, tag)
		tx2.uri = target
		r = ua2.invite(tx2, authorization(r, opExt, opPass, tx2.uri))
		if !reasonIs(r, 403, "LIMIT_REACHED") {
			t.Fatalf("second call to %s: %v, want 403 LIMIT_REACHED", target, r)
		}
	})
}

// The audit chain detects an altered, a removed and a reordered entry in
// the e2e server's own database (a copy per tampering, triggers dropped as
// an attacker with the file would).
func TestSecurityAuditTampering(t *testing.T) {
	sqlite := need(t, "sqlite3")
	carrier := newGoCarrier(t, "")
	p := startCallServer(t, callOpts{trunkPorts: []int{carrier.port}})
	// Some history: a refusal, an allowed call, its end.
	ua := newRawUA(t, p, "127.0.0.1")
	if r, _ := placeCall(t, ua, unapproved); !reasonIs(r, 403, "NOT_ALLOWLISTED") {
		t.Fatalf("call to %s: %v", unapproved, r)
	}
	r, d := placeCall(t, ua, approved)
	if d == nil {
		t.Fatalf("call to %s: %v", approved, r)
	}
	d.request("BYE", "", "")
	waitMetric(t, p, mActive, 0)
	auditVerify(t, p)

	dataDir := filepath.Join(filepath.Dir(p.cfg), "data")
	cfg, err := os.ReadFile(p.cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The refusal's seq, to alter an entry that matters.
	out, err := exec.Command(sqlite, filepath.Join(dataDir, "plateau.db"),
		"SELECT seq FROM audit_log WHERE reason='NOT_ALLOWLISTED' LIMIT 1; SELECT max(seq) FROM audit_log;").CombinedOutput()
	f := strings.Fields(string(out))
	if err != nil || len(f) != 2 {
		t.Fatalf("sqlite3: %v %s", err, out)
	}
	refusal, last := f[0], f[1]
	if n, _ := strconv.Atoi(last); n < 5 {
		t.Fatalf("only %d audit entries", n)
	}
	mid := refusal
	for _, c := range []struct {
		name, sql, want string
	}{
		{"altered", "UPDATE audit_log SET outcome='allowed', reason='' WHERE seq=" + refusal, "entry " + refusal},
		{"altered details", "UPDATE audit_log SET details=replace(details, '" + unapproved + "', '" + approved + "'), subject='" + approved + "' WHERE seq=" + refusal, "entry " + refusal},
		{"removed", "DELETE FROM audit_log WHERE seq=" + mid, "entry " + mid + ": entry " + mid + " is missing"},
		{"reordered", "UPDATE audit_log SET seq=-1 WHERE seq=2; UPDATE audit_log SET seq=2 WHERE seq=3; UPDATE audit_log SET seq=3 WHERE seq=-1", "entry 2"},
		{"rehashed without the chain", "UPDATE audit_log SET outcome='allowed', hash='" + strings.Repeat("0", 64) + "' WHERE seq=" + refusal, "entry " + refusal},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			copyDB := filepath.Join(dir, "data")
			os.MkdirAll(copyDB, 0o700)
			// .backup gives a consistent copy of a live WAL database.
			if out, err := exec.Command(sqlite, filepath.Join(dataDir, "plateau.db"), ".backup '"+filepath.Join(copyDB, "plateau.db")+"'").CombinedOutput(); err != nil {
				t.Fatalf("sqlite3 .backup: %v %s", err, out)
			}
			os.MkdirAll(filepath.Join(copyDB, "recordings"), 0o700)
			sql := "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete; " + c.sql + ";"
			if out, err := exec.Command(sqlite, filepath.Join(copyDB, "plateau.db"), sql).CombinedOutput(); err != nil {
				t.Fatalf("sqlite3 %s: %v %s", sql, err, out)
			}
			cfgCopy := filepath.Join(dir, "plateau.yaml")
			re := regexp.MustCompile(`(?m)^data_dir: .*$`)
			os.WriteFile(cfgCopy, re.ReplaceAll(cfg, []byte("data_dir: "+strconv.Quote(copyDB))), 0o600)
			out, err := exec.Command(plateauBin, "audit", "verify", "-c", cfgCopy).CombinedOutput()
			if err == nil || !strings.Contains(string(out), "audit chain broken at "+c.want) {
				t.Errorf("plateau audit verify after %s: err %v, output %q, want broken at %s", c.name, err, out, c.want)
			}
		})
	}
	auditVerify(t, p) // the live database is untouched
}

// Keys pressed in a call (RFC 4733 events in the RTP, as a softphone sends
// them to a carrier's second-dial service) are audited with the call.
func TestSecurityInCallKeysAudited(t *testing.T) {
	carrierPort := freePort(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}})
	carrier := startCarrier(t, carrierPort, "uas_answer.xml")
	op := startOperator(t, p, "uac_dtmf.xml", approved)
	op.mustSucceed(40 * time.Second)
	carrier.mustSucceed(15 * time.Second)
	waitMetric(t, p, mEnded("operator_hangup"), 1)
	got := auditLines(t, p, "call.dtmf")
	if !strings.Contains(got, `"operator_keys":"42"`) {
		t.Errorf("call.dtmf does not show the keys 4 then 2:\n%s", got)
	}
}
