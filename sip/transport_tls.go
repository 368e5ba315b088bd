package sip

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"plateau/certs"
)

// The TLS front door (sip.tls, "tls" in sip.transports). It is the TCP
// front door (transport_tcp.go) with TLS on top, in this order:
//
//   - the raw connection passes the TCP limits first: bans, the total and
//     per-source caps (counted apart from TCP's), the idle timeout — which
//     also closes a client that opens a connection and never finishes its
//     handshake;
//   - the handshake runs at the first read, bounded by tlsHandshakeTimeout,
//     with the certificate of sip.tls under the project's one TLS policy
//     (certs.ServerConfig: TLS 1.2+, AEAD suites); a failed handshake is
//     counted (plateau_sip_tls_handshake_failures_total{direction="in"})
//     and ends the connection quietly;
//   - a new connection costs tlsHandshakeCost messages of its source's
//     rate (sip.limits.requests_per_source) and is closed before the
//     handshake beyond it: a handshake costs Plateau a signature, and a
//     phone connecting and closing in a loop, under the connection caps,
//     would otherwise burn the CPU the calls need;
//   - the per-source message rate is counted on the decrypted stream (TLS
//     records hide the message ends).
//
// The certificate is a certs.Pair: renewed files are picked up on SIGHUP
// and when they change, without a restart; connections already open keep
// the certificate they were made with.
//
// Phones normally present no certificate, so the listener asks for none:
// a phone is authenticated by its digest credentials, as over UDP and TCP.

// TLSOptions configure SIP over TLS.
type TLSOptions struct {
	Listen string      // host:port of the TLS listener
	Pair   *certs.Pair // the certificate presented to phones and carriers
}

// tlsHandshakeTimeout bounds a TLS handshake, both ways.
const tlsHandshakeTimeout = 10 * time.Second

// tlsListener is the TLS front door sipgo serves (ServeTLS takes a
// listener whose connections are already TLS).
type tlsListener struct {
	*tcpListener
	cfg *tls.Config
}

func (s *Server) newTLSListener(l net.Listener, cfg *tls.Config) *tlsListener {
	tl := s.newTCPListener(l)
	tl.conns, tl.encrypted = s.metrics.tlsConns, true
	return &tlsListener{tcpListener: tl, cfg: cfg}
}

// tlsHandshakeCost is what a new TLS connection takes from its source's
// message rate: with the default 200 messages a second, 20 handshakes a
// second (bursts of 40) from one address, far above what a phone needs
// (one connection, kept) and far below what loads a core.
const tlsHandshakeCost = 10

// Accept returns the next connection within the limits, as TLS; its
// handshake runs at its first read, on sipgo's reading goroutine.
func (l *tlsListener) Accept() (net.Conn, error) {
	for {
		c, err := l.tcpListener.Accept()
		if err != nil {
			return nil, err
		}
		raw := c.(*tcpConn)
		if l.s.trusted.Contains(raw.ip) || l.s.limiter.allowN(raw.ip, tlsHandshakeCost) {
			return l.wrap(raw), nil
		}
		raw.Close() // releases its slot; nothing was read or written
		l.s.metrics.tcpRefused.WithLabelValues("tls_rate").Inc()
		l.s.metrics.dropped.WithLabelValues("rate_limited").Inc()
	}
}

func (l *tlsListener) wrap(raw *tcpConn) net.Conn {
	sc := &tlsServerConn{Conn: tls.Server(raw, l.cfg), raw: raw, s: l.s}
	l.s.tlsIn.add(sc)
	return sc
}

// tlsServerConn is an accepted TLS connection.
type tlsServerConn struct {
	*tls.Conn
	raw   *tcpConn
	s     *Server
	once  sync.Once
	hsErr error
	close sync.Once
	ready atomic.Bool // handshake done (ConnectionState would wait for it)
}

func (c *tlsServerConn) Read(b []byte) (int, error) {
	c.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), tlsHandshakeTimeout)
		defer cancel()
		if err := c.Conn.HandshakeContext(ctx); err != nil {
			c.hsErr = err
			c.s.metrics.tlsHandshakeFailures.WithLabelValues("in", tlsFailureReason(err)).Inc()
			c.s.log.Debug("sip tls handshake failed", "remote", c.RemoteAddr().String(), "err", err)
			return
		}
		c.ready.Store(true)
	})
	if c.hsErr != nil {
		c.Close()
		// io.EOF: sipgo ends the connection as an ordinary close.
		return 0, io.EOF
	}
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.raw.throttle(b[:n])
	}
	return n, err
}

func (c *tlsServerConn) Close() error {
	c.close.Do(func() { c.s.tlsIn.remove(c) })
	err := c.Conn.Close()
	c.raw.Close() // releases the slot even when the TLS close failed
	return err
}

// tlsFailureReason is a handshake error as a short metric label.
func tlsFailureReason(err error) string {
	var cv *tls.CertificateVerificationError
	var rec tls.RecordHeaderError
	var alert tls.AlertError
	switch {
	case errors.As(err, &cv):
		return "certificate"
	case errors.Is(err, errTLSName):
		return "certificate"
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return "timeout"
	case errors.As(err, &rec):
		return "not_tls"
	case errors.As(err, &alert):
		return "alert"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return "other"
}

// tlsInbound keeps the accepted TLS connections by remote host: a
// request to a phone reached over TLS goes over a connection the phone
// opened (transport_tls_client.go), never over a new one.
type tlsInbound struct {
	mu     sync.Mutex
	byHost map[netip.Addr][]*tlsServerConn // oldest first
}

func (t *tlsInbound) add(c *tlsServerConn) {
	h := remoteIP(c.raw)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byHost == nil {
		t.byHost = map[netip.Addr][]*tlsServerConn{}
	}
	t.byHost[h] = append(t.byHost[h], c)
}

func (t *tlsInbound) remove(c *tlsServerConn) {
	h := remoteIP(c.raw)
	t.mu.Lock()
	defer t.mu.Unlock()
	list := t.byHost[h]
	for i, x := range list {
		if x == c {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(t.byHost, h)
	} else {
		t.byHost[h] = list
	}
}

// lookup returns the remote address of the connection to send to for
// dest: dest itself when a connection from it is open, else the one
// connection (its handshake done) from dest's host; "" when there is none.
func (t *tlsInbound) lookup(dest netip.AddrPort) string {
	if via := t.exact(dest); via != "" {
		return via
	}
	return t.onlyFromHost(dest.Addr(), false)
}

// exact is the connection from dest itself, "" when none.
func (t *tlsInbound) exact(dest netip.AddrPort) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.byHost[dest.Addr().Unmap()] {
		if a, ok := c.raw.RemoteAddr().(*net.TCPAddr); ok && a.AddrPort().Port() == dest.Port() && c.handshakeDone() {
			return c.raw.RemoteAddr().String()
		}
	}
	return ""
}

// onlyFromHost is the connection from host when it is the only one: with
// two devices on one host (softphones on a PC, phones behind one NAT),
// nothing but a registration (tlsRegistration) tells which connection is
// whose, and the newest one may well be another phone's. With proxy
// (host is a trusted proxy, which speaks for all its phones over any of its
// connections), the newest.
func (t *tlsInbound) onlyFromHost(host netip.Addr, proxy bool) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	only := ""
	for _, c := range t.byHost[host.Unmap()] {
		if !c.handshakeDone() {
			continue
		}
		if only != "" && !proxy {
			return ""
		}
		only = c.raw.RemoteAddr().String()
	}
	return only
}

func (c *tlsServerConn) handshakeDone() bool { return c.ready.Load() }
