package b2bua

import (
	"github.com/emiago/sipgo/sip"

	"plateau/media"
	"plateau/policy"
	psip "plateau/sip"
)

// handleInbound is the entry point of a call from a trunk's allowed
// sources. The caller's number must pass the policy like an outbound call
// (approved, inside the window, recorder ready); the pipeline rings the
// operator who last called that number if free, else any free registered
// operator, through the egress gate.
func (b *B2BUA) handleInbound(req *sip.Request, tx sip.ServerTransaction, t *psip.Trunk) {
	caller := ""
	if f := req.From(); f != nil {
		caller = f.Address.User
	}
	site := refusalSite{req: req, tx: tx, subject: caller}
	if b.s.Draining() {
		b.refuse(site, &Refusal{Status: sip.StatusServiceUnavailable, Reason: ReasonDraining, Rule: ruleRequest, Detail: "the server is draining"})
		return
	}
	offer, codec, keys, ref := readTrunkOffer(req.Body(), t.SRTP, nil) // trunks[].srtp (srtp.go)
	if ref == nil && keys != nil && !b.sdesTransportOK(req.Transport()) {
		ref = &Refusal{Status: sip.StatusNotAcceptableHere, Reason: ReasonSRTPNeedsTLS, Rule: ruleMedia, Detail: "SDES keys offered over " + req.Transport() + ", not TLS"}
	}
	if ref != nil {
		b.refuse(site, ref)
		return
	}
	e164, _ := policy.Normalize(caller, b.region)
	op, contact := b.pickOperator(e164)
	if op == "" {
		site.e164 = e164
		b.refuse(site, &Refusal{Status: sip.StatusTemporarilyUnavailable, Reason: ReasonNoOperator, Rule: "routing", Detail: "no registered operator is free"})
		return
	}
	src, _ := b.s.RequestHost(req)
	// Where Plateau will send this dialog's BYE: the trunk's hosts only.
	if ref := b.trunkInviteRefusal(req, b.trunkPeer(t, src)); ref != nil { // targetguard.go
		b.refuse(site, ref)
		return
	}
	b.place(&callSpec{
		kind: policy.KindInbound, operator: op, number: caller, source: req.Source(),
		req: req, tx: tx, side: media.LegOutside, offer: offer, codec: codec, peer: b.trunkPeer(t, src),
		latch: t.MediaLatch, binding: contact, keys: keys, srtp: t.SRTP,
	})
}

// pickOperator returns a registered, free operator for an inbound call:
// the last one who called the number, else the first free one.
func (b *B2BUA) pickOperator(e164 string) (string, psip.Binding) {
	free := func(ext string) (psip.Binding, bool) {
		if n, _, _ := b.active.Active(b.s.Context(), ext); n > 0 {
			return psip.Binding{}, false
		}
		u, err := b.s.User(b.s.Context(), ext)
		if err != nil || u.Role != psip.RoleOperator || !u.Active {
			return psip.Binding{}, false
		}
		cs := b.s.Contacts(ext)
		if len(cs) == 0 {
			return psip.Binding{}, false
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
	for _, ext := range b.s.Extensions() {
		if c, ok := free(ext); ok {
			return ext, c
		}
	}
	return "", psip.Binding{}
}
