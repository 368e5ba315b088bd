package sim

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"plateau/media"
)

// CallStats describes one call the PSTN saw or placed.
type CallStats struct {
	ID        string // Call-ID
	Direction string // "in" (toward the PSTN) or "out" (placed by it)
	Transport string // UDP or TCP
	Number    string // the dialled number (Request-URI user)
	From      string // the caller (From user)
	Action    Action // the rule followed
	Status    int    // last final status sent or received (0 while ringing)
	Auth      string // "", "none", "challenged", "ok", "failed"
	Answered  bool
	Hold      bool // last re-INVITE put the PSTN on hold
	ReInvites int
	RTPRecv   int
	RTPSent   int
	Start     time.Time
	End       time.Time // zero while the call is up
	HangupBy  string    // "remote", "pstn", "" (not answered)
	// SRTP: the call's media ran SRTP (SDES); SRTPDropped counts received
	// packets that failed authentication or replay and were dropped.
	SRTP        bool
	SRTPDropped int
	// RTPTo is where the simulator sends the call's RTP (Plateau's port).
	RTPTo string
}

// Option configures a PSTN or a Phone.
type Option func(*options)

type options struct {
	log *slog.Logger
	now func() time.Time
}

// WithLogger logs calls and SIP steps on log (default: discarded).
func WithLogger(log *slog.Logger) Option { return func(o *options) { o.log = log } }

// WithClock injects the clock (nonce expiry, call times).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

func buildOptions(opts []Option) options {
	o := options{log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: time.Now}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// PSTN is the simulated carrier: a SIP peer on UDP and TCP that follows
// the number rules of its Config.
type PSTN struct {
	cfg  Config
	log  *slog.Logger
	now  func() time.Time
	auth *challenger // nil: no authentication
	pcm  []int16     // play mode audio
	pool *media.PortPool

	ua        *sipgo.UserAgent
	srv       *sipgo.Server
	dialogUDP *sipgo.DialogUA
	dialogTCP *sipgo.DialogUA
	udp       net.PacketConn
	tcp       net.Listener
	addr      netip.AddrPort
	tls       *pstnTLS // nil without tls.listen (pstn_tls.go)

	ctx    context.Context // ends every call goroutine
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	calls map[string]*pstnCall // live dialogs by Call-ID
	stats map[string]*CallStats
	order []string

	serving chan struct{} // closed once Serve has registered the UDP listener

	binding   registration // registrar mode: the PBX's live registration (registrar.go)
	registers int          // REGISTERs accepted
	closeOnce sync.Once
}

// New validates cfg, loads the answer WAV and binds the SIP sockets (UDP and
// TCP on the same port; port 0 picks a free one, see Addr). Serve runs it;
// Close releases everything.
func New(cfg Config, opts ...Option) (*PSTN, error) {
	o := buildOptions(opts)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &PSTN{cfg: cfg, log: o.log, now: o.now, serving: make(chan struct{}), calls: map[string]*pstnCall{}, stats: map[string]*CallStats{}}
	if cfg.Auth.Username != "" {
		pw, err := cfg.password()
		if err != nil {
			return nil, err
		}
		p.auth = newChallenger(cfg.Auth.Realm, cfg.Auth.Username, pw, o.now)
	}
	if cfg.Answer.Mode == "play" {
		f, err := os.Open(cfg.resolve(cfg.Answer.WAV))
		if err != nil {
			return nil, bad("answer.wav", "%v", err)
		}
		p.pcm, err = media.ReadWAV(f)
		f.Close()
		if err != nil {
			return nil, bad("answer.wav", "%v", err)
		}
		if len(p.pcm) == 0 {
			return nil, bad("answer.wav", "has no audio")
		}
	}
	if cfg.Media.portMin != 0 {
		pool, err := media.NewPortPool(cfg.Media.portMin, cfg.Media.portMax, 2*time.Second, o.now)
		if err != nil {
			return nil, bad("media.rtp_ports", "%v", err)
		}
		p.pool = pool
	}
	if err := p.listen(); err != nil {
		return nil, err
	}
	if err := p.listenTLS(); err != nil {
		p.closeSockets()
		return nil, err
	}
	host := p.addr.Addr().String()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("pstn-sim"), sipgo.WithUserAgentHostname(host), sipgo.WithUserAgenTLSConfig(simClientTLS()))
	if err != nil {
		p.closeSockets()
		return nil, err
	}
	p.ua = ua
	p.srv, err = sipgo.NewServer(ua, sipgo.WithServerLogger(p.log))
	if err != nil {
		p.closeSockets()
		ua.Close()
		return nil, err
	}
	cliUDP, err := sipgo.NewClient(ua, sipgo.WithClientHostname(host), sipgo.WithClientPort(int(p.addr.Port())),
		sipgo.WithClientConnectionAddr(p.addr.String()), sipgo.WithClientLogger(p.log))
	if err != nil {
		p.closeSockets()
		ua.Close()
		return nil, err
	}
	cliTCP, _ := sipgo.NewClient(ua, sipgo.WithClientHostname(host), sipgo.WithClientLogger(p.log))
	p.dialogUDP = &sipgo.DialogUA{Client: cliUDP, ContactHDR: sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "pstn", Host: host, Port: int(p.addr.Port())}}}
	tcpContact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "pstn", Host: host, Port: int(p.addr.Port()), UriParams: sip.HeaderParams{}}}
	tcpContact.Address.UriParams.Add("transport", "tcp")
	p.dialogTCP = &sipgo.DialogUA{Client: cliTCP, ContactHDR: tcpContact}
	if p.tls != nil {
		// Its in-dialog requests reuse the connection Plateau opened
		// (RewriteContact: to the INVITE's source), as carriers' SBCs do.
		p.tls.dialogs = &sipgo.DialogUA{Client: cliTCP, ContactHDR: p.tls.contact(host), RewriteContact: true}
	}

	p.srv.OnInvite(p.onInvite)
	p.srv.OnAck(p.onAck)
	p.srv.OnBye(p.onBye)
	p.srv.OnCancel(func(req *sip.Request, tx sip.ServerTransaction) {
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
	})
	// REGISTER is accepted without a check so `plateau dial` can talk to
	// the simulator directly; nothing is stored. In registrar mode it is
	// authenticated and stored (registrar.go).
	p.srv.OnRegister(func(req *sip.Request, tx sip.ServerTransaction) {
		if p.cfg.Registrar.Enabled {
			p.onRegister(req, tx)
			return
		}
		res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
		if c := req.Contact(); c != nil {
			res.AppendHeader(c)
		}
		tx.Respond(res)
	})
	p.srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
		res.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS"))
		tx.Respond(res)
	})
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p, nil
}

// listen binds UDP then TCP on the same port, retrying when port 0 gave a
// UDP port whose TCP twin is taken.
func (p *PSTN) listen() error {
	var lastErr error
	for range 10 {
		udp, err := net.ListenPacket("udp", p.cfg.Listen)
		if err != nil {
			return bad("listen", "%v", err)
		}
		ua := udp.LocalAddr().(*net.UDPAddr).AddrPort()
		tcp, err := net.Listen("tcp", net.JoinHostPort(ua.Addr().Unmap().String(), strconv.Itoa(int(ua.Port()))))
		if err != nil {
			udp.Close()
			lastErr = err
			if _, port, _ := net.SplitHostPort(p.cfg.Listen); port != "0" {
				break
			}
			continue
		}
		p.udp, p.tcp = udp, tcp
		p.addr = netip.AddrPortFrom(ua.Addr().Unmap(), ua.Port())
		return nil
	}
	return bad("listen", "tcp: %v", lastErr)
}

func (p *PSTN) closeSockets() {
	if p.udp != nil {
		p.udp.Close()
	}
	if p.tcp != nil {
		p.tcp.Close()
	}
	if p.tls != nil {
		p.tls.l.Close()
	}
}

// Addr is the bound SIP address (UDP and TCP).
func (p *PSTN) Addr() netip.AddrPort { return p.addr }

// Serve handles SIP until ctx ends, then closes the PSTN (calls in
// progress get a BYE).
func (p *PSTN) Serve(ctx context.Context) error {
	errc := make(chan error, 3)
	p.wg.Add(2)
	go func() { defer p.wg.Done(); errc <- p.srv.ServeUDP(p.udp) }()
	go func() { defer p.wg.Done(); errc <- p.srv.ServeTCP(p.tcp) }()
	transports := "udp,tcp"
	if p.tls != nil {
		p.wg.Add(1)
		go func() { defer p.wg.Done(); errc <- p.srv.ServeTLS(p.tls.l) }()
		transports += ",tls " + p.tls.addr.String()
	}
	waitServing(p.srv, p.addr)
	close(p.serving)
	p.log.Info("pstn-sim listening", "addr", p.addr.String(), "transports", transports, "auth", p.auth != nil, "answer", p.cfg.Answer.Mode)
	var err error
	select {
	case <-ctx.Done():
	case <-p.ctx.Done():
	case err = <-errc:
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
	}
	p.Close()
	return err
}

// Close ends every call (BYE, bounded), stops serving and closes the
// sockets. Safe to call more than once.
func (p *PSTN) Close() error {
	p.closeOnce.Do(func() {
		p.cancel()
		p.closeSockets()
		p.ua.Close()
		p.wg.Wait()
	})
	return nil
}

// Calls returns a snapshot of every call seen, oldest first.
func (p *PSTN) Calls() []CallStats {
	p.mu.Lock()
	live := make([]*pstnCall, 0, len(p.calls))
	for _, c := range p.calls {
		live = append(live, c)
	}
	p.mu.Unlock()
	for _, c := range live {
		c.updateRTP()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]CallStats, 0, len(p.order))
	for _, id := range p.order {
		out = append(out, *p.stats[id])
	}
	return out
}

// stat returns the stats record of a Call-ID, creating it.
func (p *PSTN) stat(id string, create func() *CallStats) *CallStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.stats[id]
	if !ok {
		s = create()
		s.ID = id
		p.stats[id] = s
		p.order = append(p.order, id)
		const keep = 10000 // bound memory in long demo runs
		if len(p.order) > keep {
			delete(p.stats, p.order[0])
			p.order = p.order[1:]
		}
	}
	return s
}

func (p *PSTN) update(f func()) {
	p.mu.Lock()
	f()
	p.mu.Unlock()
}

func (p *PSTN) call(id string) *pstnCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[id]
}

func (p *PSTN) onAck(req *sip.Request, tx sip.ServerTransaction) {
	if c := p.call(callID(req)); c != nil && c.srv != nil {
		c.srv.ReadAck(req, tx) // a re-INVITE's ACK fails the CSeq check: harmless
	}
}

func (p *PSTN) onBye(req *sip.Request, tx sip.ServerTransaction) {
	c := p.call(callID(req))
	if c == nil {
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
		return
	}
	c.log.Info("← BYE")
	c.byeFromRemote()
	var err error
	if c.srv != nil {
		err = c.srv.ReadBye(req, tx)
	} else {
		err = c.cli.ReadBye(req, tx)
	}
	if err != nil {
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusBadRequest, err.Error(), nil))
	}
}

func callID(req *sip.Request) string {
	if h := req.CallID(); h != nil {
		return h.Value()
	}
	return ""
}
