package b2bua

import (
	"strings"

	"github.com/emiago/sipgo/sip"

	"plateau/media"
	"plateau/policy"
)

// handleInvite routes a new INVITE: in-dialog ones are re-INVITEs, those
// from a trunk's sources are inbound calls, the rest must be operators
// (digest-authenticated) calling out.
func (b *B2BUA) handleInvite(req *sip.Request, tx sip.ServerTransaction) {
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
			b.refuse(refusalSite{req: req, tx: tx, subject: caller}, &Refusal{Status: sip.StatusForbidden, Reason: ReasonUnknownSource, Rule: ruleRequest,
				Detail: "INVITE from " + src.String() + " is not from a trunk's allowed sources nor from this server's domain"})
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
func (b *B2BUA) fromOurDomain(req *sip.Request) bool {
	f := req.From()
	if f == nil {
		return false
	}
	host := f.Address.Host
	for _, ours := range []string{req.Recipient.Host, b.s.Realm(), b.s.ExternalAddress()} {
		if ours != "" && strings.EqualFold(host, ours) {
			return true
		}
	}
	return false
}

// handleOutbound is the entry point of a call dialled on an operator's
// softphone: it authenticates the operator, checks the request, then hands
// the call to the pipeline (pipeline.go) with the operator's INVITE as the
// leg that called in.
func (b *B2BUA) handleOutbound(req *sip.Request, tx sip.ServerTransaction) {
	s := b.s
	site := refusalSite{req: req, tx: tx, subject: req.Recipient.User}
	if s.Draining() {
		b.refuse(site, &Refusal{Status: sip.StatusServiceUnavailable, Reason: ReasonDraining, Rule: ruleRequest, Detail: "the server is draining"})
		return
	}
	u, ok := s.Authenticate(req, tx, true)
	if !ok {
		return
	}
	site.operator = u.Extension
	// The caller is who authenticated, whatever the From header claims.
	if from := req.From(); from == nil || from.Address.User != u.Extension {
		b.refuse(site, &Refusal{Status: sip.StatusForbidden, Reason: ReasonFromMismatch, Rule: ruleRequest, Detail: "From does not match the authenticated user"})
		return
	}
	offer, codec, ref := readOffer(req.Body())
	if ref != nil {
		b.refuse(site, ref)
		return
	}
	if !b.mediaAddrAllowed(req, offer) {
		b.refuse(site, &Refusal{Status: sip.StatusForbidden, Reason: ReasonMediaMismatch, Rule: ruleMedia, Detail: "SDP address is not the phone's own: " + offer.Addr.String()})
		return
	}

	// Where Plateau sends this dialog's later requests (BYE, NOTIFY):
	// the phone, through trusted proxies only (targetguard.go).
	if ref := b.phoneInviteRefusal(req); ref != nil {
		b.refuse(site, ref)
		return
	}

	number := req.Recipient.User
	if strings.HasPrefix(number, "*") {
		// Feature codes (*1<ext> listen, *2 whisper, *3 barge) never reach
		// a trunk.
		b.handleFeatureCode(req, tx, u, offer, codec)
		return
	}
	b.place(&callSpec{
		kind: policy.KindOutbound, operator: u.Extension, number: number, source: req.Source(),
		req: req, tx: tx, side: media.LegOperator, offer: offer, codec: codec, peer: b.s.PeerOf(req),
	})
}
