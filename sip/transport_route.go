package sip

import (
	"errors"
	"fmt"
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Which transport a request Plateau sends takes, and which Contact
// Plateau writes.
//
//   - Over TLS, Plateau's Contact says ;transport=tls with the TLS
//     listener's port (RFC 3261 §26.2: a sip: URI with transport=tls;
//     sips: only where the peer used sips:), so that the peer's in-dialog
//     requests come back over TLS. The dialogs of a TLS request get it from
//     DialogUAFor.
//   - An in-dialog request follows the transport its remote target (the
//     peer's Contact, or the first Route) names with ;transport= (sipgo
//     would keep the INVITE's): a phone whose INVITE came over UDP with a
//     Contact saying transport=tcp gets its BYE over TCP. A sips: target
//     means TLS.
//   - A dialog that began over TLS never leaves it: a Contact saying
//     transport=udp does not get the BYE (or an SDES key in a re-INVITE)
//     sent in clear; it goes over TLS to that address, or fails.
//   - Only udp, tcp and tls are used, whatever a Contact says (sipgo would
//     otherwise dial a WebSocket for transport=ws).
//
// The address is never the transport's business: the egress gate (package
// b2bua) and the dialog target guard decide where a request may go, and a
// transport changes nothing there.

// ContactFor is Plateau's Contact for a request or response over
// transport (sipgo's names: UDP, TCP, TLS; SIPS for a dialog whose
// Request-URI is sips:, whose Contact must be sips: too, RFC 3261
// §12.1.1).
func (s *Server) ContactFor(transport string) sip.ContactHeader {
	_, port, _ := SplitHostPort(s.opts.Listen)
	u := sip.Uri{Scheme: "sip", User: "plateau", Host: s.opts.ExternalAddress, Port: port}
	switch {
	case s.opts.TLS == nil:
	case strings.EqualFold(transport, "SIPS"):
		u.Scheme = "sips"
		_, u.Port, _ = SplitHostPort(s.opts.TLS.Listen)
	case strings.EqualFold(transport, "TLS"):
		_, u.Port, _ = SplitHostPort(s.opts.TLS.Listen)
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", "tls")
	}
	return sip.ContactHeader{Address: u}
}

// DialogUAFor builds the dialogs of a request that arrived, or leaves,
// over transport (as ContactFor): their Contact is ContactFor(transport).
func (s *Server) DialogUAFor(transport string) *sipgo.DialogUA {
	switch {
	case strings.EqualFold(transport, "SIPS") && s.dialogsSIPS != nil:
		return s.dialogsSIPS
	case strings.EqualFold(transport, "TLS") && s.dialogsTLS != nil:
		return s.dialogsTLS
	}
	return s.dialogs
}

// ContactTransport is what ContactFor and DialogUAFor take for req: its
// transport, or SIPS for a sips: Request-URI over TLS.
func ContactTransport(req *sip.Request) string {
	if strings.EqualFold(req.Recipient.Scheme, "sips") && strings.EqualFold(req.Transport(), "TLS") {
		return "SIPS"
	}
	return req.Transport()
}

// errTransport is a request refused for its transport.
var errTransport = errors.New("sip transport")

// chooseTransport sets the transport req leaves on (see above) and keeps
// its top Via saying so. It returns an error for a transport Plateau does
// not speak.
func (s *Server) chooseTransport(req *sip.Request) error {
	cur := strings.ToUpper(req.Transport())
	if inDialog(req) {
		want := hopTransport(req)
		switch {
		case want == "" || want == cur:
		case cur == "TLS":
			// Never out of TLS (see above).
			u := hopURI(req)
			s.log.Info("in-dialog request kept on TLS despite the target's transport", "method", req.Method, "target", u.String(), "named", want)
		case want == "UDP" || want == "TCP" || want == "TLS":
			req.SetTransport(want)
			cur = want
		default:
			s.log.Info("in-dialog request kept on its transport: the target names one Plateau does not speak", "method", req.Method, "named", want)
		}
	}
	req.SetTransport(cur)
	switch cur {
	case "UDP", "TCP":
	case "TLS":
		if s.opts.TLS == nil || s.tlsConf == nil {
			return fmt.Errorf("%w: %s to %s over TLS, but sip.tls is not configured", errTransport, req.Method, req.Destination())
		}
	default:
		return fmt.Errorf("%w: %s to %s over %q, which Plateau does not speak", errTransport, req.Method, req.Destination(), cur)
	}
	if v := req.Via(); v != nil {
		switch {
		case cur == "TLS":
			// The sent-by of a TLS request is the TLS listener, not the
			// ephemeral port of a connection Plateau dialled: a peer that
			// must reconnect to answer comes back to a TLS port.
			v.Transport = cur
			_, v.Port, _ = SplitHostPort(s.opts.TLS.Listen)
		case !strings.EqualFold(v.Transport, cur):
			v.Transport = cur
			_, v.Port, _ = SplitHostPort(s.opts.Listen)
		}
	}
	return nil
}

// inDialog reports a request inside a dialog that is not bound to its
// INVITE's transaction (CANCEL goes where the INVITE went).
func inDialog(req *sip.Request) bool {
	if req.Method == sip.CANCEL || req.To() == nil || req.To().Params == nil {
		return false
	}
	tag, _ := req.To().Params.Get("tag")
	return tag != ""
}

// hopURI is where req goes next: the first Route, else the Request-URI.
func hopURI(req *sip.Request) sip.Uri {
	if r := req.Route(); r != nil {
		return r.Address
	}
	return req.Recipient
}

// hopTransport is the transport the next hop's URI names ("" for none).
func hopTransport(req *sip.Request) string {
	u := hopURI(req)
	tp := ""
	if u.UriParams != nil {
		if v, ok := u.UriParams.Get("transport"); ok {
			tp = strings.ToUpper(v)
		}
	}
	if u.IsEncrypted() {
		return "TLS" // sips: is TLS whatever transport it also names
	}
	return tp
}
