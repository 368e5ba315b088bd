package e2e

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A small SIP client over UDP with hand-written messages, so that the tests
// see exactly what goes on the wire and depend on no SIP stack of ours.

type response struct {
	status  int
	reason  string
	headers [][2]string // in order, names as sent
}

func (r *response) get(name string) string {
	for _, h := range r.headers {
		if strings.EqualFold(h[0], name) {
			return h[1]
		}
	}
	return ""
}

func (r *response) all(name string) []string {
	var out []string
	for _, h := range r.headers {
		if strings.EqualFold(h[0], name) {
			out = append(out, h[1])
		}
	}
	return out
}

func (r *response) String() string {
	if r == nil {
		return "no answer"
	}
	return fmt.Sprintf("%d %s %v", r.status, r.reason, r.headers)
}

func parseResponse(b []byte) (*response, error) {
	head, _, _ := strings.Cut(string(b), "\r\n\r\n")
	lines := strings.Split(head, "\r\n")
	f := strings.SplitN(lines[0], " ", 3)
	if len(f) < 2 || f[0] != "SIP/2.0" {
		return nil, fmt.Errorf("not a response: %q", lines[0])
	}
	code, err := strconv.Atoi(f[1])
	if err != nil {
		return nil, fmt.Errorf("bad status line %q", lines[0])
	}
	r := &response{status: code}
	if len(f) == 3 {
		r.reason = f[2]
	}
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			return nil, fmt.Errorf("bad header %q", l)
		}
		r.headers = append(r.headers, [2]string{strings.TrimSpace(name), strings.TrimSpace(value)})
	}
	return r, nil
}

// challenge is a parsed WWW-Authenticate value.
type challenge map[string]string

func parseChallenge(v string) challenge {
	c := challenge{}
	v, ok := strings.CutPrefix(v, "Digest ")
	if !ok {
		return c
	}
	for v = strings.TrimSpace(v); v != ""; v = strings.TrimLeft(strings.TrimSpace(v), ",") {
		v = strings.TrimSpace(v)
		k, rest, ok := strings.Cut(v, "=")
		if !ok {
			break
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if strings.HasPrefix(rest, `"`) {
			end := strings.Index(rest[1:], `"`)
			if end < 0 {
				break
			}
			c[k], v = rest[1:end+1], rest[end+2:]
		} else {
			val, after, _ := strings.Cut(rest, ",")
			c[k], v = strings.TrimSpace(val), after
		}
	}
	return c
}

// shape is what a challenge looks like without its nonce.
func (c challenge) shape() string {
	return fmt.Sprintf("realm=%s algorithm=%s qop=%s stale=%s opaque=%q nonce-len=%d",
		c["realm"], c["algorithm"], c["qop"], c["stale"], c["opaque"], len(c["nonce"]))
}

type sipClient struct {
	t      *testing.T
	conn   *net.UDPConn
	server *net.UDPAddr
	ext    string
	pass   string
	callID string
	cseq   int
	ch     challenge
	nc     int
}

func newClient(t *testing.T, p *plateau, ext, pass string) *sipClient {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	srv, _ := net.ResolveUDPAddr("udp", p.sipAddr())
	return &sipClient{t: t, conn: conn, server: srv, ext: ext, pass: pass, callID: randHex(8) + "@e2e"}
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (c *sipClient) local() string { return c.conn.LocalAddr().String() }

// build writes a request; contacts and extra are header lines.
func (c *sipClient) build(method string, extra ...string) string {
	c.cseq++
	uri := "sip:" + c.server.String()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", method, uri)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\n", c.local(), randHex(6))
	fmt.Fprintf(&b, "From: <sip:%s@127.0.0.1>;tag=%s\r\n", c.ext, randHex(4))
	fmt.Fprintf(&b, "To: <sip:%s@127.0.0.1>\r\n", c.ext)
	fmt.Fprintf(&b, "Call-ID: %s\r\nCSeq: %d %s\r\nMax-Forwards: 70\r\nUser-Agent: plateau-e2e\r\n", c.callID, c.cseq, method)
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	if c.ch != nil {
		c.nc++
		alg := c.ch["algorithm"]
		cnonce := randHex(4)
		resp := digestResponse(alg, c.ext, c.ch["realm"], c.pass, method, uri, c.ch["nonce"], c.nc, cnonce)
		fmt.Fprintf(&b, `Authorization: Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s, qop=auth, nc=%08x, cnonce="%s"`+"\r\n",
			c.ext, c.ch["realm"], c.ch["nonce"], uri, resp, alg, c.nc, cnonce)
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.String()
}

// do sends a request, retransmitting as UDP needs (RFC 3261 timer A), and
// returns the first final response, or nil after wait with no answer.
func (c *sipClient) do(msg string, wait time.Duration) *response {
	c.t.Helper()
	deadline := time.Now().Add(wait)
	interval := 500 * time.Millisecond
	buf := make([]byte, 65535)
	// A late retransmitted answer to the previous request must not pass
	// for this one's: match the CSeq.
	cseq := ""
	for _, line := range strings.Split(msg, "\r\n") {
		if v, ok := strings.CutPrefix(line, "CSeq: "); ok {
			cseq = strings.TrimSpace(v)
		}
	}
	for time.Now().Before(deadline) {
		if _, err := c.conn.WriteToUDP([]byte(msg), c.server); err != nil {
			c.t.Fatalf("send: %v", err)
		}
		next := time.Now().Add(interval)
		if next.After(deadline) {
			next = deadline
		}
		interval *= 2
		for {
			c.conn.SetReadDeadline(next)
			n, _, err := c.conn.ReadFromUDP(buf)
			if err != nil {
				break // timeout: retransmit
			}
			r, err := parseResponse(buf[:n])
			if err != nil {
				c.t.Fatalf("%v", err)
			}
			if r.status >= 200 && (cseq == "" || r.get("CSeq") == cseq) {
				return r
			}
		}
	}
	return nil
}

// request sends one request and remembers a 401's first challenge (the
// one with algorithm alg when alg is set).
func (c *sipClient) request(method, alg string, extra ...string) *response {
	c.t.Helper()
	r := c.do(c.build(method, extra...), 8*time.Second)
	if r != nil && r.status == 401 {
		for _, v := range r.all("WWW-Authenticate") {
			ch := parseChallenge(v)
			if alg == "" || strings.EqualFold(ch["algorithm"], alg) {
				c.ch, c.nc = ch, 0
				break
			}
		}
	}
	return r
}

// register authenticates (challenge first when needed) and returns the
// final answer to the authenticated REGISTER.
func (c *sipClient) register(extra ...string) *response {
	c.t.Helper()
	if c.ch == nil {
		r := c.request("REGISTER", "", extra...)
		if r == nil || r.status != 401 {
			return r
		}
	}
	return c.request("REGISTER", "", extra...)
}

func digestResponse(alg, user, realm, pass, method, uri, nonce string, nc int, cnonce string) string {
	var h func() hash.Hash = md5.New
	if strings.EqualFold(alg, "SHA-256") {
		h = sha256.New
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
