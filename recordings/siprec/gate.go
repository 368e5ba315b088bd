package siprec

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Auditor appends to the recorder's audit chain (plateau's audit log).
type Auditor interface {
	Audit(ctx context.Context, kind, actor, subject, outcome, reason, source string, details map[string]any)
}

// Audit reasons of "recorder.refused" entries.
const (
	AuditSourceNotAllowed = "SOURCE_NOT_ALLOWED"
	AuditTLSNoCertificate = "TLS_NO_CERTIFICATE"
	AuditTLSBadCert       = "TLS_BAD_CERTIFICATE"
	AuditTLSHandshake     = "TLS_HANDSHAKE_FAILED"
	// AuditHeldBack: the refusals a window did not log one by one.
	AuditHeldBack = "REFUSALS_HELD_BACK"
)

var auditReason = map[string]string{
	RefusedSource: AuditSourceNotAllowed, RefusedNoCertificate: AuditTLSNoCertificate,
	RefusedBadCert: AuditTLSBadCert, RefusedHandshake: AuditTLSHandshake, RefusedBusy: AuditTLSHandshake,
}

// refusals logs, counts and audits what the recorder refuses. Every
// refusal is counted; the log and the audit chain get the first refusal of
// a source and reason per window, then one entry per window with the
// number held back, so a host hammering the recorder cannot fill its audit
// log (one SQLite write per packet) or its disk. A source is a host's
// address, or its /64 for IPv6 (a host picks any address of its /64 at
// will); and all sources together get at most maxAuditsPerWindow entries
// a window, so forged UDP sources or a rotating address cannot buy one
// audit write each: beyond it, one entry per window says how many
// refusals were held back.
type refusals struct {
	log     *slog.Logger
	audit   Auditor
	metrics *Metrics
	now     func() time.Time
	window  time.Duration

	mu   sync.Mutex
	seen map[refusalKey]*refusalState
	// The window's budget of entries, shared by every source.
	budgetStart time.Time
	budgetUsed  int
	heldBack    int // refusals not logged for want of budget or of memory
}

// maxAuditsPerWindow bounds the log and audit entries of refusals a window,
// whatever the number of sources (a real incident involves a few hosts).
const maxAuditsPerWindow = 64

type refusalKey struct {
	src    netip.Prefix // the host, or its /64 for IPv6
	reason string
}

// sourceKey is what a refusal is rate-limited by: an IPv4 address, or an
// IPv6 address's /64 (one LAN host has all of its /64: SLAAC privacy
// addresses, or any address it assigns itself).
func sourceKey(src netip.Addr) netip.Prefix {
	src = src.Unmap()
	if src.Is6() {
		p, _ := src.Prefix(64)
		return p
	}
	p, _ := src.Prefix(src.BitLen()) // BitLen is 0 for the zero Addr
	return p
}

type refusalState struct {
	last       time.Time
	suppressed int
}

// maxRefusalKeys bounds the memory a spoofed-source flood can take (UDP
// sources are forged at will); beyond it, stale keys are purged and, if
// none is stale, refusals are counted but not logged.
const maxRefusalKeys = 4096

func newRefusals(log *slog.Logger, audit Auditor, m *Metrics, now func() time.Time) *refusals {
	return &refusals{log: log, audit: audit, metrics: m, now: now, window: time.Minute, seen: map[refusalKey]*refusalState{}}
}

// refuse records one refusal of src for reason (a Refused* constant);
// detail says what was refused (a SIP method, "connection", the TLS error).
func (r *refusals) refuse(src netip.Addr, reason, detail string, extra map[string]any) {
	r.metrics.refuse(reason)
	now := r.now()
	k := refusalKey{sourceKey(src), reason}
	r.mu.Lock()
	heldBack := r.newBudget(now)
	st := r.seen[k]
	if st == nil {
		if len(r.seen) >= maxRefusalKeys {
			for key, s := range r.seen {
				if now.Sub(s.last) >= r.window {
					delete(r.seen, key)
				}
			}
		}
		if len(r.seen) >= maxRefusalKeys {
			r.heldBack++
			r.mu.Unlock()
			r.summarize(heldBack)
			return
		}
		st = &refusalState{}
		r.seen[k] = st
	} else if now.Sub(st.last) < r.window && !now.Before(st.last) && !st.last.IsZero() {
		st.suppressed++
		r.mu.Unlock()
		r.summarize(heldBack)
		return
	}
	if r.budgetUsed >= maxAuditsPerWindow {
		// st.last unchanged: this source gets its entry once budget is back.
		st.suppressed++
		r.heldBack++
		r.mu.Unlock()
		r.summarize(heldBack)
		return
	}
	r.budgetUsed++
	suppressed := st.suppressed
	st.last, st.suppressed = now, 0
	r.mu.Unlock()
	r.summarize(heldBack)

	details := map[string]any{"detail": detail}
	for k, v := range extra {
		details[k] = v
	}
	if suppressed > 0 {
		details["suppressed_before"] = suppressed
	}
	r.log.Warn("recorder refused a client", "reason", reason, "source", src.String(), "detail", detail, "suppressed_before", suppressed)
	if r.audit != nil {
		r.audit.Audit(context.Background(), "recorder.refused", "", detail, "refused", auditReason[reason], src.String(), details)
	}
}

// newBudget starts a new window's budget when the last one is over (or the
// clock went back), returning the refusals the last window held back
// (r.mu held).
func (r *refusals) newBudget(now time.Time) int {
	if !r.budgetStart.IsZero() && now.Sub(r.budgetStart) < r.window && !now.Before(r.budgetStart) {
		return 0
	}
	held := r.heldBack
	r.budgetStart, r.budgetUsed, r.heldBack = now, 0, 0
	if held > 0 {
		r.budgetUsed++ // the summary is an entry of the new window
	}
	return held
}

// summarize writes the one entry that says how many refusals a window held
// back, from however many sources.
func (r *refusals) summarize(heldBack int) {
	if heldBack == 0 {
		return
	}
	r.log.Warn("recorder refused more clients than it logs: refusals held back in the last window (all counted in plateau_recorder_refused_total)",
		"held_back", heldBack)
	if r.audit != nil {
		r.audit.Audit(context.Background(), "recorder.refused", "", "refusals held back", "refused", AuditHeldBack, "",
			map[string]any{"held_back": heldBack})
	}
}

// allowed reports whether src may use the recorder: always when no
// allowed sources are configured (the config then keeps the recorder on
// loopback), else when a prefix holds it.
func allowed(prefixes []netip.Prefix, src netip.Addr) bool {
	if len(prefixes) == 0 {
		return true
	}
	src = src.Unmap()
	for _, p := range prefixes {
		if p.Contains(src) {
			return true
		}
	}
	return false
}

func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// tlsRefusal classifies a failed server handshake.
func tlsRefusal(err error) string {
	var verr *tls.CertificateVerificationError
	var uerr x509.UnknownAuthorityError
	var ierr x509.CertificateInvalidError
	switch {
	case strings.Contains(err.Error(), "didn't provide a certificate"):
		return RefusedNoCertificate
	case errors.As(err, &verr), errors.As(err, &uerr), errors.As(err, &ierr):
		return RefusedBadCert
	}
	return RefusedHandshake
}

// handshakeTimeout bounds a TLS handshake: a client that connects and
// says nothing holds a slot no longer.
const handshakeTimeout = 10 * time.Second

// maxHandshakes bounds the handshakes in progress; maxHandshakesPerSource
// bounds one host's share (a host inside allowed_sources without a
// certificate, holding connections open mute, must not take every slot
// and lock the Plateau nodes out of their recorder).
const (
	maxHandshakes          = 64
	maxHandshakesPerSource = 8
)

// gateListener is what sipgo's stream transports accept from: only
// connections from allowed sources and, with TLS, only those whose client
// completed the handshake with a certificate the client CA signed. sipgo
// would otherwise accept any connection and fail the handshake silently on
// its first read; here each refusal is logged, counted and audited, and
// handshakes run beside the accept loop so a slow client blocks no other.
type gateListener struct {
	raw     net.Listener
	tlsConf *tls.Config // nil: plain TCP
	allowed []netip.Prefix
	ref     *refusals
	log     *slog.Logger

	conns  chan net.Conn
	ctx    context.Context
	cancel context.CancelFunc
	slots  chan struct{}
	wg     sync.WaitGroup
	once   sync.Once

	mu       sync.Mutex
	inFlight map[netip.Prefix]int // handshakes in progress by sourceKey
}

func newGateListener(raw net.Listener, tlsConf *tls.Config, allowedSrc []netip.Prefix, ref *refusals, log *slog.Logger) *gateListener {
	g := &gateListener{raw: raw, tlsConf: tlsConf, allowed: allowedSrc, ref: ref, log: log,
		conns: make(chan net.Conn), slots: make(chan struct{}, maxHandshakes), inFlight: map[netip.Prefix]int{}}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.wg.Add(1)
	go g.run()
	return g
}

func (g *gateListener) run() {
	defer g.wg.Done()
	for {
		c, err := g.raw.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || g.ctx.Err() != nil {
				g.cancel()
				return
			}
			// EMFILE and the like: the listener lives on.
			g.log.Warn("accept", "err", err)
			select {
			case <-time.After(50 * time.Millisecond):
			case <-g.ctx.Done():
				return
			}
			continue
		}
		src := addrOf(c.RemoteAddr())
		if !allowed(g.allowed, src) {
			c.Close()
			g.ref.refuse(src, RefusedSource, "connection", nil)
			continue
		}
		if g.tlsConf == nil {
			g.deliver(c)
			continue
		}
		release, ok := g.acquire(src)
		if !ok {
			c.Close()
			g.ref.refuse(src, RefusedBusy, "TLS handshake", nil)
			continue
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			defer release()
			g.handshake(c, src)
		}()
	}
}

// acquire takes a handshake slot for src, if the gate and src's share
// have one free.
func (g *gateListener) acquire(src netip.Addr) (release func(), ok bool) {
	k := sourceKey(src)
	g.mu.Lock()
	if g.inFlight[k] >= maxHandshakesPerSource {
		g.mu.Unlock()
		return nil, false
	}
	select {
	case g.slots <- struct{}{}:
	default:
		g.mu.Unlock()
		return nil, false
	}
	g.inFlight[k]++
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		if g.inFlight[k]--; g.inFlight[k] == 0 {
			delete(g.inFlight, k)
		}
		g.mu.Unlock()
		<-g.slots
	}, true
}

func (g *gateListener) handshake(c net.Conn, src netip.Addr) {
	tc := tls.Server(c, g.tlsConf)
	ctx, cancel := context.WithTimeout(g.ctx, handshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		tc.Close()
		if g.ctx.Err() != nil {
			return
		}
		reason := tlsRefusal(err)
		g.ref.refuse(src, reason, "TLS handshake", map[string]any{"error": err.Error()})
		return
	}
	st := tc.ConnectionState()
	if len(st.PeerCertificates) > 0 {
		leaf := st.PeerCertificates[0]
		g.log.Info("TLS client accepted", "source", c.RemoteAddr().String(), "subject", leaf.Subject.String(),
			"tls", tls.VersionName(st.Version))
	}
	g.ref.metrics.tlsAccept()
	g.deliver(tc)
}

func (g *gateListener) deliver(c net.Conn) {
	select {
	case g.conns <- c:
	case <-g.ctx.Done():
		c.Close()
	}
}

// Accept returns the next connection that passed the gate.
func (g *gateListener) Accept() (net.Conn, error) {
	select {
	case c := <-g.conns:
		return c, nil
	case <-g.ctx.Done():
		return nil, net.ErrClosed
	}
}

// Close stops accepting, ends handshakes in progress and waits for them.
func (g *gateListener) Close() error {
	var err error
	g.once.Do(func() {
		g.cancel()
		err = g.raw.Close()
		g.wg.Wait()
	})
	return err
}

func (g *gateListener) Addr() net.Addr { return g.raw.Addr() }
