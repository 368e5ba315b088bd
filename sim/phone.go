package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"plateau/media"
)

// PhoneConfig describes the test user agent.
type PhoneConfig struct {
	// Server is the registrar and outbound proxy, host:port (Plateau).
	Server string
	// Transport is udp (default) or tcp.
	Transport string
	// User is the extension; Password its digest secret.
	User, Password string
	// Domain is the SIP domain of the user's URIs; default the server host.
	Domain string
	// Bind is the local SIP address, default 127.0.0.1:0 (ephemeral).
	Bind string
	// MediaIP is where RTP is bound and advertised, default 127.0.0.1.
	MediaIP netip.Addr
	// Out receives one line per SIP step ("→ INVITE ...", "← 200 OK").
	Out io.Writer
}

// Phone is a small SIP user agent: it registers, places calls, plays
// audio and counts what it gets back. It answers BYE and re-INVITE from the
// far end; it does not accept new calls (480).
type Phone struct {
	cfg    PhoneConfig
	log    *slog.Logger
	domain string
	local  netip.AddrPort

	ua      *sipgo.UserAgent
	srv     *sipgo.Server
	client  *sipgo.Client
	dialog  *sipgo.DialogUA
	contact sip.ContactHeader
	udp     net.PacketConn
	tcp     net.Listener
	wg      sync.WaitGroup

	outMu sync.Mutex

	mu      sync.Mutex
	calls   map[string]*Call
	regCall string
	regCSeq uint32

	closeOnce sync.Once
}

// NewPhone binds the phone's SIP socket(s) and starts serving in-dialog
// requests. Close releases them.
func NewPhone(cfg PhoneConfig, opts ...Option) (*Phone, error) {
	o := buildOptions(opts)
	if cfg.Transport == "" {
		cfg.Transport = "udp"
	}
	cfg.Transport = strings.ToLower(cfg.Transport)
	if cfg.Transport != "udp" && cfg.Transport != "tcp" {
		return nil, fmt.Errorf("phone: transport %q is not udp or tcp", cfg.Transport)
	}
	host, _, err := net.SplitHostPort(cfg.Server)
	if err != nil {
		return nil, fmt.Errorf("phone: server %q is not host:port", cfg.Server)
	}
	if cfg.Bind == "" {
		cfg.Bind = defaultBind(host)
	}
	if !cfg.MediaIP.IsValid() {
		cfg.MediaIP = netip.MustParseAddr("127.0.0.1")
		if bh, _, err := net.SplitHostPort(cfg.Bind); err == nil {
			if a, err := netip.ParseAddr(bh); err == nil && !a.IsUnspecified() {
				cfg.MediaIP = a // the media check wants the SDP address to be the signalling source
			}
		}
	}
	host = uriHost(host)
	p := &Phone{cfg: cfg, log: o.log, domain: cfg.Domain, calls: map[string]*Call{}, regCall: sip.GenerateTagN(24), regCSeq: 1}
	if p.domain == "" {
		p.domain = host
	}
	var start func() error
	if cfg.Transport == "udp" {
		c, err := net.ListenPacket("udp", cfg.Bind)
		if err != nil {
			return nil, fmt.Errorf("phone: %w", err)
		}
		p.udp = c
		a := c.LocalAddr().(*net.UDPAddr).AddrPort()
		p.local = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
		start = func() error { return p.srv.ServeUDP(c) }
	} else {
		l, err := net.Listen("tcp", cfg.Bind)
		if err != nil {
			return nil, fmt.Errorf("phone: %w", err)
		}
		p.tcp = l
		a := l.Addr().(*net.TCPAddr).AddrPort()
		p.local = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
		start = func() error { return p.srv.ServeTCP(l) }
	}
	lh := uriHost(p.local.Addr().String())
	if p.ua, err = sipgo.NewUA(sipgo.WithUserAgent(cfg.User), sipgo.WithUserAgentHostname(lh)); err != nil {
		p.closeSockets()
		return nil, err
	}
	p.srv, _ = sipgo.NewServer(p.ua, sipgo.WithServerLogger(p.log))
	copts := []sipgo.ClientOption{sipgo.WithClientHostname(lh), sipgo.WithClientLogger(p.log)}
	if cfg.Transport == "udp" {
		copts = append(copts, sipgo.WithClientPort(int(p.local.Port())), sipgo.WithClientConnectionAddr(p.local.String()))
	}
	p.client, _ = sipgo.NewClient(p.ua, copts...)
	p.contact = sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: cfg.User, Host: lh, Port: int(p.local.Port())}}
	if cfg.Transport == "tcp" {
		p.contact.Address.UriParams = sip.HeaderParams{}
		p.contact.Address.UriParams.Add("transport", "tcp")
	}
	p.dialog = &sipgo.DialogUA{Client: p.client, ContactHDR: p.contact}
	p.srv.OnBye(p.onBye)
	p.srv.OnInvite(p.onInvite)
	p.srv.OnAck(func(*sip.Request, sip.ServerTransaction) {})
	p.srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	})
	p.wg.Add(1)
	go func() { defer p.wg.Done(); start() }()
	if p.udp != nil {
		waitServing(p.srv, p.local)
	}
	return p, nil
}

// Addr is the phone's bound SIP address.
func (p *Phone) Addr() netip.AddrPort { return p.local }

func (p *Phone) closeSockets() {
	if p.udp != nil {
		p.udp.Close()
	}
	if p.tcp != nil {
		p.tcp.Close()
	}
}

// Close closes every endpoint of live calls and the SIP sockets. It does
// not hang up: call Hangup first. Safe to call twice.
func (p *Phone) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		calls := make([]*Call, 0, len(p.calls))
		for _, c := range p.calls {
			calls = append(calls, c)
		}
		p.mu.Unlock()
		for _, c := range calls {
			c.endpoint().Close()
		}
		p.closeSockets()
		p.ua.Close()
		p.wg.Wait()
	})
	return nil
}

// step prints one SIP step.
func (p *Phone) step(format string, args ...any) {
	if p.cfg.Out == nil {
		return
	}
	p.outMu.Lock()
	fmt.Fprintf(p.cfg.Out, format+"\n", args...)
	p.outMu.Unlock()
}

func (p *Phone) stepResponse(res *sip.Response) {
	extra := ""
	if h := res.GetHeader("Reason"); h != nil {
		extra = " (" + reasonText(h.Value()) + ")"
	}
	if res.ContentLength() != nil && *res.ContentLength() > 0 && res.IsProvisional() {
		extra += " [SDP]"
	}
	p.step("← %d %s%s", res.StatusCode, res.Reason, extra)
}

func (p *Phone) uri(user string) sip.Uri {
	host, port, _ := net.SplitHostPort(p.cfg.Server)
	u := sip.Uri{Scheme: "sip", User: user, Host: uriHost(host)}
	u.Port, _ = strconv.Atoi(port)
	if p.cfg.Transport == "tcp" {
		u.UriParams = sip.HeaderParams{}
		u.UriParams.Add("transport", "tcp")
	}
	return u
}

// Register registers the phone's contact for expires (0 unregisters),
// answering a 401/407 challenge with the password.
func (p *Phone) Register(ctx context.Context, expires time.Duration) error {
	recipient := p.uri("")
	aor := sip.Uri{Scheme: "sip", User: p.cfg.User, Host: p.domain}
	p.mu.Lock()
	p.regCSeq++
	cseq := p.regCSeq
	p.mu.Unlock()
	req := sip.NewRequest(sip.REGISTER, recipient)
	req.SetTransport(strings.ToUpper(p.cfg.Transport))
	from := &sip.FromHeader{Address: aor, Params: sip.HeaderParams{}}
	from.Params.Add("tag", sip.GenerateTagN(12))
	callID := sip.CallIDHeader(p.regCall)
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor})
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: sip.REGISTER})
	req.AppendHeader(&p.contact)
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(int(expires/time.Second))))
	p.step("→ REGISTER %s (%s, expires %d)", recipient.String(), aor.String(), int(expires/time.Second))
	res, err := p.client.Do(ctx, req)
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	p.stepResponse(res)
	if (res.StatusCode == sip.StatusUnauthorized || res.StatusCode == sip.StatusProxyAuthRequired) && p.cfg.Password != "" {
		p.step("→ REGISTER (with credentials)")
		res, err = p.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: p.cfg.User, Password: p.cfg.Password})
		if err != nil {
			return fmt.Errorf("register: %w", err)
		}
		p.stepResponse(res)
		p.mu.Lock()
		p.regCSeq = req.CSeq().SeqNo
		p.mu.Unlock()
	}
	if !res.IsSuccess() {
		return fmt.Errorf("%w: %w", ErrRegister, responseError(res))
	}
	return nil
}

// Unregister removes the registration (Expires: 0).
func (p *Phone) Unregister(ctx context.Context) error { return p.Register(ctx, 0) }

func responseError(res *sip.Response) *StatusError {
	e := &StatusError{Status: int(res.StatusCode), Phrase: res.Reason}
	if h := res.GetHeader("Reason"); h != nil {
		e.Reason = reasonText(h.Value())
	}
	if h := res.GetHeader("Warning"); h != nil {
		e.Warning = warningText(h.Value())
	}
	return e
}

// Dial places a call to number through the server and returns once it is
// answered (ACK sent). A failure response is a *StatusError (errors.Is
// ErrNotAnswered); cancelling ctx before the answer sends CANCEL.
func (p *Phone) Dial(ctx context.Context, number string) (*Call, error) {
	ep, err := media.NewEndpoint(nil, p.cfg.MediaIP, media.PCMU.Codec())
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	la := ep.LocalAddr()
	c := &Call{p: p, ep: ep, number: number, sessID: rand.Uint64() >> 1, version: 1, codec: media.PCMU.Codec()}
	offer, err := c.sdp(media.SendRecv)
	if err != nil {
		ep.Close()
		return nil, err
	}
	recipient := p.uri(number)
	req := sip.NewRequest(sip.INVITE, recipient)
	req.SetTransport(strings.ToUpper(p.cfg.Transport))
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: p.cfg.User, Host: p.domain}, Params: sip.HeaderParams{}}
	from.Params.Add("tag", sip.GenerateTagN(12))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: number, Host: p.domain}})
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(offer)
	p.step("→ INVITE %s (RTP %s, PCMU PCMA telephone-event)", recipient.String(), la)
	sess, err := p.dialog.WriteInvite(ctx, req)
	if err != nil {
		ep.Close()
		return nil, fmt.Errorf("dial %s: %w", number, err)
	}
	c.sess = sess
	p.mu.Lock()
	p.calls[callID(req)] = c
	p.mu.Unlock()
	err = sess.WaitAnswer(ctx, sipgo.AnswerOptions{
		Username: p.cfg.User, Password: p.cfg.Password,
		OnResponse: func(res *sip.Response) error {
			p.stepResponse(res)
			if res.IsProvisional() && len(res.Body()) > 0 {
				if r, err := media.ParseSDP(res.Body()); err == nil {
					c.early = true
					c.applyAnswer(r)
				}
			}
			if (res.StatusCode == sip.StatusProxyAuthRequired || res.StatusCode == sip.StatusUnauthorized) && p.cfg.Password != "" {
				p.step("→ INVITE (with credentials)")
			}
			return nil
		},
	})
	if err != nil {
		c.close()
		var de *sipgo.ErrDialogResponse
		switch {
		case errors.As(err, &de):
			c.setFinal(responseError(de.Res))
			return nil, fmt.Errorf("dial %s: %w", number, responseError(de.Res))
		case sess.InviteResponse != nil && sess.InviteResponse.StatusCode >= 300:
			c.setFinal(responseError(sess.InviteResponse))
			return nil, fmt.Errorf("dial %s: cancelled: %w", number, responseError(sess.InviteResponse))
		}
		return nil, fmt.Errorf("dial %s: %w", number, err)
	}
	ans, err := media.ParseSDP(sess.InviteResponse.Body())
	if err != nil {
		p.step("→ ACK")
		sess.Ack(ctx)
		c.Hangup(ctx)
		return nil, fmt.Errorf("dial %s: answer SDP: %w", number, err)
	}
	c.applyAnswer(ans)
	p.step("→ ACK (RTP to %s, %s)", ans.Addr, c.Stats().Codec)
	if err := sess.Ack(ctx); err != nil {
		c.close()
		return nil, fmt.Errorf("dial %s: ack: %w", number, err)
	}
	c.mu.Lock()
	c.answered, c.status = true, sip.StatusOK
	c.mu.Unlock()
	return c, nil
}

func (p *Phone) onBye(req *sip.Request, tx sip.ServerTransaction) {
	p.mu.Lock()
	c := p.calls[callID(req)]
	p.mu.Unlock()
	if c == nil {
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
		return
	}
	p.step("← BYE")
	c.mu.Lock()
	c.remoteHangup = true
	c.mu.Unlock()
	if err := c.sess.ReadBye(req, tx); err == nil {
		p.step("→ 200 OK")
	}
}

func (p *Phone) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	p.mu.Lock()
	c := p.calls[callID(req)]
	p.mu.Unlock()
	if to := req.To(); c == nil || to == nil || !to.Params.Has("tag") {
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusTemporarilyUnavailable, "Temporarily Unavailable", nil))
		return
	}
	p.step("← re-INVITE")
	if err := c.sess.ReadRequest(req, tx); err != nil {
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusInternalServerError, "CSeq out of order", nil))
		return
	}
	r, err := media.ParseSDP(req.Body())
	if err != nil {
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusNotAcceptableHere, "Not Acceptable Here", nil))
		return
	}
	c.applyAnswer(r)
	c.mu.Lock()
	c.version++
	c.mu.Unlock()
	body, err := c.sdp(answerDirection(r.Direction))
	if err != nil {
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusInternalServerError, "Server Internal Error", nil))
		return
	}
	res := sip.NewSDPResponseFromRequest(req, body)
	res.AppendHeader(&p.contact)
	tx.Respond(res)
	p.step("→ 200 OK (%s)", answerDirection(r.Direction))
}

// waitServing waits until sipgo's transport layer holds the UDP listener
// started in another goroutine, so that requests sent from it reuse it
// instead of trying to bind the same port again.
func waitServing(srv *sipgo.Server, addr netip.AddrPort) {
	for range 200 {
		if c, _ := srv.TransportLayer().GetConnection("udp", addr.String()); c != nil {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// uriHost writes an IPv6 literal as a SIP URI host, in brackets (RFC 3261
// §25.1): sipgo keeps the brackets in Uri.Host and joins host and port
// with a colon, so "::1" would become the unroutable "::1:5060".
func uriHost(h string) string {
	if a, err := netip.ParseAddr(h); err == nil && a.Is6() && !a.Is4In6() {
		return "[" + h + "]"
	}
	return h
}

// defaultBind picks the phone's local address for a server host: IPv4
// loopback as before, IPv6 loopback for an IPv6 loopback server, and for
// any other IPv6 server the local address the kernel would route from.
func defaultBind(serverHost string) string {
	a, err := netip.ParseAddr(serverHost)
	if err != nil || !a.Is6() || a.Is4In6() {
		return "127.0.0.1:0"
	}
	if a.IsLoopback() {
		return "[::1]:0"
	}
	if c, err := net.Dial("udp", net.JoinHostPort(serverHost, "5060")); err == nil {
		defer c.Close()
		if la, ok := c.LocalAddr().(*net.UDPAddr); ok {
			return net.JoinHostPort(la.IP.String(), "0")
		}
	}
	return "[::]:0"
}
