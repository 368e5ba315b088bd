package sip

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"plateau/store"
)

// A phone's dialog also says where Plateau sends the dialog's later
// requests (ACK, BYE, NOTIFY, session refreshes): its Contact is the
// remote target and its Record-Route the route set (RFC 3261 §12.1), and
// sipgo follows both. Written by the inmate's own phone, they could aim
// those requests at the carrier, another phone or any host; the egress
// gate's rule for INVITEs applies to them too: a phone's dialog targets a
// phone address (phoneAddrAllowed), through trusted proxies only.

// dialogTargetAllowed checks the Contact and Record-Route of a phone's
// dialog-creating message. regSource is where the phone really is (the
// INVITE's real source, or the binding's REGISTER source); extra accepts
// one more host (the binding's own Contact host).
func (s *Server) dialogTargetAllowed(m interface{ Headers() []sip.Header }, regSource netip.Addr, extra netip.Addr) error {
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
		if s.calls != nil && s.calls.isTrunkAddr(a, uint16(c.Address.Port)) {
			return fmt.Errorf("contact %s is a trunk's address", c.Address.String())
		}
		return nil
	}
	_, err := s.phoneAddrAllowed(c.Address.Host, uint16(c.Address.Port), regSource)
	return err
}

// phoneInviteRefusal refuses a phone's INVITE (an operator's call, a
// supervisor's feature code) whose Contact or Record-Route points
// anywhere but the phone.
func (b *b2bua) phoneInviteRefusal(req *sip.Request) *Refusal {
	src, ok := b.s.source(req)
	if !ok {
		return &Refusal{Status: sip.StatusForbidden, Reason: ReasonContactNotAllowed, Rule: ruleRequest, Detail: "the request's real source is unknown"}
	}
	if len(getHeaders(req, "Record-Route")) > 0 && !src.Proxied() {
		return &Refusal{Status: sip.StatusForbidden, Reason: ReasonContactNotAllowed, Rule: ruleRequest,
			Detail: "Record-Route from " + req.Source() + ", which is not a trusted proxy"}
	}
	// Behind a trusted proxy (an SBC hiding the topology) the Contact may
	// be that proxy: it is where the phone's dialog really lives.
	proxy := netip.Addr{}
	if src.Proxied() {
		proxy = src.Proxy()
	}
	if err := b.s.dialogTargetAllowed(req, src.Addr.Addr(), proxy); err != nil {
		return &Refusal{Status: sip.StatusForbidden, Reason: ReasonContactNotAllowed, Rule: ruleRequest, Detail: err.Error()}
	}
	return nil
}

// checkPhoneAnswer checks the 2xx of a phone Plateau rang through the
// gate. When its Contact or Record-Route points elsewhere, the refusal
// is audited and the answer's target is reset to the binding itself
// (with its checked Path), so that the ACK and the BYE hanging it up
// go to the phone and nowhere else; the caller then hangs up.
func (b *b2bua) checkPhoneAnswer(c *call, ext string, bnd store.Binding, cs *sipgo.DialogClientSession) error {
	res := cs.InviteResponse
	src, _ := netip.ParseAddrPort(bnd.Source)
	var u sip.Uri
	contactHost := netip.Addr{}
	if sip.ParseUri(bnd.Contact, &u) == nil {
		contactHost, _ = netip.ParseAddr(strings.Trim(u.Host, "[]"))
	}
	err := b.s.dialogTargetAllowed(res, src.Addr(), contactHost)
	if err == nil && len(msgHeaders(res, "Record-Route")) > 0 && len(bnd.Path) == 0 {
		err = fmt.Errorf("Record-Route from a phone registered without a proxy")
	}
	if err == nil {
		return nil
	}
	callID := ""
	if c != nil {
		callID = c.id
	}
	b.egressRefusedPhone(ext, bnd, callID, "answer's dialog target: "+err.Error())
	res.RemoveHeader("Record-Route")
	res.RemoveHeader("Contact")
	res.AppendHeader(&sip.ContactHeader{Address: u})
	for i := len(bnd.Path) - 1; i >= 0; i-- { // the route set is the Record-Route reversed
		res.AppendHeader(sip.NewHeader("Record-Route", bnd.Path[i]))
	}
	return fmt.Errorf("%w: %v", errEgress, err)
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
	if h, _, err := splitHostPort(s.opts.Listen); err == nil {
		own = append(own, h)
		listen, _ = netip.ParseAddr(h)
	}
	// Phones on loopback only make sense when Plateau itself is there
	// (a laptop demo, the tests).
	if a.IsLoopback() && !listen.Unmap().IsLoopback() {
		return fmt.Errorf("contact host %s is a loopback address", a)
	}
	if s.calls != nil {
		own = append(own, s.calls.opts.MediaIP.String())
	}
	for _, o := range own {
		if oa, err := netip.ParseAddr(strings.Trim(o, "[]")); err == nil && oa.Unmap() == a {
			return fmt.Errorf("contact host %s is Plateau's own address", a)
		}
	}
	return nil
}

// badTarget says why the trunk dialog's learned destination (the first
// Route, else the remote target) may not receive its requests; "" when it
// may or when nothing checks it.
func (d *trunkDialog) badTarget() string {
	if d.targetOK == nil {
		return ""
	}
	u := d.target
	what := "Contact"
	if len(d.routes) > 0 {
		var ru sip.Uri
		params := sip.NewParams()
		if _, err := sip.ParseAddressValue(d.routes[0], &ru, &params); err != nil {
			return fmt.Sprintf("Record-Route %q: %v", d.routes[0], err)
		}
		u, what = ru, "Record-Route"
	}
	a, err := netip.ParseAddr(strings.Trim(u.Host, "[]"))
	if err != nil {
		return fmt.Sprintf("%s host %q is not an IP address", what, u.Host)
	}
	if !d.targetOK(a) {
		return fmt.Sprintf("%s host %s is not the trunk's", what, a)
	}
	return ""
}

// trunkInviteRefusal refuses a trunk's INVITE whose Contact or
// Record-Route would have Plateau send the dialog's requests (BYE,
// refreshes) to a host that is not that trunk's.
func (b *b2bua) trunkInviteRefusal(req *sip.Request, peer func(netip.Addr) bool) *Refusal {
	hosts := []string{}
	for _, v := range splitNameAddrs(getHeaders(req, "Record-Route")) {
		var u sip.Uri
		params := sip.NewParams()
		if _, err := sip.ParseAddressValue(v, &u, &params); err != nil {
			return &Refusal{Status: sip.StatusBadRequest, Reason: ReasonContactNotAllowed, Rule: ruleRequest, Detail: "Record-Route: " + err.Error()}
		}
		hosts = append(hosts, u.Host)
		break // the first is where requests go
	}
	if len(hosts) == 0 {
		ct := getHeaders(req, "Contact")
		c, ok := (*sip.ContactHeader)(nil), len(ct) == 1
		if ok {
			c, ok = ct[0].(*sip.ContactHeader)
		}
		if !ok || c.Address.Wildcard {
			return &Refusal{Status: sip.StatusBadRequest, Reason: ReasonContactNotAllowed, Rule: ruleRequest, Detail: "an INVITE needs one Contact"}
		}
		hosts = append(hosts, c.Address.Host)
	}
	for _, h := range hosts {
		a, err := netip.ParseAddr(strings.Trim(h, "[]"))
		if err != nil || !peer(a) {
			return &Refusal{Status: sip.StatusForbidden, Reason: ReasonContactNotAllowed, Rule: ruleRequest,
				Detail: fmt.Sprintf("dialog target %q is not the trunk's address or allowed sources", h)}
		}
	}
	return nil
}

// trunkAddr is the host of a trunk's configured address.
func trunkAddr(t *Trunk) netip.Addr {
	ap, _ := netip.ParseAddrPort(t.Address)
	return ap.Addr()
}

// registeredFrom reports whether a binding's Contact host is the device
// that registered it: the REGISTER's real source, or a binding registered
// through a trusted proxy (its Path), which vouches for the phone behind.
func registeredFrom(bnd store.Binding, host netip.Addr) bool {
	if len(bnd.Path) > 0 {
		return true
	}
	src, err := netip.ParseAddrPort(bnd.Source)
	return err == nil && src.Addr().Unmap() == host.Unmap()
}
