package sip

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// The real network source of a request. Direct requests come from their
// transport source. Behind a proxy or SBC the transport source is the
// proxy, and the phone is only known from what the proxy recorded in the
// Via it received: RFC 3261 §18.2.1 has every server add `received` when
// the sent-by host is not the packet's source address, and RFC 3581 adds
// `rport` (Kamailio does both, and force_rport sets rport even when the
// phone did not ask). So for a request from a trusted proxy, the Via below
// the proxy's own (the topmost) says where the proxy got it from. Vias are
// believed only as far as trusted proxies wrote them: from any other
// source they are the sender's own claims and are ignored.

// maxTrustedHops bounds the walk down the Via list through trusted proxies.
const maxTrustedHops = 8

// TrustedProxies are the proxies/SBCs whose Via Plateau believes
// (sip.trusted_proxies). The zero value trusts nobody.
type TrustedProxies struct {
	prefixes []netip.Prefix
}

// NewTrustedProxies trusts the given prefixes (validated by the config:
// sip.trusted_proxies).
func NewTrustedProxies(prefixes []netip.Prefix) TrustedProxies {
	t := TrustedProxies{prefixes: make([]netip.Prefix, 0, len(prefixes))}
	for _, p := range prefixes {
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		t.prefixes = append(t.prefixes, p.Masked())
	}
	return t
}

// Contains reports whether a is a trusted proxy's address.
func (t TrustedProxies) Contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Source is where a request really comes from.
type Source struct {
	// Addr is the request's real source: the transport source of a direct
	// request; behind trusted proxies, the address the nearest untrusted
	// hop sent from, as the trusted proxy next to it saw it.
	Addr netip.AddrPort
	// proxies are the trusted proxies the request passed through, nearest
	// (the transport source) first.
	proxies [maxTrustedHops]netip.Addr
	nProxy  int
	// viaProxy is set when Addr itself is a trusted proxy: the request was
	// originated by a proxy (or the Vias run out inside trusted hops).
	viaProxy bool
}

// Proxied reports whether the request came through a trusted proxy.
func (s Source) Proxied() bool { return s.nProxy > 0 }

// IsTrustedProxy reports whether Addr is itself a trusted proxy. Such a
// source is never banned as a whole: it speaks for many phones.
func (s Source) IsTrustedProxy() bool { return s.viaProxy }

// Proxy is the trusted proxy that sent the request to Plateau (invalid
// when the request came directly).
func (s Source) Proxy() netip.Addr {
	if s.nProxy == 0 {
		return netip.Addr{}
	}
	return s.proxies[0]
}

// BanKey is the address failures are counted on: the real source, or
// invalid (not counted by source) when that is a trusted proxy itself.
func (s Source) BanKey() netip.Addr {
	if s.viaProxy {
		return netip.Addr{}
	}
	return s.Addr.Addr()
}

// MediaFrom reports whether media at a may belong to this request's
// sender: the real source, or a trusted proxy on its path (an SBC that
// anchors the media writes its own address in the SDP).
func (s Source) MediaFrom(a netip.Addr) bool {
	a = a.Unmap()
	if a == s.Addr.Addr() {
		return true
	}
	for _, p := range s.proxies[:s.nProxy] {
		if a == p {
			return true
		}
	}
	return false
}

// String is the real source, with the proxy it came through.
func (s Source) String() string {
	if s.nProxy == 0 {
		return s.Addr.String()
	}
	return s.Addr.String() + " via " + s.proxies[0].String()
}

// Source returns the real network source of req; false when it cannot be
// told: the transport source is not an address, or a trusted proxy's Via
// does not say where it got the request from (a proxy that breaks RFC
// 3261 §18.2.1). Callers then fail closed.
func (t TrustedProxies) Source(req *sip.Request) (Source, bool) {
	ap, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return Source{}, false
	}
	src := Source{Addr: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}
	if len(t.prefixes) == 0 || !t.Contains(src.Addr.Addr()) {
		return src, true
	}
	hop := 0 // Vias seen; the first is the nearest proxy's own
	for _, h := range req.Headers() {
		via, ok := h.(*sip.ViaHeader)
		if !ok {
			continue
		}
		hop++
		if hop == 1 {
			continue
		}
		// src.Addr is a trusted proxy and this Via is what it received.
		if src.nProxy == maxTrustedHops {
			return Source{}, false
		}
		src.proxies[src.nProxy] = src.Addr.Addr()
		src.nProxy++
		next, ok := viaSource(via)
		if !ok {
			return Source{}, false
		}
		src.Addr = next
		if !t.Contains(next.Addr()) {
			return src, true
		}
	}
	// The Vias ran out inside trusted hops: a proxy sent this itself.
	src.viaProxy = true
	return src, true
}

// viaSource is where the sender of a Via hop sent from, as the next hop
// recorded it: received (or the sent-by host when the next hop saw the
// same address and added none), and rport's value (or the sent-by port).
func viaSource(v *sip.ViaHeader) (netip.AddrPort, bool) {
	host := v.Host
	if r, ok := v.Params.Get("received"); ok {
		host = r
	}
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		return netip.AddrPort{}, false
	}
	port := v.Port
	if rp, ok := v.Params.Get("rport"); ok && rp != "" {
		n, err := strconv.ParseUint(rp, 10, 16)
		if err != nil || n == 0 {
			return netip.AddrPort{}, false
		}
		port = int(n)
	}
	if port <= 0 || port > 65535 {
		port = 5060
		if strings.EqualFold(v.Transport, "TLS") {
			port = 5061
		}
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(port)), true
}

// source is the real network source of req under the configured trusted
// proxies: what bans, the media check and audits use.
func (s *Server) source(req *sip.Request) (Source, bool) {
	return s.trusted.Source(req)
}

// RealSource is source for other packages (the call layer's media check,
// audits): the one answer to "where does this request really come from".
func (s *Server) RealSource(req *sip.Request) (Source, bool) {
	return s.source(req)
}
