package b2bua

import (
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	psip "plateau/sip"
)

// Transports (sip/transport_route.go): a dialog's Contact names the
// transport its requests came or went on, so that a phone or carrier
// reached over TLS sends its in-dialog requests back over TLS.

// contactFor is Plateau's Contact in a response to req.
func (b *B2BUA) contactFor(req *sip.Request) *sip.ContactHeader {
	ct := b.s.ContactFor(psip.ContactTransport(req))
	return &ct
}

// dialogsFor builds the dialog of an INVITE Plateau receives or sends as
// req, with the Contact of req's transport.
func (b *B2BUA) dialogsFor(req *sip.Request) *sipgo.DialogUA {
	return b.s.DialogUAFor(psip.ContactTransport(req))
}

// SignallingTLS reports whether the trunk leg's signalling went over TLS
// (a verified carrier; transport_route.go keeps a TLS dialog on TLS): the
// condition for SDES-SRTP keys to stay secret.
func (d *trunkDialog) SignallingTLS() bool {
	return strings.EqualFold(d.InviteRequest.Transport(), "TLS")
}
