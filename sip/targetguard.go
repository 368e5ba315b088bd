package sip

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// A phone's dialog also says where Plateau sends the dialog's later
// requests (ACK, BYE, NOTIFY, session refreshes): its Contact is the
// remote target and its Record-Route the route set (RFC 3261 §12.1), and
// sipgo follows both. Written by the inmate's own phone, they could aim
// those requests at the carrier, another phone or any host; the egress
// gate's rule for INVITEs applies to them too: a phone's dialog targets a
// phone address (PhoneAddrAllowed), through trusted proxies only.

// DialogTargetAllowed checks the Contact and Record-Route of a phone's
// dialog-creating message. regSource is where the phone really is (the
// INVITE's real source, or the binding's REGISTER source); extra accepts
// one more host (the binding's own Contact host).
func (s *Server) DialogTargetAllowed(m interface{ Headers() []sip.Header }, regSource netip.Addr, extra netip.Addr) error {
	rr := splitNameAddrs(msgHeaders(m, "Record-Route"))
	if len(rr) > 0 {
		// The route set decides where requests go: trusted proxies only.
		if len(rr) > maxPathEntries {
			return fmt.Errorf("%d Record-Route entries", len(rr))
		}
		if err := s.pathAllowed(rr); err != nil {
			return fmt.Errorf("Record-Route: %v", err)
		}
	}
	ct := msgHeaders(m, "Contact")
	if len(ct) != 1 {
		return fmt.Errorf("%d Contact headers, want one", len(ct))
	}
	c, ok := ct[0].(*sip.ContactHeader)
	if !ok || c.Address.Wildcard {
		return fmt.Errorf("unusable Contact %q", ct[0].Value())
	}
	if len(rr) > 0 {
		return nil // the proxy forwards to the Contact: it is only a Request-URI
	}
	host := strings.Trim(c.Address.Host, "[]")
	if a, err := netip.ParseAddr(host); err == nil && extra.IsValid() && a.Unmap() == extra.Unmap() {
		if s.IsTrunkAddr(a, uint16(c.Address.Port)) {
			return fmt.Errorf("contact %s is a trunk's address", c.Address.String())
		}
		return nil
	}
	_, err := s.PhoneAddrAllowed(c.Address.Host, uint16(c.Address.Port), regSource)
	return err
}

// msgHeaders is getHeaders for a request or a response.
func msgHeaders(m interface{ Headers() []sip.Header }, name string) []sip.Header {
	var out []sip.Header
	for _, h := range m.Headers() {
		if asciiEqualFold(h.Name(), name) {
			out = append(out, h)
		}
	}
	return out
}

// notAPhoneHost refuses, for an address taken from sip.phone_networks
// (not the REGISTER's own source), what no phone can be though a wide
// network contains it: Plateau's own addresses (its SIP port, its RTP
// ports), the unspecified, multicast and broadcast addresses, and loopback
// ones unless Plateau listens on loopback itself.
func (s *Server) notAPhoneHost(a netip.Addr) error {
	a = a.Unmap()
	switch {
	case !a.IsValid(), a.IsUnspecified():
		return fmt.Errorf("contact host %s is unspecified", a)
	case a.IsMulticast(), a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return fmt.Errorf("contact host %s is a multicast or broadcast address", a)
	}
	own := []string{s.opts.ExternalAddress}
	listen := netip.Addr{}
	if h, _, err := SplitHostPort(s.opts.Listen); err == nil {
		own = append(own, h)
		listen, _ = netip.ParseAddr(h)
	}
	// Phones on loopback only make sense when Plateau itself is there
	// (a laptop demo, the tests).
	if a.IsLoopback() && !listen.Unmap().IsLoopback() {
		return fmt.Errorf("contact host %s is a loopback address", a)
	}
	if s.calls != nil {
		own = append(own, s.calls.MediaIP().String())
	}
	for _, o := range own {
		if oa, err := netip.ParseAddr(strings.Trim(o, "[]")); err == nil && oa.Unmap() == a {
			return fmt.Errorf("contact host %s is Plateau's own address", a)
		}
	}
	return nil
}
