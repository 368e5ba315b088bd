package e2e

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"plateau/config"
)

// SIP authentication as an attacker on the workshop LAN tries it: accounts
// without a SIP secret, extension enumeration, brute force around the ban,
// and the real source of requests behind a trusted proxy. Each test failed
// on main at 12849c6.

// digestWithHA1 is a qop=auth response computed from an HA1 directly: what
// an attacker sends for an account whose stored HA1 they guess (the empty
// HA1 of an account without a SIP secret used to be taken as all zeros).
func digestWithHA1(alg, ha1, method, uri, nonce string, nc int, cnonce string) string {
	var h func() hash.Hash = md5.New
	if strings.EqualFold(alg, "SHA-256") {
		h = sha256.New
	}
	H := func(s string) string {
		x := h()
		x.Write([]byte(s))
		return hex.EncodeToString(x.Sum(nil))
	}
	return H(fmt.Sprintf("%s:%s:%08x:%s:auth:%s", ha1, nonce, nc, cnonce, H(method+":"+uri)))
}

func zeroHA1(alg string) string {
	if strings.EqualFold(alg, "SHA-256") {
		return strings.Repeat("0", 64)
	}
	return strings.Repeat("0", 32)
}

// credentialsHA1 is an Authorization (or Proxy-Authorization) line for
// user answering challenge ch with ha1.
func credentialsHA1(hdr string, ch challenge, user, ha1, method, uri string, nc int) string {
	cnonce := randHex(4)
	resp := digestWithHA1(ch["algorithm"], ha1, method, uri, ch["nonce"], nc, cnonce)
	return fmt.Sprintf(`%s: Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s, qop=auth, nc=%08x, cnonce="%s"`,
		hdr, user, ch["realm"], ch["nonce"], uri, resp, ch["algorithm"], nc, cnonce)
}

// newClientAt is newClient on a chosen loopback address (127.0.0.0/8 is
// all local on Linux), so a test can play several hosts.
func newClientAt(t *testing.T, p *plateau, ip, ext, pass string) *sipClient {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatalf("listen %s: %v", ip, err)
	}
	t.Cleanup(func() { conn.Close() })
	srv, _ := net.ResolveUDPAddr("udp", p.sipAddr())
	return &sipClient{t: t, conn: conn, server: srv, ext: ext, pass: pass, callID: randHex(8) + "@e2e"}
}

// registerHA1 challenges, then answers with a digest from ha1.
func registerHA1(t *testing.T, c *sipClient, ha1 string) *response {
	t.Helper()
	c.ch = nil
	r := c.request("REGISTER", "", "Contact: <sip:"+c.ext+"@"+c.local()+">")
	if r == nil || r.status != 401 {
		t.Fatalf("%s: first REGISTER = %v, want 401", c.ext, r)
	}
	ch := c.ch
	c.ch = nil // build must not add its own Authorization
	uri := "sip:" + c.server.String()
	return c.do(c.build("REGISTER", "Contact: <sip:"+c.ext+"@"+c.local()+">",
		credentialsHA1("Authorization", ch, c.ext, ha1, "REGISTER", uri, 1)), 8*time.Second)
}

// addUser runs `plateau user add` (no --sip-password: no SIP secret).
func addUser(t *testing.T, p *plateau, role, ext string) {
	t.Helper()
	if out, err := p.plateauCmd("user", "add", "--role", role, "--name", role+ext, "--web-password", "web-pass-"+ext+"-long", ext); err != nil {
		t.Fatalf("user add %s: %v\n%s", ext, err, out)
	}
}

// Admin and security accounts have no SIP secret: with a digest computed
// from an all-zero HA1 they could REGISTER and listen to or barge into any
// call (*1101, *3101). They must get the challenge again, like anyone with
// a wrong password, and the call must go on untouched.
func TestAuthNoSIPSecretCannotUseSIP(t *testing.T) {
	carrier := newGoCarrier(t, "")
	p := startCallServer(t, callOpts{trunkPorts: []int{carrier.port}}) // 301, 302: security, no SIP secret
	addUser(t, p, "admin", "900")
	ua := newRawUA(t, p, "127.0.0.1")
	r, d := placeCall(t, ua, approved)
	if d == nil {
		t.Fatalf("operator call: %v, want 200", r)
	}

	for _, ext := range []string{"900", "301"} {
		c := newClient(t, p, ext, "")
		if r := registerHA1(t, c, zeroHA1("MD5")); r == nil || r.status != 401 {
			t.Errorf("REGISTER as %s with a zero-HA1 digest: %v, want 401", ext, r)
		}
		if r := registerHA1(t, c, ""); r == nil || r.status != 401 {
			t.Errorf("REGISTER as %s with an empty-HA1 digest: %v, want 401", ext, r)
		}
		for _, dial := range []string{"*1" + opExt, "*3" + opExt} {
			mon := newRawUA(t, p, "127.0.0.1")
			callID, tag := randHex(8)+"@e2e", randHex(4)
			r := mon.invite(mon.newInvite(ext, dial, 1, callID, tag))
			if r == nil || r.status != 407 {
				t.Fatalf("%s dials %s: %v, want 407", ext, dial, r)
			}
			ch := parseChallenge(r.get("Proxy-Authenticate"))
			tx := mon.newInvite(ext, dial, 2, callID, tag)
			r = mon.invite(tx, credentialsHA1("Proxy-Authorization", ch, ext, zeroHA1(ch["algorithm"]), "INVITE", tx.uri, 1))
			if r == nil || r.status != 407 {
				t.Errorf("%s dials %s with a zero-HA1 digest: %v, want 407 (refused as a wrong password)", ext, dial, r)
			}
		}
		auditHas(t, p, "sip.auth_failed", ext, "BAD_CREDENTIALS")
	}
	if strings.Contains(auditLines(t, p, "monitor.start"), opExt) {
		t.Errorf("a monitor session started on %s's call", opExt)
	}
	if got := carrier.inviteURIs(); len(got) != 1 {
		t.Errorf("carrier INVITEs %v, want only the operator's call", got)
	}
	if r := d.request("BYE", "", ""); r == nil || r.status != 200 {
		t.Errorf("BYE: %v", r)
	}
}

// The enumeration probe: an existing extension and an unknown one give the
// same answer, and a probe never uses up the nonce it was made with (the
// probe's own login on the same nonce and nonce count would otherwise tell
// whether the probed extension exists).
func TestAuthEnumerationProbe(t *testing.T) {
	p := startPlateau(t, serverOpts{users: []user{{"101", "demo101"}, {"102", "demo102"}}})
	addUser(t, p, "admin", "900")

	shape := func(r *response) string {
		if r == nil {
			return "no answer"
		}
		var names []string
		for _, h := range r.headers {
			names = append(names, h[0])
		}
		var chals []string
		for _, v := range r.all("WWW-Authenticate") {
			chals = append(chals, parseChallenge(v).shape())
		}
		return fmt.Sprintf("%d %s %v %v", r.status, r.reason, names, chals)
	}
	probes := []struct{ ext, ha1 string }{
		{"102", zeroHA1("MD5")},  // an operator (wrong secret)
		{"900", zeroHA1("MD5")},  // an admin without a SIP secret
		{"4242", zeroHA1("MD5")}, // nobody
		{"4243", ""},             // nobody, empty HA1
	}
	var first string
	for _, pr := range probes {
		c := newClient(t, p, pr.ext, "")
		got := shape(registerHA1(t, c, pr.ha1))
		if first == "" {
			first = got
		}
		if got != first || !strings.HasPrefix(got, "401 ") {
			t.Errorf("probe of %s: %s\nfirst probe: %s", pr.ext, got, first)
		}
	}

	// The nonce-state probe: the attacker (101, a real operator) takes a
	// challenge, probes an extension with it (nc=1), then logs in with the
	// same nonce and nc=1.
	for _, pr := range probes {
		own := newClient(t, p, "101", "demo101")
		if r := own.request("REGISTER", "", "Contact: <sip:101@"+own.local()+">"); r == nil || r.status != 401 {
			t.Fatalf("challenge: %v", r)
		}
		ch := own.ch
		probe := newClient(t, p, pr.ext, "")
		uri := "sip:" + probe.server.String()
		if r := probe.do(probe.build("REGISTER", "Contact: <sip:"+pr.ext+"@"+probe.local()+">",
			credentialsHA1("Authorization", ch, pr.ext, pr.ha1, "REGISTER", uri, 1)), 8*time.Second); r == nil || r.status != 401 {
			t.Fatalf("probe of %s on the attacker's nonce: %v, want 401", pr.ext, r)
		}
		own.ch, own.nc = ch, 0
		if r := own.request("REGISTER", "", "Contact: <sip:101@"+own.local()+">"); r == nil || r.status != 200 {
			t.Errorf("login on the nonce and nc a probe of %s used: %v, want 200 (the probe changed nonce state)", pr.ext, r)
		}
	}
}

// Brute force around the ban: guesses at 102, a successful login as
// oneself (101) from the same address, more guesses — and guesses at 103
// spread over several addresses. Both end in bans.
func TestAuthBanSpreadAndReset(t *testing.T) {
	p := startPlateau(t, serverOpts{users: []user{{"101", "demo101"}, {"102", "demo102"}, {"103", "demo103"}, {"104", "demo104"}}, maxFailures: 3})
	fail := func(c *sipClient) {
		t.Helper()
		c.ch = nil
		if r := c.register("Contact: <sip:" + c.ext + "@" + c.local() + ">"); r == nil || r.status != 401 {
			t.Fatalf("guess as %s from %s: %v, want 401", c.ext, c.local(), r)
		}
	}

	t.Run("a success as oneself does not reset the count", func(t *testing.T) {
		const ip = "127.0.0.21"
		guess := newClientAt(t, p, ip, "102", "guess")
		fail(guess)
		fail(guess)
		own := newClientAt(t, p, ip, "101", "demo101")
		if r := own.register("Contact: <sip:101@" + own.local() + ">"); r == nil || r.status != 200 {
			t.Fatalf("own login: %v", r)
		}
		fail(guess) // the third failure from this address: banned
		probe := newClientAt(t, p, ip, "104", "demo104")
		if r := probe.do(probe.build("OPTIONS"), 3*time.Second); r != nil {
			t.Fatalf("after 3 failures around a success, OPTIONS from %s: %v, want no answer (banned)", ip, r)
		}
		auditHas(t, p, "sip.ban", ip, `"kind":"source"`)
	})

	t.Run("guesses spread over addresses ban the account", func(t *testing.T) {
		for _, ip := range []string{"127.0.0.31", "127.0.0.32", "127.0.0.33"} {
			fail(newClientAt(t, p, ip, "103", "guess"))
		}
		right := newClientAt(t, p, "127.0.0.34", "103", "demo103")
		if r := right.register("Contact: <sip:103@" + right.local() + ">"); r == nil || r.status != 401 {
			t.Fatalf("banned account with the right password: %v, want 401 (refused like a wrong password)", r)
		}
		// The address itself is not banned: another account registers.
		other := newClientAt(t, p, "127.0.0.34", "104", "demo104")
		if r := other.register("Contact: <sip:104@" + other.local() + ">"); r == nil || r.status != 200 {
			t.Fatalf("another account from the same address: %v, want 200", r)
		}
		auditHas(t, p, "sip.ban", "103", `"kind":"account"`)
		if got := p.metric("plateau_sip_account_bans_total"); got < 2 {
			t.Errorf("plateau_sip_account_bans_total = %v, want 2 (102 and 103)", got)
		}
	})
}

// proxied adds, below the request's own Via (the proxy's, as the client
// sends from the proxy's address), the phone's Via as a proxy records it.
func proxied(msg, phone string) string {
	host, port, _ := strings.Cut(phone, ":")
	first := strings.Index(msg, "\r\nVia: ")
	end := strings.Index(msg[first+2:], "\r\n") + first + 2
	return msg[:end] + fmt.Sprintf("\r\nVia: SIP/2.0/UDP 192.168.1.50:5060;branch=z9hG4bK%s;rport=%s;received=%s", randHex(6), port, host) + msg[end:]
}

// Behind a trusted proxy, phones are told apart by the address the proxy
// recorded: one phone guessing passwords is banned alone, the proxy and the
// other phones behind it are not. The same Vias from any other address
// are the sender's own claims and change nothing.
func TestAuthTrustedProxyBans(t *testing.T) {
	const proxyIP = "127.0.0.5"
	p := startPlateau(t, serverOpts{users: []user{{"101", "demo101"}, {"102", "demo102"}}, maxFailures: 3,
		sipYAML: "  trusted_proxies: [\"" + proxyIP + "/32\"]\n"})
	// One socket plays the proxy; each request carries the phone's Via.
	bad := newClientAt(t, p, proxyIP, "102", "guess")
	send := func(c *sipClient, phone string, wait time.Duration) *response {
		t.Helper()
		r := c.do(proxied(c.build("REGISTER", "Contact: <sip:"+c.ext+"@"+phone+">"), phone), wait)
		if r != nil && r.status == 401 {
			c.ch, c.nc = parseChallenge(r.get("WWW-Authenticate")), 0
		}
		return r
	}
	if r := send(bad, "127.0.0.6:5062", 8*time.Second); r == nil || r.status != 401 {
		t.Fatalf("challenge through the proxy: %v", r)
	}
	for i := 0; i < 3; i++ {
		if r := send(bad, "127.0.0.6:5062", 8*time.Second); r == nil || r.status != 401 {
			t.Fatalf("guess %d through the proxy: %v", i+1, r)
		}
	}
	if r := send(bad, "127.0.0.6:5062", 3*time.Second); r != nil {
		t.Fatalf("the guessing phone behind the proxy is still answered: %v", r)
	}
	auditHas(t, p, "sip.ban", "127.0.0.6", `"kind":"source"`)
	good := newClientAt(t, p, proxyIP, "101", "demo101")
	if r := send(good, "127.0.0.8:5062", 8*time.Second); r == nil || r.status != 401 {
		t.Fatalf("another phone behind the proxy, challenge: %v (the proxy was banned)", r)
	}
	if r := send(good, "127.0.0.8:5062", 8*time.Second); r == nil || r.status != 200 {
		t.Fatalf("another phone behind the proxy: %v, want 200", r)
	}
	// The proxy's own requests (one Via) are answered.
	if r := good.do(good.build("OPTIONS"), 8*time.Second); r == nil || r.status != 200 {
		t.Fatalf("the proxy's own OPTIONS: %v, want 200 (the proxy was banned)", r)
	}
	// An untrusted host forging the same Via is counted on its own address.
	forger := newClientAt(t, p, "127.0.0.9", "102", "guess")
	for i := 0; i < 4; i++ {
		send(forger, "127.0.0.8:5062", 3*time.Second)
	}
	auditHas(t, p, "sip.ban", "127.0.0.9", `"kind":"source"`)
	if r := send(good, "127.0.0.8:5062", 8*time.Second); r == nil || r.status != 200 {
		t.Fatalf("the phone whose address was forged: %v, want 200", r)
	}
}

// An operator behind a trusted proxy places a call: the SDP carries the
// phone's address, not the proxy's, and the call is not refused
// MEDIA_ADDRESS_MISMATCH. The same INVITE from an untrusted host is.
func TestAuthTrustedProxyMediaAddress(t *testing.T) {
	const proxyIP, phoneIP = "127.0.0.5", "127.0.0.6"
	carrier := newGoCarrier(t, "")
	p := startCallServer(t, callOpts{trunkPorts: []int{carrier.port}, sipYAML: "  trusted_proxies: [\"" + proxyIP + "\"]\n"})
	try := func(from string) (*response, *opDialog) {
		t.Helper()
		ua := newRawUA(t, p, from)
		callID, tag := randHex(8)+"@e2e", randHex(4)
		phoneVia := fmt.Sprintf("SIP/2.0/UDP 192.168.1.50:5060;branch=z9hG4bK%s;rport=5062;received=%s", randHex(6), phoneIP)
		invite := func(cseq int, auth string) *response {
			tx := ua.newInvite(opExt, approved, cseq, callID, tag)
			msg := proxiedInvite(ua, tx, phoneVia, sdpAt(phoneIP, 40000), auth)
			r := ua.do(msg, 10*time.Second)
			if r != nil && r.status >= 300 {
				ua.conn.WriteToUDP([]byte(ackFor(ua, tx, phoneVia, r)), ua.server)
			}
			return r
		}
		r := invite(1, "")
		if r == nil || r.status != 407 {
			return r, nil
		}
		uri := ua.newInvite(opExt, approved, 2, callID, tag).uri
		r = invite(2, authorization(r, opExt, opPass, uri))
		if r == nil || r.status != 200 {
			return r, nil
		}
		d := &opDialog{ua: ua, callID: callID, tag: tag, uri: uri, to: r.get("To"), cseq: 2}
		d.send("ACK", 2, "z9hG4bK"+randHex(6), "", "")
		return r, d
	}
	r, d := try(proxyIP)
	if d == nil {
		t.Fatalf("call through the trusted proxy with c=%s: %v, want 200", phoneIP, r)
	}
	if r := d.request("BYE", "", ""); r == nil || r.status != 200 {
		t.Errorf("BYE: %v", r)
	}
	r, d = try("127.0.0.7")
	if d != nil {
		d.request("BYE", "", "")
	}
	if !reasonIs(r, 403, "MEDIA_ADDRESS_MISMATCH") {
		t.Fatalf("the same INVITE from an untrusted host: %v, want 403 MEDIA_ADDRESS_MISMATCH", r)
	}
}

// proxiedInvite is an operator INVITE as a proxy forwards it: the proxy's
// Via on top, the phone's below; From in Plateau's domain as a phone
// writes it.
func proxiedInvite(u *rawUA, tx inviteTx, phoneVia, sdp, auth string) string {
	local := u.conn.LocalAddr().(*net.UDPAddr)
	var b strings.Builder
	fmt.Fprintf(&b, "INVITE %s SIP/2.0\r\n", tx.uri)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;branch=%s;rport\r\nVia: %s\r\n", local, tx.branch, phoneVia)
	fmt.Fprintf(&b, "From: <sip:%s@%s>;tag=%s\r\nTo: <%s>\r\n", tx.from, u.server.IP, tx.fromTag, tx.uri)
	fmt.Fprintf(&b, "Call-ID: %s\r\nCSeq: %d INVITE\r\nMax-Forwards: 69\r\n", tx.callID, tx.cseq)
	fmt.Fprintf(&b, "Contact: <sip:%s@%s>\r\n", tx.from, local)
	if auth != "" {
		b.WriteString(auth + "\r\n")
	}
	fmt.Fprintf(&b, "Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", len(sdp), sdp)
	return b.String()
}

func ackFor(u *rawUA, tx inviteTx, phoneVia string, r *response) string {
	local := u.conn.LocalAddr().(*net.UDPAddr)
	var a strings.Builder
	fmt.Fprintf(&a, "ACK %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s;rport\r\nVia: %s\r\n", tx.uri, local, tx.branch, phoneVia)
	fmt.Fprintf(&a, "From: <sip:%s@%s>;tag=%s\r\nTo: %s\r\n", tx.from, u.server.IP, tx.fromTag, r.get("To"))
	fmt.Fprintf(&a, "Call-ID: %s\r\nCSeq: %d ACK\r\nMax-Forwards: 69\r\nContent-Length: 0\r\n\r\n", tx.callID, tx.cseq)
	return a.String()
}

// shippedDigestAlgorithms reads sip.digest_algorithms from the shipped
// configs/plateau.yaml, as a YAML flow list for the test server's config.
func shippedDigestAlgorithms(t *testing.T) string {
	t.Helper()
	cfg, err := config.Load(filepath.Join(repoRoot, "configs", "plateau.yaml"))
	if err != nil {
		t.Fatalf("configs/plateau.yaml: %v", err)
	}
	return "[" + strings.Join(cfg.SIP.DigestAlgorithms, ", ") + "]"
}

// baresip registers with the digest settings Plateau ships, not with a
// harness override: the shipped config must work with it.
func TestBaresipShippedDigestSettings(t *testing.T) {
	need(t, "baresip")
	algs := shippedDigestAlgorithms(t)
	t.Logf("shipped digest_algorithms: %s", algs)
	p := startPlateau(t, serverOpts{users: []user{{"101", "demo101"}}, algorithms: algs})
	testBaresip(t, p, "101", "demo101")
}

// The digest's uri must name the Request-URI (shipped default
// digest_uri_check: request_uri): a response computed for another number,
// another server or only the server's address (SIPp's default) is refused
// like a wrong password, even with the right password.
func TestAuthDigestURIMustBeRequestURI(t *testing.T) {
	p := startPlateau(t, serverOpts{users: []user{{opExt, opPass}}, uriCheck: "request_uri"})
	c := newClient(t, p, opExt, opPass)
	contact := "Contact: <sip:" + opExt + "@" + c.local() + ">"
	if r := c.request("REGISTER", "", contact); r == nil || r.status != 401 {
		t.Fatalf("first REGISTER: %v", r)
	}
	ch := c.ch
	c.ch = nil
	for _, uri := range []string{"sip:127.0.0.1:1", "sip:plateau.example"} {
		resp := digestResponse("MD5", opExt, ch["realm"], opPass, "REGISTER", uri, ch["nonce"], 1, "cn")
		auth := fmt.Sprintf(`Authorization: Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=MD5, qop=auth, nc=00000001, cnonce="cn"`,
			opExt, ch["realm"], ch["nonce"], uri, resp)
		if r := c.do(c.build("REGISTER", contact, auth), 8*time.Second); r == nil || r.status != 401 {
			t.Errorf("REGISTER with the right password for uri %s: %v, want 401", uri, r)
		}
	}
	c.ch, c.nc = ch, 0 // the same nonce and nc=1: the refusals left it unused
	if r := c.request("REGISTER", "", contact); r == nil || r.status != 200 {
		t.Fatalf("REGISTER with uri = Request-URI: %v, want 200", r)
	}

	ua := newRawUA(t, p, "127.0.0.1")
	for _, uri := range []string{"sip:" + unapproved + "@" + p.sipAddr(), "sip:" + p.sipAddr()} {
		callID, tag := randHex(8)+"@e2e", randHex(4)
		r := ua.invite(ua.newInvite(opExt, approved, 1, callID, tag))
		if r == nil || r.status != 407 {
			t.Fatalf("INVITE: %v, want 407", r)
		}
		tx := ua.newInvite(opExt, approved, 2, callID, tag)
		if r := ua.invite(tx, authorization(r, opExt, opPass, uri)); r == nil || r.status != 407 {
			t.Errorf("INVITE %s with the right password for uri %s: %v, want 407", tx.uri, uri, r)
		}
	}
	auditHas(t, p, "sip.auth_failed", opExt, "INVITE", "BAD_CREDENTIALS")
	// The right uri passes authentication (then the policy answers: no
	// trunk, no allowlist here, so anything but a challenge).
	callID, tag := randHex(8)+"@e2e", randHex(4)
	r := ua.invite(ua.newInvite(opExt, approved, 1, callID, tag))
	tx := ua.newInvite(opExt, approved, 2, callID, tag)
	if r = ua.invite(tx, authorization(r, opExt, opPass, tx.uri)); r == nil || r.status == 407 {
		t.Errorf("INVITE with uri = Request-URI: %v, want past authentication", r)
	}
}
