package sip

import (
	"context"
	"net/netip"
	"testing"
)

// mediaAt is a call layer without calls whose media address is a.
type mediaAt netip.Addr

func (mediaAt) Run(context.Context)   {}
func (mediaAt) Shutdown()             {}
func (mediaAt) ActiveCalls() int      { return 0 }
func (m mediaAt) MediaIP() netip.Addr { return netip.Addr(m) }

func TestPhoneAddrAllowed(t *testing.T) {
	s := &Server{opts: Options{PhoneNetworks: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/24")}},
		trunks:     []*Trunk{newTrunk(TrunkConfig{Name: "t", AllowedSources: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/28"), netip.MustParsePrefix("10.20.0.9/32")}})},
		trunkAddrs: []netip.AddrPort{netip.MustParseAddrPort("203.0.113.5:5060"), netip.MustParseAddrPort("10.20.0.1:5070")},
	}
	src := netip.MustParseAddr("192.168.1.50")
	tests := []struct {
		name string
		host string
		port uint16
		ok   bool
	}{
		{"the REGISTER's own source", "192.168.1.50", 5062, true},
		{"inside phone_networks", "10.20.0.77", 5060, true},
		{"another host on the LAN", "192.168.1.51", 5060, false},
		{"the trunk's address", "203.0.113.5", 5060, false},
		{"the trunk's address, default port", "203.0.113.5", 0, false},
		{"the trunk's host on another port", "203.0.113.5", 5080, false},
		{"a trunk allowed source", "198.51.100.3", 5060, false},
		{"a trunk source inside phone_networks", "10.20.0.9", 5060, false},
		{"a trunk address inside phone_networks", "10.20.0.1", 5070, false},
		{"a host name", "phone.lan", 5060, false},
		{"IPv6 in brackets, not allowed", "[2001:db8::1]", 5060, false},
		{"empty", "", 5060, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.PhoneAddrAllowed(tt.host, tt.port, src)
			if (err == nil) != tt.ok {
				t.Errorf("phoneAddrAllowed(%q:%d) = %v, want ok=%v", tt.host, tt.port, err, tt.ok)
			}
		})
	}
	// At use, the stored binding is checked the same way.
	for _, bnd := range []Binding{
		{Extension: "101", Contact: "sip:101@203.0.113.5", Source: "192.168.1.50:5062"},
		{Extension: "101", Contact: "sip:101@192.168.1.99:5060", Source: "192.168.1.50:5062"},
		{Extension: "101", Contact: "not a uri", Source: "192.168.1.50:5062"},
	} {
		if _, err := s.PhoneBindingAllowed(bnd); err == nil {
			t.Errorf("binding %+v allowed", bnd)
		}
	}
	if _, err := s.PhoneBindingAllowed(Binding{Extension: "101", Contact: "sip:101@192.168.1.50:5062", Source: "192.168.1.50:5062"}); err != nil {
		t.Errorf("the phone's own binding refused: %v", err)
	}
}

// A wide sip.phone_networks (the whole workshop network, even 0.0.0.0/0 by
// mistake) still holds no phone at Plateau's own addresses (its SIP port:
// Plateau would INVITE itself; its RTP ports: SIP bytes into another call's
// media), nor at unspecified, multicast, broadcast or loopback addresses,
// nor IPv4-mapped spellings of them. The REGISTER's own source stays
// allowed.
func TestAttackRegisterContactSpecialHosts(t *testing.T) {
	s := &Server{opts: Options{Listen: "10.20.0.2:5060", ExternalAddress: "10.20.0.2",
		PhoneNetworks: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}}}
	s.calls = mediaAt(netip.MustParseAddr("10.20.0.3"))
	src := netip.MustParseAddr("10.20.0.50")
	for _, tt := range []struct {
		host string
		ok   bool
	}{
		{"10.20.0.50", true}, // the REGISTER's own source
		{"10.20.0.51", true}, // another phone inside phone_networks
		{"10.20.0.2", false}, // Plateau's SIP address
		{"10.20.0.3", false}, // Plateau's media address
		{"[::ffff:10.20.0.2]", false},
		{"0.0.0.0", false},
		{"[::]", false},
		{"224.0.0.1", false},
		{"239.255.255.250", false},
		{"[ff02::1]", false},
		{"255.255.255.255", false},
		{"127.0.0.1", false},
		{"[::1]", false},
		{"[::ffff:127.0.0.1]", false},
	} {
		_, err := s.PhoneAddrAllowed(tt.host, 5060, src)
		if (err == nil) != tt.ok {
			t.Errorf("phoneAddrAllowed(%s) = %v, want ok=%v", tt.host, err, tt.ok)
		}
	}
}
