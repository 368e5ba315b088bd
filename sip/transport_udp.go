package sip

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// The UDP front door. sipgo reads the socket through udpConn.ReadFrom, so
// every datagram passes here before sipgo parses it or creates a server
// transaction. A UDP server transaction lives for Timer J (32 s) after its
// answer, so at 10,000 requests/s from one source sipgo alone holds 320,000
// of them (2.2 GB). Here, before any transaction:
//
//   - datagrams from a banned source are dropped;
//   - a REGISTER without credentials and an OPTIONS are answered statelessly
//     (RFC 3261 §8.2.7 allows a stateless UAS): the challenge is a signed,
//     stateless nonce, so these cost CPU and no memory whatever the rate;
//   - every other datagram (requests, responses) counts against its
//     source's rate (sip.limits.requests_per_source); beyond it, it is
//     dropped (over UDP the sender retransmits), so one source can keep at
//     most rate × 32 s transactions alive;
//   - read errors other than a closed socket are retried with backoff: sipgo
//     stops serving UDP on any read error.
//
// A request passed on is parsed by sipgo as before: the gate only looks at
// bytes (the method, whether an Authorization header is there), so the
// authenticated path is not parsed twice.

// udpConn is the SIP UDP socket as sipgo sees it.
type udpConn struct {
	net.PacketConn // the listening socket (*net.UDPConn; a fake in tests)
	s              *Server
	limiter        *sourceLimiter
	parser         *sip.Parser
	buf            bytes.Buffer // stateless responses, built on the reading goroutine only
	replay         replayRing   // recent stateless answers, for retransmissions
	// replayKey is the key of the request being answered statelessly.
	replayKey string
	sleep     func(time.Duration) // backoff after a read error (tests shorten it)
}

func (s *Server) newUDPConn(c net.PacketConn) *udpConn {
	return &udpConn{PacketConn: c, s: s, limiter: s.limiter, parser: newParser(), sleep: time.Sleep}
}

// ReadFrom returns the next datagram that sipgo should handle.
func (c *udpConn) ReadFrom(b []byte) (int, net.Addr, error) {
	var delay time.Duration
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return n, addr, err
			}
			// A transient error (ENOBUFS, ICMP errors reported on the
			// socket, ...) must not stop SIP over UDP: sipgo would return
			// from Serve, and Plateau with it.
			delay = nextBackoff(delay)
			c.s.metrics.udpReadErrors.Inc()
			c.s.log.Error("sip udp read failed, retrying", "err", err, "retry_in", delay)
			c.sleep(delay)
			continue
		}
		delay = 0
		ua, ok := addr.(*net.UDPAddr)
		if !ok {
			return n, addr, nil
		}
		if c.admit(b[:n], ua) {
			return n, addr, nil
		}
	}
}

// admit reports whether sipgo should handle the datagram; when it should
// not, the datagram was dropped or answered here.
func (c *udpConn) admit(data []byte, from *net.UDPAddr) bool {
	if len(data) <= 4 {
		return true // keep-alive CRLFs: sipgo ignores them
	}
	ip := from.AddrPort().Addr().Unmap()
	if c.s.bans.sourceBanned(ip) {
		// The guard would drop it too, after sipgo created a transaction.
		c.s.metrics.dropped.WithLabelValues("banned").Inc()
		return false
	}
	if (bytes.HasPrefix(data, []byte("OPTIONS ")) ||
		bytes.HasPrefix(data, []byte("REGISTER ")) && !hasAuthorization(data)) &&
		c.stateless(data, from.AddrPort()) {
		return false
	}
	// Everything else counts: requests (each a transaction), responses
	// (each a goroutine, and a log line when it matches nothing) and
	// garbage (a parse error logged by sipgo).
	// A trusted proxy's messages are counted per phone behind it, after
	// parsing (Server.overProxiedRate).
	if !c.s.trusted.Contains(ip) && !c.limiter.allow(ip) {
		c.s.metrics.dropped.WithLabelValues("rate_limited").Inc()
		return false
	}
	return true
}

// stateless answers an OPTIONS or a REGISTER without credentials without a
// transaction: the same screen as the guard, then the answer the handler
// would give. It reports false when the request is one for the ordinary
// path after all (a REGISTER whose credentials the byte scan missed).
func (c *udpConn) stateless(data []byte, src netip.AddrPort) bool {
	msg, err := c.parser.ParseSIP(data)
	if err != nil {
		c.s.metrics.dropped.WithLabelValues("unparsable").Inc()
		c.s.log.Debug("sip udp datagram dropped: unparsable", "source", src, "err", err)
		return true
	}
	req, ok := msg.(*sip.Request)
	if !ok {
		return true
	}
	if req.Method == sip.REGISTER && getHeader(req, "authorization") != nil {
		// Odd spacing the byte scan did not know: the registrar decides,
		// as for any request with credentials.
		return false
	}
	req.SetTransport("UDP")
	req.SetSource(src.String())
	send := func(res *sip.Response) { c.writeStateless(req, res, src) }
	if !c.s.screen(req, send) {
		return true
	}
	// A retransmission gets the very bytes of the first answer, as a
	// server transaction would resend them (some clients, SIPp among them,
	// take a 401 with another nonce and To tag for a new answer).
	key := replayKey(req, src)
	if dst, b, ok := c.replay.get(key); ok {
		c.s.metrics.stateless.WithLabelValues(methodLabel(req.Method)).Inc()
		c.PacketConn.WriteTo(b, net.UDPAddrFromAddrPort(dst))
		return true
	}
	c.replayKey = key
	defer func() { c.replayKey = "" }()
	switch req.Method {
	case sip.OPTIONS:
		send(optionsResponse(req))
	case sip.REGISTER:
		res := sip.NewResponseFromRequest(req, sip.StatusUnauthorized, "Unauthorized", nil)
		for _, ch := range c.s.nonces.challenges(false) {
			res.AppendHeader(sip.NewHeader("WWW-Authenticate", ch))
		}
		send(res)
	}
	return true
}

// maxStatelessResponse keeps a stateless answer within a datagram that
// needs no fragmentation (RFC 3261 §18.1.1's 1300 bytes), and an answer to
// a request stuffed with Via headers from becoming an amplifier.
const maxStatelessResponse = 1300

// writeStateless sends res where RFC 3261 §18.2.2 and RFC 3581 say: the
// request's source address, at its source port when the top Via asks for
// rport, else at the Via's port. A received= in the request is not
// trusted: it would let a sender aim our answers elsewhere.
func (c *udpConn) writeStateless(req *sip.Request, res *sip.Response, src netip.AddrPort) {
	port := src.Port()
	if via := req.Via(); via != nil {
		if _, rport := via.Params.Get("rport"); !rport {
			port = 5060
			if via.Port > 0 && via.Port < 65536 {
				port = uint16(via.Port)
			}
		}
	}
	c.buf.Reset()
	res.StringWrite(&c.buf)
	if c.buf.Len() > maxStatelessResponse {
		c.s.metrics.dropped.WithLabelValues("answer_too_large").Inc()
		return
	}
	c.s.metrics.responses.WithLabelValues(methodLabel(req.Method), statusClass(int(res.StatusCode))).Inc()
	c.s.metrics.stateless.WithLabelValues(methodLabel(req.Method)).Inc()
	dst := netip.AddrPortFrom(src.Addr(), port)
	if c.replayKey != "" {
		c.replay.put(c.replayKey, dst, c.buf.Bytes())
		c.replayKey = ""
	}
	if _, err := c.PacketConn.WriteTo(c.buf.Bytes(), net.UDPAddrFromAddrPort(dst)); err != nil {
		c.s.log.Debug("stateless answer not sent", "to", dst, "err", err)
	}
}

// replayKey identifies a request and its retransmissions (RFC 3261
// §17.2.3: the top Via's branch and sent-by, and the method), plus the
// source.
func replayKey(req *sip.Request, src netip.AddrPort) string {
	via := req.Via()
	branch, _ := via.Params.Get("branch")
	return src.String() + " " + branch + " " + via.Host + " " + string(req.Method) + " " + req.CallID().Value()
}

// replayRing keeps the last replaySize stateless answers. It is bounded
// whatever the rate: under a flood its entries turn over in a second or
// two and a late retransmission gets a fresh answer, which is still
// correct; at ordinary rates an entry outlives Timer F (32 s). Used by the
// reading goroutine only.
type replayRing struct {
	index map[string]int
	ring  []replayEntry
	next  int
}

type replayEntry struct {
	key  string
	dst  netip.AddrPort
	data []byte
}

const replaySize = 4096

func (r *replayRing) get(key string) (netip.AddrPort, []byte, bool) {
	i, ok := r.index[key]
	if !ok {
		return netip.AddrPort{}, nil, false
	}
	e := r.ring[i]
	return e.dst, e.data, true
}

func (r *replayRing) put(key string, dst netip.AddrPort, data []byte) {
	if r.index == nil {
		r.index = make(map[string]int, replaySize)
		r.ring = make([]replayEntry, replaySize)
	}
	e := &r.ring[r.next]
	if e.key != "" {
		delete(r.index, e.key)
	}
	e.key, e.dst = key, dst
	e.data = append(e.data[:0], data...) // reuses the slot's buffer
	r.index[key] = r.next
	r.next = (r.next + 1) % replaySize
}

// hasAuthorization reports whether the message has a header named
// Authorization (any case, spaces allowed before the colon). It may say yes
// for an odd body; a yes only means the request takes the ordinary path.
func hasAuthorization(data []byte) bool {
	const name = "authorization"
	end := bytes.Index(data, []byte("\r\n\r\n"))
	if end < 0 {
		end = len(data)
	}
	head := data[:end]
	for i := 0; i < len(head); {
		nl := bytes.IndexByte(head[i:], '\n')
		if nl < 0 {
			break
		}
		line := head[i+nl+1:]
		i += nl + 1
		if len(line) < len(name) || !asciiEqualFoldBytes(line[:len(name)], name) {
			continue
		}
		rest := bytes.TrimLeft(line[len(name):], " \t")
		if len(rest) > 0 && rest[0] == ':' {
			return true
		}
	}
	return false
}

func asciiEqualFoldBytes(b []byte, lower string) bool {
	for i := range len(lower) {
		x := b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if x != lower[i] {
			return false
		}
	}
	return true
}

// nextBackoff doubles a retry delay from 5 ms up to 1 s, as net/http's
// Server does after a failed Accept.
func nextBackoff(d time.Duration) time.Duration {
	if d == 0 {
		return 5 * time.Millisecond
	}
	return min(2*d, time.Second)
}

// sourceLimiter is a token bucket per source address: rate requests per
// second, bursts up to twice that. Buckets idle for a minute are swept; at
// most maxSources are kept, and sources beyond share one bucket, so a
// flood from spoofed addresses cannot grow the table.
type sourceLimiter struct {
	rate, burst float64
	now         func() time.Time

	mu       sync.Mutex
	buckets  map[netip.Addr]*bucket
	overflow bucket
	onLimit  func(ip netip.Addr) // first drop of a source after it was allowed
}

type bucket struct {
	tokens  float64
	last    time.Time
	limited bool
}

const maxLimitedSources = 65536

func newSourceLimiter(perSecond int, now func() time.Time) *sourceLimiter {
	l := &sourceLimiter{rate: float64(perSecond), burst: 2 * float64(perSecond), now: now, buckets: map[netip.Addr]*bucket{}}
	l.overflow.tokens = l.burst
	return l
}

// allow takes a token from ip's bucket. A limiter with no rate allows all.
func (l *sourceLimiter) allow(ip netip.Addr) bool { return l.allowN(ip, 1) }

// allowN takes n tokens at once (what costs n messages, a TLS handshake).
func (l *sourceLimiter) allowN(ip netip.Addr, n float64) bool {
	if l == nil || l.rate <= 0 {
		return true
	}
	ip = sourceKey(ip) // an IPv6 host by its /64, as the bans count it
	now := l.now()
	l.mu.Lock()
	b := l.buckets[ip]
	if b == nil {
		if len(l.buckets) < maxLimitedSources {
			b = &bucket{tokens: l.burst, last: now}
			l.buckets[ip] = b
		} else {
			b = &l.overflow
		}
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(l.burst, b.tokens+el*l.rate)
	}
	b.last = now
	ok := b.tokens >= n
	first := false
	if ok {
		b.tokens -= n
		b.limited = false
	} else if !b.limited {
		b.limited, first = true, true
	}
	l.mu.Unlock()
	if first && l.onLimit != nil {
		l.onLimit(ip)
	}
	return ok
}

// sweep forgets buckets idle for a minute (full again by then) and returns
// how many sources are being limited now.
func (l *sourceLimiter) sweep() int {
	if l == nil {
		return 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	limited := 0
	for ip, b := range l.buckets {
		if now.Sub(b.last) > time.Minute {
			delete(l.buckets, ip)
			continue
		}
		if b.limited {
			limited++
		}
	}
	return limited
}

// optionsResponse is Plateau's answer to OPTIONS (RFC 3261 §11.2).
func optionsResponse(req *sip.Request) *sip.Response {
	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
	res.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, UPDATE, REFER, INFO, NOTIFY"))
	res.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
	return res
}
