package siprec

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
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

	"plateau/recordings"
	"plateau/srtp"
)

// ClientOptions configure a Client.
type ClientOptions struct {
	// Address is the recorder's SIP host:port.
	Address string
	// Transport is tcp (default), udp or tls. With udp, OPTIONS, ACK and
	// BYE go over UDP and the INVITE over TCP (it is too large for UDP).
	// With tls every request and the recorder's BYE go over one TLS
	// connection that the client opens (it does not listen), and the
	// recording streams are SRTP.
	Transport string
	// TLS is the client configuration for tls (certs.ClientConfig: the
	// recorder's CA and name, Plateau's client certificate).
	TLS *tls.Config
	// Timeout bounds each OPTIONS, INVITE and BYE (default 2 s).
	Timeout time.Duration
	// Domain is the host part of the operator's address of record in the
	// metadata (sip:101@Domain); default plateau.invalid.
	Domain string
	// Log and Now default to slog.Default and time.Now.
	Log *slog.Logger
	Now func() time.Time
	// ProbeInterval is how often the recorder is probed with OPTIONS while
	// recordings are open (default 1 s); ProbeFailures consecutive
	// transport failures (default 3) end every open recording, so calls do
	// not go on unrecorded behind a recorder that vanished.
	ProbeInterval time.Duration
	ProbeFailures int
}

// Client is the recording client (SRC): Plateau's B2BUA uses it in place
// of the local recorder (it fits sip.Recorder through a small adapter).
type Client struct {
	opts      ClientOptions
	log       *slog.Logger
	ua        *sipgo.UserAgent
	srv       *sipgo.Server
	cl        *sipgo.Client
	dialogs   *sipgo.DialogClientCache
	recipient sip.Uri
	contact   sip.ContactHeader
	localIP   netip.Addr
	raddr     string       // the recorder's resolved ip:port
	closer    func() error // the listener
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup

	readyMu  sync.Mutex
	readyAt  time.Time
	readyErr error

	mu       sync.Mutex
	sessions map[*Session]struct{}
	closed   bool
}

// NewClient prepares the SIPREC client of the recorder at opts.Address. It
// listens on an ephemeral port of the local address that routes to the
// recorder, for the recorder's in-dialog requests (BYE).
func NewClient(opts ClientOptions) (*Client, error) {
	if opts.Transport == "" {
		opts.Transport = "tcp"
	}
	if opts.Transport != "udp" && opts.Transport != "tcp" && opts.Transport != "tls" {
		return nil, fmt.Errorf("siprec: transport %q: use udp, tcp or tls", opts.Transport)
	}
	if opts.Transport == "tls" && opts.TLS == nil {
		return nil, errors.New("siprec: transport tls needs a TLS configuration")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.Domain == "" {
		opts.Domain = "plateau.invalid"
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ProbeInterval <= 0 {
		opts.ProbeInterval = time.Second
	}
	if opts.ProbeFailures <= 0 {
		opts.ProbeFailures = 3
	}
	host, portStr, err := net.SplitHostPort(opts.Address)
	if err != nil {
		return nil, fmt.Errorf("siprec: recorder address %q: %w", opts.Address, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 {
		return nil, fmt.Errorf("siprec: recorder address %q: bad port", opts.Address)
	}
	// The local address the kernel routes to the recorder from: RTP and
	// SIP leave from it, and the Contact names it.
	probe, err := net.Dial("udp", opts.Address)
	if err != nil {
		return nil, fmt.Errorf("siprec: recorder address %q: %w", opts.Address, err)
	}
	localIP := probe.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
	raddr := probe.RemoteAddr().(*net.UDPAddr).AddrPort()
	probe.Close()

	uaOpts := []sipgo.UserAgentOption{sipgo.WithUserAgent("Plateau-SRC"), sipgo.WithUserAgentHostname(localIP.String())}
	if opts.TLS != nil {
		uaOpts = append(uaOpts, sipgo.WithUserAgenTLSConfig(opts.TLS))
	}
	ua, err := sipgo.NewUA(uaOpts...)
	if err != nil {
		return nil, err
	}
	log := opts.Log
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(log))
	if err != nil {
		ua.Close()
		return nil, err
	}
	c := &Client{opts: opts, log: log, ua: ua, srv: srv, localIP: localIP, sessions: map[*Session]struct{}{},
		raddr: netip.AddrPortFrom(raddr.Addr().Unmap(), raddr.Port()).String()}
	c.recipient = sip.Uri{Scheme: "sip", User: "recorder", Host: host, Port: port, UriParams: sip.NewParams(), Headers: sip.NewParams()}
	var clOpts []sipgo.ClientOption
	laddr := netip.AddrPortFrom(localIP, 0)
	switch opts.Transport {
	case "udp":
		conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(laddr))
		if err != nil {
			ua.Close()
			return nil, fmt.Errorf("siprec: listen: %w", err)
		}
		laddr = conn.LocalAddr().(*net.UDPAddr).AddrPort()
		c.closer = conn.Close
		clOpts = append(clOpts, sipgo.WithClientConnectionAddr(conn.LocalAddr().String()))
		c.wg.Add(1)
		go func() { defer c.wg.Done(); srv.ServeUDP(conn) }()
	case "tcp":
		l, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(laddr))
		if err != nil {
			ua.Close()
			return nil, fmt.Errorf("siprec: listen: %w", err)
		}
		laddr = l.Addr().(*net.TCPAddr).AddrPort()
		c.closer = l.Close
		c.recipient.UriParams.Add("transport", "tcp")
		clOpts = append(clOpts, sipgo.WithClientHostname(localIP.String()))
		c.wg.Add(1)
		go func() { defer c.wg.Done(); srv.ServeTCP(l) }()
	case "tls":
		// No listener: the recorder answers and sends its BYE on the
		// connection the client opened (the Contact names that
		// connection's own address, see Start).
		c.closer = func() error { return nil }
		c.recipient.UriParams.Add("transport", "tls")
		clOpts = append(clOpts, sipgo.WithClientHostname(localIP.String()))
	}
	cl, err := sipgo.NewClient(ua, append(clOpts, sipgo.WithClientLogger(log))...)
	if err != nil {
		c.closer()
		ua.Close()
		return nil, err
	}
	c.cl = cl
	// The INVITE (SDP and metadata, about 3 kB) is larger than 1300 bytes,
	// so RFC 3261 §18.1.1 has it sent over TCP even when the transport is
	// UDP; the dialog's client therefore picks its connection per request.
	dcl := cl
	if opts.Transport == "udp" {
		if dcl, err = sipgo.NewClient(ua, sipgo.WithClientHostname(localIP.String()), sipgo.WithClientLogger(log)); err != nil {
			c.closer()
			ua.Close()
			return nil, err
		}
		// ServeUDP registers the listener asynchronously; requests sent
		// from it before that would try to bind its port again.
		for i := 0; i < 200; i++ {
			if _, err := ua.TransportLayer().GetConnection("udp", laddr.String()); err == nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	c.contact = sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "plateau", Host: localIP.String(), Port: int(laddr.Port()),
		UriParams: sip.NewParams(), Headers: sip.NewParams()}, Params: sip.NewParams()}
	if opts.Transport == "tcp" || opts.Transport == "tls" {
		c.contact.Address.UriParams.Add("transport", opts.Transport)
	}
	// RFC 7866 §6.1.1: the SRC's Contact carries the +sip.src feature tag.
	c.contact.Params.Add("+sip.src", "")
	c.dialogs = sipgo.NewDialogClientCache(dcl, c.contact)
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if err := c.dialogs.ReadBye(req, tx); err != nil {
			tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
		}
	})
	srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	})
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.wg.Add(1)
	go c.watch()
	return c, nil
}

// Close ends the listener and the SIP stack. Open recordings should be
// closed first; the ones left are failed.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	open := make([]*Session, 0, len(c.sessions))
	for s := range c.sessions {
		open = append(open, s)
	}
	c.mu.Unlock()
	for _, s := range open {
		s.fail(fmt.Errorf("%w: client closed", ErrSessionEnded))
	}
	c.cancel()
	err := c.closer()
	c.ua.Close()
	c.wg.Wait()
	return err
}

// Ready asks the recorder whether it can take a recording (OPTIONS, 200
// only when its disk is ready). The answer is reused for a second, so a
// burst of calls costs one request. The error wraps
// recordings.ErrRecorderUnavailable: the call is refused.
func (c *Client) Ready() error {
	c.readyMu.Lock()
	defer c.readyMu.Unlock()
	now := c.opts.Now()
	if !c.readyAt.IsZero() && now.Sub(c.readyAt) < time.Second && !now.Before(c.readyAt) {
		return c.readyErr
	}
	_, c.readyErr = c.ping(c.ctx)
	c.readyAt = c.opts.Now()
	return c.readyErr
}

// ping sends OPTIONS; transport reports whether a failure was the
// recorder's silence (as opposed to its answer).
func (c *Client) ping(ctx context.Context) (transport bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	req := sip.NewRequest(sip.OPTIONS, c.recipient)
	req.AppendHeader(sip.NewHeader("Accept", ContentTypeSDP))
	res, err := c.cl.Do(ctx, req)
	if err != nil {
		hint := "start plateau recorder or fix recordings.remote.address"
		if c.opts.Transport == "tls" {
			// A refused client certificate shows as silence with TLS 1.3:
			// the recorder's alert comes after the request was sent.
			hint += ", or the certificates: the recorder's log says if it refused this node's"
		}
		return true, fmt.Errorf("%w: recorder %s does not answer: %w (%s)", recordings.ErrRecorderUnavailable, c.opts.Address, err, hint)
	}
	if res.StatusCode != sip.StatusOK {
		return false, fmt.Errorf("%w: recorder %s answered %d %s", recordings.ErrRecorderUnavailable, c.opts.Address, res.StatusCode, res.Reason)
	}
	return false, nil
}

// watch probes the recorder while recordings are open and fails them all
// when it stops answering: a recording whose packets go nowhere is lost.
func (c *Client) watch() {
	defer c.wg.Done()
	t := time.NewTicker(c.opts.ProbeInterval)
	defer t.Stop()
	failures := 0
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		c.mu.Lock()
		n := len(c.sessions)
		c.mu.Unlock()
		if n == 0 {
			failures = 0
			continue
		}
		transport, err := c.ping(c.ctx)
		if !transport {
			failures = 0
			continue
		}
		failures++
		c.log.Warn("recorder does not answer", "recorder", c.opts.Address, "failures", failures, "err", err)
		if failures < c.opts.ProbeFailures {
			continue
		}
		c.mu.Lock()
		open := make([]*Session, 0, len(c.sessions))
		for s := range c.sessions {
			open = append(open, s)
		}
		c.mu.Unlock()
		for _, s := range open {
			s.fail(fmt.Errorf("%w: recorder %s stopped answering: %w", ErrSessionEnded, c.opts.Address, err))
		}
	}
}

// Start opens the recording session of a call: an INVITE with the SDP
// offer (two sendonly streams) and the metadata. The call must not be
// placed unless Start succeeds; its error wraps
// recordings.ErrRecorderUnavailable.
func (c *Client) Start(ctx context.Context, info recordings.Info) (*Session, error) {
	unavailable := func(format string, args ...any) error {
		return fmt.Errorf("%w: recorder %s: %s", recordings.ErrRecorderUnavailable, c.opts.Address, fmt.Sprintf(format, args...))
	}
	s := &Session{c: c, id: info.ID, log: c.log.With("recording", info.ID)}
	ports := make([]int, len(s.streams))
	for i := range s.streams {
		conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(c.localIP, 0)))
		if err != nil {
			s.closeConns()
			return nil, unavailable("rtp socket: %v", err)
		}
		s.streams[i].conn = conn
		s.streams[i].ssrc = rand.Uint32()
		ports[i] = int(conn.LocalAddr().(*net.UDPAddr).Port)
	}
	// Over TLS each stream is SRTP with a fresh key (SDES, RFC 4568): the
	// SDP, and so the key, only crosses the network inside TLS.
	var local []srtp.Crypto
	var cryptos []string
	if c.opts.Transport == "tls" {
		for range s.streams {
			cr, err := srtp.NewCrypto(1, srtp.AES_CM_128_HMAC_SHA1_80)
			if err != nil {
				s.closeConns()
				return nil, unavailable("srtp key: %v", err)
			}
			local = append(local, cr)
			cryptos = append(cryptos, cr.String())
		}
	}
	offer, err := buildOffer(c.localIP, rand.Uint64N(1<<62), []string{LabelOperator, LabelOutside}, ports, cryptos)
	if err != nil {
		s.closeConns()
		return nil, unavailable("sdp: %v", err)
	}
	md, err := NewMetadata(info, c.opts.Domain).Marshal()
	if err != nil {
		s.closeConns()
		return nil, unavailable("metadata: %v", err)
	}
	body, ct, err := BuildBody(offer, md)
	if err != nil {
		s.closeConns()
		return nil, unavailable("body: %v", err)
	}
	// The INVITE goes over TCP, or TLS when that is the transport.
	reqTransport := "tcp"
	contact := c.contact
	if c.opts.Transport == "tls" {
		reqTransport = "tls"
		if contact, err = c.tlsContact(ctx); err != nil {
			s.closeConns()
			return nil, unavailable("%v", err)
		}
	}
	recipient := c.recipient
	recipient.UriParams = sip.NewParams()
	recipient.UriParams.Add("transport", reqTransport)
	req := sip.NewRequest(sip.INVITE, recipient)
	req.SetBody(body)
	ctHdr := sip.ContentTypeHeader(ct)
	req.AppendHeader(&ctHdr)
	req.AppendHeader(sip.NewHeader("Require", "siprec"))
	req.AppendHeader(sip.NewHeader("Accept", ContentTypeSDP+", "+ContentTypeMetadata))
	req.AppendHeader(&contact)
	req.SetTransport(strings.ToUpper(reqTransport))

	// At the deadline WaitAnswer gives up at once: by default it waits
	// for a provisional to CANCEL, i.e. Timer B (32 s) on a connection
	// that died, with the operator waiting for the call.
	ictx, cancel := context.WithTimeoutCause(ctx, c.opts.Timeout, sipgo.WaitAnswerForceCancelErr)
	defer cancel()
	dlg, err := c.dialogs.WriteInvite(ictx, req)
	if err != nil {
		s.closeConns()
		return nil, unavailable("invite: %v", err)
	}
	s.dlg = dlg
	if err := dlg.WaitAnswer(ictx, sipgo.AnswerOptions{}); err != nil {
		s.closeConns()
		dlg.Close()
		return nil, unavailable("invite: %v", err)
	}
	if err := dlg.Ack(ictx); err != nil {
		s.abort()
		return nil, unavailable("ack: %v", err)
	}
	res := dlg.InviteResponse
	ctype := ContentTypeSDP
	if h := res.ContentType(); h != nil {
		ctype = h.Value()
	}
	ans, err := ParseBody(ctype, res.Body())
	if err == nil {
		err = s.connect(ans.SDP, ports, local)
	}
	if err != nil {
		s.abort()
		return nil, unavailable("answer: %v", err)
	}
	// A BYE from the recorder ends the dialog: the next packet fails and
	// the call ends (recordings must cover the whole call).
	dlg.OnState(func(st sip.DialogState) {
		if st == sip.DialogStateEnded && !s.closing.Load() {
			s.fail(fmt.Errorf("%w: the recorder ended the recording session (BYE)", ErrSessionEnded))
		}
	})
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		s.abort()
		return nil, unavailable("client closed")
	}
	c.sessions[s] = struct{}{}
	c.mu.Unlock()
	s.log.Debug("recording session started", "recorder", c.opts.Address, "operator", s.streams[0].dest, "outside", s.streams[1].dest)
	return s, nil
}

// tlsContact is the Contact of a recording session over TLS: the local
// address of the TLS connection to the recorder (opened by an OPTIONS if
// there is none), so that the recorder's BYE, sent to the Contact, finds
// that connection in its pool rather than dialling a client that does
// not listen.
func (c *Client) tlsContact(ctx context.Context) (sip.ContactHeader, error) {
	tl := c.ua.TransportLayer()
	conn, err := tl.GetConnection("tls", c.raddr)
	if err != nil {
		if _, err := c.ping(ctx); err != nil {
			return sip.ContactHeader{}, err
		}
		if conn, err = tl.GetConnection("tls", c.raddr); err != nil {
			return sip.ContactHeader{}, fmt.Errorf("no TLS connection to %s: %w", c.raddr, err)
		}
	}
	la, err := netip.ParseAddrPort(conn.LocalAddr().String())
	conn.TryClose() // GetConnection took a reference
	if err != nil {
		return sip.ContactHeader{}, fmt.Errorf("tls connection address: %w", err)
	}
	contact := c.contact
	contact.Address.Host = la.Addr().Unmap().String()
	contact.Address.Port = int(la.Port())
	contact.Address.UriParams = sip.NewParams()
	contact.Address.UriParams.Add("transport", "tls")
	return contact, nil
}

func (c *Client) forget(s *Session) {
	c.mu.Lock()
	delete(c.sessions, s)
	c.mu.Unlock()
}

// Open is the number of recording sessions in progress.
func (c *Client) Open() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sessions)
}

// bye ends a dialog, bounded by the client's timeout: the call's context is
// usually gone by then (the hang-up is what closes the recording).
func (c *Client) bye(dlg *sipgo.DialogClientSession) error {
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.Timeout)
	defer cancel()
	err := dlg.Bye(ctx)
	dlg.Close()
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("bye to recorder %s: %w", c.opts.Address, err)
	}
	return nil
}
