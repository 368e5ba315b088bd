package sip

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Path (RFC 3327): a phone that registers through an edge proxy (Kamailio,
// an SBC) is reachable only through it. The REGISTER's Path headers are
// stored with the binding and become the route set of every request that
// rings the phone (inbound calls, click-to-call, supervisors' monitoring).
// A Path says no more than the Contact it comes with: both are written by
// the authenticated user's side, and the policy never depends on them.

const (
	maxPathEntries = 5   // proxies between a phone and Plateau
	maxPathEntry   = 256 // bytes of one entry
)

// pathOf reads a REGISTER's Path entries in order, each checked (a SIP
// URI in a name-addr) and rebuilt; ok is false when one is unusable.
func pathOf(req *sip.Request) (path []string, ok bool) {
	for _, v := range splitNameAddrs(getHeaders(req, "Path")) {
		if len(v) > maxPathEntry || len(path) == maxPathEntries {
			return nil, false
		}
		var u sip.Uri
		params := sip.NewParams()
		if _, err := sip.ParseAddressValue(v, &u, &params); err != nil || (u.Scheme != "sip" && u.Scheme != "sips") || u.Host == "" {
			return nil, false
		}
		// The entry is written back as a Route: nothing in it may end the
		// name-addr or the header value early, and a proxy's URI has no
		// password (sipgo would not write "user::" back as it read it).
		us := u.String()
		if strings.ContainsAny(us, "<>\", \t\r\n") || !validHost(u.Host) || u.Password != "" || strings.Contains(u.User, ":") {
			return nil, false
		}
		path = append(path, "<"+us+">")
	}
	return path, true
}

// splitNameAddrs splits header values on the commas between name-addrs
// (not those inside <...> or quotes).
func splitNameAddrs(hs []sip.Header) []string {
	var out []string
	for _, h := range hs {
		v := h.Value()
		depth, quoted, start := 0, false, 0
		for i := 0; i < len(v); i++ {
			switch c := v[i]; {
			case c == '"':
				quoted = !quoted
			case quoted:
			case c == '<':
				depth++
			case c == '>':
				depth--
			case c == ',' && depth == 0:
				if s := strings.TrimSpace(v[start:i]); s != "" {
					out = append(out, s)
				}
				start = i + 1
			}
		}
		if s := strings.TrimSpace(v[start:]); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// echoPath puts the stored Path in a REGISTER's 200 when the phone said
// it supports path (RFC 3327 §5.3).
func echoPath(req *sip.Request, res *sip.Response, path []string) {
	if len(path) == 0 || !HasTag(HeaderValues(req, "Supported"), "path") {
		return
	}
	res.AppendHeader(sip.NewHeader("Path", strings.Join(path, ", ")))
}

// routeViaPath makes a binding's Path the route set of a request that
// rings it: sipgo sends to the first Route, and the proxy forwards to the
// Request-URI (the phone's Contact). Only the egress gate calls it, after
// pathAllowed.
func routeViaPath(req *sip.Request, b Binding) {
	for _, p := range b.Path {
		req.AppendHeader(sip.NewHeader("Route", p))
	}
}

// pathAllowed checks a Path before Plateau stores it and again before it
// sends through it: the first hop is where the INVITE really goes, so a
// phone could otherwise aim a Path at the carrier and have Plateau dial
// there with no decision. Every entry must be an address in
// sip.trusted_proxies, never a trunk's, and a REGISTER may carry a Path
// only when it came through a trusted proxy (src.Proxied()).
func (s *Server) pathAllowed(path []string) error {
	for _, p := range path {
		var u sip.Uri
		params := sip.NewParams()
		if _, err := sip.ParseAddressValue(p, &u, &params); err != nil {
			return fmt.Errorf("path entry %q: %v", p, err)
		}
		a, err := netip.ParseAddr(strings.Trim(u.Host, "[]"))
		if err != nil {
			return fmt.Errorf("path entry %q is not an IP address", p)
		}
		a = a.Unmap()
		if !s.trusted.Contains(a) {
			return fmt.Errorf("path entry %s is not in sip.trusted_proxies", a)
		}
		if s.IsTrunkAddr(a, uint16(u.Port)) {
			return fmt.Errorf("path entry %s is a trunk's address", a)
		}
	}
	return nil
}

// validHost accepts a host name, an IPv4 address or a bracketed IPv6 one.
func validHost(h string) bool {
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		_, err := netip.ParseAddr(h[1 : len(h)-1])
		return err == nil
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}
