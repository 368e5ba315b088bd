package sim

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// nonceTTL bounds how long a challenge may be answered.
const nonceTTL = 5 * time.Minute

// challenger issues digest challenges (407) and checks the answers.
type challenger struct {
	realm, username, password string
	now                       func() time.Time

	mu     sync.Mutex
	nonces map[string]time.Time // nonce -> issued
}

func newChallenger(realm, username, password string, now func() time.Time) *challenger {
	return &challenger{realm: realm, username: username, password: password, now: now, nonces: map[string]time.Time{}}
}

// challenge returns a Proxy-Authenticate header value with a fresh nonce.
func (c *challenger) challenge() string {
	var b [16]byte
	rand.Read(b[:])
	nonce := hex.EncodeToString(b[:])
	now := c.now()
	c.mu.Lock()
	for n, t := range c.nonces {
		if now.Sub(t) > nonceTTL {
			delete(c.nonces, n)
		}
	}
	c.nonces[nonce] = now
	c.mu.Unlock()
	ch := digest.Challenge{Realm: c.realm, Nonce: nonce, Algorithm: "MD5", QOP: []string{"auth"}}
	return ch.String()
}

// verify checks the request's Proxy-Authorization (or Authorization).
func (c *challenger) verify(req *sip.Request) bool {
	h := req.GetHeader("Proxy-Authorization")
	if h == nil {
		h = req.GetHeader("Authorization")
	}
	if h == nil {
		return false
	}
	cred, err := digest.ParseCredentials(h.Value())
	if err != nil || cred.Username != c.username || cred.Realm != c.realm {
		return false
	}
	c.mu.Lock()
	issued, ok := c.nonces[cred.Nonce]
	c.mu.Unlock()
	if !ok || c.now().Sub(issued) > nonceTTL {
		return false
	}
	ch := &digest.Challenge{Realm: c.realm, Nonce: cred.Nonce, Algorithm: "MD5"}
	if cred.Algorithm != "" {
		ch.Algorithm = cred.Algorithm
	}
	if cred.QOP != "" {
		ch.QOP = []string{cred.QOP}
	}
	want, err := digest.Digest(ch, digest.Options{
		Method: req.Method.String(), URI: cred.URI, Username: c.username, Password: c.password,
		Count: cred.Nc, Cnonce: cred.Cnonce,
	})
	return err == nil && want.Response == cred.Response
}
