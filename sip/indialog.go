package sip

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"plateau/media"
	"plateau/policy"
)

// legOf tells which side of c a request arrived on.
func (c *call) legOf(req *sip.Request) (media.Leg, dialogLeg) {
	id := req.CallID().Value()
	c.mu.Lock()
	defer c.mu.Unlock()
	if id == c.opCallID {
		return media.LegOperator, c.opLeg
	}
	return media.LegOutside, c.outLeg
}

// dialogOf finds the call and leg of an in-dialog request; when there is
// none it has answered 481 and returns a nil call.
func (b *b2bua) dialogOf(req *sip.Request, tx sip.ServerTransaction) (*call, media.Leg, dialogLeg) {
	c := b.lookup(req)
	if c == nil {
		b.noDialog(req, tx)
		return nil, 0, nil
	}
	l, d := c.legOf(req)
	if d == nil {
		b.noDialog(req, tx)
		return nil, 0, nil
	}
	return c, l, d
}

func (b *b2bua) noDialog(req *sip.Request, tx sip.ServerTransaction) {
	b.s.respond(tx, req, sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
}

func (b *b2bua) handleAck(req *sip.Request, tx sip.ServerTransaction) {
	if b.monitorInDialog(req, tx) { // a supervisor's leg (monitor.go)
		return
	}
	c := b.lookup(req)
	if c == nil {
		return
	}
	l, d := c.legOf(req)
	if ds, ok := d.(*sipgo.DialogServerSession); ok {
		ds.ReadAck(req, tx)
	}
	// An ACK carries the answer when our re-INVITE answer was an offer.
	if len(req.Body()) > 0 {
		if err := c.applyRemote(l, req.Body()); err != nil {
			c.log.Info("ACK answer ignored", "err", err)
		}
	}
}

func (b *b2bua) handleBye(req *sip.Request, tx sip.ServerTransaction) {
	if b.monitorInDialog(req, tx) { // a supervisor's leg (monitor.go)
		return
	}
	c, l, d := b.dialogOf(req, tx)
	if c == nil {
		return
	}
	c.noteHangupReason(l, req) // before ReadBye ends the leg and supervise ends the call
	if err := d.ReadBye(req, tx); err != nil {
		b.s.respond(tx, req, sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	}
	b.s.metrics.requestsInDialog.WithLabelValues("BYE").Inc()
	if l == media.LegOperator {
		c.end("operator_hangup")
	} else {
		c.end("outside_hangup")
	}
}

// handleStrayCancel answers a CANCEL that matched no transaction (sipgo
// handles the ones that match: 200 to the CANCEL, 487 to the INVITE).
func (b *b2bua) handleStrayCancel(req *sip.Request, tx sip.ServerTransaction) {
	b.noDialog(req, tx)
}

// handleReinvite applies a new offer (hold, resume, a media address
// change) to the leg's side of the relay and answers it locally: media is
// anchored, so the other side need not know.
func (b *b2bua) handleReinvite(req *sip.Request, tx sip.ServerTransaction) {
	if b.monitorInDialog(req, tx) { // a supervisor's leg (monitor.go)
		return
	}
	c, l, d := b.dialogOf(req, tx)
	if c == nil {
		return
	}
	if err := d.ReadRequest(req, tx); err != nil {
		b.s.respond(tx, req, sip.NewResponseFromRequest(req, sip.StatusInternalServerError, "CSeq out of order", nil))
		return
	}
	b.s.metrics.requestsInDialog.WithLabelValues("INVITE").Inc()
	b.answerOffer(c, l, req, tx)
}

func (b *b2bua) handleUpdate(req *sip.Request, tx sip.ServerTransaction) {
	c, l, d := b.dialogOf(req, tx)
	if c == nil {
		return
	}
	if err := d.ReadRequest(req, tx); err != nil {
		b.s.respond(tx, req, sip.NewResponseFromRequest(req, sip.StatusInternalServerError, "CSeq out of order", nil))
		return
	}
	b.s.metrics.requestsInDialog.WithLabelValues("UPDATE").Inc()
	if len(req.Body()) == 0 { // a session refresh
		res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
		c.sessionRefreshed(l, req, res)
		b.s.respond(tx, req, res)
		return
	}
	b.answerOffer(c, l, req, tx)
}

// answerOffer handles an in-dialog offer (re-INVITE or UPDATE).
func (b *b2bua) answerOffer(c *call, l media.Leg, req *sip.Request, tx sip.ServerTransaction) {
	c.mu.Lock()
	relay := c.relay
	c.mu.Unlock()
	if relay == nil {
		b.respondReason(req, tx, 491, "Request Pending", "")
		return
	}
	if len(req.Body()) == 0 {
		// Delayed offer: we offer, the ACK answers.
		res := sip.NewSDPResponseFromRequest(req, c.localSDP(l, media.DefaultCodecs(), 101, media.SendRecv))
		res.AppendHeader(&b.dialogs.ContactHDR)
		c.sessionRefreshed(l, req, res)
		b.s.respond(tx, req, res)
		return
	}
	remote, codec, ok := b.readOffer(req, tx)
	if !ok {
		return
	}
	if l == media.LegOperator && !b.mediaAddrAllowed(req, remote) {
		b.refuseMediaMove(c, req, tx, remote)
		return
	}
	if err := relay.SetRemoteSDP(l, remote, codec); err != nil {
		b.respondReason(req, tx, sip.StatusNotAcceptableHere, "Not Acceptable Here", "BAD_SDP")
		return
	}
	c.log.Info("media updated", "leg", l, "addr", remote.Addr, "direction", remote.Direction)
	res := sip.NewSDPResponseFromRequest(req, c.localSDP(l, []media.Codec{codec}, remote.DTMFPT, answerDirection(remote.Direction)))
	res.AppendHeader(&b.dialogs.ContactHDR)
	c.sessionRefreshed(l, req, res)
	b.s.respond(tx, req, res)
}

// answerDirection mirrors the offerer's direction (RFC 3264 §6.1).
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

// mediaAddrAllowed keeps an operator's media on the operator's own phone:
// the SDP address must be the signalling source (or unspecified, for hold),
// so a softphone cannot have the call's audio sent to a third host.
func (b *b2bua) mediaAddrAllowed(req *sip.Request, remote media.Remote) bool {
	src, ok := sourceAddr(req)
	if !ok {
		return false
	}
	a := remote.Addr.Addr().Unmap()
	return a.IsUnspecified() || a == src
}

func (b *b2bua) refuseMediaMove(c *call, req *sip.Request, tx sip.ServerTransaction, remote media.Remote) {
	b.s.audit.Audit(b.s.ctx, "call.media_refused", c.operator, c.number, "refused", "MEDIA_ADDRESS_MISMATCH", req.Source(),
		map[string]any{"call_id": c.id, "sdp_addr": remote.Addr.String()})
	b.respondReason(req, tx, sip.StatusNotAcceptableHere, "Not Acceptable Here", "MEDIA_ADDRESS_MISMATCH")
}

// handleRefer never lets a transfer reach the trunk unchecked: the target
// goes through the policy like any dialled number, and only the operator's
// side may transfer.
func (b *b2bua) handleRefer(req *sip.Request, tx sip.ServerTransaction) {
	c := b.lookup(req)
	if c == nil {
		b.noDialog(req, tx)
		return
	}
	l, _ := c.legOf(req)
	target := ""
	if rt := req.GetHeader("Refer-To"); rt != nil {
		var u sip.Uri
		v := strings.Trim(strings.TrimSpace(rt.Value()), "<>")
		if i := strings.IndexByte(v, '>'); i >= 0 {
			v = v[:i]
		}
		if err := sip.ParseUri(v, &u); err == nil {
			target = u.User
		}
	}
	if l != media.LegOperator {
		b.refuse(req, tx, c.operator, target, "REFER_FORBIDDEN", "transfer requested by the outside party")
		return
	}
	// The transfer takes the operator's own slot: the call stays one call.
	d := b.policy.Decide(b.s.ctx, policy.Request{Operator: c.operator, Number: target, Time: b.s.now(), Source: req.Source(), Kind: policy.KindRefer})
	b.auditDecision(c.operator, target, req.Source(), d)
	if !d.Allow {
		b.s.metrics.callsRefused.WithLabelValues(d.Reason).Inc()
		b.respondReason(req, tx, sip.StatusForbidden, "Forbidden", d.Reason)
		return
	}
	// Allowed: Plateau places the new call itself, through the trunk and
	// into the same recording, and swaps it in for the outside party.
	b.s.respond(tx, req, sip.NewResponseFromRequest(req, sip.StatusAccepted, "Accepted", nil))
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.transfer(c, d.E164)
	}()
}

// transfer dials e164 for an established call and, once answered, hangs up
// the previous outside party. The operator learns the result by NOTIFY
// (RFC 3515) with a sipfrag of the new leg's final status.
func (b *b2bua) transfer(c *call, e164 string) {
	c.mu.Lock()
	op, old, oldID, oldNumber := c.opLeg, c.outLeg, c.outCallID, c.number
	c.mu.Unlock()
	cs, status, err := b.dialOut(c.ctx, c, e164, func(res *sip.Response) {})
	if err != nil {
		c.log.Info("transfer failed", "to", e164, "status", status, "err", err)
		b.notifyRefer(c, op, status)
		return
	}
	c.setOutside(cs, b.s.now())
	c.mu.Lock()
	c.number = e164
	c.mu.Unlock()
	select {
	case c.swapped <- struct{}{}:
	default:
	}
	b.unregister(oldID)
	byeCtx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	old.Bye(byeCtx)
	cancel()
	b.s.audit.Audit(c.ctx, "call.transferred", c.operator, e164, "ok", "", c.source,
		map[string]any{"call_id": c.id, "from": oldNumber})
	b.notifyRefer(c, op, sip.StatusOK)
}

// notifyRefer tells the operator's phone how the transfer went.
func (b *b2bua) notifyRefer(c *call, op dialogLeg, status int) {
	doer, ok := op.(interface {
		Do(ctx context.Context, req *sip.Request) (*sip.Response, error)
	})
	if !ok {
		return
	}
	if status == 0 {
		status = sip.StatusServiceUnavailable
	}
	var target sip.Uri
	switch d := op.(type) {
	case *sipgo.DialogServerSession:
		if ct := d.InviteRequest.Contact(); ct != nil {
			target = *ct.Address.Clone()
		}
	case *sipgo.DialogClientSession:
		if ct := d.InviteResponse.Contact(); ct != nil {
			target = *ct.Address.Clone()
		}
	case *trunkDialog:
		if ct := d.InviteResponse.Contact(); ct != nil {
			target = *ct.Address.Clone()
		}
	}
	if target.Host == "" {
		return
	}
	req := sip.NewRequest(sip.NOTIFY, target)
	req.AppendHeader(sip.NewHeader("Event", "refer"))
	req.AppendHeader(sip.NewHeader("Subscription-State", "terminated;reason=noresource"))
	req.AppendHeader(sip.NewHeader("Content-Type", "message/sipfrag;version=2.0"))
	phrase := "Service Unavailable"
	if status == sip.StatusOK {
		phrase = "OK"
	} else if _, p := mapFailure(status); p != "" {
		phrase = p
	}
	req.SetBody([]byte(fmt.Sprintf("SIP/2.0 %d %s\r\n", status, phrase)))
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	if _, err := doer.Do(ctx, req); err != nil {
		c.log.Debug("notify refer", "err", err)
	}
}

// handleInfo accepts in-call signalling; DTMF sent as SIP INFO is audited
// (digits sent to a carrier's second-dial service must leave a trace).
func (b *b2bua) handleInfo(req *sip.Request, tx sip.ServerTransaction) {
	if b.monitorInDialog(req, tx) { // a supervisor's leg (monitor.go)
		return
	}
	c := b.lookup(req)
	if c == nil {
		b.noDialog(req, tx)
		return
	}
	if ct := req.ContentType(); ct != nil && strings.Contains(ct.Value(), "dtmf") {
		b.s.audit.Audit(b.s.ctx, "call.dtmf", c.operator, c.number, "sent", "", req.Source(),
			map[string]any{"call_id": c.id, "body": string(req.Body())})
	}
	b.s.respond(tx, req, sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
}
