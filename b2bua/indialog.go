package b2bua

import (
	"errors"
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"plateau/media"
)

// dialogOf finds the call and leg of an in-dialog request. The Call-ID,
// both tags and the transport source must all be the leg's (legs.go);
// otherwise it answers 481 (not for an ACK), counts the rejection and, when
// the Call-ID is known but the source is not the peer, audits a likely
// hijack attempt. It returns a nil call then.
func (b *B2BUA) dialogOf(req *sip.Request, tx sip.ServerTransaction) (*call, *leg) {
	c := b.lookup(req)
	if c == nil {
		b.metrics.inDialogRejected.WithLabelValues("unknown_dialog").Inc()
		b.noDialog(req, tx)
		return nil, nil
	}
	l, err := c.legOf(req)
	if err != nil {
		why := "tags"
		if errors.Is(err, errWrongSource) {
			why = "source"
			b.s.Audit(b.s.Context(), "call.hijack_attempt", c.operator, c.num(), "refused", "NOT_DIALOG_PEER", req.Source(),
				map[string]any{"call_id": c.id, "method": string(req.Method), "sip_call_id": req.CallID().Value()})
			c.log.Warn("in-dialog request from a host that is not the peer", "method", req.Method, "source", req.Source())
		}
		b.metrics.inDialogRejected.WithLabelValues(why).Inc()
		b.noDialog(req, tx, "NOT_DIALOG_PEER")
		return nil, nil
	}
	return c, l
}

// isCurrent reports whether l is one of the call's live legs: not an
// outside party a transfer replaced.
func (c *call) isCurrent(l *leg) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.replaced
}

// noDialog answers 481 with a Reason saying why: NO_SUCH_DIALOG, or
// NOT_DIALOG_PEER when the Call-ID is a call's but the tags or the source
// are not its peer's. These are counted (plateau_sip_in_dialog_rejected_total)
// but not audited one by one, except hijack attempts (dialogOf): a spray
// of forged requests must not flood the audit log.
func (b *B2BUA) noDialog(req *sip.Request, tx sip.ServerTransaction, why ...string) {
	if req.Method == sip.ACK {
		return // an ACK has no response
	}
	code := "NO_SUCH_DIALOG"
	if len(why) > 0 {
		code = why[0]
	}
	res := sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil)
	res.AppendHeader(refusalReason(sip.StatusCallTransactionDoesNotExists, code))
	b.s.Respond(tx, req, res)
}

func (b *B2BUA) handleAck(req *sip.Request, tx sip.ServerTransaction) {
	c, l := b.callDialogOf(req, tx)
	if c == nil {
		return
	}
	if ds, ok := l.d.(*sipgo.DialogServerSession); ok {
		ds.ReadAck(req, tx)
	}
	// An ACK carries the answer when our re-INVITE answer was an offer.
	if len(req.Body()) > 0 && c.isCurrent(l) {
		if err := c.applyRemote(l.side, req.Body()); err != nil {
			c.log.Info("ACK answer ignored", "err", err)
		}
	}
}

func (b *B2BUA) handleBye(req *sip.Request, tx sip.ServerTransaction) {
	c, l := b.callDialogOf(req, tx)
	if c == nil {
		return
	}
	c.noteHangupReason(l, req) // before ReadBye ends the leg and supervise ends the call
	if err := l.d.ReadBye(req, tx); err != nil {
		b.s.Respond(tx, req, sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	}
	l.peerHungUp()
	b.metrics.requestsInDialog.WithLabelValues("BYE").Inc()
	if !c.isCurrent(l) {
		return // a replaced outside party hanging up ends nothing else
	}
	if l.side == media.LegOperator {
		c.end("operator_hangup")
	} else {
		c.end("outside_hangup")
	}
}

// handleStrayCancel answers a CANCEL that matched no transaction (sipgo
// handles the ones that match: 200 to the CANCEL, 487 to the INVITE).
func (b *B2BUA) handleStrayCancel(req *sip.Request, tx sip.ServerTransaction) {
	b.noDialog(req, tx)
}

// handleReinvite applies a new offer (hold, resume, a media address
// change) to the leg's side of the relay and answers it locally: media is
// anchored, so the other side need not know.
func (b *B2BUA) handleReinvite(req *sip.Request, tx sip.ServerTransaction) {
	c, l, ok := b.currentDialog(req, tx)
	if !ok {
		return
	}
	b.answerOffer(c, l.side, req, tx)
}

// callDialogOf is dialogOf for a request a supervisor's dialog may also
// receive (monitor.go handles those, and it returns a nil call then).
func (b *B2BUA) callDialogOf(req *sip.Request, tx sip.ServerTransaction) (*call, *leg) {
	if b.monitorInDialog(req, tx) {
		return nil, nil
	}
	return b.dialogOf(req, tx)
}

// currentDialog finds the call and current leg of an in-dialog offer or
// refresh (a supervisor's: monitor.go), checks its CSeq and counts it;
// otherwise it has answered.
func (b *B2BUA) currentDialog(req *sip.Request, tx sip.ServerTransaction) (*call, *leg, bool) {
	c, l := b.callDialogOf(req, tx)
	if c == nil {
		return nil, nil, false
	}
	if !c.isCurrent(l) {
		b.noDialog(req, tx)
		return nil, nil, false
	}
	if err := l.d.ReadRequest(req, tx); err != nil {
		b.s.Respond(tx, req, sip.NewResponseFromRequest(req, sip.StatusInternalServerError, "CSeq out of order", nil))
		return nil, nil, false
	}
	b.metrics.requestsInDialog.WithLabelValues(string(req.Method)).Inc()
	return c, l, true
}

func (b *B2BUA) handleUpdate(req *sip.Request, tx sip.ServerTransaction) {
	c, l, ok := b.currentDialog(req, tx)
	if !ok {
		return
	}
	if len(req.Body()) == 0 { // a session refresh
		res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
		c.sessionRefreshed(l.side, req, res)
		b.s.Respond(tx, req, res)
		return
	}
	b.answerOffer(c, l.side, req, tx)
}

// answerOffer handles an in-dialog offer (re-INVITE or UPDATE).
func (b *B2BUA) answerOffer(c *call, l media.Leg, req *sip.Request, tx sip.ServerTransaction) {
	c.mu.Lock()
	relay := c.relay
	c.mu.Unlock()
	site := refusalSite{req: req, tx: tx, operator: c.operator, subject: c.num(), callID: c.id}
	if relay == nil {
		b.refuse(site, &Refusal{Status: 491, Reason: "SETUP_PENDING", Rule: ruleMedia, Detail: "offer before the call's media exists"})
		return
	}
	if len(req.Body()) == 0 {
		// Delayed offer: we offer, the ACK answers.
		res := sip.NewSDPResponseFromRequest(req, c.localSDP(l, media.DefaultCodecs(), 101, media.SendRecv))
		res.AppendHeader(b.contactFor(req))
		c.sessionRefreshed(l, req, res)
		b.s.Respond(tx, req, res)
		return
	}
	remote, codec, keys, ref := c.readLegOffer(l, req.Body()) // the trunk's SRTP policy (srtp.go)
	if ref != nil {
		b.refuse(site, ref)
		return
	}
	if l == media.LegOperator && !b.mediaAddrAllowed(req, remote) {
		b.s.Audit(b.s.Context(), "call.media_refused", c.operator, c.num(), "refused", ReasonMediaMismatch, req.Source(),
			map[string]any{"call_id": c.id, "sdp_addr": remote.Addr.String()})
		b.refuse(site, &Refusal{Status: sip.StatusNotAcceptableHere, Reason: ReasonMediaMismatch, Rule: ruleMedia, Detail: "SDP address is not the phone's own: " + remote.Addr.String()})
		return
	}
	c.mu.Lock()
	mode := c.srtp.mode
	c.mu.Unlock()
	if err := c.applyOffer(l, remote, codec, keys, mode); err != nil {
		b.refuse(site, &Refusal{Status: sip.StatusNotAcceptableHere, Reason: ReasonBadSDP, Rule: ruleMedia, Detail: err.Error()})
		return
	}
	c.log.Info("media updated", "leg", l, "addr", remote.Addr, "direction", remote.Direction)
	res := sip.NewSDPResponseFromRequest(req, c.localSDP(l, []media.Codec{codec}, remote.DTMFPT, answerDirection(remote.Direction)))
	res.AppendHeader(b.contactFor(req))
	c.sessionRefreshed(l, req, res)
	b.s.Respond(tx, req, res)
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
// so a softphone cannot have the call's audio sent to a third host. Behind
// a trusted proxy the source is the phone the proxy saw (or the proxy, for
// an SBC that anchors media): see Source in sip/source.go.
func (b *B2BUA) mediaAddrAllowed(req *sip.Request, remote media.Remote) bool {
	src, ok := b.s.Source(req)
	if !ok {
		return false
	}
	a := remote.Addr.Addr().Unmap()
	return a.IsUnspecified() || src.MediaFrom(a)
}

// handleInfo accepts in-call signalling; DTMF sent as SIP INFO is audited
// (digits sent to a carrier's second-dial service must leave a trace).
func (b *B2BUA) handleInfo(req *sip.Request, tx sip.ServerTransaction) {
	c, _ := b.callDialogOf(req, tx)
	if c == nil {
		return
	}
	if ct := req.ContentType(); ct != nil && strings.Contains(ct.Value(), "dtmf") {
		b.s.Audit(b.s.Context(), "call.dtmf", c.operator, c.num(), "sent", "", req.Source(),
			map[string]any{"call_id": c.id, "body": string(req.Body())})
	}
	b.s.Respond(tx, req, sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
}
