package sip

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"

	"plateau/media"
	"plateau/policy"
)

// handleInvite routes a new INVITE: in-dialog ones are re-INVITEs, those
// from a trunk's sources are inbound calls, the rest must be operators
// (digest-authenticated) calling out.
func (b *b2bua) handleInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params != nil {
		if tag, ok := to.Params.Get("tag"); ok && tag != "" {
			b.handleReinvite(req, tx)
			return
		}
	}
	if b.refuseUnsupported(req, tx) { // Require: what Plateau lacks (sessiontimer.go)
		return
	}
	// A request with credentials is an operator's, whatever its source;
	// without, one from a trunk's sources is an inbound call. Both paths
	// end at the policy.
	if src, ok := sourceAddr(req); ok && getHeader(req, "proxy-authorization") == nil {
		if t := b.trunkForRequest(req, src); t != nil {
			b.handleInbound(req, tx, t)
			return
		}
		// No open relay: a call from another domain is a carrier's (or a
		// scanner's) from an address no trunk allows; it is refused, not
		// challenged, so a misconfigured carrier shows in the audit.
		if !b.fromOurDomain(req) {
			caller := ""
			if f := req.From(); f != nil {
				caller = f.Address.User
			}
			b.refuse(req, tx, "", caller, ReasonUnknownSource, "INVITE from "+src.String()+" is not from a trunk's allowed sources nor from this server's domain")
			return
		}
	}
	b.handleOutbound(req, tx)
}

// ReasonUnknownSource refuses an INVITE from another domain at an address
// no trunk allows.
const ReasonUnknownSource = "UNKNOWN_SOURCE"

// fromOurDomain reports whether an INVITE's From names this server, as an
// operator's phone does: its account domain is in both From and the
// Request-URI, or it is the realm or the address Plateau announces.
func (b *b2bua) fromOurDomain(req *sip.Request) bool {
	f := req.From()
	if f == nil {
		return false
	}
	host := f.Address.Host
	for _, ours := range []string{req.Recipient.Host, b.s.opts.Realm, b.s.opts.ExternalAddress} {
		if ours != "" && strings.EqualFold(host, ours) {
			return true
		}
	}
	return false
}

func (b *b2bua) respondReason(req *sip.Request, tx sip.ServerTransaction, code int, reason, cause string) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	if cause != "" {
		res.AppendHeader(sip.NewHeader("Reason", `SIP;cause=`+strconv.Itoa(code)+`;text="`+cause+`"`))
	}
	b.s.respond(tx, req, res)
}

func (b *b2bua) handleOutbound(req *sip.Request, tx sip.ServerTransaction) {
	s := b.s
	if s.draining.Load() {
		b.respondReason(req, tx, sip.StatusServiceUnavailable, "Service Unavailable", "DRAINING")
		return
	}
	u, ok := s.authenticate(req, tx, true)
	if !ok {
		return
	}
	// The caller is who authenticated, whatever the From header claims.
	if from := req.From(); from == nil || from.Address.User != u.Extension {
		b.refuse(req, tx, u.Extension, req.Recipient.User, "FROM_MISMATCH", "From does not match the authenticated user")
		return
	}
	offer, codec, ok := b.readOffer(req, tx)
	if !ok {
		return
	}
	if !b.mediaAddrAllowed(req, offer) {
		b.refuse(req, tx, u.Extension, req.Recipient.User, "MEDIA_ADDRESS_MISMATCH", "SDP address is not the phone's own: "+offer.Addr.String())
		return
	}

	number := req.Recipient.User
	if strings.HasPrefix(number, "*") {
		// Feature codes (*1<ext> listen, *2 whisper, *3 barge) never reach
		// a trunk.
		b.handleFeatureCode(req, tx, u, offer, codec)
		return
	}
	d := b.admit(policy.Request{
		Operator: u.Extension, Number: number, Time: s.now(), Source: req.Source(), Kind: policy.KindOutbound,
	})
	b.auditDecision(u.Extension, number, req.Source(), d)
	if !d.Allow {
		s.metrics.callsRefused.WithLabelValues(d.Reason).Inc()
		b.respondReason(req, tx, sip.StatusForbidden, "Forbidden", d.Reason)
		return
	}
	s.metrics.callsActive.Inc()
	c := b.newCall(u.Extension, d.E164, req.Source())
	c.opCallID = req.CallID().Value()
	b.register(c, c.opCallID)
	ok = false
	defer func() {
		if !ok {
			c.end("setup_failed")
		}
	}()

	ds, err := b.dialogs.ReadInvite(req, tx)
	if err != nil {
		c.log.Warn("read invite", "err", err)
		return
	}
	c.mu.Lock()
	c.opLeg = ds
	c.mu.Unlock()
	ds.Respond(sip.StatusTrying, "Trying", nil)

	// No recording, no call: the recording starts before anything is dialled.
	rec, err := b.rec.Start(c.ctx, RecordingInfo{CallID: c.id, LegCallIDs: []string{c.opCallID}, Operator: c.operator, Number: c.number, Start: c.start})
	if err != nil {
		c.log.Error("recording refused", "err", err)
		s.audit.Audit(s.ctx, "policy.decision", c.operator, c.number, "refused", policy.ReasonRecorderUnavailable, c.source, map[string]any{"detail": err.Error(), "call_id": c.id})
		s.metrics.callsRefused.WithLabelValues(policy.ReasonRecorderUnavailable).Inc()
		ds.Respond(sip.StatusForbidden, "Forbidden", nil, sip.NewHeader("Reason", `SIP;cause=403;text="`+policy.ReasonRecorderUnavailable+`"`))
		return
	}
	relay, err := b.newRelay(c, rec)
	if err != nil {
		c.log.Error("relay", "err", err)
		ds.Respond(sip.StatusServiceUnavailable, "Service Unavailable", nil, sip.NewHeader("Reason", `SIP;cause=503;text="NO_MEDIA_PORTS"`))
		return
	}
	if err := relay.SetRemoteSDP(media.LegOperator, offer, codec); err != nil {
		ds.Respond(sip.StatusNotAcceptableHere, "Not Acceptable Here", nil)
		return
	}
	opSDP := func() []byte {
		return c.localSDP(media.LegOperator, []media.Codec{{Encoding: codec.Encoding, PayloadType: codec.PayloadType}}, offer.DTMFPT, answerDirection(offer.Direction)) // RFC 3264 §6.1
	}

	cs, status, err := b.dialOut(ds.Context(), c, c.number, func(res *sip.Response) { b.relayProvisional(c, ds, res, opSDP) })
	if err != nil {
		if ds.Context().Err() != nil {
			// The operator cancelled: sipgo has answered 487 already.
			c.log.Info("cancelled by operator")
			c.end("cancelled")
			ok = true
			return
		}
		code, reason := mapFailure(status)
		c.log.Info("outside leg failed", "status", status, "err", err)
		ds.Respond(code, reason, nil, trunkFailureHeaders(err)...)
		return
	}
	c.setOutside(cs, s.now())
	if err := c.answerUAS(media.LegOperator, ds, opSDP()); err != nil { // with its session timer
		c.log.Warn("answer operator", "err", err)
		return
	}
	s.metrics.callsAnswered.Inc()
	b.rememberCaller(c.number, c.operator)
	c.log.Info("call answered", "number", c.number)
	ok = true
	b.callAnswered(c) // monitors following the operator, coaching (monitor.go)
	b.wg.Add(2)
	go c.supervise()
	go c.announce()
}

// announce plays the recording notice to the outside party before the
// operator is heard, then a short tone to the operator.
func (c *call) announce() {
	defer c.b.wg.Done()
	notice := c.b.opts.Notice
	if n, ok := c.b.opts.CampaignNotices[c.campaign]; ok {
		notice = n
	}
	if len(notice) > 0 {
		if err := c.relay.Play(c.ctx, media.LegOutside, notice, media.Muted()); err != nil {
			return
		}
	}
	c.relay.Play(c.ctx, media.LegOperator, media.Tone(880, 150*time.Millisecond))
}

// dialOut places the outside leg over the trunks in order, failing over on
// 503 or silence, relaying provisional responses (and early media) to the
// operator. It returns the answered dialog or the last final status.
func (b *b2bua) dialOut(ctx context.Context, c *call, e164 string, onProvisional func(*sip.Response)) (*trunkDialog, int, error) {
	status := sip.StatusServiceUnavailable
	var lastErr error = errors.New("no trunk available")
	for _, t := range b.trunks {
		if !t.Up() {
			continue
		}
		if ctx.Err() != nil {
			return nil, 0, context.Canceled
		}
		cs, st, err := b.tryTrunk(ctx, c, t, e164, onProvisional)
		if err == nil {
			return cs, 0, nil
		}
		status, lastErr = st, err
		// Only a carrier failure moves to the next trunk; busy, not found
		// and the like are the called party's answer.
		if st != sip.StatusServiceUnavailable && st != 0 {
			break
		}
		b.s.log.Warn("trunk failed, trying next", "trunk", t.Name, "status", st, "err", err)
	}
	if status == 0 {
		status = sip.StatusServiceUnavailable
	}
	return nil, status, lastErr
}

func (b *b2bua) tryTrunk(ctx context.Context, c *call, t *Trunk, e164 string, onProvisional func(*sip.Response)) (*trunkDialog, int, error) {
	s := b.s
	offer := c.localSDP(media.LegOutside, media.DefaultCodecs(), 101, media.SendRecv)
	req := sip.NewRequest(sip.INVITE, t.uri(e164))
	req.SetBody(offer)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	from := sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: t.CallerID, Host: s.opts.ExternalAddress}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(&from)
	req.AppendHeader(&sip.ToHeader{Address: req.Recipient})
	callID := sip.CallIDHeader(uuid.NewString())
	req.AppendHeader(&callID)
	if t.Transport == "tcp" {
		req.SetTransport("TCP")
	}

	// The trunk leg (trunkleg.go) reads every response itself: any number
	// of provisionals, PRACK, digest, CANCEL and late answers.
	outCallID := req.CallID().Value()
	b.register(c, outCallID) // in-dialog requests of this leg find the call
	cs, err := dialTrunkLeg(ctx, b.client, b.dialogs.ContactHDR, req, b.trunkLegOptions(c, t, onProvisional))
	if err == nil {
		if perr := c.applyRemote(media.LegOutside, cs.InviteResponse.Body()); perr != nil {
			// An answer we cannot use: hang it up rather than bridge silence.
			cs.Bye(context.WithoutCancel(ctx))
			b.unregister(outCallID)
			return nil, sip.StatusNotAcceptableHere, perr
		}
		return cs, 0, nil
	}
	b.unregister(outCallID)
	var le *TrunkLegError
	if errors.As(err, &le) && le.Status == 0 && ctx.Err() == nil {
		return nil, 0, errors.New("trunk " + t.Name + " did not answer: " + err.Error())
	} else if le != nil {
		return nil, le.Status, err
	}
	return nil, sip.StatusRequestTimeout, err
}

// relayProvisional forwards 180 and 183 to the operator; a 183 with SDP
// carries early media, which the relay bridges.
func (b *b2bua) relayProvisional(c *call, ds *sipgo.DialogServerSession, res *sip.Response, opSDP func() []byte) {
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
func (c *call) applyEarlyMedia(res *sip.Response) bool {
	return len(res.Body()) > 0 && c.applyRemote(media.LegOutside, res.Body()) == nil
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

func (b *b2bua) refuse(req *sip.Request, tx sip.ServerTransaction, operator, number, reason, detail string) {
	b.auditDecision(operator, number, req.Source(), policy.Decision{Reason: reason, Rule: "request", Detail: detail})
	b.s.metrics.callsRefused.WithLabelValues(reason).Inc()
	b.respondReason(req, tx, sip.StatusForbidden, "Forbidden", reason)
}

func (b *b2bua) auditDecision(operator, number, source string, d policy.Decision) {
	outcome := "refused"
	if d.Allow {
		outcome = "allowed"
	}
	subject := d.E164
	if subject == "" {
		subject = number
	}
	b.s.audit.Audit(b.s.ctx, "policy.decision", operator, subject, outcome, d.Reason, source,
		map[string]any{"rule": d.Rule, "detail": d.Detail, "dialled": number})
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

func splitHostPort(hp string) (string, int, error) {
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	return strings.Trim(h, "[]"), n, err
}
