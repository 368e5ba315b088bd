package sip

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// viaRequest builds a REGISTER with the given Via lines (topmost first),
// received from transport source src.
func viaRequest(t *testing.T, src string, vias ...string) *sip.Request {
	t.Helper()
	lines := []string{"REGISTER sip:127.0.0.1:5060 SIP/2.0"}
	for _, v := range vias {
		lines = append(lines, "Via: "+v)
	}
	lines = append(lines, "From: <sip:101@127.0.0.1>;tag=a", "To: <sip:101@127.0.0.1>", "Call-ID: src-test", "CSeq: 1 REGISTER", "Max-Forwards: 70")
	m, err := sip.ParseMessage([]byte(strings.Join(lines, "\r\n") + "\r\nContent-Length: 0\r\n\r\n"))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	req := m.(*sip.Request)
	req.SetSource(src)
	return req
}

func TestSource(t *testing.T) {
	trusted := NewTrustedProxies([]netip.Prefix{
		netip.MustParsePrefix("10.0.0.5/32"),     // the edge proxy
		netip.MustParsePrefix("10.0.1.0/29"),     // an SBC pair
		netip.MustParsePrefix("2001:db8::5/128"), // the proxy over IPv6
	})
	const proxyVia = "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK-p"
	tests := []struct {
		name     string
		trusted  TrustedProxies
		src      string
		vias     []string
		want     string // real source; "" when it cannot be told
		proxied  bool
		isProxy  bool   // the real source is a trusted proxy itself
		mediaOK  string // an address the media may use
		mediaBad string // one it may not
	}{
		{name: "direct: the transport source, Via ignored", trusted: trusted, src: "192.0.2.10:5070",
			vias: []string{"SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bK-a;received=198.51.100.2;rport=9"},
			want: "192.0.2.10:5070", mediaOK: "192.0.2.10", mediaBad: "198.51.100.2"},
		{name: "forged proxy Vias from an untrusted source are ignored", trusted: trusted, src: "192.0.2.10:5070",
			vias: []string{proxyVia, "SIP/2.0/UDP 192.0.2.99:5060;branch=z9hG4bK-a;received=192.0.2.99"},
			want: "192.0.2.10:5070", mediaOK: "192.0.2.10", mediaBad: "192.0.2.99"},
		{name: "no trusted proxies configured: Vias ignored even from the proxy's address", src: "10.0.0.5:5060",
			vias: []string{proxyVia, "SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK-a"},
			want: "10.0.0.5:5060", mediaOK: "10.0.0.5", mediaBad: "192.0.2.20"},
		{name: "behind the proxy, no NAT: the phone's sent-by", trusted: trusted, src: "10.0.0.5:5060",
			vias: []string{proxyVia, "SIP/2.0/UDP 192.0.2.20:5062;branch=z9hG4bK-a"},
			want: "192.0.2.20:5062", proxied: true, mediaOK: "192.0.2.20", mediaBad: "192.0.2.21"},
		{name: "behind the proxy and NAT: received and rport (Kamailio)", trusted: trusted, src: "10.0.0.5:5060",
			vias: []string{proxyVia, "SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK-a;rport=40123;received=203.0.113.7"},
			want: "203.0.113.7:40123", proxied: true, mediaOK: "203.0.113.7", mediaBad: "192.168.1.10"},
		{name: "comma-separated Vias", trusted: trusted, src: "10.0.0.5:5060",
			vias: []string{proxyVia + ", SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK-a;received=203.0.113.8"},
			want: "203.0.113.8:5060", proxied: true, mediaOK: "203.0.113.8"},
		{name: "the proxy's own address is fine for an SBC that anchors media", trusted: trusted, src: "10.0.0.5:5060",
			vias: []string{proxyVia, "SIP/2.0/UDP 192.0.2.20:5062;branch=z9hG4bK-a"},
			want: "192.0.2.20:5062", proxied: true, mediaOK: "10.0.0.5", mediaBad: "10.0.0.6"},
		{name: "two trusted hops: SBC then proxy", trusted: trusted, src: "10.0.0.5:5060",
			vias: []string{proxyVia, "SIP/2.0/UDP 10.0.1.2:5060;branch=z9hG4bK-s", "SIP/2.0/UDP 192.168.1.10;branch=z9hG4bK-a;received=203.0.113.9;rport=5099"},
			want: "203.0.113.9:5099", proxied: true, mediaOK: "10.0.1.2", mediaBad: "192.168.1.10"},
		{name: "a phone's forged Vias below its own are not walked", trusted: trusted, src: "10.0.0.5:5060",
			vias: []string{proxyVia, "SIP/2.0/UDP 192.0.2.20:5062;branch=z9hG4bK-a", "SIP/2.0/UDP 192.0.2.99:5060;branch=z9hG4bK-f"},
			want: "192.0.2.20:5062", proxied: true, mediaBad: "192.0.2.99"},
		{name: "the phone claims a trusted address but the proxy recorded received", trusted: trusted, src: "10.0.0.5:5060",
			vias: []string{proxyVia, "SIP/2.0/UDP 10.0.1.3:5060;branch=z9hG4bK-a;received=192.0.2.30", "SIP/2.0/UDP 192.0.2.99:5060;branch=z9hG4bK-f"},
			want: "192.0.2.30:5060", proxied: true, mediaBad: "192.0.2.99"},
		{name: "a request the proxy originated (one Via): the proxy, never banned", trusted: trusted, src: "10.0.0.5:5060",
			vias: []string{proxyVia}, want: "10.0.0.5:5060", isProxy: true, mediaOK: "10.0.0.5"},
		{name: "IPv6 proxy and phone", trusted: trusted, src: "[2001:db8::5]:5060",
			vias: []string{"SIP/2.0/UDP [2001:db8::5]:5060;branch=z9hG4bK-p", "SIP/2.0/UDP [2001:db8::20]:5062;branch=z9hG4bK-a;rport=6000"},
			want: "[2001:db8::20]:6000", proxied: true, mediaOK: "2001:db8::20"},
		{name: "IPv4-mapped transport source", trusted: trusted, src: "[::ffff:10.0.0.5]:5060",
			vias: []string{proxyVia, "SIP/2.0/UDP 192.0.2.20:5062;branch=z9hG4bK-a"},
			want: "192.0.2.20:5062", proxied: true},
		{name: "TLS without a port defaults to 5061", trusted: trusted, src: "10.0.0.5:5061",
			vias: []string{"SIP/2.0/TLS 10.0.0.5;branch=z9hG4bK-p", "SIP/2.0/TLS 192.0.2.20;branch=z9hG4bK-a"},
			want: "192.0.2.20:5061", proxied: true},
		{name: "fail closed: a domain sent-by without received", trusted: trusted, src: "10.0.0.5:5060",
			vias: []string{proxyVia, "SIP/2.0/UDP phone.example.com:5060;branch=z9hG4bK-a"}},
		{name: "fail closed: received is not an address", trusted: trusted, src: "10.0.0.5:5060",
			vias: []string{proxyVia, "SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK-a;received=evil"}},
		{name: "fail closed: rport out of range", trusted: trusted, src: "10.0.0.5:5060",
			vias: []string{proxyVia, "SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK-a;rport=70000"}},
		{name: "fail closed: the transport source is not an address", trusted: trusted, src: "nowhere",
			vias: []string{proxyVia}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := viaRequest(t, tt.src, tt.vias...)
			got, ok := tt.trusted.Source(req)
			if tt.want == "" {
				if ok {
					t.Fatalf("Source = %v, want failure", got)
				}
				return
			}
			if !ok || got.Addr.String() != tt.want {
				t.Fatalf("Source = %v, %v; want %s", got.Addr, ok, tt.want)
			}
			if got.Proxied() != tt.proxied || got.IsTrustedProxy() != tt.isProxy {
				t.Errorf("Proxied = %v, IsTrustedProxy = %v; want %v, %v", got.Proxied(), got.IsTrustedProxy(), tt.proxied, tt.isProxy)
			}
			if tt.isProxy && got.BanKey().IsValid() {
				t.Errorf("a trusted proxy's own address has ban key %v", got.BanKey())
			}
			if !tt.isProxy && got.BanKey() != got.Addr.Addr() {
				t.Errorf("BanKey = %v, want %v", got.BanKey(), got.Addr.Addr())
			}
			if tt.mediaOK != "" && !got.MediaFrom(netip.MustParseAddr(tt.mediaOK)) {
				t.Errorf("media at %s refused", tt.mediaOK)
			}
			if tt.mediaBad != "" && got.MediaFrom(netip.MustParseAddr(tt.mediaBad)) {
				t.Errorf("media at %s allowed", tt.mediaBad)
			}
		})
	}
}

func TestTrustedProxiesContains(t *testing.T) {
	tp := NewTrustedProxies([]netip.Prefix{netip.MustParsePrefix("::ffff:10.0.0.0/120"), netip.MustParsePrefix("192.0.2.7/32")})
	for a, want := range map[string]bool{"10.0.0.9": true, "::ffff:10.0.0.9": true, "10.0.1.9": false, "192.0.2.7": true, "192.0.2.8": false} {
		if got := tp.Contains(netip.MustParseAddr(a)); got != want {
			t.Errorf("Contains(%s) = %v, want %v", a, got, want)
		}
	}
	if (TrustedProxies{}).Contains(netip.MustParseAddr("10.0.0.1")) {
		t.Error("the zero value trusts an address")
	}
}
