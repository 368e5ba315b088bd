package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"plateau/media"
	"plateau/srtp"
)

// byeTimeout bounds a BYE we send while shutting a call down.
const byeTimeout = 2 * time.Second

// pstnCall is one dialog of the PSTN, inbound (srv) or placed by it (cli).
type pstnCall struct {
	p   *PSTN
	id  string
	log *slog.Logger
	st  *CallStats
	srv *sipgo.DialogServerSession
	cli *sipgo.DialogClientSession

	mu        sync.Mutex
	ep        *media.Endpoint
	codec     media.Codec
	dtmfPT    uint8
	sessID    uint64
	version   uint64
	remote    netip.AddrPort
	hold      bool
	echoSkip  int // echo mode: packets received while on hold (not echoed)
	holdRecv  int
	playSent  int
	remoteBye bool
	keys      *sdes // SDES keys, nil for plain RTP (sdes.go)

	mediaCancel context.CancelFunc
	mediaWG     sync.WaitGroup
}

func (c *pstnCall) byeFromRemote() {
	c.mu.Lock()
	c.remoteBye = true
	c.mu.Unlock()
}

// updateRTP copies the endpoint's counters into the stats.
func (c *pstnCall) updateRTP() {
	c.mu.Lock()
	ep := c.ep
	if ep == nil {
		c.mu.Unlock()
		return
	}
	recv := ep.Received()
	dropped := ep.SRTPDropped()
	sent := c.playSent
	if c.p.cfg.Answer.Mode == "echo" {
		skip := c.echoSkip
		if c.hold {
			skip += recv - c.holdRecv
		}
		sent = recv - skip
	}
	c.mu.Unlock()
	c.p.update(func() { c.st.RTPRecv, c.st.RTPSent, c.st.SRTPDropped = recv, sent, dropped })
}

// openMedia binds the RTP endpoint for the negotiated codec.
func (c *pstnCall) openMedia(offer media.Remote, codec media.Codec) error {
	ep, err := media.NewEndpoint(c.p.pool, c.p.cfg.Media.ip, codec)
	if err != nil {
		return err
	}
	ep.SetRemote(offer.Addr)
	c.mu.Lock()
	if c.keys != nil {
		ep.SetSRTP(c.keys.sess)
	}
	c.ep, c.codec, c.remote = ep, codec, offer.Addr
	if offer.DTMFPT >= 96 && offer.DTMFPT <= 127 {
		c.dtmfPT = offer.DTMFPT
	}
	c.sessID = rand.Uint64() >> 1
	c.hold = offer.OnHold()
	c.holdRecv = 0
	c.mu.Unlock()
	c.p.update(func() { c.st.RTPTo = offer.Addr.String() })
	return nil
}

// localSDP renders our side for the current state, answering dir.
func (c *pstnCall) localSDP(dir media.Direction) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.ep.LocalAddr()
	return media.BuildSDP(media.Local{
		Addr: l.Addr(), Port: int(l.Port()), Codecs: []media.Codec{c.codec}, DTMFPT: c.dtmfPT,
		Direction: dir, SessionID: c.sessID, Version: c.version, Crypto: cryptoAttrs(c.keys),
	})
}

// startMedia echoes or plays until the call ends.
func (c *pstnCall) startMedia(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mediaCancel != nil {
		return
	}
	ctx, c.mediaCancel = context.WithCancel(ctx)
	if c.p.cfg.Answer.Mode == "echo" {
		c.ep.SetEcho(!c.hold)
		return
	}
	c.mediaWG.Add(1)
	go c.play(ctx)
}

func (c *pstnCall) play(ctx context.Context) {
	defer c.mediaWG.Done()
	const chunk = 10 * media.FrameSamples // 200 ms between counter updates
	pcm := c.p.pcm
	for off := 0; ctx.Err() == nil; {
		end := min(off+chunk, len(pcm))
		err := c.ep.Play(ctx, pcm[off:end])
		switch {
		case errors.Is(err, media.ErrNoRemote): // on hold
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		case err != nil:
			return
		}
		c.mu.Lock()
		c.playSent += (end - off + media.FrameSamples - 1) / media.FrameSamples
		c.mu.Unlock()
		off = end
		if off >= len(pcm) {
			off = 0
		}
	}
}

// stopMedia ends the media goroutine and closes the endpoint.
func (c *pstnCall) stopMedia() {
	c.updateRTP()
	c.mu.Lock()
	cancel, ep := c.mediaCancel, c.ep
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	c.mediaWG.Wait()
	if ep != nil {
		ep.Close()
	}
}

// applyRemote takes a new offer (re-INVITE): new address, hold or resume.
func (c *pstnCall) applyRemote(offer media.Remote) {
	c.mu.Lock()
	defer c.mu.Unlock()
	hold := offer.OnHold()
	recv := c.ep.Received()
	switch {
	case hold && !c.hold:
		c.holdRecv = recv
	case !hold && c.hold:
		c.echoSkip += recv - c.holdRecv
	}
	c.hold = hold
	c.remote = offer.Addr
	if hold {
		c.ep.SetRemote(netip.AddrPort{})
	} else {
		c.ep.SetRemote(offer.Addr)
	}
	if c.p.cfg.Answer.Mode == "echo" && c.mediaCancel != nil {
		c.ep.SetEcho(!hold)
	}
	c.version++
}

// setKeys applies the keys of a new offer or answer (nil: plain RTP).
func (c *pstnCall) setKeys(k *sdes) {
	c.mu.Lock()
	c.keys = k
	if c.ep != nil {
		var s *srtp.Session
		if k != nil {
			s = k.sess
		}
		c.ep.SetSRTP(s)
	}
	c.mu.Unlock()
	c.p.update(func() { c.st.SRTP = k != nil })
}

func answerDirection(d media.Direction) media.Direction {
	switch d {
	case media.SendOnly:
		return media.RecvOnly
	case media.RecvOnly:
		return media.SendOnly
	case media.Inactive:
		return media.Inactive
	}
	return media.SendRecv
}

// reinvite answers an in-dialog INVITE (hold, resume, new address).
func (c *pstnCall) reinvite(req *sip.Request, tx sip.ServerTransaction) {
	d := &c.srv.Dialog
	if c.cli != nil {
		d = &c.cli.Dialog
	}
	if err := d.ReadRequest(req, tx); err != nil {
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusInternalServerError, "CSeq out of order", nil))
		return
	}
	c.mu.Lock()
	up, cur := c.ep != nil, c.keys
	c.mu.Unlock()
	offer, _, keys, err := c.p.readOffer(req.Body(), cur)
	if err != nil || !up {
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusNotAcceptableHere, "Not Acceptable Here", nil))
		return
	}
	c.setKeys(keys)
	c.applyRemote(offer)
	c.p.update(func() { c.st.RTPTo = offer.Addr.String() })
	body, err := c.localSDP(answerDirection(offer.Direction))
	if err != nil {
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusInternalServerError, "Server Internal Error", nil))
		return
	}
	res := sip.NewSDPResponseFromRequest(req, body)
	dua := c.p.dialogFor(req.Transport())
	res.AppendHeader(&dua.ContactHDR)
	c.p.update(func() { c.st.ReInvites++; c.st.Hold = offer.OnHold() }) // before the peer can see the answer
	tx.Respond(res)
	c.log.Info("← re-INVITE → 200 OK", "remote", offer.Addr.String(), "direction", offer.Direction.String(), "hold", offer.OnHold())
}

func (p *PSTN) dialogFor(transport string) *sipgo.DialogUA {
	switch sip.NetworkToLower(transport) {
	case "tcp":
		return p.dialogTCP
	case "tls":
		if p.tls != nil {
			return p.tls.dialogs
		}
	}
	return p.dialogUDP
}

var statusPhrase = map[Action]struct {
	code   int
	phrase string
}{
	ActionBusy:        {sip.StatusBusyHere, "Busy Here"},
	ActionNotFound:    {sip.StatusNotFound, "Not Found"},
	ActionUnavailable: {sip.StatusServiceUnavailable, "Service Unavailable"},
	ActionReject:      {sip.StatusForbidden, "Forbidden"},
}

func (p *PSTN) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	id := callID(req)
	if to := req.To(); to != nil && to.Params.Has("tag") {
		if c := p.call(id); c != nil {
			c.reinvite(req, tx)
			return
		}
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
		return
	}
	number := req.Recipient.User
	from := ""
	if f := req.From(); f != nil {
		from = f.Address.User
	}
	st := p.stat(id, func() *CallStats {
		return &CallStats{Direction: "in", Transport: req.Transport(), Number: number, From: from, Start: p.now(), Auth: "none"}
	})
	log := p.log.With("call", shortID(id), "number", number, "from", from, "transport", req.Transport())
	log.Info("← INVITE")

	if p.auth != nil {
		if !p.auth.verify(req) {
			auth := "challenged"
			if req.GetHeader("Proxy-Authorization") != nil || req.GetHeader("Authorization") != nil {
				auth = "failed"
			}
			// Recorded before answering: the retried INVITE (same Call-ID,
			// same stats) may arrive as soon as the 407 is out.
			p.update(func() { st.Auth, st.Status = auth, sip.StatusProxyAuthRequired })
			res := sip.NewResponseFromRequest(req, sip.StatusProxyAuthRequired, "Proxy Authentication Required", nil)
			res.AppendHeader(sip.NewHeader("Proxy-Authenticate", p.auth.challenge()))
			tx.Respond(res)
			log.Info("→ 407 Proxy Authentication Required", "auth", auth)
			return
		}
		p.update(func() { st.Auth = "ok" })
	}
	if p.cfg.Registrar.Enabled && !p.registered() {
		p.update(func() { st.Status = sip.StatusForbidden })
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusForbidden, "Not Registered", nil))
		log.Info("→ 403 Not Registered")
		return
	}

	offer, codec, keys, err := p.readOffer(req.Body(), nil) // srtp policy (sdes.go)
	if err != nil {
		// Recorded before answering: a test reads the stats once its
		// caller has the 488.
		p.update(func() { st.Status = sip.StatusNotAcceptableHere })
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusNotAcceptableHere, "Not Acceptable Here", nil))
		log.Info("→ 488 Not Acceptable Here", "err", err)
		return
	}

	rule := p.cfg.Rule(number)
	p.update(func() { st.Action = rule.Action })
	sess, err := p.dialogFor(req.Transport()).ReadInvite(req, tx)
	if err != nil {
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusBadRequest, err.Error(), nil))
		p.update(func() { st.Status = sip.StatusBadRequest })
		return
	}
	c := &pstnCall{p: p, id: id, log: log, st: st, srv: sess, keys: keys}
	p.update(func() { st.SRTP = keys != nil })
	p.mu.Lock()
	p.calls[id] = c
	p.mu.Unlock()
	p.wg.Add(1)
	defer func() {
		c.stopMedia()
		sess.Close()
		p.mu.Lock()
		delete(p.calls, id)
		st.End = p.now()
		s := *st
		p.mu.Unlock()
		// Logged before Done: Close waits for it, so nothing logs after
		// the simulator is closed (a test's logger would race its end).
		log.Info("call ended", "status", s.Status, "answered", s.Answered, "hangup_by", s.HangupBy, "rtp_recv", s.RTPRecv, "rtp_sent", s.RTPSent, "srtp", s.SRTP)
		p.wg.Done()
	}()
	c.runInbound(rule, offer, codec)
}

// runInbound follows rule for a new inbound call until it ends.
func (c *pstnCall) runInbound(rule Rule, offer media.Remote, codec media.Codec) {
	p, sess, log := c.p, c.srv, c.log
	ctx := sess.Context() // ends on CANCEL, BYE or transaction failure
	final := func(code int, phrase string) {
		log.Info(fmt.Sprintf("→ %d %s", code, phrase))
		p.update(func() { c.st.Status = code })
		sess.Respond(code, phrase, nil)
	}
	// wait rings for d; false when the caller cancelled or we shut down.
	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			log.Info("← CANCEL → 487 Request Terminated")
			p.update(func() { c.st.Status = sip.StatusRequestTerminated })
			return false
		case <-p.ctx.Done():
			final(sip.StatusServiceUnavailable, "Service Unavailable")
			return false
		}
	}
	ringing := func() bool {
		log.Info("→ 180 Ringing")
		return sess.Respond(sip.StatusRinging, "Ringing", nil) == nil
	}
	sess.Respond(sip.StatusTrying, "Trying", nil)
	ring := p.cfg.RingTime.D()
	if rule.RingTime != 0 {
		ring = rule.RingTime.D()
	}
	switch rule.Action {
	case ActionBusy, ActionNotFound, ActionUnavailable, ActionReject:
		s := statusPhrase[rule.Action]
		final(s.code, s.phrase)
		return
	case ActionNoAnswer:
		if ringing() && wait(rule.Timeout.D()) {
			final(sip.StatusTemporarilyUnavailable, "Temporarily Unavailable")
		}
		return
	case ActionEarly:
		if err := c.openMedia(offer, codec); err != nil {
			final(sip.StatusServiceUnavailable, "Service Unavailable")
			return
		}
		body, err := c.localSDP(media.SendRecv)
		if err != nil {
			final(sip.StatusInternalServerError, "Server Internal Error")
			return
		}
		log.Info("→ 183 Session Progress (early media)")
		sess.Respond(sip.StatusSessionInProgress, "Session Progress", body, sip.NewHeader("Content-Type", "application/sdp"))
		c.startMedia(p.ctx)
		if !wait(ring) {
			return
		}
	default:
		if !ringing() || !wait(ring) {
			return
		}
	}
	c.mu.Lock()
	up := c.ep != nil
	c.mu.Unlock()
	if !up {
		if err := c.openMedia(offer, codec); err != nil {
			final(sip.StatusServiceUnavailable, "Service Unavailable")
			return
		}
	}
	body, err := c.localSDP(answerDirection(offer.Direction))
	if err != nil {
		final(sip.StatusInternalServerError, "Server Internal Error")
		return
	}
	c.startMedia(p.ctx)
	log.Info("→ 200 OK", "codec", codec.String(), "rtp", offer.Addr.String())
	p.update(func() { c.st.Status, c.st.Answered = sip.StatusOK, true })
	if err := sess.RespondSDP(body); err != nil {
		log.Warn("answer failed", "err", err)
		// A BYE that overtook its ACK ends the dialog here too: hangup
		// records it as the remote's; otherwise the 200 went unacknowledged
		// and RFC 3261 13.3.1.4 wants a BYE.
		c.hangup()
		return
	}
	log.Info("← ACK")
	c.stayUp(rule.HangupAfter.D(), ctx)
}

// stayUp keeps an answered call up until the remote hangs up, hangupAfter
// elapses (>0) or the PSTN shuts down.
func (c *pstnCall) stayUp(hangupAfter time.Duration, dialog context.Context) {
	var timeout <-chan time.Time
	if hangupAfter > 0 {
		t := time.NewTimer(hangupAfter)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-dialog.Done():
		c.p.update(func() { c.st.HangupBy = "remote" })
	case <-timeout:
		c.hangup()
	case <-c.p.ctx.Done():
		c.hangup()
	}
}

// hangup sends BYE (bounded by byeTimeout).
func (c *pstnCall) hangup() {
	c.mu.Lock()
	remote := c.remoteBye
	c.mu.Unlock()
	if remote {
		c.p.update(func() { c.st.HangupBy = "remote" })
		return
	}
	c.p.update(func() { c.st.HangupBy = "pstn" })
	ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
	defer cancel()
	c.log.Info("→ BYE")
	var err error
	if c.srv != nil {
		err = c.srv.Bye(ctx)
	} else {
		err = c.cli.Bye(ctx)
	}
	if err != nil {
		c.log.Warn("BYE failed", "err", err)
	}
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
