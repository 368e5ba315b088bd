package sip

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// responseWithHA1 is a qop=auth digest response computed from an HA1
// directly: what an attacker sends for an account whose HA1 they guess
// (all zeros was the stored value's stand-in for "no secret").
func responseWithHA1(alg, ha1, method, uri, nonce string, nc int, cnonce string) string {
	var h func() hash.Hash = md5.New
	if alg == "SHA-256" {
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
	if alg == "SHA-256" {
		return strings.Repeat("0", 64)
	}
	return strings.Repeat("0", 32)
}

// withHA1 replaces a request's Authorization with one computed from ha1.
func withHA1(t *testing.T, p *phone, ha1, uri string) *sip.Request {
	t.Helper()
	req := p.request("REGISTER")
	req.RemoveHeader("Authorization")
	p.nc++
	resp := responseWithHA1(p.ch.Algorithm, ha1, "REGISTER", uri, p.ch.Nonce, p.nc, "cn")
	req.AppendHeader(sip.NewHeader("Authorization", fmt.Sprintf(
		`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s, qop=auth, nc=%08x, cnonce="cn"`,
		p.ext, p.ch.Realm, p.ch.Nonce, uri, resp, p.ch.Algorithm, p.nc)))
	return req
}

// answerShape is a response without what differs by design (nonces, tags,
// branch): status, header names in order, each challenge minus its nonce.
func answerShape(r *sip.Response) string {
	if r == nil {
		return "no answer"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s|", r.StatusCode, r.Reason)
	for _, h := range r.Headers() {
		b.WriteString(h.Name() + ";")
	}
	for _, h := range r.GetHeaders("WWW-Authenticate") {
		c, err := digest.ParseChallenge(h.Value())
		if err != nil {
			return "bad challenge " + h.Value()
		}
		fmt.Fprintf(&b, "|%s qop=%v stale=%v realm=%s opaque=%q nonce-len=%d", c.Algorithm, c.QOP, c.Stale, c.Realm, c.Opaque, len(c.Nonce))
	}
	return b.String()
}

// Accounts without a SIP secret (security, admin, web-only) never log in
// over SIP, and nothing tells them from an unknown user: same answer, same
// audit entry, same counting.
func TestAuthSecretlessLikeUnknown(t *testing.T) {
	for _, alg := range []string{"MD5", "SHA-256"} {
		t.Run(alg, func(t *testing.T) {
			e := newRegEnv(t)
			e.s.bans.maxFailures = 1000 // this test compares answers, not bans
			users := e.s.users.(fakeUsers)
			users["900"] = Account{Extension: "900", Role: RoleAdmin, Active: true}
			users["301"] = Account{Extension: "301", Role: RoleSecurity, Active: true}
			cases := []struct{ ext, ha1 string }{
				{"900", zeroHA1(alg)},            // admin, the review's zero-HA1 login
				{"301", zeroHA1(alg)},            // security officer
				{"900", ""},                      // the empty HA1 itself
				{"4242", zeroHA1(alg)},           // unknown user
				{"4242", ""},                     // unknown user, empty HA1
				{"900", e.s.nonces.dummyMD5},     // even the process's dummy (it would have to leak)
				{"900", e.s.nonces.dummySHA256},  //
				{"4243", e.s.nonces.dummySHA256}, //
			}
			var shapes []string
			for i, c := range cases {
				p := newPhone(c.ext, "", fmt.Sprintf("192.0.2.%d:5060", 10+i))
				if r := e.send(p, p.request("REGISTER", "Contact: <sip:"+c.ext+"@192.0.2.1>"), alg); status(r) != 401 {
					t.Fatalf("%s: first REGISTER = %v", c.ext, r)
				}
				e.audit.kinds = nil
				r := e.send(p, withHA1(t, p, c.ha1, "sip:127.0.0.1:5060"), alg)
				if status(r) != 401 {
					t.Fatalf("%s with HA1 %q: %v, want 401", c.ext, c.ha1, r)
				}
				shapes = append(shapes, answerShape(r))
				if !slices.Equal(e.audit.kinds, []string{"sip.auth_failed:BAD_CREDENTIALS"}) {
					t.Errorf("%s: audit %v, want one sip.auth_failed", c.ext, e.audit.kinds)
				}
			}
			// A wrong password for a real operator looks the same too.
			p := newPhone("101", "wrong", "192.0.2.99:5060")
			r := e.register(p, alg, "Contact: <sip:101@192.0.2.99>")
			shapes = append(shapes, answerShape(r))
			for i, s := range shapes {
				if s != shapes[0] {
					t.Fatalf("answer %d differs:\n%s\nfirst:\n%s", i, s, shapes[0])
				}
			}
			if got := metricValue(e.s.metrics.authFailures); got != float64(len(shapes)) {
				t.Errorf("auth failures = %v, want %d (each counted)", got, len(shapes))
			}
		})
	}
}

// Failed checks (unknown user, wrong password, secretless account, wrong
// uri, banned account) never touch nonce state: the right user can still
// use the very nonce and nonce count they were tried with.
func TestAuthFailuresLeaveNonceState(t *testing.T) {
	clk := newClock()
	n := newNonceIssuer(tRealm, []string{"MD5"}, time.Minute, clk.now)
	nonce := n.issue()
	attempts := map[string]func() *credentials{
		"unknown user, zero HA1": func() *credentials {
			c := creds("MD5", tPass, nonce, 1)
			c.Username = "4242"
			c.Response = responseWithHA1("MD5", zeroHA1("MD5"), "REGISTER", tURI, nonce, 1, c.Cnonce)
			return c
		},
		"wrong password": func() *credentials { return creds("MD5", "guess", nonce, 1) },
		"right password, other uri": func() *credentials {
			c := creds("MD5", tPass, nonce, 1)
			c.URI = "sip:elsewhere.example"
			c.Response = digestResponse("MD5", tUser, tRealm, tPass, "REGISTER", c.URI, nonce, 1, c.Cnonce)
			return c
		},
	}
	for name, mk := range attempts {
		for _, sec := range []secrets{{}, tSecrets} {
			if err := n.verify(mk(), "REGISTER", tURI, sec); !errors.Is(err, errBadCredentials) {
				t.Fatalf("%s: %v, want errBadCredentials", name, err)
			}
		}
	}
	// The right password with empty secrets (secretless, or banned) fails too.
	if err := n.verify(creds("MD5", tPass, nonce, 1), "REGISTER", tURI, secrets{}); !errors.Is(err, errBadCredentials) {
		t.Fatalf("empty secrets: %v", err)
	}
	n.mu.Lock()
	used := len(n.cur) + len(n.old)
	n.mu.Unlock()
	if used != 0 {
		t.Fatalf("%d nonces marked used by failed checks", used)
	}
	if err := n.verify(creds("MD5", tPass, nonce, 1), "REGISTER", tURI, tSecrets); err != nil {
		t.Fatalf("the right user on the same nonce and nc after the failures: %v", err)
	}
}

// The digest's uri must be the Request-URI (RFC 3261 §22.4, compared as
// §19.1.4 says).
func TestSameURI(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"sip:127.0.0.1:5060", "sip:127.0.0.1:5060", true},
		{"sip:101@Plateau.Example", "sip:101@plateau.example", true},
		{"sip:%31%30%31@plateau.example", "sip:101@plateau.example", true},
		{"sip:alice@plateau.example", "sip:ALICE@plateau.example", false},
		{"sip:plateau.example", "sip:plateau.example:5060", false},
		{"sip:plateau.example", "sips:plateau.example", false},
		{"sip:plateau.example;transport=udp", "sip:plateau.example;transport=UDP", true},
		{"sip:plateau.example;transport=tcp", "sip:plateau.example", false},
		{"sip:plateau.example;user=phone", "sip:plateau.example", false},
		{"sip:plateau.example;lr", "sip:plateau.example", true},
		{"sip:plateau.example;foo=1", "sip:plateau.example;foo=2", false},
		{"sip:plateau.example;a=1;b=2", "sip:plateau.example;b=2;a=1", true},
		{"sip:plateau.example?subject=x", "sip:plateau.example", false},
		{"sip:127.0.0.1:5060", "sip:127.0.0.2:5060", false},
		{"sip:127.0.0.1:5061", "sip:127.0.0.1:5060", false},
		{"sip:0033240000000@127.0.0.1:5060", "sip:0033240000001@127.0.0.1:5060", false},
		{"tel:+33240000000", "tel:+33240000000", true},
		{"tel:+33240000000", "sip:+33240000000@127.0.0.1", false},
		{"", "sip:127.0.0.1", false},
		{"garbage", "sip:127.0.0.1", false},
		{"*", "sip:127.0.0.1", false},
	}
	for _, tt := range tests {
		if got := sameURI(tt.a, tt.b); got != tt.want {
			t.Errorf("sameURI(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := sameURI(tt.b, tt.a); got != tt.want {
			t.Errorf("sameURI(%q, %q) = %v, want %v (symmetric)", tt.b, tt.a, got, tt.want)
		}
	}
}

// The digest uri may leave out the Request-URI's parameters (sipgo's
// clients do), never change its user, host or port, nor add parameters.
func TestDigestURIMatches(t *testing.T) {
	tests := []struct {
		digest, ruri string
		want         bool
	}{
		{"sip:127.0.0.1:5060", "sip:127.0.0.1:5060;transport=tcp", true},
		{"sip:+33240123456@127.0.0.1:5060", "sip:+33240123456@127.0.0.1:5060;user=phone", true},
		{"sip:127.0.0.1:5060;transport=tcp", "sip:127.0.0.1:5060;transport=tcp", true},
		{"sip:127.0.0.1:5060;transport=tcp", "sip:127.0.0.1:5060", false},
		{"sip:127.0.0.1:5060;transport=udp", "sip:127.0.0.1:5060;transport=tcp", false},
		{"sip:+33240123457@127.0.0.1:5060", "sip:+33240123456@127.0.0.1:5060;user=phone", false},
		{"sip:127.0.0.1", "sip:127.0.0.1:5060;transport=tcp", false},
		{"sips:127.0.0.1:5060", "sip:127.0.0.1:5060;transport=tcp", false},
		{"tel:+33240123456", "tel:+33240123456;phone-context=x", false},
	}
	for _, tt := range tests {
		for _, server := range []bool{false, true} {
			if got := digestURIMatches(tt.digest, tt.ruri, server); got != tt.want {
				t.Errorf("digestURIMatches(%q, %q, server %v) = %v, want %v", tt.digest, tt.ruri, server, got, tt.want)
			}
		}
	}
}

// SIPp's digest uri (the server's address, no user) is refused by default
// and accepted with sip.digest_uri_check: server — for this server only.
func TestDigestURIServerForm(t *testing.T) {
	tests := []struct {
		digest, ruri string
		server       bool // accepted with serverURI; never without
	}{
		{"sip:127.0.0.1:5060", "sip:+33240123456@127.0.0.1:5060", true},
		{"sip:127.0.0.1:5060", "sip:*1101@127.0.0.1:5060;user=phone", true},
		{"sip:127.0.0.1", "sip:+33240123456@127.0.0.1:5060", false},
		{"sip:127.0.0.2:5060", "sip:+33240123456@127.0.0.1:5060", false},
		{"sip:127.0.0.1:5060;transport=tcp", "sip:+33240123456@127.0.0.1:5060", false},
		{"sip:+33240123457@127.0.0.1:5060", "sip:+33240123456@127.0.0.1:5060", false},
	}
	for _, tt := range tests {
		if digestURIMatches(tt.digest, tt.ruri, false) {
			t.Errorf("strict: %q accepted for %q", tt.digest, tt.ruri)
		}
		if got := digestURIMatches(tt.digest, tt.ruri, true); got != tt.server {
			t.Errorf("server form: digestURIMatches(%q, %q) = %v, want %v", tt.digest, tt.ruri, got, tt.server)
		}
	}
}

// A response computed for another uri is refused even with the right
// password, over the whole handler.
func TestAuthURIMustBeRequestURI(t *testing.T) {
	e := newRegEnv(t)
	p := newPhone("101", "demo101", "192.0.2.5:5060")
	if r := e.send(p, p.request("REGISTER", "Contact: <sip:101@192.0.2.5>"), "MD5"); status(r) != 401 {
		t.Fatalf("first REGISTER = %v", r)
	}
	ha1 := e.s.users.(fakeUsers)["101"].HA1MD5
	if r := e.send(p, withHA1(t, p, ha1, "sip:other.example"), "MD5"); status(r) != 401 {
		t.Fatalf("response for another uri = %v, want 401", r)
	}
	if r := e.send(p, withHA1(t, p, ha1, "sip:127.0.0.1:5060"), "MD5"); status(r) != 200 {
		t.Fatalf("the same credentials for the Request-URI = %v, want 200", r)
	}
}

// The review's ban bypass: guesses on 102, a login as oneself (101) from
// the same source, more guesses. The success takes back nothing of 102's.
func TestAuthBanNotResetBySuccess(t *testing.T) {
	e := newRegEnv(t) // max 3 failures
	const src = "192.0.2.66:5060"
	guess := newPhone("102", "guess", src)
	for i := 0; i < 2; i++ {
		if r := e.register(guess, "MD5", "Contact: <sip:102@192.0.2.66>"); status(r) != 401 {
			t.Fatalf("guess %d = %v", i, r)
		}
		guess.ch = nil
	}
	own := newPhone("101", "demo101", src)
	if r := e.register(own, "MD5", "Contact: <sip:101@192.0.2.66>"); status(r) != 200 {
		t.Fatalf("own login = %v", r)
	}
	if r := e.register(guess, "MD5", "Contact: <sip:102@192.0.2.66>"); status(r) != 401 {
		t.Fatalf("third guess = %v", r)
	}
	if got := metricValue(e.s.metrics.bans); got != 1 {
		t.Fatalf("source bans = %v, want 1", got)
	}
	if got := metricValue(e.s.metrics.accountBans); got != 1 {
		t.Fatalf("account bans = %v, want 1", got)
	}
	// 102 is refused with the right password from anywhere, answered as a
	// wrong password is, and its failures were audited by kind.
	right := newPhone("102", "demo102", "192.0.2.67:5060")
	if r := e.register(right, "MD5", "Contact: <sip:102@192.0.2.67>"); status(r) != 401 {
		t.Fatalf("banned account, right password = %v, want 401", r)
	}
	if !e.s.bans.accountBanned("102") || e.s.bans.accountBanned("101") {
		t.Fatal("wrong accounts banned")
	}
}

// Behind a trusted proxy each phone is counted on its own address: one
// phone guessing passwords does not ban the proxy or the other phones, and
// the proxy's own requests are never banned.
func TestAuthBanBehindTrustedProxy(t *testing.T) {
	e := newRegEnv(t) // max 3 failures
	e.s.trusted = NewTrustedProxies([]netip.Prefix{netip.MustParsePrefix("10.0.0.5/32")})
	behind := func(ext, pass string) *phone { // a phone's requests arrive from the proxy
		return newPhone(ext, pass, "10.0.0.5:5060")
	}
	proxied := func(p *phone, phoneAddr string) *sip.Request {
		req := p.request("REGISTER", "Contact: <sip:"+p.ext+"@"+phoneAddr+">")
		via := req.Via()
		// The proxy's Via on top of the phone's.
		req.PrependHeader(&sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "10.0.0.5", Port: 5060,
			Params: sip.HeaderParams{{K: "branch", V: "z9hG4bK-proxy" + via.Params.GetOr("branch", "")}}})
		via.Params.Add("received", strings.Split(phoneAddr, ":")[0])
		return req
	}
	bad := behind("102", "guess")
	// A challenge, 3 failures (the third bans), then silence.
	for i := 0; i < 5; i++ {
		r := e.send(bad, proxied(bad, "192.0.2.70:5060"), "MD5")
		if i == 4 {
			if r != nil {
				t.Fatalf("banned phone behind the proxy answered %v", r)
			}
			break
		}
		if status(r) != 401 {
			t.Fatalf("attempt %d = %v", i, r)
		}
	}
	if !e.s.bans.sourceBanned(netip.MustParseAddr("192.0.2.70")) || e.s.bans.sourceBanned(netip.MustParseAddr("10.0.0.5")) {
		t.Fatal("ban not on the phone's address, or on the proxy's")
	}
	// Another phone behind the same proxy registers.
	good := behind("101", "demo101")
	if r := e.send(good, proxied(good, "192.0.2.71:5060"), "MD5"); status(r) != 401 {
		t.Fatalf("other phone, challenge = %v", r)
	}
	if r := e.send(good, proxied(good, "192.0.2.71:5060"), "MD5"); status(r) != 200 {
		t.Fatalf("other phone behind the proxy = %v, want 200", r)
	}
	// The proxy's own requests (one Via) fail without ever banning it.
	own := newPhone("4242", "x", "10.0.0.5:5060")
	for i := 0; i < 6; i++ {
		own.ch = nil
		if r := e.register(own, "MD5"); status(r) != 401 {
			t.Fatalf("proxy's own request %d = %v, want 401", i, r)
		}
	}
	if e.s.bans.sourceBanned(netip.MustParseAddr("10.0.0.5")) {
		t.Fatal("the trusted proxy was banned")
	}
}
