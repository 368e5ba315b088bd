package sip

import (
	"github.com/icholy/digest"

	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
	"testing"
	"time"

	"plateau/auth"
)

// clock is an injected clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 2, 7, 29, 59, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// digestResponse computes a qop=auth response as RFC 2617 §3.2.2 and
// RFC 7616 §3.4.1 (which RFC 8760 applies to SIP) write it, independently
// of the code under test.
func digestResponse(alg, user, realm, pass, method, uri, nonce string, nc int, cnonce string) string {
	var h func() hash.Hash
	switch alg {
	case "SHA-256":
		h = sha256.New
	default:
		h = md5.New
	}
	H := func(s string) string {
		x := h()
		x.Write([]byte(s))
		return hex.EncodeToString(x.Sum(nil))
	}
	ha1 := H(user + ":" + realm + ":" + pass)
	ha2 := H(method + ":" + uri)
	return H(fmt.Sprintf("%s:%s:%08x:%s:auth:%s", ha1, nonce, nc, cnonce, ha2))
}

func TestDigestResponseRFCVectors(t *testing.T) {
	// RFC 2617 §3.5.
	if got := digestResponse("MD5", "Mufasa", "testrealm@host.com", "Circle Of Life", "GET", "/dir/index.html",
		"dcd98b7102dd2f0e8b11d0f600bfb0c093", 1, "0a4f113b"); got != "6629fae49393a05397450978507c4ef1" {
		t.Errorf("RFC 2617 MD5 response = %s", got)
	}
	// RFC 7616 §3.9.1.
	if got := digestResponse("SHA-256", "Mufasa", "http-auth@example.org", "Circle of Life", "GET", "/dir/index.html",
		"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", 1, "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"); got != "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1" {
		t.Errorf("RFC 7616 SHA-256 response = %s", got)
	}
}

const (
	tUser  = "101"
	tRealm = "plateau"
	tPass  = "demo101"
	tURI   = "sip:127.0.0.1:5060"
)

var tSecrets = secrets{HA1MD5: auth.HA1MD5(tUser, tRealm, tPass), HA1SHA256: auth.HA1SHA256(tUser, tRealm, tPass)}

// creds builds credentials answering nonce with password pass.
func creds(alg, pass, nonce string, nc int) *credentials {
	return &credentials{
		Username: tUser, Realm: tRealm, Nonce: nonce, URI: tURI, Algorithm: alg, QOP: "auth", Nc: uint32(nc), Cnonce: "c0ffee",
		Response: digestResponse(alg, tUser, tRealm, pass, "REGISTER", tURI, nonce, nc, "c0ffee"),
	}
}

func TestDigestVerify(t *testing.T) {
	for _, alg := range []string{"MD5", "SHA-256"} {
		t.Run(alg, func(t *testing.T) {
			clk := newClock()
			n := newNonceIssuer(tRealm, []string{"SHA-256", "MD5"}, time.Minute, clk.now)
			nonce := n.issue()
			if err := n.verify(creds(alg, tPass, nonce, 1), "REGISTER", tURI, tSecrets); err != nil {
				t.Fatalf("right password: %v", err)
			}
			if err := n.verify(creds(alg, tPass, nonce, 2), "REGISTER", tURI, tSecrets); err != nil {
				t.Fatalf("next nonce count: %v", err)
			}
			if err := n.verify(creds(alg, "demo102", n.issue(), 1), "REGISTER", tURI, tSecrets); !errors.Is(err, errBadCredentials) {
				t.Fatalf("wrong password: %v, want errBadCredentials", err)
			}
			if err := n.verify(creds(alg, tPass, n.issue(), 1), "INVITE", tURI, tSecrets); !errors.Is(err, errBadCredentials) {
				t.Fatalf("response for another method: %v, want errBadCredentials", err)
			}
			if err := n.verify(creds(alg, tPass, n.issue(), 1), "REGISTER", tURI, secrets{}); !errors.Is(err, errBadCredentials) {
				t.Fatalf("unknown user (no secrets): %v, want errBadCredentials", err)
			}
			upper := creds(alg, tPass, n.issue(), 1)
			upper.Response = strings.ToUpper(upper.Response)
			if err := n.verify(upper, "REGISTER", tURI, tSecrets); err != nil {
				t.Fatalf("upper-case hex response: %v", err)
			}
		})
	}
}

func TestDigestRefusesMalformed(t *testing.T) {
	clk := newClock()
	n := newNonceIssuer(tRealm, []string{"MD5"}, time.Minute, clk.now)
	other := newNonceIssuer(tRealm, []string{"MD5"}, time.Minute, clk.now)
	good := n.issue()
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	forge := func(i int) string {
		b := append([]byte(nil), raw...)
		b[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(b)
	}
	tests := []struct {
		name string
		mod  func(c *credentials)
	}{
		{"no qop", func(c *credentials) { c.QOP = "" }},
		{"qop auth-int", func(c *credentials) { c.QOP = "auth-int" }},
		{"no cnonce", func(c *credentials) { c.Cnonce = "" }},
		{"nc zero", func(c *credentials) { c.Nc = 0 }},
		{"other realm", func(c *credentials) { c.Realm = "elsewhere" }},
		{"no uri", func(c *credentials) { c.URI = "" }},
		{"no nonce", func(c *credentials) { c.Nonce = "" }},
		{"algorithm not offered", func(c *credentials) { *c = *creds("SHA-256", tPass, good, 1) }},
		{"unknown algorithm", func(c *credentials) { c.Algorithm = "SHA-512-256" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := creds("MD5", tPass, n.issue(), 1)
			tt.mod(c)
			if err := n.verify(c, "REGISTER", tURI, tSecrets); !errors.Is(err, errBadCredentials) {
				t.Fatalf("verify = %v, want errBadCredentials", err)
			}
		})
	}
	// Nonces we did not sign, with a response that is right for them.
	nonces := map[string]string{
		"garbled":           "!!not-base64!!",
		"short":             base64.RawURLEncoding.EncodeToString(raw[:20]),
		"time changed":      forge(3),
		"random changed":    forge(10),
		"signature changed": forge(20),
		"other server":      other.issue(),
		"empty-ish":         "AAAA",
	}
	for name, nonce := range nonces {
		t.Run("nonce "+name, func(t *testing.T) {
			if err := n.verify(creds("MD5", tPass, nonce, 1), "REGISTER", tURI, tSecrets); !errors.Is(err, errBadCredentials) {
				t.Fatalf("verify = %v, want errBadCredentials", err)
			}
		})
	}
}

func TestDigestNonceExpiry(t *testing.T) {
	clk := newClock()
	ttl := 5 * time.Minute
	n := newNonceIssuer(tRealm, []string{"MD5"}, ttl, clk.now)
	fresh, old := n.issue(), n.issue()
	clk.advance(ttl)
	if err := n.verify(creds("MD5", tPass, fresh, 1), "REGISTER", tURI, tSecrets); err != nil {
		t.Fatalf("nonce exactly ttl old: %v", err)
	}
	clk.advance(time.Second)
	if err := n.verify(creds("MD5", tPass, old, 1), "REGISTER", tURI, tSecrets); !errors.Is(err, errStaleNonce) {
		t.Fatalf("nonce ttl+1s old: %v, want errStaleNonce", err)
	}
	// Stale only with the right password: a guess must not learn that.
	if err := n.verify(creds("MD5", "guess", old, 1), "REGISTER", tURI, tSecrets); !errors.Is(err, errBadCredentials) {
		t.Fatalf("stale nonce, wrong password: %v, want errBadCredentials", err)
	}
	if err := n.verify(creds("MD5", tPass, n.issue(), 1), "REGISTER", tURI, tSecrets); err != nil {
		t.Fatalf("new nonce after expiry: %v", err)
	}
}

func TestDigestReplay(t *testing.T) {
	clk := newClock()
	ttl := time.Minute
	n := newNonceIssuer(tRealm, []string{"MD5", "SHA-256"}, ttl, clk.now)
	nonce := n.issue()
	if err := n.verify(creds("MD5", tPass, nonce, 1), "REGISTER", tURI, tSecrets); err != nil {
		t.Fatal(err)
	}
	if err := n.verify(creds("MD5", tPass, nonce, 1), "REGISTER", tURI, tSecrets); !errors.Is(err, errReplay) {
		t.Fatalf("replayed nc=1: %v, want errReplay", err)
	}
	if err := n.verify(creds("MD5", tPass, nonce, 5), "REGISTER", tURI, tSecrets); err != nil {
		t.Fatalf("nc jumps forward: %v", err)
	}
	if err := n.verify(creds("MD5", tPass, nonce, 3), "REGISTER", tURI, tSecrets); !errors.Is(err, errReplay) {
		t.Fatalf("nc goes back: %v, want errReplay", err)
	}
	if err := n.verify(creds("SHA-256", tPass, nonce, 5), "REGISTER", tURI, tSecrets); !errors.Is(err, errReplay) {
		t.Fatalf("same nc with another algorithm: %v, want errReplay", err)
	}
	// The replay memory survives generation rotation for the nonce's life.
	for i := 0; i < 4; i++ {
		clk.advance(ttl / 4)
		if err := n.verify(creds("MD5", tPass, nonce, 5), "REGISTER", tURI, tSecrets); !errors.Is(err, errReplay) && !errors.Is(err, errStaleNonce) {
			t.Fatalf("replay after %d/4 ttl: %v, want errReplay or errStaleNonce", i+1, err)
		}
	}
	clk.advance(time.Second)
	if err := n.verify(creds("MD5", tPass, nonce, 6), "REGISTER", tURI, tSecrets); !errors.Is(err, errStaleNonce) {
		t.Fatalf("after ttl: %v, want errStaleNonce", err)
	}
}

func TestDigestChallenges(t *testing.T) {
	clk := newClock()
	for _, algs := range [][]string{{"SHA-256", "MD5"}, {"MD5"}} {
		n := newNonceIssuer(tRealm, algs, time.Minute, clk.now)
		for _, stale := range []bool{false, true} {
			ch := n.challenges(stale)
			if len(ch) != len(algs) {
				t.Fatalf("%v: %d challenges", algs, len(ch))
			}
			for i, v := range ch {
				c, err := digest.ParseChallenge(v)
				if err != nil {
					t.Fatalf("challenge %q: %v", v, err)
				}
				if c.Algorithm != algs[i] || c.Realm != tRealm || len(c.QOP) != 1 || c.QOP[0] != "auth" || c.Stale != stale || c.Nonce == "" {
					t.Errorf("challenge %d = %+v, want algorithm %s, qop auth, stale %v", i, c, algs[i], stale)
				}
				// Each challenge's nonce is ours and answerable.
				if err := n.verify(creds(algs[i], tPass, c.Nonce, 1), "REGISTER", tURI, tSecrets); err != nil {
					t.Errorf("answering challenge %d: %v", i, err)
				}
			}
		}
	}
}

// The pooled HMAC states give the same signature as a fresh HMAC, also when
// reused concurrently, and a nonce of the wrong length is refused before
// decoding.
func TestNonceSignPooled(t *testing.T) {
	n := newNonceIssuer("plateau", []string{"MD5"}, time.Minute, time.Now)
	want := func(p []byte) []byte {
		m := hmac.New(sha256.New, n.key[:])
		m.Write(p)
		m.Write([]byte(n.realm))
		return m.Sum(nil)[:16]
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				p := []byte{byte(g), byte(i), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}
				var got [16]byte
				n.sign(&got, p)
				if !bytes.Equal(got[:], want(p)) {
					t.Errorf("sign(%x) = %x, want %x", p, got, want(p))
					return
				}
				nonce := n.issue()
				if err := n.check(nonce, 1); err != nil {
					t.Errorf("check(fresh nonce) = %v", err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	good := n.issue()
	for _, bad := range []string{good + "A", good[:42], good[:42] + "=", strings.Repeat("A", 43)} {
		if err := n.check(bad, 1); !errors.Is(err, errBadCredentials) {
			t.Errorf("check(%q) = %v, want errBadCredentials", bad, err)
		}
	}
}
