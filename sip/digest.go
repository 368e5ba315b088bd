package sip

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Digest authentication (RFC 3261 §22, RFC 8760): MD5 and SHA-256
// challenges with qop=auth. Nonces are stateless (signed with a server key
// and carrying their issue time), so a flood of challenges costs no memory;
// only nonces that authenticated a request are remembered, for nonce-count
// replay protection, in two generations of one TTL each.

var (
	errBadCredentials = errors.New("bad credentials")
	errStaleNonce     = errors.New("stale nonce")
	errReplay         = errors.New("nonce count replayed")
)

type nonceIssuer struct {
	key   [32]byte
	ttl   time.Duration
	now   func() time.Time
	realm string
	algs  []string // offered, most preferred first (RFC 8760 §2.4)

	macs sync.Pool // keyed HMAC-SHA256 states, reused: one per nonce costs 3 allocations

	// serverURI also accepts a digest uri naming only this server
	// (sip.digest_uri_check: server): see digestURIMatches.
	serverURI bool

	// dummyMD5 and dummySHA256 are random per process: the HA1 that users
	// without a usable secret are checked against, so that the work is the
	// same as for a real user and no response can be precomputed for it.
	dummyMD5, dummySHA256 string

	mu       sync.Mutex
	epoch    int64               // issue-time / ttl of the current generation
	cur, old map[[16]byte]uint32 // nonce id -> highest nc seen
}

func newNonceIssuer(realm string, algs []string, ttl time.Duration, now func() time.Time) *nonceIssuer {
	if len(algs) == 0 {
		// MD5 alone: the softphones Plateau is tested with (baresip 1.0)
		// reject a 401 that also offers an algorithm they do not know.
		algs = []string{"MD5"}
	}
	n := &nonceIssuer{ttl: ttl, now: now, realm: realm, algs: algs, cur: map[[16]byte]uint32{}, old: map[[16]byte]uint32{}}
	var dm [md5.Size]byte
	var ds [sha256.Size]byte
	for _, b := range [][]byte{n.key[:], dm[:], ds[:]} {
		if _, err := rand.Read(b); err != nil {
			panic("crypto/rand: " + err.Error())
		}
	}
	n.dummyMD5, n.dummySHA256 = hex.EncodeToString(dm[:]), hex.EncodeToString(ds[:])
	return n
}

// nonce layout before base64: 8 bytes issue time (unix nanos), 8 random
// bytes, 16 bytes of HMAC-SHA256 over the first 16 and the realm.
func (n *nonceIssuer) issue() string {
	var b [32]byte
	binary.BigEndian.PutUint64(b[:8], uint64(n.now().UnixNano()))
	rand.Read(b[8:16])
	n.sign((*[16]byte)(b[16:]), b[:16])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// sign writes into out the first 16 bytes of HMAC-SHA256(key, p || realm).
func (n *nonceIssuer) sign(out *[16]byte, p []byte) {
	m, _ := n.macs.Get().(hash.Hash)
	if m == nil {
		m = hmac.New(sha256.New, n.key[:])
	} else {
		m.Reset() // back to the keyed initial state
	}
	m.Write(p)
	m.Write([]byte(n.realm))
	var sum [sha256.Size]byte
	copy(out[:], m.Sum(sum[:0]))
	n.macs.Put(m)
}

// check validates a nonce's signature and age, and that nc grows.
func (n *nonceIssuer) check(nonce string, nc uint32) error {
	var b [32]byte
	if len(nonce) != base64.RawURLEncoding.EncodedLen(len(b)) {
		return errBadCredentials
	}
	if k, err := base64.RawURLEncoding.Decode(b[:], []byte(nonce)); err != nil || k != len(b) {
		return errBadCredentials
	}
	var mac [16]byte
	n.sign(&mac, b[:16])
	if !hmac.Equal(b[16:], mac[:]) {
		return errBadCredentials
	}
	issued := time.Unix(0, int64(binary.BigEndian.Uint64(b[:8])))
	now := n.now()
	if now.Sub(issued) > n.ttl || issued.After(now.Add(time.Second)) {
		return errStaleNonce
	}
	var id [16]byte
	copy(id[:], b[:16])
	n.mu.Lock()
	defer n.mu.Unlock()
	n.rotate(now)
	last, ok := n.cur[id]
	if !ok {
		last, ok = n.old[id]
	}
	if ok && nc <= last {
		return errReplay
	}
	n.cur[id] = nc
	return nil
}

// rotate drops the generation older than two TTLs: its nonces are stale.
func (n *nonceIssuer) rotate(now time.Time) {
	e := now.UnixNano() / int64(n.ttl)
	if e == n.epoch {
		return
	}
	if e == n.epoch+1 {
		n.old, n.cur = n.cur, make(map[[16]byte]uint32, len(n.cur))
	} else {
		n.old, n.cur = make(map[[16]byte]uint32), make(map[[16]byte]uint32)
	}
	n.epoch = e
}

// challenges returns the header values for a 401/407: one per algorithm.
func (n *nonceIssuer) challenges(stale bool) []string {
	out := make([]string, 0, len(n.algs))
	for _, alg := range n.algs {
		c := `Digest realm="` + n.realm + `", nonce="` + n.issue() + `", algorithm=` + alg + `, qop="auth"`
		if stale {
			c += ", stale=true"
		}
		out = append(out, c)
	}
	return out
}

// secrets are a user's stored HA1 values. An empty value means the user
// has no SIP secret for that algorithm: nothing can authenticate with it.
type secrets struct {
	HA1MD5, HA1SHA256 string
}

// verify checks credentials of a request (its method and Request-URI)
// against stored secrets. Unknown users, users without a SIP secret and
// banned accounts are all verified against empty secrets: the response is
// then compared with one computed from the process's random dummy HA1, so
// they cost the same work and get the same answer as a wrong password (no
// enumeration), and an empty secret is never a usable one. Nonce state
// (the nonce count) changes only after a fully successful check, so a
// failed attempt leaves nothing a later one could observe.
func (n *nonceIssuer) verify(c *credentials, method, requestURI string, s secrets) error {
	if c.Realm != n.realm || c.Nonce == "" || c.URI == "" {
		return errBadCredentials
	}
	alg := strings.ToUpper(c.Algorithm)
	if alg == "" {
		alg = "MD5"
	}
	if !slices.Contains(n.algs, alg) {
		return errBadCredentials
	}
	var h func() hash.Hash
	var ha1, dummy string
	switch alg {
	case "MD5":
		h, ha1, dummy = md5.New, s.HA1MD5, n.dummyMD5
	case "SHA-256":
		h, ha1, dummy = sha256.New, s.HA1SHA256, n.dummySHA256
	default:
		return errBadCredentials
	}
	// qop=auth is required: without it there is no nonce count and so
	// no replay protection.
	if c.QOP != "auth" || c.Cnonce == "" || c.Nc == 0 {
		return errBadCredentials
	}
	usable := ha1 != ""
	if !usable {
		ha1 = dummy
	}
	ha2 := hexHash(h, method+":"+c.URI)
	nc := hex8(c.Nc)
	want := hexHash(h, ha1+":"+c.Nonce+":"+nc+":"+c.Cnonce+":auth:"+ha2)
	match := subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(c.Response))) == 1
	// The digest covers the uri it names; it must be this request's, or a
	// response captured for one request would serve for another.
	if !match || !usable || !digestURIMatches(c.URI, requestURI, n.serverURI) {
		return errBadCredentials
	}
	return n.check(c.Nonce, c.Nc)
}

func hexHash(h func() hash.Hash, s string) string {
	x := h()
	x.Write([]byte(s))
	return hex.EncodeToString(x.Sum(nil))
}

func hex8(v uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return hex.EncodeToString(b[:])
}

// digestURIMatches reports whether a digest's uri names the request's
// Request-URI: the same URI (sameURI), or the Request-URI without its
// parameters and headers when the digest uri has none. sipgo's clients
// (Plateau's own `plateau dial`, pstn-sim and loadgen among them) write
// that shorter form (client.go: Recipient.Addr()); the user part (the
// number dialled), host and port stay bound either way.
//
// With serverURI, a uri naming only the server the request was sent to
// (sip:HOST[:PORT], the Request-URI's host and port without its user) is
// accepted too: SIPp writes that for every request unless given -auth_uri,
// and cannot give one per call. The number dialled is then not bound by
// the digest (the policy still decides on it); it is off by default.
func digestURIMatches(digestURI, requestURI string, serverURI bool) bool {
	if sameURI(digestURI, requestURI) {
		return true
	}
	// Same scheme first: sipgo writes a URI without one back as sip:,
	// which would make ":host" match "sip:host".
	var d, r sip.Uri
	if sip.ParseUri(digestURI, &d) != nil || sip.ParseUri(requestURI, &r) != nil ||
		(d.Scheme != "sip" && d.Scheme != "sips") || r.Scheme != d.Scheme || len(d.UriParams) > 0 || len(d.Headers) > 0 {
		return false
	}
	r.UriParams, r.Headers = nil, nil
	if sameURI(digestURI, r.String()) {
		return true
	}
	if serverURI && d.User == "" && d.Password == "" {
		r.User, r.Password = "", ""
		return sameURI(digestURI, r.String())
	}
	return false
}

// sameURI reports whether the digest uri a and the Request-URI b are the
// same URI by the rules of RFC 3261 §19.1.4 (§22.4 has the server compare
// them): user and password case-sensitive, the rest not; an absent port
// differs from an explicit 5060; user, ttl, method, maddr and transport
// parameters must match when either side has them, other parameters only
// when both do; headers must match. Anything that does not parse is not
// the same. Other schemes (tel:) compare as exact strings.
func sameURI(a, b string) bool {
	if a == b {
		return true
	}
	var ua, ub sip.Uri
	if sip.ParseUri(a, &ua) != nil || sip.ParseUri(b, &ub) != nil {
		return false
	}
	if ua.Scheme != ub.Scheme {
		return false
	}
	if ua.Scheme != "sip" && ua.Scheme != "sips" {
		return ua.Raw() == ub.Raw()
	}
	if ua.Wildcard || ub.Wildcard {
		return false
	}
	if unescape(ua.User) != unescape(ub.User) || unescape(ua.Password) != unescape(ub.Password) ||
		!strings.EqualFold(unescape(ua.Host), unescape(ub.Host)) || ua.Port != ub.Port {
		return false
	}
	return sameParams(ua.UriParams, ub.UriParams, true) && sameParams(ua.Headers, ub.Headers, false)
}

// uriMustMatch are the URI parameters that make two URIs differ when only
// one of them has it (RFC 3261 §19.1.4).
var uriMustMatch = [...]string{"user", "ttl", "method", "maddr", "transport"}

// sameParams compares parameters (uri) or headers (!uri) as §19.1.4 says.
func sameParams(a, b sip.HeaderParams, uri bool) bool {
	get := func(p sip.HeaderParams, k string) (string, bool) {
		for _, kv := range p {
			if strings.EqualFold(kv.K, k) {
				return unescape(kv.V), true
			}
		}
		return "", false
	}
	for _, pair := range [2][2]sip.HeaderParams{{a, b}, {b, a}} {
		x, y := pair[0], pair[1]
		for _, kv := range x {
			vy, ok := get(y, kv.K)
			if !ok {
				if !uri || slices.ContainsFunc(uriMustMatch[:], func(k string) bool { return strings.EqualFold(k, kv.K) }) {
					return false
				}
				continue
			}
			if uri {
				if !strings.EqualFold(unescape(kv.V), vy) {
					return false
				}
			} else if unescape(kv.V) != vy {
				return false
			}
		}
	}
	return true
}

// unescape decodes %HH escapes (§19.1.4: an escaped character equals its
// plain form); a malformed escape is kept as it is.
func unescape(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}
