package sip

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// FuzzSource feeds Via headers, as a hostile phone behind a trusted proxy
// (or a forger anywhere) writes them, to the real-source walk: it must
// never panic, never answer an invalid address with ok, always take an
// untrusted sender at its transport address, and never give a trusted
// proxy's own address a ban key.
func FuzzSource(f *testing.F) {
	f.Add("10.0.0.5:5060", "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK-p", "SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK-a;rport=40123;received=203.0.113.7")
	f.Add("10.0.0.5:5060", "SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK-p", "SIP/2.0/TLS [2001:db8::20];branch=z9hG4bK-a;received=[2001:db8::21]")
	f.Add("192.0.2.1:5060", "SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK-p", "SIP/2.0/UDP 10.0.0.6;received=10.0.0.5, SIP/2.0/UDP 1.2.3.4")
	f.Add("10.0.0.5:5060", "SIP/2.0/UDP 10.0.0.5;branch=x", "SIP/2.0/UDP host.example;rport=0")
	f.Add("[::ffff:10.0.0.5]:5060", "SIP/2.0/UDP 10.0.0.5", "SIP/2.0/UDP 10.0.0.7;received=10.0.0.6, SIP/2.0/UDP 10.0.0.6;received=::ffff:192.0.2.9;rport=65535")
	trusted := NewTrustedProxies([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/29"), netip.MustParsePrefix("2001:db8::/126")})
	f.Fuzz(func(t *testing.T, src, via1, via2 string) {
		if strings.ContainsAny(via1+via2, "\r\n") {
			return
		}
		raw := "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: " + via1 + "\r\nVia: " + via2 +
			"\r\nFrom: <sip:101@127.0.0.1>;tag=a\r\nTo: <sip:101@127.0.0.1>\r\nCall-ID: f\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
		m, err := sip.ParseMessage([]byte(raw))
		if err != nil {
			return
		}
		req, ok := m.(*sip.Request)
		if !ok {
			return
		}
		req.SetSource(src)
		got, ok := trusted.Source(req)
		if !ok {
			return
		}
		if !got.Addr.IsValid() {
			t.Fatalf("ok with an invalid address for %q", raw)
		}
		transport, err := netip.ParseAddrPort(src)
		if err != nil {
			t.Fatalf("ok for an unparsable transport source %q", src)
		}
		if !trusted.Contains(transport.Addr()) && (got.Proxied() || got.Addr.Addr() != transport.Addr().Unmap()) {
			t.Fatalf("an untrusted sender's Via was believed: %v from %s", got, src)
		}
		if trusted.Contains(got.Addr.Addr()) != got.IsTrustedProxy() || (got.IsTrustedProxy() && got.BanKey().IsValid()) {
			t.Fatalf("trusted proxy %v: IsTrustedProxy %v, BanKey %v", got.Addr, got.IsTrustedProxy(), got.BanKey())
		}
	})
}

// FuzzSameURI: the digest uri comparison never panics, is symmetric, and
// a SIP URI is the same as sipgo's re-serialisation of it (authenticate
// compares with req.Recipient.String(), so a phone's exact Request-URI
// must match).
func FuzzSameURI(f *testing.F) {
	for _, s := range [][2]string{
		{"sip:127.0.0.1:5060", "sip:127.0.0.1:5060"},
		{"sip:%31%30%31@Plateau.Example;transport=UDP", "sip:101@plateau.example;transport=udp"},
		{"sip:a@b;lr;maddr=1.2.3.4?subject=x&h=%41", "sip:a@b;maddr=1.2.3.4?h=A&subject=x"},
		{"sips:[2001:db8::1]:5061;user=phone", "sips:[2001:db8::1]:5061"},
		{"tel:+33240000000", "tel:+33240000000;phone-context=x"},
		{"*", "sip:*"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if sameURI(a, b) != sameURI(b, a) {
			t.Fatalf("not symmetric: %q, %q", a, b)
		}
		if digestURIMatches(a, b, false) && a != b {
			// Whatever matches names the same user (number), host and port.
			var x, y sip.Uri
			if sip.ParseUri(a, &x) != nil || sip.ParseUri(b, &y) != nil || unescape(x.User) != unescape(y.User) ||
				!strings.EqualFold(unescape(x.Host), unescape(y.Host)) || x.Port != y.Port || x.Scheme != y.Scheme {
				t.Fatalf("digest uri %q matched Request-URI %q", a, b)
			}
		}
		var u, v sip.Uri
		if sip.ParseUri(a, &u) != nil || u.Wildcard || (u.Scheme != "sip" && u.Scheme != "sips") {
			return
		}
		s := u.String()
		// Where sipgo's own round trip is lossy (garbage such as "sip:@@")
		// a mismatch only refuses the request: fail closed, not a hole.
		if sip.ParseUri(s, &v) != nil || v.User != u.User || v.Host != u.Host || v.Port != u.Port || v.Password != u.Password ||
			!slices.Equal(v.UriParams, u.UriParams) || !slices.Equal(v.Headers, u.Headers) {
			return
		}
		if !sameURI(a, s) {
			t.Fatalf("%q is not the same as its re-serialisation %q", a, s)
		}
	})
}
