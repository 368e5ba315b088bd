package b2bua

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	psip "plateau/sip"
)

// A phone's dialog also says where Plateau sends the dialog's later
// requests (ACK, BYE, NOTIFY, session refreshes): its Contact is the
// remote target and its Record-Route the route set (RFC 3261 §12.1), and
// sipgo follows both. Written by the inmate's own phone, they could aim
// those requests at the carrier, another phone or any host; the egress
// gate's rule for INVITEs applies to them too: a phone's dialog targets a
// phone address (phoneAddrAllowed), through trusted proxies only.

// phoneInviteRefusal refuses a phone's INVITE (an operator's call, a
// supervisor's feature code) whose Contact or Record-Route points
// anywhere but the phone.
func (b *B2BUA) phoneInviteRefusal(req *sip.Request) *Refusal {
	src, ok := b.s.Source(req)
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
	if err := b.s.DialogTargetAllowed(req, src.Addr.Addr(), proxy); err != nil {
		return &Refusal{Status: sip.StatusForbidden, Reason: ReasonContactNotAllowed, Rule: ruleRequest, Detail: err.Error()}
	}
	return nil
}

// checkPhoneAnswer checks the 2xx of a phone Plateau rang through the
// gate. When its Contact or Record-Route points elsewhere, the refusal
// is audited and the answer's target is reset to the binding itself
// (with its checked Path), so that the ACK and the BYE hanging it up
// go to the phone and nowhere else; the caller then hangs up.
func (b *B2BUA) checkPhoneAnswer(c *call, ext string, bnd psip.Binding, cs *sipgo.DialogClientSession) error {
	res := cs.InviteResponse
	src, _ := netip.ParseAddrPort(bnd.Source)
	var u sip.Uri
	contactHost := netip.Addr{}
	if sip.ParseUri(bnd.Contact, &u) == nil {
		contactHost, _ = netip.ParseAddr(strings.Trim(u.Host, "[]"))
	}
	err := b.s.DialogTargetAllowed(res, src.Addr(), contactHost)
	if err == nil && len(psip.MsgHeaders(res, "Record-Route")) > 0 && len(bnd.Path) == 0 {
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
func (b *B2BUA) trunkInviteRefusal(req *sip.Request, peer func(netip.Addr) bool) *Refusal {
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
func trunkAddr(t *psip.Trunk) netip.Addr {
	ap, _ := netip.ParseAddrPort(t.Address)
	return ap.Addr()
}

// registeredFrom reports whether a binding's Contact host is the device
// that registered it: the REGISTER's real source, or a binding registered
// through a trusted proxy (its Path), which vouches for the phone behind.
func registeredFrom(bnd psip.Binding, host netip.Addr) bool {
	if len(bnd.Path) > 0 {
		return true
	}
	src, err := netip.ParseAddrPort(bnd.Source)
	return err == nil && src.Addr().Unmap() == host.Unmap()
}
