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
	"slices"
	"strings"
	"sync"
	"time"
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

	mu       sync.Mutex
	epoch    int64               // issue-time / ttl of the current generation
	cur, old map[[16]byte]uint32 // nonce id -> highest nc seen
}

func newNonceIssuer(realm string, algs []string, ttl time.Duration, now func() time.Time) *nonceIssuer {
	if len(algs) == 0 {
		algs = []string{"SHA-256", "MD5"}
	}
	n := &nonceIssuer{ttl: ttl, now: now, realm: realm, algs: algs, cur: map[[16]byte]uint32{}, old: map[[16]byte]uint32{}}
	if _, err := rand.Read(n.key[:]); err != nil {
		panic("crypto/rand: " + err.Error())
	}
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

// secrets are a user's stored HA1 values.
type secrets struct {
	HA1MD5, HA1SHA256 string
}

// verify checks credentials of method against stored secrets. Unknown
// users are verified against empty secrets, so that they cost the same work
// and get the same answer as a wrong password (no extension enumeration).
func (n *nonceIssuer) verify(c *credentials, method string, s secrets) error {
	if c.Realm != n.realm || c.Nonce == "" || c.URI == "" {
		return errBadCredentials
	}
	var h func() hash.Hash
	var ha1 string
	alg := strings.ToUpper(c.Algorithm)
	if alg == "" {
		alg = "MD5"
	}
	if !slices.Contains(n.algs, alg) {
		return errBadCredentials
	}
	switch alg {
	case "", "MD5":
		h, ha1 = md5.New, s.HA1MD5
	case "SHA-256":
		h, ha1 = sha256.New, s.HA1SHA256
	default:
		return errBadCredentials
	}
	// qop=auth is required: without it there is no nonce count and so
	// no replay protection.
	if c.QOP != "auth" || c.Cnonce == "" || c.Nc == 0 {
		return errBadCredentials
	}
	if ha1 == "" {
		ha1 = strings.Repeat("0", h().Size()*2)
	}
	ha2 := hexHash(h, method+":"+c.URI)
	nc := hex8(c.Nc)
	want := hexHash(h, ha1+":"+c.Nonce+":"+nc+":"+c.Cnonce+":auth:"+ha2)
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(c.Response))) != 1 {
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
