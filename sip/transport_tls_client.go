package sip

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emiago/sipgo/sip"

	"plateau/certs"
)

// Outgoing TLS. sipgo dials TLS itself with one tls.Config for the whole
// user agent, and a tls.Config cannot tell which destination it is
// verifying (an IP destination leaves ServerName empty in the handshake's
// state). A trunk needs its own roots, name and client certificate, so
// Plateau never lets sipgo dial TLS:
//
//   - sipgo's TLS transport gets a dialer that refuses every connection
//     (no packet leaves) and a tls.Config that trusts nothing;
//   - a request to a TLS trunk's address (or one of its allowed sources)
//     goes out on a connection Plateau dialled and verified itself with
//     that trunk's certs.ClientConfig, handed to sipgo through a listener
//     of its own (handoffListener) so that sipgo pools it under the
//     carrier's address and reads from it like any accepted connection;
//   - a request to a phone over TLS goes over a connection the phone
//     opened (tlsInbound), never a new one: phones present no certificate
//     Plateau could verify. That is the connection from its Contact's
//     address, else the one its REGISTER of that Contact came on, else the
//     only connection from its host (with several, another device's could
//     be taken: the request fails instead). A phone whose connection is
//     gone is unreachable until it registers again.
//
// A connection that fails verification ends the request before anything
// is written: the call fails closed, and nothing is sent in clear instead.

// ErrTLS is the class of the errors of outgoing TLS (a carrier's
// certificate refused, no connection to a phone): the trunk leg answers
// the operator 503 with a Reason naming TLS.
var ErrTLS = errors.New("sip tls")

var errTLSName = errors.New("certificate name mismatch")

// TLSError is an outgoing TLS connection that was refused.
type TLSError struct {
	Dest   string // host:port
	Trunk  string // "" for a phone
	Reason string // certificate, timeout, no_connection, ...
	Err    error
}

func (e *TLSError) Error() string {
	who := "phone " + e.Dest
	if e.Trunk != "" {
		who = "trunk " + e.Trunk + " at " + e.Dest
	}
	return fmt.Sprintf("TLS to %s: %s: %v", who, e.Reason, e.Err)
}

func (e *TLSError) Unwrap() []error { return []error{ErrTLS, e.Err} }

// errSipgoTLSDial is what sipgo's own TLS dialer always returns.
var errSipgoTLSDial = errors.New("sip tls: connections are dialled by Plateau only (transport_tls_client.go)")

// refusingTLSTransport is sipgo's TLS transport with a dialer that
// refuses every outgoing connection before it is opened.
func refusingTLSTransport() *sip.TransportTLS {
	return &sip.TransportTLS{TransportTCP: &sip.TransportTCP{
		DialerCreate: func(net.Addr) net.Dialer {
			return net.Dialer{ControlContext: func(context.Context, string, string, syscall.RawConn) error {
				return errSipgoTLSDial
			}}
		},
	}}
}

// untrustingTLSConfig is the user agent's TLS client config, in case a
// connection got past the dialer anyway: no root, nothing verifies.
func untrustingTLSConfig() *tls.Config { return certs.ClientConfig("", x509.NewCertPool(), nil) }

// handoffListener is how connections Plateau dialled enter sipgo's pool:
// sipgo serves it like a listener (ServeTLS) and files each connection
// under its remote address, where requests to that address find it.
type handoffListener struct {
	addr   net.Addr
	ch     chan handoff
	closed chan struct{}
	once   sync.Once
	last   chan struct{} // Accept's goroutine only
}

type handoff struct {
	c          net.Conn
	registered chan struct{}
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, ch: make(chan handoff), closed: make(chan struct{})}
}

// Accept is called by sipgo's serving loop, which calls it again only
// after it has pooled the previous connection: that is when give returns.
func (l *handoffListener) Accept() (net.Conn, error) {
	if l.last != nil {
		close(l.last)
		l.last = nil
	}
	select {
	case h := <-l.ch:
		l.last = h.registered
		return h.c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }

// give hands c to sipgo and returns once sipgo has pooled it.
func (l *handoffListener) give(ctx context.Context, c net.Conn) error {
	h := handoff{c: c, registered: make(chan struct{})}
	select {
	case l.ch <- h:
	case <-ctx.Done():
		return ctx.Err()
	case <-l.closed:
		return net.ErrClosed
	}
	select {
	case <-h.registered:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-l.closed:
		return net.ErrClosed
	}
}

// tlsOutbound holds the verified connections Plateau dialled, by
// destination.
type tlsOutbound struct {
	s       *Server
	handoff *handoffListener
	mu      sync.Mutex
	conns   map[netip.AddrPort]*tlsClientConn
	dialing map[netip.AddrPort]*sync.Mutex
	dial    func(ctx context.Context, addr string) (net.Conn, error)
}

// tlsClientConn forgets itself when sipgo closes it (the carrier went
// away): the next request dials again.
type tlsClientConn struct {
	*tls.Conn
	out     *tlsOutbound
	dest    netip.AddrPort
	once    sync.Once
	closed  atomic.Bool
	pending []byte // read while confirming the handshake; sipgo reads it first
}

func (c *tlsClientConn) Read(b []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(b, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

func (c *tlsClientConn) Close() error {
	c.closed.Store(true)
	c.once.Do(func() {
		c.out.mu.Lock()
		if c.out.conns[c.dest] == c {
			delete(c.out.conns, c.dest)
		}
		c.out.mu.Unlock()
		c.out.s.metrics.tlsOutConns.Dec()
	})
	return c.Conn.Close()
}

// ensure makes sure a verified connection to dest is in sipgo's pool.
func (o *tlsOutbound) ensure(ctx context.Context, dest netip.AddrPort, t *Trunk) error {
	if o.handoff == nil {
		return &TLSError{Dest: dest.String(), Trunk: t.Name, Reason: "not_served", Err: errors.New("the TLS transport is not served (sip.transports has no tls)")}
	}
	o.mu.Lock()
	if c := o.conns[dest]; c != nil && !c.closed.Load() {
		o.mu.Unlock()
		return nil
	}
	if o.dialing == nil {
		o.dialing = map[netip.AddrPort]*sync.Mutex{}
	}
	dm := o.dialing[dest]
	if dm == nil {
		dm = &sync.Mutex{}
		o.dialing[dest] = dm
	}
	o.mu.Unlock()
	// One dial per destination at a time; the others use its connection.
	dm.Lock()
	defer dm.Unlock()
	o.mu.Lock()
	done := o.conns[dest] != nil && !o.conns[dest].closed.Load()
	o.mu.Unlock()
	if done {
		return nil
	}
	c, err := o.connect(ctx, dest, t)
	if err != nil {
		return err
	}
	o.s.metrics.tlsOutConns.Inc()
	if err := o.handoff.give(ctx, c); err != nil {
		c.Close()
		return &TLSError{Dest: dest.String(), Trunk: t.Name, Reason: "handoff", Err: err}
	}
	// Known only once sipgo has pooled it: a request that finds it here
	// finds it in sipgo's pool too.
	o.mu.Lock()
	if o.conns == nil {
		o.conns = map[netip.AddrPort]*tlsClientConn{}
	}
	o.conns[dest] = c
	o.mu.Unlock()
	return nil
}

// connect dials dest and verifies the carrier with t's TLS config (its
// roots, its server name, its client certificate).
func (o *tlsOutbound) connect(ctx context.Context, dest netip.AddrPort, t *Trunk) (*tlsClientConn, error) {
	ctx, cancel := context.WithTimeout(ctx, tlsHandshakeTimeout)
	defer cancel()
	fail := func(reason string, err error) error {
		o.s.metrics.tlsHandshakeFailures.WithLabelValues("out", reason).Inc()
		return &TLSError{Dest: dest.String(), Trunk: t.Name, Reason: reason, Err: err}
	}
	raw, err := o.dial(ctx, dest.String())
	if err != nil {
		return nil, fail("connect", err)
	}
	cfg, asked, ticket := confirmable(t.TLS)
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, fail(tlsFailureReason(err), err)
	}
	c := &tlsClientConn{Conn: tc, out: o, dest: dest}
	if asked.Load() && tc.ConnectionState().Version >= tls.VersionTLS13 {
		if err := c.confirm(ticket, tlsConfirmTimeout); err != nil {
			raw.Close()
			return nil, fail("certificate", err)
		}
	}
	return c, nil
}

// In TLS 1.3 the client's handshake ends before the server has checked
// the client's certificate: a carrier that wants mutual TLS and refuses
// ours says so in an alert after that. When the carrier asked for a
// certificate, Plateau waits for its verdict before sending anything: an
// alert refuses the connection; a session ticket (what servers send once
// the client is accepted) or tlsConfirmTimeout of silence accepts it.
const tlsConfirmTimeout = 2 * time.Second

// confirmable clones base so that the handshake tells whether the server
// asked for a client certificate, and signals the session tickets the
// server sends (none is kept: no resumption).
func confirmable(base *tls.Config) (*tls.Config, *atomic.Bool, chan struct{}) {
	cfg := base.Clone()
	asked := &atomic.Bool{}
	get := cfg.GetClientCertificate
	cfg.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		asked.Store(true)
		if get == nil {
			return &tls.Certificate{}, nil // none: what Go sends by default
		}
		return get(cri)
	}
	ticket := make(chan struct{}, 1)
	cfg.ClientSessionCache = ticketSignal(ticket)
	return cfg, asked, ticket
}

// ticketSignal is a session cache that keeps nothing and signals a ticket.
type ticketSignal chan struct{}

func (t ticketSignal) Get(string) (*tls.ClientSessionState, bool) { return nil, false }
func (t ticketSignal) Put(string, *tls.ClientSessionState) {
	select {
	case t <- struct{}{}:
	default:
	}
}

// confirm reads until the server's verdict on the client certificate
// (see tlsConfirmTimeout). Bytes read meanwhile are kept for sipgo.
func (c *tlsClientConn) confirm(ticket <-chan struct{}, limit time.Duration) error {
	c.Conn.SetReadDeadline(time.Now().Add(limit))
	defer c.Conn.SetReadDeadline(time.Time{})
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ticket:
			c.Conn.SetReadDeadline(time.Now()) // accepted: stop waiting
		case <-done:
		}
	}()
	buf := make([]byte, 4096)
	n, err := c.Conn.Read(buf)
	c.pending = append(c.pending, buf[:n]...)
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		return nil
	}
	return fmt.Errorf("the carrier refused the connection after the handshake: %w", err)
}

func dialTCP(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// routeTLS prepares a request that leaves over TLS: to a TLS trunk, a
// verified connection of Plateau's own; to anyone else (a phone), the
// connection that phone opened. Its error fails the request before any
// byte is written.
func (s *Server) routeTLS(ctx context.Context, req *sip.Request) error {
	host, port, err := SplitHostPort(req.Destination())
	if err != nil {
		return &TLSError{Dest: req.Destination(), Reason: "destination", Err: err}
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return &TLSError{Dest: req.Destination(), Reason: "destination", Err: fmt.Errorf("%q is not an IP address", host)}
	}
	if port == 0 {
		port = sip.DefaultTlsPort
	}
	dest := netip.AddrPortFrom(a.Unmap(), uint16(port))
	if t := s.tlsTrunkFor(dest.Addr()); t != nil {
		if ctx == nil {
			ctx = s.ctx
		}
		return s.tlsOut.ensure(ctx, dest, t)
	}
	// The phone's own connection first (from its Contact, or the one it
	// registered that Contact on), and only then the one connection from
	// its host: never another device's (a trusted proxy's: any of them).
	via := s.tlsIn.exact(dest)
	if via == "" {
		via = s.tlsRegistration(dest)
	}
	if via == "" {
		via = s.tlsIn.onlyFromHost(dest.Addr(), s.trusted.Contains(dest.Addr()))
	}
	if via == "" {
		s.metrics.tlsHandshakeFailures.WithLabelValues("out", "no_connection").Inc()
		return &TLSError{Dest: dest.String(), Reason: "no_connection",
			Err: errors.New("no TLS connection from this phone is open (a phone is reached over the connection it registered on; it must register again)")}
	}
	if via != dest.String() {
		req.SetDestination(via)
	}
	return nil
}

// tlsRegistration is, for a phone whose Contact is dest (a private address
// behind NAT, say), the connection its REGISTER came over, when it is
// still open: the device that registered that Contact. "" when none.
// Another extension may have registered the same Contact (any address of
// sip.phone_networks may be a Contact): the device at dest's own address
// wins, and when several other devices claim it, none does: taking the
// wrong one would hand a phone's calls to whoever registered its Contact.
func (s *Server) tlsRegistration(dest netip.AddrPort) string {
	if s.reg == nil {
		return ""
	}
	var local, other []string // open connections that registered dest
	add := func(list *[]string, via string) {
		for _, v := range *list {
			if v == via {
				return
			}
		}
		*list = append(*list, via)
	}
	for _, ext := range s.reg.extensions() {
		for _, b := range s.reg.contacts(ext) {
			if b.Transport != "tls" {
				continue
			}
			var u sip.Uri
			if sip.ParseUri(b.Contact, &u) != nil {
				continue
			}
			a, err := netip.ParseAddr(strings.Trim(u.Host, "[]"))
			port := u.Port
			if port == 0 {
				port = sip.DefaultTlsPort
			}
			if err != nil || a.Unmap() != dest.Addr() || uint16(port) != dest.Port() {
				continue
			}
			src, err := netip.ParseAddrPort(b.Source)
			if err != nil {
				continue
			}
			src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
			if via := s.tlsIn.exact(src); via != "" {
				if src.Addr() == dest.Addr() {
					add(&local, via)
				} else {
					add(&other, via)
				}
			}
		}
	}
	switch {
	case len(local) == 1:
		return local[0]
	case len(local) == 0 && len(other) == 1:
		return other[0]
	}
	if len(local)+len(other) > 1 {
		s.log.Warn("TLS Contact registered over several connections: none is used", "contact", dest.String(), "connections", append(local, other...))
	}
	return ""
}

// tlsTrunkFor is the TLS trunk whose address or allowed sources hold a.
func (s *Server) tlsTrunkFor(a netip.Addr) *Trunk {
	for _, t := range s.trunks {
		if t.Transport != "tls" || t.TLS == nil {
			continue
		}
		for _, ap := range s.trunkAddrsOf[t] {
			if ap.Addr() == a {
				return t
			}
		}
	}
	for _, t := range s.trunks {
		if t.Transport == "tls" && t.TLS != nil && t.Allows(a) {
			return t
		}
	}
	return nil
}

// startTLSHandoff starts serving the handoff listener (Serve).
func (s *Server) startTLSHandoff(addr net.Addr) *handoffListener {
	l := newHandoffListener(addr)
	s.tlsOut.handoff = l
	return l
}
