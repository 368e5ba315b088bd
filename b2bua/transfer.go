package b2bua

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

// handleRefer is the entry point of a transfer. It never lets one reach
// the trunk unchecked: only the operator's leg of a confirmed call may
// transfer, one transfer at a time; the target goes through the policy
// like any dialled number with its own slot reserved (the new outside leg
// counts against the limits until the replaced one is gone); Plateau
// places the new call itself into the same recording, hangs up the
// replaced party and plays the recording notice to the new one.
func (b *B2BUA) handleRefer(req *sip.Request, tx sip.ServerTransaction) {
	c, l := b.dialogOf(req, tx)
	if c == nil {
		return
	}
	target := referTarget(req)
	site := refusalSite{req: req, tx: tx, operator: c.operator, subject: target, callID: c.id}
	if l.side != media.LegOperator {
		b.refuse(site, &Refusal{Status: sip.StatusForbidden, Reason: ReasonReferForbidden, Rule: ruleRefer, Detail: "transfer requested by the outside party"})
		return
	}
	c.mu.Lock()
	confirmed := c.out != nil && !c.ended && c.relay != nil && l.isAnswered()
	pending := c.transfer
	if confirmed && !pending {
		c.transfer = true
	}
	c.mu.Unlock()
	switch {
	case !confirmed:
		b.refuse(site, &Refusal{Status: sip.StatusForbidden, Reason: ReasonReferNotConfirmed, Rule: ruleRefer, Detail: "transfer before the call was answered"})
		return
	case pending:
		b.refuse(site, &Refusal{Status: 491, Reason: ReasonReferPending, Rule: ruleRefer, Detail: "a transfer of this call is in progress"})
		return
	}
	pm, ref, d := b.admit(policy.Request{Operator: c.operator, Number: target, Time: b.s.Now(), Source: req.Source(), Kind: policy.KindRefer})
	if ref != nil {
		c.mu.Lock()
		c.transfer = false
		c.mu.Unlock()
		site.e164 = d.E164
		b.refuse(site, ref)
		return
	}
	// The reservation is the call's from now on: released when the
	// replaced leg is gone, the transfer fails or the call ends.
	c.mu.Lock()
	ended := c.ended
	if !ended {
		c.slots++
	}
	c.mu.Unlock()
	if ended {
		b.active.remove(c.operator)
		b.noDialog(req, tx)
		return
	}
	b.bind(pm, c, target)
	b.s.Respond(tx, req, sip.NewResponseFromRequest(req, sip.StatusAccepted, "Accepted", nil))
	b.goCall(c, "transfer", func() { b.transfer(c, pm) })
}

// referTarget is the user part of a REFER's Refer-To.
func referTarget(req *sip.Request) string {
	rt := req.GetHeader("Refer-To")
	if rt == nil {
		return ""
	}
	var u sip.Uri
	v := strings.Trim(strings.TrimSpace(rt.Value()), "<>")
	if i := strings.IndexByte(v, '>'); i >= 0 {
		v = v[:i]
	}
	if err := sip.ParseUri(v, &u); err != nil {
		return ""
	}
	return u.User
}

// transfer dials the permit's number for an established call and, once
// answered, swaps it in, hangs up the previous outside party and plays
// the notice to the new one. The operator learns the result by NOTIFY
// (RFC 3515) with a sipfrag of the new leg's final status.
func (b *B2BUA) transfer(c *call, pm Permit) {
	defer func() {
		c.mu.Lock()
		c.transfer = false
		c.mu.Unlock()
	}()
	op, old := c.current()
	c.mu.Lock()
	oldNumber := c.number
	c.mu.Unlock()
	nl, status, err := b.dialOut(c.ctx, c, pm, nil)
	if err != nil {
		c.releaseSlot()
		c.log.Info("transfer failed", "to", pm.E164(), "status", status, "err", err)
		b.notifyRefer(c, op, status)
		return
	}
	if !c.setOutside(nl, b.s.Now()) {
		nl.hangup(context.WithoutCancel(c.ctx), c.log)
		return
	}
	c.mu.Lock()
	c.number, c.permit = pm.E164(), pm
	c.mu.Unlock()
	select {
	case c.swapped <- struct{}{}:
	default:
	}
	old.mu.Lock()
	old.replaced = true // its BYE or re-INVITE no longer speaks for the call
	old.mu.Unlock()
	// The replaced party is always hung up, then its slot released.
	byeCtx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), 5*time.Second)
	old.hangup(byeCtx, c.log)
	cancel()
	c.releaseSlot()
	b.s.Audit(c.ctx, "call.transferred", c.operator, pm.E164(), "ok", "", c.source,
		map[string]any{"call_id": c.id, "from": oldNumber})
	b.notifyRefer(c, op, sip.StatusOK)
	// Every new outside party hears the recording notice first.
	c.announce()
}

// notifyRefer tells the operator's phone how the transfer went, through
// the egress gate.
func (b *B2BUA) notifyRefer(c *call, op *leg, status int) {
	if status == 0 {
		status = sip.StatusServiceUnavailable
	}
	var target sip.Uri
	switch d := op.d.(type) {
	case *sipgo.DialogServerSession:
		if ct := d.InviteRequest.Contact(); ct != nil {
			target = *ct.Address.Clone()
		}
	case *sipgo.DialogClientSession:
		if d.InviteResponse != nil {
			if ct := d.InviteResponse.Contact(); ct != nil {
				target = *ct.Address.Clone()
			}
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
	if err := b.notifyPhone(ctx, c, op, req); err != nil {
		c.log.Debug("notify refer", "err", err)
	}
}
