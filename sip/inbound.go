package sip

import (
	"context"
	"errors"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"plateau/media"
	"plateau/policy"
	"plateau/store"
)

// handleInbound takes a call from a trunk's allowed sources. The caller's
// number must pass the policy like an outbound call (approved, inside the
// window, recorder ready); it rings the operator who last called that
// number if free, else any free registered operator.
func (b *b2bua) handleInbound(req *sip.Request, tx sip.ServerTransaction, t *Trunk) {
	s := b.s
	caller := ""
	if f := req.From(); f != nil {
		caller = f.Address.User
	}
	if s.draining.Load() {
		b.respondReason(req, tx, sip.StatusServiceUnavailable, "Service Unavailable", "DRAINING")
		return
	}
	offer, codec, ok := b.readOffer(req, tx)
	if !ok {
		return
	}
	e164, _ := policy.Normalize(caller, b.region)

	op, contact := b.pickOperator(e164)
	d := policy.Decision{Reason: "NO_OPERATOR_AVAILABLE", Rule: "routing", E164: e164}
	if op != "" {
		d = b.admit(policy.Request{Operator: op, Number: caller, Time: s.now(), Source: req.Source(), Kind: policy.KindInbound})
	}
	b.auditDecision(op, caller, req.Source(), d)
	if !d.Allow {
		s.metrics.callsRefused.WithLabelValues(d.Reason).Inc()
		code, phrase := sip.StatusForbidden, "Forbidden"
		if op == "" {
			code, phrase = sip.StatusTemporarilyUnavailable, "Temporarily Unavailable"
		}
		b.respondReason(req, tx, code, phrase, d.Reason)
		return
	}

	s.metrics.callsActive.Inc()
	c := b.newCall(op, d.E164, req.Source())
	c.outCallID = req.CallID().Value()
	b.register(c, c.outCallID)
	ok = false
	defer func() {
		if !ok {
			c.end("setup_failed")
		}
	}()
	ds, err := b.dialogs.ReadInvite(req, tx)
	if err != nil {
		return
	}
	c.mu.Lock()
	c.outLeg = ds
	c.mu.Unlock()
	ds.Respond(sip.StatusTrying, "Trying", nil)

	rec, err := b.rec.Start(c.ctx, RecordingInfo{CallID: c.id, LegCallIDs: []string{c.outCallID}, Operator: op, Number: c.number, Start: c.start})
	if err != nil {
		s.audit.Audit(s.ctx, "policy.decision", op, c.number, "refused", policy.ReasonRecorderUnavailable, c.source, map[string]any{"detail": err.Error(), "call_id": c.id})
		ds.Respond(sip.StatusForbidden, "Forbidden", nil, sip.NewHeader("Reason", `SIP;cause=403;text="`+policy.ReasonRecorderUnavailable+`"`))
		return
	}
	relay, err := b.newRelay(c, rec)
	if err != nil {
		ds.Respond(sip.StatusServiceUnavailable, "Service Unavailable", nil)
		return
	}
	if err := relay.SetRemoteSDP(media.LegOutside, offer, codec); err != nil {
		ds.Respond(sip.StatusNotAcceptableHere, "Not Acceptable Here", nil)
		return
	}

	cs, err := b.ringOperator(ds.Context(), c, contact, func() { ds.Respond(sip.StatusRinging, "Ringing", nil) })
	if err != nil {
		if ds.Context().Err() == nil {
			ds.Respond(sip.StatusTemporarilyUnavailable, "Temporarily Unavailable", nil)
		}
		c.log.Info("operator did not answer", "err", err)
		return
	}
	c.mu.Lock()
	c.opLeg = cs
	c.answered = s.now()
	c.mu.Unlock()
	// The answer mirrors the offer's direction (RFC 3264 §6.1) and carries
	// the session timer the carrier asked for (sessiontimer.go).
	outSDP := c.localSDP(media.LegOutside, []media.Codec{codec}, offer.DTMFPT, answerDirection(offer.Direction))
	if err := c.answerUAS(media.LegOutside, ds, outSDP); err != nil {
		return
	}
	s.metrics.callsAnswered.Inc()
	c.log.Info("inbound call answered", "caller", c.number)
	ok = true
	b.callAnswered(c) // monitors following the operator, coaching (monitor.go)
	b.wg.Add(2)
	go c.supervise()
	go c.announce()
}

// pickOperator returns a registered, free operator for an inbound call:
// the last one who called the number, else the first free one.
func (b *b2bua) pickOperator(e164 string) (string, store.Binding) {
	free := func(ext string) (store.Binding, bool) {
		if n, _, _ := b.active.Active(b.s.ctx, ext); n > 0 {
			return store.Binding{}, false
		}
		u, err := b.s.users.User(b.s.ctx, ext)
		if err != nil || u.Role != store.RoleOperator || u.Status != store.StatusActive {
			return store.Binding{}, false
		}
		cs := b.s.reg.contacts(ext)
		if len(cs) == 0 {
			return store.Binding{}, false
		}
		return cs[0], true
	}
	b.mu.Lock()
	last := b.lastOperator[e164]
	b.mu.Unlock()
	if last != "" {
		if c, ok := free(last); ok {
			return last, c
		}
	}
	for _, ext := range b.s.reg.extensions() {
		if c, ok := free(ext); ok {
			return ext, c
		}
	}
	return "", store.Binding{}
}

// ringOperator places a call's operator leg toward the operator's phone
// (inbound calls, click-to-call); extra headers ask for auto-answer.
func (b *b2bua) ringOperator(ctx context.Context, c *call, contact store.Binding, onRinging func(), extra ...sip.Header) (*sipgo.DialogClientSession, error) {
	var target sip.Uri
	if err := sip.ParseUri(contact.Contact, &target); err != nil {
		return nil, err
	}
	req := sip.NewRequest(sip.INVITE, target)
	req.SetBody(c.localSDP(media.LegOperator, media.DefaultCodecs(), 101, media.SendRecv))
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	from := sip.FromHeader{DisplayName: c.number, Address: sip.Uri{Scheme: "sip", User: c.number, Host: b.s.opts.ExternalAddress}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(&from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: c.operator, Host: b.s.opts.ExternalAddress}})
	for _, h := range extra {
		req.AppendHeader(h)
	}
	routeViaPath(req, contact) // through the proxy it registered through (path.go)
	if contact.Transport == "tcp" {
		req.SetTransport("TCP")
	}
	ctx, cancel := context.WithTimeout(ctx, b.opts.RingTimeout)
	defer cancel()
	cs, err := b.dialogs.WriteInvite(ctx, req)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.opCallID = req.CallID().Value()
	c.mu.Unlock()
	b.register(c, c.opCallID)
	err = cs.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: func(res *sip.Response) error {
		if res.StatusCode == sip.StatusRinging && onRinging != nil {
			onRinging()
		}
		return nil
	}})
	if err != nil {
		return nil, err
	}
	err = c.applyRemote(media.LegOperator, cs.InviteResponse.Body())
	cs.Ack(ctx)
	if err != nil {
		cs.Bye(context.WithoutCancel(ctx))
		return nil, errors.Join(errors.New("operator answered with unusable SDP"), err)
	}
	return cs, nil
}

// newRelay anchors a call's media with its recording as the tap.
func (b *b2bua) newRelay(c *call, rec Recording) (*media.Relay, error) {
	opts := []media.Option{media.WithTap(rec), media.WithLogger(c.log), media.WithDigits(c.keyPressed)}
	if b.opts.MediaMetrics != nil {
		opts = append(opts, media.WithMetrics(b.opts.MediaMetrics))
	}
	if b.opts.InactivityTimeout > 0 {
		opts = append(opts, media.WithInactivityTimeout(b.opts.InactivityTimeout))
	}
	relay, err := media.NewRelay(b.opts.Ports, b.opts.MediaIP, opts...)
	if err != nil {
		rec.Close(b.s.now())
		return nil, err
	}
	c.mu.Lock()
	c.relay, c.rec = relay, rec
	c.mu.Unlock()
	return relay, nil
}

// rememberCaller notes who last called a number, for inbound routing.
func (b *b2bua) rememberCaller(e164, ext string) {
	b.mu.Lock()
	b.lastOperator[e164] = ext
	b.mu.Unlock()
}
