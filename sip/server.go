// Package sip is Plateau's signalling layer: transports and their limits,
// the registrar with digest authentication and bans, and the trunks. The
// call layer (package b2bua) runs on it through the surface in
// calllayer.go.
package sip

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"plateau/certs"
)

// Options configure the SIP server.
type Options struct {
	Listen           string   // host:port for UDP and TCP
	Transports       []string // "udp", "tcp"
	Realm            string
	ExternalAddress  string // written in Contact/Via; defaults to the listen host
	NonceTTL         time.Duration
	DigestAlgorithms []string
	MinExpires       time.Duration
	MaxExpires       time.Duration
	DefaultExpires   time.Duration
	UDPBufferBytes   int
	BanMaxFailures   int
	BanWindow        time.Duration
	BanDuration      time.Duration
	MaxContacts      int // per user; 0 means 5
	// PhoneNetworks are where phones may be besides the address their
	// REGISTER came from (sip.phone_networks): a Contact, and every INVITE
	// Plateau sends to a phone, must be in one or be that source.
	PhoneNetworks []netip.Prefix

	// TrustedProxies are the proxies/SBCs whose Via tells the phone's
	// real address (sip.trusted_proxies; see source.go).
	TrustedProxies []netip.Prefix
	// TCP bounds the TCP listener (transport_tcp.go).
	TCP TCPLimits
	// RequestsPerSource is how many SIP messages a second one source
	// address may send (bursts up to twice that): over UDP the rest are
	// dropped before any transaction, over TCP reads slow down. 0: no
	// limit (transport_udp.go, transport_tcp.go).
	RequestsPerSource int
	// DigestURIServer also accepts a digest uri naming only this server,
	// as SIPp writes it (sip.digest_uri_check: server).
	DigestURIServer bool
	// TLS is the SIP over TLS listener ("tls" in Transports;
	// transport_tls.go).
	TLS *TLSOptions
}

// Users is the user directory the server authenticates against; an
// unknown extension is ErrUnknownAccount.
type Users interface {
	User(ctx context.Context, ext string) (Account, error)
}

// BindingStore persists registrations.
type BindingStore interface {
	SaveBindings(ctx context.Context, upserts, removals []Binding) error
	Bindings(ctx context.Context, ext string, now time.Time) ([]Binding, error)
}

// Auditor records security events (bans, refusals) in the audit chain.
type Auditor interface {
	Audit(ctx context.Context, kind, actor, subject, outcome, reason, source string, details map[string]any)
}

// Server is the SIP endpoint: transports, registrar, trunks; the call
// layer (package b2bua) attaches with EnableCalls (calllayer.go).
type Server struct {
	opts    Options
	users   Users
	log     *slog.Logger
	now     func() time.Time
	audit   Auditor
	metrics *metrics

	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	nonces *nonceIssuer
	bans   *banList
	reg    *registrar

	trusted TrustedProxies // see source.go
	limiter *sourceLimiter // messages per source (transport_udp.go, transport_tcp.go)
	// restartDelay is how long a supervised loop waits after a panic.
	restartDelay time.Duration
	auditBudget  *sourceLimiter // audit entries about refused sources

	// ctx is Serve's context: handlers run on sipgo's goroutines and use it
	// for lookups, so that shutdown cancels them.
	ctx context.Context

	calls CallLayer // nil until EnableCalls
	// Set by EnableCalls (calllayer.go): the client the call layer and the
	// trunks send with, and the trunks.
	client       *sipgo.Client
	dialogs      *sipgo.DialogUA
	trunks       []*Trunk
	trunkAddrs   []netip.AddrPort // resolved once: see IsTrunkAddr
	trunkAddrsOf map[*Trunk][]netip.AddrPort

	// SIP over TLS (transport_tls*.go): connections phones opened, those
	// Plateau opened to carriers, and the dialogs whose Contact is TLS.
	tlsIn      tlsInbound
	tlsOut     *tlsOutbound
	tlsConf    *tls.Config
	dialogsTLS *sipgo.DialogUA
	// dialogsSIPS: dialogs begun with a sips: Request-URI (sips: Contact).
	dialogsSIPS *sipgo.DialogUA

	listening atomic.Bool
	serving   servingGate                // the trunks' keepalives wait for it
	serveUDP  func(net.PacketConn) error // sipgo's ServeUDP; tests slow it down
	draining  atomic.Bool
	closeOnce sync.Once
}

// NewServer builds the server; Serve starts it.
func NewServer(opts Options, users Users, bindings BindingStore, audit Auditor, promReg prometheus.Registerer, log *slog.Logger, now func() time.Time) (*Server, error) {
	if opts.MaxContacts == 0 {
		opts.MaxContacts = 5
	}
	if opts.ExternalAddress == "" {
		host, _, _ := net.SplitHostPort(opts.Listen)
		opts.ExternalAddress = host
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("Plateau"), sipgo.WithUserAgentHostname(opts.ExternalAddress),
		sipgo.WithUserAgentParser(newParser()), // malformed headers answered 400 (transport_check.go)
		// sipgo never dials TLS itself (transport_tls_client.go).
		sipgo.WithUserAgenTLSConfig(untrustingTLSConfig()),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerTransports(sip.TransportsConfig{TLS: refusingTLSTransport()})))
	if err != nil {
		return nil, fmt.Errorf("sip user agent: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(log.With("component", "sipgo")))
	if err != nil {
		ua.Close()
		return nil, fmt.Errorf("sip server: %w", err)
	}
	s := &Server{
		opts: opts, users: users, log: log, now: now, audit: audit,
		metrics: newMetrics(promReg),
		ua:      ua, srv: srv, ctx: context.Background(),
		nonces: newNonceIssuer(opts.Realm, opts.DigestAlgorithms, opts.NonceTTL, now),
		bans:   newBanList(opts.BanMaxFailures, opts.BanWindow, opts.BanDuration, now),

		trusted: NewTrustedProxies(opts.TrustedProxies),
	}
	s.serveUDP = srv.ServeUDP
	s.tlsOut = &tlsOutbound{s: s, dial: dialTCP}
	if opts.TLS != nil && opts.TLS.Pair != nil {
		s.tlsConf = certs.ServerConfig(opts.TLS.Pair, nil)
	}
	s.limiter = newSourceLimiter(opts.RequestsPerSource, now)
	s.limiter.onLimit = func(ip netip.Addr) { s.refusedSource(ip, "rate_limited") }
	s.auditBudget = newSourceLimiter(1, now)
	s.nonces.serverURI = opts.DigestURIServer
	s.restartDelay = time.Second
	s.reg = newRegistrar(s, bindings)
	srv.OnRegister(s.guard(s.reg.handleRegister))
	srv.OnOptions(s.guard(s.handleOptions))
	srv.OnNoRoute(s.guard(func(req *sip.Request, tx sip.ServerTransaction) {
		s.respond(tx, req, sip.NewResponseFromRequest(req, sip.StatusMethodNotAllowed, "Method Not Allowed", nil))
	}))
	return s, nil
}

// Serve listens on the configured transports until ctx ends, then closes
// every listener it opened. It returns the first listener error.
func (s *Server) Serve(ctx context.Context) error {
	if err := s.reg.load(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.ctx = ctx
	var wg sync.WaitGroup
	errc := make(chan error, len(s.opts.Transports)+2) // tls serves two listeners
	var closers []func()
	for _, tp := range s.opts.Transports {
		switch tp {
		case "udp":
			conn, err := listenUDP(s.opts.Listen, s.opts.UDPBufferBytes)
			if err != nil {
				return err
			}
			closers = append(closers, func() { conn.Close() })
			wg.Add(1)
			served := s.serving.watch(s.newUDPConn(conn))
			go func() { defer wg.Done(); errc <- s.serveUDP(served) }()
		case "tcp":
			l, err := net.Listen("tcp", s.opts.Listen)
			if err != nil {
				for _, c := range closers {
					c()
				}
				return fmt.Errorf("sip listen tcp %s: %w", s.opts.Listen, err)
			}
			s.warnFileLimit()
			tl := s.newTCPListener(l)
			closers = append(closers, func() { tl.Close() })
			wg.Add(1)
			go func() { defer wg.Done(); errc <- s.srv.ServeTCP(tl) }()
		case "tls":
			if s.tlsConf == nil || s.opts.TLS == nil {
				for _, c := range closers {
					c()
				}
				return errors.New("sip: transport tls without sip.tls certificate")
			}
			l, err := net.Listen("tcp", s.opts.TLS.Listen)
			if err != nil {
				for _, c := range closers {
					c()
				}
				return fmt.Errorf("sip listen tls %s: %w", s.opts.TLS.Listen, err)
			}
			tl := s.newTLSListener(l, s.tlsConf)
			// Connections Plateau dials to TLS carriers enter sipgo here.
			hl := s.startTLSHandoff(l.Addr())
			closers = append(closers, func() { tl.Close() }, func() { hl.Close() })
			wg.Add(2)
			go func() { defer wg.Done(); errc <- s.srv.ServeTLS(tl) }()
			go func() { defer wg.Done(); errc <- s.srv.ServeTLS(hl) }()
		}
	}
	if s.calls != nil {
		wg.Add(1)
		go func() { defer wg.Done(); s.supervise(ctx, "sip.trunks", s.runTrunks) }()
		wg.Add(1)
		go func() { defer wg.Done(); s.supervise(ctx, "sip.calls", s.calls.Run) }()
	}
	wg.Add(2)
	go func() { defer wg.Done(); s.supervise(ctx, "sip.registrar", s.reg.run) }()
	go func() { defer wg.Done(); s.supervise(ctx, "sip.sweeper", s.sweepBans) }()
	s.listening.Store(true)
	if s.opts.TLS != nil && s.tlsConf != nil {
		s.log.Info("sip listening", "addr", s.opts.Listen, "transports", s.opts.Transports, "tls", s.opts.TLS.Listen,
			"fingerprint", s.opts.TLS.Pair.Fingerprint(), "not_after", s.opts.TLS.Pair.NotAfter())
	} else {
		s.log.Info("sip listening", "addr", s.opts.Listen, "transports", s.opts.Transports)
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
	}
	s.listening.Store(false)
	if s.calls != nil {
		s.calls.Shutdown()
	}
	cancel()
	for _, c := range closers {
		c()
	}
	wg.Wait()
	return err
}

func listenUDP(addr string, bufBytes int) (*net.UDPConn, error) {
	la, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("sip listen udp %s: %w", addr, err)
	}
	conn, err := net.ListenUDP("udp", la)
	if err != nil {
		return nil, fmt.Errorf("sip listen udp %s: %w", addr, err)
	}
	if bufBytes > 0 {
		// The kernel caps this at net.core.rmem_max; bursts of REGISTER
		// otherwise overflow the default buffer.
		conn.SetReadBuffer(bufBytes)
		conn.SetWriteBuffer(bufBytes)
	}
	return conn, nil
}

// Drain refuses new calls (503) while calls in progress go on.
func (s *Server) Drain() { s.draining.Store(true) }

// Draining reports whether Drain was called.
func (s *Server) Draining() bool { return s.draining.Load() }

// ActiveCalls returns the number of calls in progress.
func (s *Server) ActiveCalls() int {
	if s.calls == nil {
		return 0
	}
	return s.calls.ActiveCalls()
}

// Listening reports whether the transports are up and served (for /readyz).
func (s *Server) Listening() bool { return s.listening.Load() && s.serving.ready() }

// Close releases the user agent; call after Serve returned.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() { err = s.ua.Close() })
	return err
}

// guard is what every request goes through before its handler: a
// recovered panic answers 500 instead of ending the process (recover.go);
// requests from banned sources are dropped before any work; a request
// missing what handlers rely on is refused (transport_check.go) and never
// reaches them. It counts requests by method.
func (s *Server) guard(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		defer s.recoverRequest("sip.handler", req, tx)
		if !s.screen(req, func(res *sip.Response) { s.respond(tx, req, res) }) {
			return
		}
		if s.overProxiedRate(req) {
			if !req.IsAck() {
				res := sip.NewResponseFromRequest(req, sip.StatusServiceUnavailable, "Service Unavailable", nil)
				res.AppendHeader(sip.NewHeader("Retry-After", "1"))
				s.respond(tx, req, res)
			}
			return
		}
		h(req, tx)
	}
}

// screen counts req, drops it when its source is banned, and refuses it
// when it is malformed (answering with send, except an ACK, which gets no
// answer). It reports whether req may go on to a handler. guard and the
// stateless UDP path (transport_udp.go) share it, so both refuse alike.
func (s *Server) screen(req *sip.Request, send func(*sip.Response)) bool {
	s.metrics.requests.WithLabelValues(methodLabel(req.Method)).Inc()
	if src, ok := s.source(req); ok && s.bans.sourceBanned(src.BanKey()) {
		s.metrics.dropped.WithLabelValues("banned").Inc()
		return false
	}
	bad := checkRequest(req)
	if bad == nil {
		return true
	}
	s.metrics.malformed.WithLabelValues(bad.label).Inc()
	if src, ok := sourceAddr(req); ok {
		s.refusedSource(src, "malformed:"+bad.label)
	}
	if !req.IsAck() {
		res := sip.NewResponseFromRequest(req, bad.status, bad.phrase, nil)
		res.SipVersion = "SIP/2.0" // ours, not the request's (a 505 names what we speak)
		send(res)
	}
	return false
}

// overProxiedRate applies sip.limits.requests_per_source to the phone
// behind a trusted proxy, once its real source is known: the transports do
// not count a trusted proxy's messages, or one phone behind it would use up
// the rate of every phone behind it. The proxy keeps its own flood limits
// (Kamailio's pike); what gets here costs a transaction, which is why the
// answer is a 503 the proxy can relay rather than silence it would retry.
func (s *Server) overProxiedRate(req *sip.Request) bool {
	ip, ok := sourceAddr(req)
	if !ok || !s.trusted.Contains(ip) {
		return false // counted by the transport already
	}
	key := ip // a proxy whose Via hides the source: its own bucket
	if src, ok := s.source(req); ok {
		key = src.BanKey()
	}
	if s.limiter.allow(key) {
		return false
	}
	s.metrics.dropped.WithLabelValues("rate_limited").Inc()
	return true
}

// respond sends a response and counts it.
func (s *Server) respond(tx sip.ServerTransaction, req *sip.Request, res *sip.Response) {
	s.metrics.responses.WithLabelValues(methodLabel(req.Method), statusClass(int(res.StatusCode))).Inc()
	if err := tx.Respond(res); err != nil {
		s.log.Debug("respond failed", "method", req.Method, "status", res.StatusCode, "err", err)
	}
}

func (s *Server) handleOptions(req *sip.Request, tx sip.ServerTransaction) {
	s.respond(tx, req, optionsResponse(req))
}

// sourceAddr is the network source of a request (not its Via).
func sourceAddr(req *sip.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// sweepBans forgets old failures and exports the banned gauge.
func (s *Server) sweepBans(ctx context.Context) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			srcs, accts := s.bans.sweep()
			s.metrics.bannedSources.Set(float64(srcs))
			s.metrics.bannedAccounts.Set(float64(accts))
			s.metrics.limitedSources.Set(float64(s.limiter.sweep()))
		}
	}
}
