package b2bua

// The egress gate: every INVITE Plateau originates is sent from this file,
// and only to one of two kinds of destination.
//
//   - A trunk, with a Permit: the policy's decision for exactly that E.164
//     number, which only admit can make. The send is audited (call.dial).
//   - A phone binding whose address is allowed for phones: by default the
//     address the REGISTER came from, or one of sip.phone_networks; never a
//     trunk's address (host and port) or a host in its allowed_sources. Checked at REGISTER (sip/registrar.go)
//     and again here, at use.
//
// Both mark the INVITE's context (psip.ThroughEgressGate): the client
// every request passes (../sip/transport_client.go) sends no new INVITE
// without it. gate_test.go greps this package and the signalling layer
// (../sip) for WriteInvite, TransactionRequest and dialTrunkLeg outside
// this file, and parses both for every send path
// (TestEverySendPathIsReviewed), so a new call path cannot bypass it.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"

	"plateau/media"
	"plateau/policy"
	psip "plateau/sip"
)

// Permit is a policy decision to call one number for one operator and
// call. Its fields are unexported and only admit fills them: code that
// has no decision cannot make one, and the trunk dialler refuses the zero
// value.
type Permit struct{ p *permit }

type permit struct {
	decision policy.Decision
	operator string
	kind     policy.Kind
	callID   string
	source   string
}

// E164 is the number the permit allows ("" for none).
func (p Permit) E164() string {
	if p.p == nil {
		return ""
	}
	return p.p.decision.E164
}

func (p Permit) valid() bool { return p.p != nil && p.p.decision.Allow && p.p.decision.E164 != "" }

// admit reserves the operator's slot, then asks the policy with the
// reservation counted: simultaneous requests cannot all pass a limit (at
// worst both are refused), and no lock is held across the policy's
// lookups. A refusal releases the slot. An allowed decision is audited
// here; a refusal is returned for the caller to answer through refuse.
func (b *B2BUA) admit(r policy.Request) (Permit, *Refusal, policy.Decision) {
	b.active.add(r.Operator)
	r.Reserved = true
	d := b.policy.Decide(b.s.Context(), r)
	if !d.Allow {
		b.active.remove(r.Operator)
		return Permit{}, refusalOf(d), d
	}
	return Permit{&permit{decision: d, operator: r.Operator, kind: r.Kind, source: r.Source}}, nil, d
}

// bind ties a permit to the call it was made for, and audits the decision.
func (b *B2BUA) bind(p Permit, c *call, dialled string) {
	p.p.callID = c.id
	b.auditAllowed(b.s.Context(), p.p.operator, dialled, p.p.source, c.id, p.p.decision)
}

// errEgress is a destination the gate refuses.
var errEgress = errors.New("egress refused")

// inviteTrunk sends the INVITE of an outside leg to trunk t. req's
// Request-URI must be the trunk's URI for exactly the permit's number.
func (b *B2BUA) inviteTrunk(ctx context.Context, p Permit, c *call, t *psip.Trunk, req *sip.Request, opts trunkLegOptions) (*trunkDialog, error) {
	if !p.valid() || p.p.callID != c.id || p.p.operator != c.operator {
		b.egressRefused(c, "trunk "+t.Name, "no policy decision for this call")
		return nil, fmt.Errorf("%w: no policy decision for call %s", errEgress, c.id)
	}
	want := t.URI(p.p.decision.E164)
	if req.Method != sip.INVITE || req.Recipient.User != want.User || req.Recipient.Host != want.Host || req.Recipient.Port != want.Port {
		b.egressRefused(c, req.Recipient.String(), "Request-URI is not the permitted number "+p.p.decision.E164+" on trunk "+t.Name)
		return nil, fmt.Errorf("%w: %s is not %s", errEgress, req.Recipient.String(), want.String())
	}
	if req.CallID() == nil {
		id := sip.CallIDHeader(uuid.NewString())
		req.AppendHeader(&id)
	}
	b.s.Audit(b.s.Context(), "call.dial", c.operator, p.p.decision.E164, "sent", string(p.p.kind), c.source,
		map[string]any{"call_id": c.id, "trunk": t.Name, "leg_call_id": req.CallID().Value()})
	return dialTrunkLeg(psip.ThroughEgressGate(ctx), b.client, *b.contactFor(req), req, opts)
}

// invitePhone sends an INVITE to a registered phone of ext (the
// operator's own, or a supervisor's). The binding must belong to ext and
// its address be allowed for phones; auto-answer headers are only ever
// sent to the operator's own validated binding.
func (b *B2BUA) invitePhone(ctx context.Context, c *call, ext string, bnd psip.Binding, req *sip.Request, autoAnswer bool) (*sipgo.DialogClientSession, error) {
	callID := ""
	if c != nil {
		callID = c.id
	}
	if bnd.Extension != ext {
		b.egressRefusedPhone(ext, bnd, callID, "binding of another user")
		return nil, fmt.Errorf("%w: binding of %s used for %s", errEgress, bnd.Extension, ext)
	}
	host, err := b.s.PhoneBindingAllowed(bnd)
	if err != nil {
		b.egressRefusedPhone(ext, bnd, callID, err.Error())
		return nil, fmt.Errorf("%w: %v", errEgress, err)
	}
	if h, err := netip.ParseAddr(strings.Trim(req.Recipient.Host, "[]")); err != nil || h.Unmap() != host {
		b.egressRefusedPhone(ext, bnd, callID, "Request-URI is not the binding's address")
		return nil, fmt.Errorf("%w: Request-URI %s is not the binding %s", errEgress, req.Recipient.String(), bnd.Contact)
	}
	// A binding registered through a trusted proxy is rung through it
	// (RFC 3327), the Path checked again now: the config may have changed.
	if len(bnd.Path) > 0 {
		if err := b.s.PathAllowed(bnd.Path); err != nil {
			b.egressRefusedPhone(ext, bnd, callID, err.Error())
			return nil, fmt.Errorf("%w: %v", errEgress, err)
		}
		routeViaPath(req, bnd)
	}
	if autoAnswer && !registeredFrom(bnd, host) { // targetguard.go
		// A Contact inside sip.phone_networks but not the registering
		// device may be someone else's phone: ring it, never pick it up.
		b.s.Log().Warn("auto-answer withheld: the binding is not the registering device", "ext", ext, "contact", bnd.Contact, "source", bnd.Source)
		autoAnswer = false
	}
	if autoAnswer {
		self := sip.Uri{Scheme: "sip", User: ext, Host: b.s.ExternalAddress()}
		req.AppendHeader(sip.NewHeader("Call-Info", "<"+self.String()+">;answer-after=0"))
		req.AppendHeader(sip.NewHeader("Alert-Info", "<http://"+b.s.ExternalAddress()+">;info=alert-autoanswer"))
	}
	// A phone is rung over the transport it registered on (over TLS, on
	// the connection it opened: sip/transport_tls_client.go).
	switch bnd.Transport {
	case "tls":
		req.SetTransport("TLS")
	case "tcp":
		req.SetTransport("TCP")
	}
	return b.dialogsFor(req).WriteInvite(psip.ThroughEgressGate(ctx), req)
}

// ringBinding rings ext's binding bnd through invitePhone (again on a
// 422: ringPhone, sessiontimer.go) and waits for the answer. The answer's
// dialog target is checked (checkPhoneAnswer) before the leg counts as
// answered: until then a teardown sends it no BYE, so no request ever
// follows an unchecked Contact or Record-Route. targetErr is that check's
// refusal (the answer's target is then the binding: the caller ACKs and
// hangs up); err, a ring that did not end in an answer. add registers the
// leg with its call (false: the call ended; nil: nothing to register).
func (b *B2BUA) ringBinding(ctx context.Context, c *call, ext string, bnd psip.Binding, invite *phoneINVITE, body []byte, autoAnswer bool,
	add func(*leg) bool, opts sipgo.AnswerOptions) (l *leg, cs *sipgo.DialogClientSession, targetErr, err error) {
	host, _ := netip.ParseAddr(strings.Trim(invite.target.Host, "[]"))
	cs, err = ringPhone(ctx, func(interval time.Duration) (*sipgo.DialogClientSession, error) { // sessiontimer.go
		return b.invitePhone(ctx, c, ext, bnd, invite.next(body, interval), autoAnswer)
	}, func(cs *sipgo.DialogClientSession) bool {
		if l != nil {
			l.redial(cs) // a 422 retry: same Call-ID and tags
			return true
		}
		l = uacLeg(media.LegOperator, cs, phonePeer(bnd, host))
		return add == nil || add(l)
	}, opts)
	if err != nil {
		return nil, nil, nil, err
	}
	targetErr = b.checkPhoneAnswer(c, ext, bnd, cs) // targetguard.go
	l.setAnswered()
	return l, cs, targetErr, nil
}

// notifyPhone sends an in-dialog NOTIFY (the result of a REFER) on the
// operator's leg, only when that leg's remote target is a phone address.
func (b *B2BUA) notifyPhone(ctx context.Context, c *call, op *leg, req *sip.Request) error {
	host, err := netip.ParseAddr(strings.Trim(req.Recipient.Host, "[]"))
	if err != nil || op.peerOK == nil || !op.peerOK(host) || b.isTrunkAddr(host, uint16(req.Recipient.Port)) {
		b.egressRefused(c, req.Recipient.String(), "NOTIFY target is not the operator's phone")
		return fmt.Errorf("%w: NOTIFY to %s", errEgress, req.Recipient.String())
	}
	doer, ok := op.d.(interface {
		Do(ctx context.Context, req *sip.Request) (*sip.Response, error)
	})
	if !ok {
		return fmt.Errorf("operator leg cannot send requests")
	}
	_, err = doer.Do(ctx, req)
	return err
}

func (b *B2BUA) egressRefused(c *call, dest, detail string) {
	b.metrics.egressRefused.Inc()
	b.s.Audit(b.s.Context(), "egress.refused", c.operator, dest, "refused", ReasonDestinationRefused, c.source,
		map[string]any{"call_id": c.id, "detail": detail})
	c.log.Warn("egress refused", "to", dest, "detail", detail)
}

func (b *B2BUA) egressRefusedPhone(ext string, bnd psip.Binding, callID, detail string) {
	b.metrics.egressRefused.Inc()
	b.s.Audit(b.s.Context(), "egress.refused", ext, bnd.Contact, "refused", ReasonDestinationRefused, bnd.Source,
		map[string]any{"call_id": callID, "detail": detail, "binding_of": bnd.Extension})
	b.s.Log().Warn("egress to phone refused", "ext", ext, "contact", bnd.Contact, "detail", detail)
}

// trunkPeer accepts requests of a trunk leg from the trunk's address or
// its allowed sources (carriers answer and hang up from their SBC pool).
func (b *B2BUA) trunkPeer(t *psip.Trunk, first netip.Addr) func(netip.Addr) bool {
	addrs := append([]netip.Addr{first.Unmap()}, b.addrsOf(t)...)
	return func(h netip.Addr) bool {
		h = h.Unmap()
		for _, a := range addrs {
			if a.IsValid() && a == h {
				return true
			}
		}
		return t.Allows(h)
	}
}

// phonePeer accepts requests of a phone leg from its binding's REGISTER
// source and Contact host (both checked at REGISTER).
func phonePeer(bnd psip.Binding, contactHost netip.Addr) func(netip.Addr) bool {
	src, _ := netip.ParseAddrPort(bnd.Source)
	s := src.Addr().Unmap()
	return func(h netip.Addr) bool {
		h = h.Unmap()
		return (s.IsValid() && h == s) || (contactHost.IsValid() && h == contactHost.Unmap())
	}
}
