package b2bua

// The call pipeline: every call, whatever started it (an operator dialling
// on the softphone, a carrier's inbound call, the console's click-to-call)
// goes through place, in this order:
//
//	route → authorise → decide → record → anchor → dial → connect → supervise → tear down
//
// Entry points (outbound.go, inbound.go, clicktocall.go) route and
// authorise, then describe the call in a callSpec: who the operator is,
// the number, which side called in (an INVITE Plateau answers) and which
// side Plateau must ring (the operator's phone binding, the trunk). A
// transfer (transfer.go) reuses admit, dialOut and connected for its new
// outside leg. Teardown is call.end (call.go), the same for all.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"plateau/media"
	"plateau/policy"
	psip "plateau/sip"
)

// callSpec is what an entry point knows of a new call.
type callSpec struct {
	kind     policy.Kind
	operator string
	number   string // as dialled or received
	campaign string
	source   string

	// The INVITE that opened the call, if one did, and its side: the
	// operator's (outbound) or the outside party's (inbound).
	req   *sip.Request
	tx    sip.ServerTransaction
	side  media.Leg
	offer media.Remote
	codec media.Codec
	peer  func(netip.Addr) bool // who may speak in that INVITE's dialog
	latch media.LatchMode       // its RTP sources (a trunk's media_latch)
	keys  *sdesKeys             // the SRTP keys the offer takes (srtp.go), nil: plain
	srtp  media.SRTPMode        // the trunk's SRTP policy (an outside party calling in)

	// The operator's phone to ring when the operator did not call in.
	binding    psip.Binding
	autoAnswer bool
	ringCtx    context.Context // click-to-call: the console request's context

	// Click-to-call: the outside leg is dialled in the background once
	// the operator answered, and its outcome reported here.
	async     bool
	onOutcome func(Outcome)
}

func (sp *callSpec) callsIn(side media.Leg) bool { return sp.req != nil && sp.side == side }

// place runs the pipeline for one call. It returns the call once the
// operator's leg is up (click-to-call: the outside leg is still being
// dialled) or an error: a *Refusal, already answered and audited, or a
// setup failure (ErrNoAnswer, a dial failure).
func (b *B2BUA) place(sp *callSpec) (*call, error) {
	site := refusalSite{req: sp.req, tx: sp.tx, operator: sp.operator, subject: sp.number, source: sp.source}
	if b.s.Draining() {
		return nil, b.refuse(site, &Refusal{Status: sip.StatusServiceUnavailable, Reason: ReasonDraining, Rule: ruleRequest, Detail: "the server is draining"})
	}

	// Decide: the slot is reserved with the decision, the permit is the
	// only way to the trunk.
	pm, ref, d := b.admit(policy.Request{Operator: sp.operator, Number: sp.number, Time: b.s.Now(), Source: sp.source, Kind: sp.kind, Campaign: sp.campaign})
	site.e164 = d.E164
	if ref != nil {
		return nil, b.refuse(site, ref)
	}
	b.metrics.callsActive.Inc()
	c := b.newCall(sp.operator, d.E164, sp.source)
	c.campaign, c.kind, c.slots, c.permit = sp.campaign, string(sp.kind), 1, pm
	b.bind(pm, c, sp.number)
	site.callID = c.id
	ok := false
	why := "setup_failed"
	defer func() {
		if !ok {
			c.end(why)
		}
	}()

	// The leg that called in: its dialog exists from now on.
	var ds *sipgo.DialogServerSession
	if sp.req != nil {
		var err error
		ds, err = b.dialogsFor(sp.req).ReadInvite(sp.req, sp.tx)
		if err != nil {
			c.log.Warn("read invite", "err", err)
			b.refuse(site, &Refusal{Status: sip.StatusBadRequest, Reason: "BAD_INVITE", Rule: ruleRequest, Detail: err.Error()})
			return nil, err
		}
		c.addLeg(uasLeg(sp.side, ds, sp.peer))
		site.ds = ds
		ds.Respond(sip.StatusTrying, "Trying", nil)
	}

	// Record: no recording, no call; it starts before anything is dialled.
	var legIDs []string
	if sp.req != nil {
		legIDs = []string{sp.req.CallID().Value()}
	}
	rec, err := b.rec.Start(c.ctx, RecordingInfo{CallID: c.id, LegCallIDs: legIDs, Operator: c.operator, Number: c.number, Campaign: c.campaign, Start: c.start})
	if err != nil {
		c.log.Error("recording refused", "err", err)
		return nil, b.refuse(site, &Refusal{Status: sip.StatusForbidden, Reason: reasonRecorderUnavailable, Rule: ruleRecorder, Detail: err.Error()})
	}
	// Anchor: the relay's two legs, the recording as its tap.
	relay, err := b.newRelay(c, rec)
	if err != nil {
		c.log.Error("relay", "err", err)
		return nil, b.refuse(site, &Refusal{Status: sip.StatusServiceUnavailable, Reason: ReasonNoMediaPorts, Rule: ruleMedia, Detail: err.Error()})
	}
	if sp.req != nil {
		relay.SetLatch(sp.side, sp.latch)
		if err := c.applyOffer(sp.side, sp.offer, sp.codec, sp.keys, sp.srtp); err != nil {
			return nil, b.refuse(site, &Refusal{Status: sip.StatusNotAcceptableHere, Reason: ReasonBadSDP, Rule: ruleMedia, Detail: err.Error()})
		}
	}
	// Our answer toward the leg that called in, in its codec.
	answerSDP := func() []byte {
		// The answer mirrors the offer's direction (RFC 3264 §6.1).
		return c.localSDP(sp.side, []media.Codec{{Encoding: sp.codec.Encoding, PayloadType: sp.codec.PayloadType}}, sp.offer.DTMFPT, answerDirection(sp.offer.Direction))
	}

	// Dial: the operator's phone first when it must be rung, so nobody
	// outside is called before the operator is on the line.
	if !sp.callsIn(media.LegOperator) {
		ringCtx := sp.ringCtx
		if ringCtx == nil {
			ringCtx = c.ctx
		}
		var onRinging func()
		if ds != nil {
			ringCtx = ds.Context()
			onRinging = func() { ds.Respond(sip.StatusRinging, "Ringing", nil) }
		}
		if _, err := b.ringOperator(ringCtx, c, sp.binding, sp.autoAnswer, onRinging); err != nil {
			c.log.Info("operator did not answer", "err", err)
			if ds != nil && ds.Context().Err() == nil {
				ds.Respond(sip.StatusTemporarilyUnavailable, "Temporarily Unavailable", nil)
			}
			why = "no_answer"
			if ds != nil && ds.Context().Err() != nil {
				why = "cancelled"
			}
			return nil, errors.Join(ErrNoAnswer, err)
		}
	}
	if !sp.callsIn(media.LegOutside) {
		if sp.async {
			ok = true
			b.goCall(c, "dial", func() {
				out := b.connectOutside(c, nil, nil)
				if sp.onOutcome != nil {
					sp.onOutcome(out)
				}
			})
			return c, nil
		}
		out := b.connectOutside(c, ds, answerSDP)
		ok = true // connectOutside ended the call on failure
		if !out.Answered {
			return nil, errors.New("outside leg: " + out.Result)
		}
		return c, nil
	}

	// Connect: answer the outside party who called in.
	in := c.legByDialog(ds)
	in.number = c.number
	in.setAnswered()
	if err := c.answerUAS(sp.side, ds, answerSDP()); err != nil { // with its session timer (sessiontimer.go)
		c.log.Warn("answer", "err", err)
		return nil, err
	}
	if !c.setOutside(in, b.s.Now()) {
		return nil, context.Canceled
	}
	ok = true
	b.connected(c)
	return c, nil
}

// legByDialog returns the call's leg of dialog d.
func (c *call) legByDialog(d dialogLeg) *leg {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.legs {
		if l.d == d {
			return l
		}
	}
	return nil
}

// markAnswered marks the leg of ds up.
func (c *call) markAnswered(d dialogLeg) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.legs {
		if l.d == d {
			l.setAnswered()
		}
	}
}

// connectOutside dials the outside party with the call's permit; when it
// answers, the operator's INVITE (if they called in) is answered and the
// call is connected. On failure the operator gets the mapped status and
// the call ends. It reports the outside leg's outcome.
func (b *B2BUA) connectOutside(c *call, opDS *sipgo.DialogServerSession, answerSDP func() []byte) Outcome {
	res := Outcome{CallID: c.id}
	op, _ := c.current()
	var onProvisional func(*sip.Response)
	if opDS != nil {
		onProvisional = func(r *sip.Response) { b.relayProvisional(c, opDS, r, answerSDP) }
	} else {
		onProvisional = func(r *sip.Response) {
			if r.StatusCode == sip.StatusSessionInProgress {
				c.applyEarlyMedia(r)
			}
		}
	}
	c.mu.Lock()
	pm := c.permit
	c.mu.Unlock()
	opCtx := op.d.Context()
	out, status, err := b.dialOut(opCtx, c, pm, onProvisional)
	if err != nil {
		res.Status = status
		opGone := opCtx.Err() != nil
		switch {
		case opGone && op.isAnswered():
			res.Result = "cancelled"
			c.end("operator_hangup")
			return res
		case opGone:
			// The operator cancelled: sipgo has answered 487 already.
			res.Result = "cancelled"
			c.end("cancelled")
			return res
		case status == sip.StatusBusyHere || status == 600:
			res.Result = "busy"
		case status == sip.StatusRequestTimeout || status == sip.StatusTemporarilyUnavailable || status == sip.StatusRequestTerminated:
			res.Result = "no_answer"
		default:
			res.Result = "failed"
		}
		c.log.Info("outside leg failed", "status", status, "err", err)
		if opDS != nil {
			code, phrase := mapFailure(status)
			opDS.Respond(code, phrase, nil, trunkFailureHeaders(err)...)
		}
		c.end(map[string]string{"busy": "busy", "no_answer": "no_answer", "failed": "outside_failed"}[res.Result])
		return res
	}
	if !c.setOutside(out, b.s.Now()) {
		out.hangup(context.WithoutCancel(c.ctx), c.log)
		res.Result = "cancelled"
		return res
	}
	if opDS != nil {
		// Up before the 200 goes out: a teardown from now on sends BYE.
		op.setAnswered()
		if err := c.answerUAS(media.LegOperator, opDS, answerSDP()); err != nil { // with its session timer
			c.log.Warn("answer operator", "err", err)
			c.end("setup_failed")
			res.Result = "failed"
			return res
		}
	}
	b.connected(c)
	res.Answered, res.Status, res.Result = true, sip.StatusOK, "answered"
	return res
}

// connected is the one place a call becomes established, whatever its
// entry point: metrics, inbound routing memory, monitors and coaching,
// supervision and the recording notice.
func (b *B2BUA) connected(c *call) {
	b.metrics.callsAnswered.Inc()
	b.rememberCaller(c.num(), c.operator)
	c.log.Info("call answered", "number", c.num(), "kind", c.kind)
	b.callAnswered(c) // monitors following the operator, coaching (monitor.go)
	b.goCall(c, "supervise", c.supervise)
	b.goCall(c, "announce", c.announce)
}

// dialOut places an outside leg over the trunks in order, failing over on
// 503 or silence, relaying provisional responses (and early media) to
// onProvisional. It returns the answered leg or the last final status.
func (b *B2BUA) dialOut(ctx context.Context, c *call, pm Permit, onProvisional func(*sip.Response)) (*leg, int, error) {
	status := sip.StatusServiceUnavailable
	var lastErr error = errors.New("no trunk available")
	for _, t := range b.trunks {
		if !t.Up() {
			continue
		}
		if ctx.Err() != nil {
			return nil, 0, context.Canceled
		}
		secure, serr := b.trunkOfferSecure(t) // srtp.go
		if serr != nil {
			status, lastErr = sip.StatusServiceUnavailable, serr
			b.s.Log().Error("trunk skipped", "trunk", t.Name, "err", serr)
			continue
		}
		l, st, err := b.tryTrunk(ctx, c, pm, t, onProvisional, secure)
		if err != nil && secure && t.SRTP == media.SRTPOptional && carrierRefused(err, sip.StatusNotAcceptableHere) && ctx.Err() == nil {
			// srtp: optional and the carrier refused RTP/SAVP itself:
			// the same call once more in plain RTP (srtp.go).
			b.s.Audit(context.WithoutCancel(ctx), "call.srtp_fallback", c.operator, pm.E164(), "plain_rtp", "SRTP_REFUSED_BY_CARRIER", c.source,
				map[string]any{"call_id": c.id, "trunk": t.Name})
			l, st, err = b.tryTrunk(ctx, c, pm, t, onProvisional, false)
		}
		if err == nil {
			return l, 0, nil
		}
		status, lastErr = st, err
		if errors.Is(err, errEgress) {
			break
		}
		// Only a carrier failure moves to the next trunk; busy, not found
		// and the like are the called party's answer.
		if st != sip.StatusServiceUnavailable && st != 0 {
			break
		}
		b.s.Log().Warn("trunk failed, trying next", "trunk", t.Name, "status", st, "err", err)
	}
	if status == 0 {
		status = sip.StatusServiceUnavailable
	}
	return nil, status, lastErr
}

// tryTrunk sends the INVITE of an outside leg to one trunk (through the
// egress gate) and waits for the answer: the one function that does so.
// secure makes the offer RTP/SAVP with fresh SDES keys (srtp.go).
func (b *B2BUA) tryTrunk(ctx context.Context, c *call, pm Permit, t *psip.Trunk, onProvisional func(*sip.Response), secure bool) (*leg, int, error) {
	s := b.s
	e164 := pm.E164()
	crypto, err := c.newTrunkOffer(t.SRTP, secure)
	if err != nil {
		return nil, sip.StatusServiceUnavailable, err
	}
	offer := c.buildSDP(media.LegOutside, media.DefaultCodecs(), 101, media.SendRecv, crypto)
	req := sip.NewRequest(sip.INVITE, t.URI(e164))
	req.SetBody(offer)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	from := sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: t.CallerID, Host: s.ExternalAddress()}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(&from)
	req.AppendHeader(&sip.ToHeader{Address: req.Recipient})
	if t.Transport == "tcp" {
		req.SetTransport("TCP")
	}

	// The ring context ends with the operator's side (CANCEL), the ring
	// timeout, or a trunk that says nothing at all (failover).
	// The trunk leg (trunkleg.go) reads every response itself: any number
	// of provisionals, PRACK, digest, its own ring timeout, CANCEL after a
	// provisional and ACK+BYE of an answer that comes after Plateau gave
	// up. Its context ends with the operator's side or the call.
	opts := b.trunkLegOptions(c, t, onProvisional)
	dialCtx, cancelDial := ringContext(ctx, c.ctx, opts.RingTimeout+opts.SilenceTimeout+time.Minute)
	defer cancelDial()
	c.latchTrunkMedia(t, false) // before a 183's SDP
	d, err := b.inviteTrunk(dialCtx, pm, c, t, req, opts)
	if err != nil {
		if errors.Is(err, errEgress) {
			return nil, 0, err
		}
		var le *TrunkLegError
		switch {
		case errors.As(err, &le) && le.Status == 0 && ctx.Err() == nil:
			return nil, 0, fmt.Errorf("trunk %s did not answer: %w", t.Name, err)
		case le != nil:
			return nil, le.Status, err
		}
		return nil, sip.StatusRequestTimeout, err
	}
	trunkHost, _ := netip.ParseAddrPort(t.Address)
	l := trunkDialogLeg(d, b.trunkPeer(t, trunkHost.Addr()))
	l.number = e164
	if !c.addLeg(l) {
		// The call ended while the carrier answered: hang the answer up.
		l.setAnswered()
		l.hangup(context.WithoutCancel(ctx), c.log)
		return nil, sip.StatusRequestTerminated, context.Canceled
	}
	l.setAnswered()
	c.mu.Lock()
	relay, replacing := c.relay, c.out != nil
	c.mu.Unlock()
	if replacing {
		// A transfer's new party: the notice gate closes again until the
		// notice has been played to it (announce, after the swap).
		relay.NewOutsideParty()
	}
	relay.SetEarly(false)
	c.latchTrunkMedia(t, true)
	if perr := c.applyTrunkAnswer(d.InviteResponse.Body()); perr != nil {
		// An answer we cannot use: hang it up rather than bridge silence.
		c.auditSRTPAnswer(perr, t.Name)
		l.hangup(context.WithoutCancel(ctx), c.log)
		return nil, sip.StatusNotAcceptableHere, perr
	}
	c.armTrunkSessionTimer(d)
	return l, 0, nil
}

// ringOperator places a call's operator leg toward the operator's phone
// binding (inbound calls, click-to-call), through the egress gate.
func (b *B2BUA) ringOperator(ctx context.Context, c *call, bnd psip.Binding, autoAnswer bool, onRinging func()) (*leg, error) {
	var target sip.Uri
	if err := sip.ParseUri(bnd.Contact, &target); err != nil {
		return nil, err
	}
	body := c.localSDP(media.LegOperator, media.DefaultCodecs(), 101, media.SendRecv)
	invite := phoneInvite(target, c.number, c.number, c.operator, b.s.ExternalAddress())
	ctx, cancel := ringContext(ctx, c.ctx, b.opts.RingTimeout)
	defer cancel()
	l, cs, targetErr, err := b.ringBinding(ctx, c, c.operator, bnd, invite, body, autoAnswer, c.addLeg, sipgo.AnswerOptions{OnResponse: func(res *sip.Response) error {
		if res.StatusCode == sip.StatusRinging && onRinging != nil {
			onRinging()
		}
		return nil
	}})
	if err != nil {
		return nil, err
	}
	err = targetErr // the answer pointed elsewhere: ACK, then hang up
	if err == nil {
		err = c.applyRemote(media.LegOperator, cs.InviteResponse.Body())
	}
	cs.Ack(ctx)
	if err != nil {
		l.hangup(context.WithoutCancel(ctx), c.log)
		return nil, errors.Join(errors.New("operator answered with unusable SDP"), err)
	}
	c.armUACSessionTimer(media.LegOperator, cs.InviteResponse) // the phone's 2xx decides (sessiontimer.go)
	return l, nil
}

// ringContext ends with the ringing side's context, the call's, or the
// timeout: a call torn down while a leg rings cancels that leg (CANCEL).
func ringContext(side, call context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(side, timeout)
	stop := context.AfterFunc(call, cancel)
	return ctx, func() { stop(); cancel() }
}

// relayProvisional forwards 180 and 183 to the operator; a 183 with SDP
// carries early media, which the relay bridges.
func (b *B2BUA) relayProvisional(c *call, ds *sipgo.DialogServerSession, res *sip.Response, opSDP func() []byte) {
	switch {
	case res.StatusCode == sip.StatusRinging:
		ds.Respond(sip.StatusRinging, "Ringing", nil)
	case res.StatusCode == sip.StatusSessionInProgress && c.applyEarlyMedia(res):
		ds.Respond(sip.StatusSessionInProgress, "Session Progress", opSDP(), sip.NewHeader("Content-Type", "application/sdp"))
	case res.StatusCode == sip.StatusSessionInProgress:
		ds.Respond(sip.StatusSessionInProgress, "Session Progress", nil)
	}
}

// applyEarlyMedia points the outside leg at a 183's SDP; early media we
// cannot read is ignored (the call keeps ringing without it).
// Early media is one-way (outside → operator): the called party hears
// nothing before the answer and the notice.
func (c *call) applyEarlyMedia(res *sip.Response) bool {
	if len(res.Body()) == 0 {
		return false
	}
	c.mu.Lock()
	relay, replacing := c.relay, c.out != nil
	c.mu.Unlock()
	if replacing {
		return false // a transfer's ringing party does not take over the media
	}
	relay.SetEarly(true)
	return c.applyTrunkAnswer(res.Body()) == nil
}

// mapFailure turns the outside leg's final status into the operator's.
func mapFailure(status int) (int, string) {
	switch status {
	case sip.StatusBusyHere, 600:
		return sip.StatusBusyHere, "Busy Here"
	case sip.StatusNotFound, 604:
		return sip.StatusNotFound, "Not Found"
	case sip.StatusTemporarilyUnavailable, sip.StatusRequestTimeout:
		return sip.StatusTemporarilyUnavailable, "Temporarily Unavailable"
	case sip.StatusForbidden, 603:
		return sip.StatusForbidden, "Forbidden"
	case sip.StatusNotAcceptableHere:
		return sip.StatusNotAcceptableHere, "Not Acceptable Here"
	case sip.StatusRequestTerminated:
		return sip.StatusRequestTerminated, "Request Terminated"
	default:
		return sip.StatusServiceUnavailable, "Service Unavailable"
	}
}

// newRelay anchors a call's media with its recording as the tap.
func (b *B2BUA) newRelay(c *call, rec Recording) (*media.Relay, error) {
	opts := []media.Option{media.WithTap(rec), media.WithLogger(c.log), media.WithDigits(c.keyPressed)}
	if b.opts.Detention {
		opts = append(opts, media.WithDetention())
	}
	if b.opts.MediaMetrics != nil {
		opts = append(opts, media.WithMetrics(b.opts.MediaMetrics))
	}
	if b.opts.InactivityTimeout > 0 {
		opts = append(opts, media.WithInactivityTimeout(b.opts.InactivityTimeout))
	}
	relay, err := media.NewRelay(b.opts.Ports, b.opts.MediaIP, opts...)
	if err != nil {
		rec.Close(b.s.Now())
		return nil, err
	}
	c.mu.Lock()
	c.relay, c.rec = relay, rec
	c.mu.Unlock()
	return relay, nil
}

// rememberCaller notes who last called a number, for inbound routing.
func (b *B2BUA) rememberCaller(e164, ext string) {
	b.mu.Lock()
	b.lastOperator[e164] = ext
	b.mu.Unlock()
}

func mediaEndReason(err error) string {
	switch {
	case errors.Is(err, media.ErrTapFailed):
		return "recording_failed"
	case errors.Is(err, media.ErrInactive):
		return "rtp_timeout"
	}
	return "media_ended"
}
