package b2bua

import (
	"errors"
	"fmt"
	"net/netip"

	"plateau/media"
)

// errMediaNotPhone is an operator-side SDP (an answer, an ACK's body, a
// session refresh's answer) that points the call's audio somewhere other
// than the operator's phone.
var errMediaNotPhone = errors.New("media address is not the operator's phone")

// operatorMediaAllowed holds every SDP Plateau applies to the operator's
// side to the rule offers already follow (mediaAddrAllowed): the audio
// goes to the operator's phone and nowhere else. Allowed: the unspecified
// address (hold), a host that is a peer of one of the call's operator
// legs (the INVITE's real source, or the binding's REGISTER source and
// Contact host), a trusted proxy (an SBC anchoring the media). Anything
// else is audited (call.media_refused) and not applied.
func (c *call) operatorMediaAllowed(remote media.Remote) error {
	a := remote.Addr.Addr().Unmap()
	if a.IsUnspecified() {
		return nil
	}
	c.mu.Lock()
	legs := c.legs
	c.mu.Unlock()
	if a.IsValid() {
		for _, l := range legs {
			if l.side == media.LegOperator && l.peerOK != nil && l.peerOK(a) {
				return nil
			}
		}
		if c.b.s.TrustedProxy(a) {
			return nil
		}
	}
	c.b.s.Audit(c.b.s.Context(), "call.media_refused", c.operator, c.num(), "refused", ReasonMediaMismatch, c.source,
		map[string]any{"call_id": c.id, "sdp_addr": remote.Addr.String()})
	c.log.Warn("operator SDP points media away from the phone", "addr", remote.Addr)
	return fmt.Errorf("%w: %s", errMediaNotPhone, netip.AddrPortFrom(a, remote.Addr.Port()))
}

// monitorMediaAllowed is the same rule for a supervisor's leg: what the
// supervisor hears is the call's audio, and it goes to the supervisor's
// phone (leg's peer), a trusted proxy, or nowhere (hold).
func (b *B2BUA) monitorMediaAllowed(m *monitorSession, l *leg, remote media.Remote) error {
	a := remote.Addr.Addr().Unmap()
	if a.IsUnspecified() || (a.IsValid() && ((l != nil && l.peerOK != nil && l.peerOK(a)) || b.s.TrustedProxy(a))) {
		return nil
	}
	b.s.Audit(b.s.Context(), "call.media_refused", m.supervisor, m.operator, "refused", ReasonMediaMismatch, m.source,
		map[string]any{"session": m.id, "sdp_addr": remote.Addr.String()})
	m.log.Warn("supervisor SDP points media away from the phone", "addr", remote.Addr)
	return fmt.Errorf("%w: %s", errMediaNotPhone, remote.Addr)
}
