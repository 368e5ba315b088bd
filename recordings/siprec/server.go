package siprec

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"

	"plateau/media"
	"plateau/recordings"
	"plateau/srtp"
)

// Recorder is what the Server records into: recordings.Manager.
type Recorder interface {
	Ready() error
	Start(ctx context.Context, info recordings.Info) (*recordings.Session, error)
}

// ServerOptions configure a Server.
type ServerOptions struct {
	// Listen is the SIP host:port (port 0 picks one; see Addr).
	Listen string
	// Transports are udp and/or tcp (default both), or tls alone.
	Transports []string
	// TLS is the server's configuration for the tls transport (certs.
	// ServerConfig with the client CA: mutual authentication).
	TLS *tls.Config
	// MediaIP is the address RTP is received on and written in the SDP.
	MediaIP netip.Addr
	// Ports hands out the RTP ports, two per recording session.
	Ports *media.PortPool
	// RTPTimeout ends a recording session that received no packet for
	// that long (the SRC vanished without BYE); default 5 min, above any
	// hold a call has.
	RTPTimeout time.Duration
	// AllowedSources, if set, are the only addresses whose requests are
	// served and whose TCP/TLS connections are accepted (the recorder
	// stores what it is sent).
	AllowedSources []netip.Prefix
	// Audit receives a "recorder.refused" entry per refused source and
	// reason (rate limited); Metrics counts every refusal. Both optional.
	Audit   Auditor
	Metrics *Metrics
	Log     *slog.Logger
	Now     func() time.Time
}

// Server is the recording server (SRS) of `plateau recorder`: it accepts
// recording sessions from Plateau or any SIPREC SRC and writes each into
// a stereo WAV with its sidecar through a Recorder.
type Server struct {
	opts    ServerOptions
	rec     Recorder
	log     *slog.Logger
	ua      *sipgo.UserAgent
	srv     *sipgo.Server
	dialogs *sipgo.DialogServerCache
	contact sip.ContactHeader
	udp     *net.UDPConn
	tcp     *gateListener
	tls     *gateListener
	addr    netip.AddrPort
	refused *refusals

	mu       sync.Mutex
	sessions map[string]*recSession // by the SIPREC dialog's Call-ID
	closed   bool
	wg       sync.WaitGroup // sessions' finishers
}

// NewServer binds the SIP listeners; Serve serves them.
func NewServer(opts ServerOptions, rec Recorder) (*Server, error) {
	if len(opts.Transports) == 0 {
		opts.Transports = []string{"udp", "tcp"}
	}
	if opts.RTPTimeout <= 0 {
		opts.RTPTimeout = 5 * time.Minute
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Ports == nil || !opts.MediaIP.IsValid() {
		return nil, errors.New("siprec: server needs a media IP and RTP ports")
	}
	ap, err := netip.ParseAddrPort(opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("siprec: listen %q: %w", opts.Listen, err)
	}
	s := &Server{opts: opts, rec: rec, log: opts.Log, sessions: map[string]*recSession{}}
	s.refused = newRefusals(opts.Log, opts.Audit, opts.Metrics, opts.Now)
	if slices.Contains(opts.Transports, "tls") && (len(opts.Transports) > 1 || opts.TLS == nil) {
		// Plain SIP beside TLS would let a client skip the certificate.
		return nil, errors.New("siprec: the tls transport needs a TLS config and excludes udp and tcp")
	}
	port := ap.Port()
	for _, t := range opts.Transports {
		switch t {
		case "udp":
			s.udp, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ap.Addr(), port)))
			if err == nil {
				port = s.udp.LocalAddr().(*net.UDPAddr).AddrPort().Port()
			}
		case "tcp", "tls":
			var l *net.TCPListener
			l, err = net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(ap.Addr(), port)))
			if err == nil {
				port = l.Addr().(*net.TCPAddr).AddrPort().Port()
				if t == "tcp" {
					s.tcp = newGateListener(l, nil, opts.AllowedSources, s.refused, s.log)
				} else {
					s.tls = newGateListener(l, opts.TLS, opts.AllowedSources, s.refused, s.log)
				}
			}
		default:
			err = fmt.Errorf("transport %q: use udp, tcp or tls", t)
		}
		if err != nil {
			s.closeListeners()
			return nil, fmt.Errorf("siprec: listen %s: %w", opts.Listen, err)
		}
	}
	s.addr = netip.AddrPortFrom(ap.Addr(), port)
	host := ap.Addr()
	if host.IsUnspecified() {
		host = opts.MediaIP
	}
	s.ua, err = sipgo.NewUA(sipgo.WithUserAgent("Plateau-SRS"), sipgo.WithUserAgentHostname(host.String()))
	if err != nil {
		s.closeListeners()
		return nil, err
	}
	s.srv, err = sipgo.NewServer(s.ua, sipgo.WithServerLogger(s.log))
	if err != nil {
		s.closeListeners()
		s.ua.Close()
		return nil, err
	}
	clOpts := []sipgo.ClientOption{sipgo.WithClientLogger(s.log), sipgo.WithClientHostname(host.String())}
	if s.udp != nil && !ap.Addr().IsUnspecified() {
		clOpts = append(clOpts, sipgo.WithClientConnectionAddr(s.udp.LocalAddr().String()))
	}
	cl, err := sipgo.NewClient(s.ua, clOpts...)
	if err != nil {
		s.closeListeners()
		s.ua.Close()
		return nil, err
	}
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "recorder", Host: host.String(), Port: int(port),
		UriParams: sip.NewParams(), Headers: sip.NewParams()}, Params: sip.NewParams()}
	switch {
	case s.tls != nil:
		contact.Address.UriParams.Add("transport", "tls")
	case s.udp == nil:
		contact.Address.UriParams.Add("transport", "tcp")
	}
	s.contact = contact
	s.dialogs = sipgo.NewDialogServerCache(cl, contact)
	s.srv.OnOptions(s.guard(s.onOptions))
	s.srv.OnInvite(s.guard(s.onInvite))
	s.srv.OnAck(s.guard(func(req *sip.Request, tx sip.ServerTransaction) { s.dialogs.ReadAck(req, tx) }))
	s.srv.OnBye(s.guard(s.onBye))
	return s, nil
}

// Addr is the SIP address the server listens on.
func (s *Server) Addr() netip.AddrPort { return s.addr }

func (s *Server) closeListeners() {
	if s.udp != nil {
		s.udp.Close()
	}
	if s.tcp != nil {
		s.tcp.Close()
	}
	if s.tls != nil {
		s.tls.Close()
	}
}

// Serve answers SIP until ctx ends, ending RTP-silent sessions; then it
// closes every recording in progress (BYE to its SRC) and the listeners.
func (s *Server) Serve(ctx context.Context) error {
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	if s.udp != nil {
		wg.Add(1)
		go func() { defer wg.Done(); errc <- s.srv.ServeUDP(s.udp) }()
	}
	if s.tcp != nil {
		wg.Add(1)
		go func() { defer wg.Done(); errc <- s.srv.ServeTCP(s.tcp) }()
	}
	if s.tls != nil {
		// The gate did the handshake; sipgo reads SIP from the TLS conns.
		wg.Add(1)
		go func() { defer wg.Done(); errc <- s.srv.ServeTLS(s.tls) }()
	}
	t := time.NewTicker(min(time.Second, s.opts.RTPTimeout/2))
	defer t.Stop()
	var err error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err = <-errc:
			if ctx.Err() == nil && err != nil {
				break loop
			}
			err = nil
		case <-t.C:
			s.reap()
		}
	}
	s.mu.Lock()
	s.closed = true
	open := make([]*recSession, 0, len(s.sessions))
	for _, rs := range s.sessions {
		open = append(open, rs)
	}
	s.mu.Unlock()
	for _, rs := range open {
		s.finish(rs, "shutdown", true)
	}
	s.wg.Wait()
	s.closeListeners()
	s.ua.Close()
	wg.Wait()
	return err
}

// Open is the number of recording sessions in progress.
func (s *Server) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// reap ends sessions whose SRC stopped sending RTP.
func (s *Server) reap() {
	now := s.opts.Now()
	s.mu.Lock()
	var stale []*recSession
	for _, rs := range s.sessions {
		if now.Sub(time.Unix(0, rs.lastRx.Load())) > s.opts.RTPTimeout {
			stale = append(stale, rs)
		}
	}
	s.mu.Unlock()
	for _, rs := range stale {
		rs.log.Warn("no RTP from the recording client, ending the session", "timeout", s.opts.RTPTimeout)
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.finish(rs, "rtp_timeout", true) }()
	}
}

// guard refuses requests from outside AllowedSources (403, logged, counted
// and audited) and turns a handler's panic into a 500 rather than the end
// of the process and of every recording in progress.
func (s *Server) guard(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("panic in a SIP handler", "method", req.Method, "source", req.Source(), "panic", p)
				if req.Method != sip.ACK {
					tx.Respond(sip.NewResponseFromRequest(req, sip.StatusInternalServerError, "Server Internal Error", nil))
				}
			}
		}()
		src := netip.Addr{}
		if ap, err := netip.ParseAddrPort(req.Source()); err == nil {
			src = ap.Addr().Unmap()
		}
		if len(s.opts.AllowedSources) > 0 && (!src.IsValid() || !allowed(s.opts.AllowedSources, src)) {
			s.refused.refuse(src, RefusedSource, string(req.Method), nil)
			if req.Method != sip.ACK {
				respond(tx, req, sip.StatusForbidden, "Forbidden", "source not allowed (recorder.allowed_sources)")
			}
			return
		}
		h(req, tx)
	}
}

// onOptions answers 200 only when a recording could start now, so that
// the SRC refuses calls (RECORDER_UNAVAILABLE) rather than place them
// unrecorded.
func (s *Server) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	if err := s.rec.Ready(); err != nil {
		res := sip.NewResponseFromRequest(req, sip.StatusServiceUnavailable, "Service Unavailable", nil)
		res.AppendHeader(sip.NewHeader("Warning", `399 plateau-recorder "`+strings.ReplaceAll(err.Error(), `"`, `'`)+`"`))
		tx.Respond(res)
		return
	}
	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
	res.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS"))
	res.AppendHeader(sip.NewHeader("Accept", ContentTypeSDP+", "+ContentTypeMetadata+", multipart/mixed"))
	res.AppendHeader(sip.NewHeader("Supported", "siprec"))
	tx.Respond(res)
}

func respond(tx sip.ServerTransaction, req *sip.Request, code int, reason, detail string) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	if detail != "" {
		res.AppendHeader(sip.NewHeader("Warning", `399 plateau-recorder "`+strings.ReplaceAll(detail, `"`, `'`)+`"`))
	}
	tx.Respond(res)
}

// isSIPREC reports whether an INVITE says it opens a recording session.
func isSIPREC(req *sip.Request, b Body) bool {
	for _, h := range req.GetHeaders("Require") {
		for _, t := range strings.Split(h.Value(), ",") {
			if strings.EqualFold(strings.TrimSpace(t), "siprec") {
				return true
			}
		}
	}
	if c := req.Contact(); c != nil && c.Params.Has("+sip.src") {
		return true
	}
	return b.Metadata != nil
}

func (s *Server) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	callID := req.CallID().Value()
	if to := req.To(); to != nil && to.Params.Has("tag") {
		// A re-INVITE (e.g. metadata update): the streams stay as answered.
		s.mu.Lock()
		rs := s.sessions[callID]
		s.mu.Unlock()
		if rs == nil {
			respond(tx, req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", "")
			return
		}
		res := sip.NewSDPResponseFromRequest(req, rs.answer)
		contact := s.contact
		res.AppendHeader(&contact)
		tx.Respond(res)
		return
	}
	ctype := ContentTypeSDP
	if h := req.ContentType(); h != nil {
		ctype = h.Value()
	}
	body, err := ParseBody(ctype, req.Body())
	if err != nil {
		respond(tx, req, sip.StatusBadRequest, "Bad Request", err.Error())
		return
	}
	if !isSIPREC(req, body) {
		respond(tx, req, sip.StatusForbidden, "Forbidden", "not a recording session (RFC 7866: Require: siprec)")
		return
	}
	var md *Metadata
	if body.Metadata != nil {
		if md, err = ParseMetadata(body.Metadata); err != nil {
			respond(tx, req, sip.StatusBadRequest, "Bad Request", err.Error())
			return
		}
	}
	streams, err := parseStreams(body.SDP)
	if err != nil {
		respond(tx, req, sip.StatusBadRequest, "Bad Request", err.Error())
		return
	}
	plan := assignChannels(streams, md)
	if !plan.any() {
		respond(tx, req, sip.StatusNotAcceptableHere, "Not Acceptable Here", ErrNoAudio.Error())
		return
	}
	// Over TLS the streams must be SRTP, and SRTP only over TLS: SDES
	// keys in a clear SDP would protect nothing.
	secure := s.tls != nil
	for i, m := range streams {
		if plan.ch[i] >= 0 && m.secure() != secure {
			why := "the link is TLS: recording streams must be RTP/SAVP with a=crypto (SDES)"
			if !secure {
				why = "SRTP keys (SDES) only over SIP over TLS: offer RTP/AVP here"
			}
			respond(tx, req, sip.StatusNotAcceptableHere, "Not Acceptable Here", why)
			return
		}
	}
	if err := s.rec.Ready(); err != nil {
		respond(tx, req, sip.StatusServiceUnavailable, "Service Unavailable", err.Error())
		return
	}
	s.start(req, tx, streams, plan, md)
}

func (s *Server) start(req *sip.Request, tx sip.ServerTransaction, streams []mediaStream, plan channelPlan, md *Metadata) {
	callID := req.CallID().Value()
	now := s.opts.Now()
	info := recordingInfo(plan, md, callID, now)
	rs := &recSession{callID: callID, id: info.ID, done: make(chan struct{}), log: s.log.With("recording", info.ID, "siprec_call", callID)}
	rs.lastRx.Store(now.UnixNano())
	srcIP := netip.Addr{}
	if host, _, err := net.SplitHostPort(req.Source()); err == nil {
		srcIP, _ = netip.ParseAddr(host)
	}
	ports := make([]int, len(streams))
	var cryptos []string // the answer's a=crypto per m= line (SRTP)
	if s.tls != nil {
		cryptos = make([]string, len(streams))
	}
	fail := func(code int, reason string, err error) {
		rs.log.Error("recording session refused", "status", code, "err", err)
		for _, in := range rs.in {
			in.pp.Close()
		}
		respond(tx, req, code, reason, err.Error())
	}
	for i, m := range streams {
		ch := plan.ch[i]
		if ch < 0 {
			continue
		}
		pp, err := s.opts.Ports.Allocate(s.opts.MediaIP)
		if err != nil {
			fail(sip.StatusServiceUnavailable, "Service Unavailable", fmt.Errorf("%w: rtp ports: %w", recordings.ErrRecorderUnavailable, err))
			return
		}
		src := m.Addr.Addr()
		if !src.IsValid() || src.IsUnspecified() {
			src = srcIP.Unmap()
		}
		in := &inStream{pp: pp, ch: recordings.Channel(ch), src: src}
		rs.in = append(rs.in, in)
		ports[i] = pp.Port
		if cryptos != nil {
			sess, local, err := answerSRTP(m.Crypto)
			if err != nil {
				fail(sip.StatusNotAcceptableHere, "Not Acceptable Here", fmt.Errorf("stream %d: %w", i+1, err))
				return
			}
			in.srtp, cryptos[i] = sess, local
		}
	}
	answer, err := buildAnswer(s.opts.MediaIP, uint64(now.UnixNano()&(1<<62-1)), streams, ports, cryptos)
	if err != nil {
		fail(sip.StatusInternalServerError, "Server Internal Error", err)
		return
	}
	rs.answer = answer
	dlg, err := s.dialogs.ReadInvite(req, tx)
	if err != nil {
		fail(sip.StatusBadRequest, "Bad Request", err)
		return
	}
	rs.dlg = dlg
	rec, err := s.rec.Start(dlg.Context(), info)
	if err != nil {
		for _, in := range rs.in {
			in.pp.Close()
		}
		rs.log.Error("recording refused", "err", err)
		dlg.Respond(sip.StatusServiceUnavailable, "Service Unavailable", nil, sip.NewHeader("Warning", `399 plateau-recorder "recording could not start"`))
		dlg.Close()
		return
	}
	rs.rec = rec
	s.mu.Lock()
	if s.closed || s.sessions[callID] != nil {
		s.mu.Unlock()
		rec.Close(s.opts.Now())
		for _, in := range rs.in {
			in.pp.Close()
		}
		dlg.Respond(sip.StatusServiceUnavailable, "Service Unavailable", nil)
		dlg.Close()
		return
	}
	s.sessions[callID] = rs
	s.mu.Unlock()
	for _, in := range rs.in {
		rs.wg.Add(1)
		go s.receive(rs, in)
	}
	if err := dlg.RespondSDP(answer); err != nil {
		rs.log.Error("answer", "err", err)
		s.finish(rs, "answer_failed", false)
		return
	}
	rtpPorts := make([]int, 0, len(rs.in))
	for _, in := range rs.in {
		rtpPorts = append(rtpPorts, in.pp.Port)
	}
	rs.log.Info("recording session started", "operator", info.Operator, "number", info.Number, "streams", len(rs.in),
		"rtp_ports", rtpPorts, "srtp", s.tls != nil)
}

// recSession is one recording session on the server.
type recSession struct {
	callID string
	id     string
	log    *slog.Logger
	dlg    *sipgo.DialogServerSession
	rec    *recordings.Session
	in     []*inStream
	answer []byte
	lastRx atomic.Int64 // unix nanoseconds of the newest packet
	// srtpDrops counts the session's refused SRTP packets (the first is
	// logged).
	srtpDrops atomic.Int64
	done      chan struct{}
	once      sync.Once
	wg        sync.WaitGroup
}

type inStream struct {
	pp   *media.PortPair
	ch   recordings.Channel
	src  netip.Addr    // packets from elsewhere are dropped
	srtp *srtp.Session // over TLS: packets are unprotected before writing
}

// answerSRTP accepts the first usable a=crypto of an offered stream and
// keys the stream's session: the SRC's key unprotects what it sends; the
// recorder's own (answered, RFC 4568 7.1.2) protects nothing it sends,
// as it sends nothing.
func answerSRTP(offered []string) (*srtp.Session, string, error) {
	remote, err := srtp.Select(offered)
	if err != nil {
		return nil, "", err
	}
	local, err := srtp.Answer(remote)
	if err != nil {
		return nil, "", err
	}
	sess, err := srtp.NewSession(local, remote)
	if err != nil {
		return nil, "", err
	}
	return sess, local.String(), nil
}

// receive writes one stream's packets into its channel until the session
// ends. A write failure ends the session with BYE: the SRC then ends the
// call, as a local recorder's failure would.
func (s *Server) receive(rs *recSession, in *inStream) {
	defer rs.wg.Done()
	buf := make([]byte, 1500)
	plain := make([]byte, 1500)
	var pkt rtp.Packet
	for {
		n, from, err := in.pp.RTP.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if in.src.IsValid() && from.Addr().Unmap() != in.src {
			continue
		}
		b := buf[:n]
		if in.srtp != nil {
			// A forged, tampered or replayed packet is dropped here and
			// counted; it neither reaches the WAV nor keeps the session
			// alive (lastRx).
			if b, err = in.srtp.UnprotectRTP(plain, b); err != nil {
				s.opts.Metrics.srtpDrop(srtp.Reason(err))
				if rs.srtpDrops.Add(1) == 1 {
					rs.log.Warn("SRTP packet dropped (further drops are only counted)", "from", from.String(), "err", err)
				}
				continue
			}
		}
		if pkt.Unmarshal(b) != nil || pkt.Version != 2 {
			continue
		}
		now := s.opts.Now()
		rs.lastRx.Store(now.UnixNano())
		if err := rs.rec.WriteRTP(in.ch, &pkt, now); err != nil {
			rs.log.Error("recording write failed, ending the session", "err", err)
			s.wg.Add(1)
			go func() { defer s.wg.Done(); s.finish(rs, "write_failed", true) }()
			return
		}
	}
}

func (s *Server) onBye(req *sip.Request, tx sip.ServerTransaction) {
	callID := req.CallID().Value()
	if err := s.dialogs.ReadBye(req, tx); err != nil {
		respond(tx, req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", "")
		return
	}
	s.mu.Lock()
	rs := s.sessions[callID]
	s.mu.Unlock()
	if rs != nil {
		s.finish(rs, "bye", false)
	}
}

// finish closes a session once: RTP stops, the recording is closed
// (hash, sidecar, index, audit) and, unless the SRC ended it, a BYE tells
// the SRC the recording stopped.
func (s *Server) finish(rs *recSession, why string, bye bool) {
	rs.once.Do(func() {
		close(rs.done)
		for _, in := range rs.in {
			in.pp.Close()
		}
		rs.wg.Wait()
		end := s.opts.Now()
		err := rs.rec.Close(end)
		// Out of the map only once closed: Serve finishes what the map
		// holds, and its finish waits (once) for this one, so a recording
		// closing on a BYE at shutdown is whole before the process exits.
		s.mu.Lock()
		delete(s.sessions, rs.callID)
		s.mu.Unlock()
		if bye {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if berr := s.bye(ctx, rs); berr != nil {
				rs.log.Debug("bye to the recording client", "err", berr)
			}
			cancel()
		}
		rs.dlg.Close()
		if err != nil {
			rs.log.Error("recording closed with an error", "why", why, "err", err)
			return
		}
		rs.log.Info("recording session ended", "why", why)
	})
}

// bye ends a session from the server's side. Over TCP and TLS the BYE
// goes back on the SRC's own connection (RFC 5923's reuse): the SRC does
// not listen for TLS, and a new connection would need a certificate of
// the SRC's that the recorder has no reason to trust.
func (s *Server) bye(ctx context.Context, rs *recSession) error {
	inv := rs.dlg.InviteRequest
	if sip.IsReliable(inv.Transport()) && inv.Contact() != nil {
		bye := sip.NewRequest(sip.BYE, inv.Contact().Address)
		bye.SetTransport(inv.Transport())
		bye.SetDestination(inv.Source())
		return rs.dlg.WriteBye(ctx, bye)
	}
	return rs.dlg.Bye(ctx)
}

// channelPlan is the channel of each m= line (-1: refused) and the
// participant sending each channel (nil if the metadata does not say).
type channelPlan struct {
	ch    []int
	parts [2]*Participant
}

func (p channelPlan) any() bool {
	for _, c := range p.ch {
		if c >= 0 {
			return true
		}
	}
	return false
}

// assignChannels decides which recordable stream goes to which channel
// (see the package documentation): by the sender's Plateau role first,
// then in SDP order, operator (left) before outside (right).
func assignChannels(streams []mediaStream, md *Metadata) channelPlan {
	p := channelPlan{ch: make([]int, len(streams))}
	sender := make([]*Participant, len(streams))
	var cands []int
	for i, m := range streams {
		p.ch[i] = -1
		if !m.recordable() {
			continue
		}
		cands = append(cands, i)
		if md != nil && m.Label != "" {
			if st := md.StreamByLabel(m.Label); st != nil {
				sender[i] = md.Sender(st.ID)
			}
		}
	}
	var used [2]bool
	for _, i := range cands {
		c := -1
		if sender[i] != nil {
			switch strings.TrimSpace(sender[i].Role) {
			case RoleOperator:
				c = 0
			case RoleOutside:
				c = 1
			}
		}
		if c >= 0 && !used[c] {
			p.ch[i], used[c], p.parts[c] = c, true, sender[i]
		}
	}
	for _, i := range cands {
		if p.ch[i] >= 0 {
			continue
		}
		for c := range used {
			if !used[c] {
				p.ch[i], used[c], p.parts[c] = c, true, sender[i]
				break
			}
		}
	}
	return p
}

// recordingInfo names the recording: Plateau's call id when the SRC is
// Plateau (the same id on both hosts), else a new one; the participants of
// the left and right channels as operator and number.
func recordingInfo(p channelPlan, md *Metadata, callID string, now time.Time) recordings.Info {
	info := recordings.Info{Start: now}
	if md != nil {
		if c := md.Call(); c != nil {
			if recordings.ValidateID(c.ID) == nil {
				info.ID = c.ID
			}
			info.Campaign = c.Campaign
			info.CallIDs = append(info.CallIDs, c.LegCallIDs...)
		}
	}
	if info.ID == "" {
		var b [6]byte
		rand.Read(b[:])
		info.ID = "siprec-" + now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
	}
	info.CallIDs = append(info.CallIDs, callID)
	if pt := p.parts[0]; pt != nil {
		info.Operator = pt.User()
	}
	if pt := p.parts[1]; pt != nil {
		info.Number = pt.User()
	}
	return info
}
