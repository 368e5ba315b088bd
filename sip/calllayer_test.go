package sip

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
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

// The dialog target of a phone's INVITE or answer (where Plateau sends
// the dialog's ACK, BYE, NOTIFY and refreshes): the phone itself, or
// through trusted proxies only; never a trunk, another host, a second
// Contact or an untrusted hop anywhere in the route set.
func TestDialogTargetAllowed(t *testing.T) {
	s := &Server{
		trusted:    NewTrustedProxies([]netip.Prefix{netip.MustParsePrefix("10.30.0.0/24")}),
		trunks:     []*Trunk{newTrunk(TrunkConfig{Name: "t", AllowedSources: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/28")}})},
		trunkAddrs: []netip.AddrPort{netip.MustParseAddrPort("203.0.113.5:5060")},
	}
	src := netip.MustParseAddr("192.168.1.50")
	extra := netip.MustParseAddr("192.168.1.60") // the binding's own Contact host
	many := ""
	for range maxPathEntries + 1 {
		many += "<sip:10.30.0.1;lr>,"
	}
	tests := []struct {
		name    string
		headers []string // name: value
		extra   netip.Addr
		ok      bool
	}{
		{"the phone itself", []string{"Contact: <sip:101@192.168.1.50:5062>"}, netip.Addr{}, true},
		{"the binding's own Contact host", []string{"Contact: <sip:101@192.168.1.60>"}, extra, true},
		{"another host", []string{"Contact: <sip:101@192.168.1.51>"}, netip.Addr{}, false},
		{"the trunk", []string{"Contact: <sip:101@203.0.113.5:5060>"}, netip.Addr{}, false},
		{"the trunk, as the binding's host", []string{"Contact: <sip:101@203.0.113.5:5060>"}, netip.MustParseAddr("203.0.113.5"), false},
		{"a trunk's allowed source", []string{"Contact: <sip:101@198.51.100.2>"}, netip.Addr{}, false},
		{"a host name", []string{"Contact: <sip:101@phone.example>"}, netip.Addr{}, false},
		{"no Contact", nil, netip.Addr{}, false},
		{"two Contacts", []string{"Contact: <sip:101@192.168.1.50>", "Contact: <sip:101@192.168.1.51>"}, netip.Addr{}, false},
		{"wildcard", []string{"Contact: *"}, netip.Addr{}, false},
		{"through a trusted proxy", []string{"Record-Route: <sip:10.30.0.1;lr>", "Contact: <sip:101@172.16.0.9>"}, netip.Addr{}, true},
		{"Record-Route at an untrusted host", []string{"Record-Route: <sip:192.168.1.51;lr>", "Contact: <sip:101@192.168.1.50>"}, netip.Addr{}, false},
		{"Record-Route at the trunk", []string{"Record-Route: <sip:203.0.113.5;lr>", "Contact: <sip:101@192.168.1.50>"}, netip.Addr{}, false},
		{"an untrusted hop after a trusted one", []string{"Record-Route: <sip:10.30.0.1;lr>, <sip:192.0.2.7;lr>", "Contact: <sip:101@192.168.1.50>"}, netip.Addr{}, false},
		{"an untrusted hop in a second header", []string{"Record-Route: <sip:10.30.0.1;lr>", "Record-Route: <sip:192.0.2.7;lr>", "Contact: <sip:101@192.168.1.50>"}, netip.Addr{}, false},
		{"a route set too long", []string{"Record-Route: " + many[:len(many)-1], "Contact: <sip:101@192.168.1.50>"}, netip.Addr{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := "INVITE sip:plateau@192.168.1.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.50;branch=z9hG4bK1\r\n" +
				"From: <sip:101@192.168.1.1>;tag=a\r\nTo: <sip:x@192.168.1.1>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n"
			for _, h := range tt.headers {
				raw += h + "\r\n"
			}
			raw += "Content-Length: 0\r\n\r\n"
			msg, err := sip.ParseMessage([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			err = s.DialogTargetAllowed(msg.(*sip.Request), src, tt.extra)
			if (err == nil) != tt.ok {
				t.Errorf("DialogTargetAllowed = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// Every request Plateau sends passes clientBinding.Request: a new INVITE
// without the egress gate's mark is refused there (counted, audited) and
// nothing reaches the wire; with the mark it leaves, and so do in-dialog
// INVITEs (re-INVITEs of a dialog the gate, or a peer, opened).
func TestClientSendsNoUngatedInvite(t *testing.T) {
	e := newRegEnv(t)
	peer, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	var mu sync.Mutex
	var got []string
	go func() {
		buf := make([]byte, 65535)
		for {
			n, _, err := peer.ReadFrom(buf)
			if err != nil {
				return
			}
			mu.Lock()
			got = append(got, string(buf[:n]))
			mu.Unlock()
		}
	}()
	received := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
	port := peer.LocalAddr().(*net.UDPAddr).Port
	invite := func(callID, toTag string) *sip.Request {
		req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "x", Host: "127.0.0.1", Port: port})
		via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "127.0.0.1", Port: 5060, Params: sip.NewParams()}
		via.Params.Add("branch", sip.GenerateBranch())
		req.AppendHeader(via)
		from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "plateau", Host: "127.0.0.1"}, Params: sip.NewParams()}
		from.Params.Add("tag", "ours")
		to := &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: "x", Host: "127.0.0.1"}, Params: sip.NewParams()}
		if toTag != "" {
			to.Params.Add("tag", toTag)
		}
		id := sip.CallIDHeader(callID)
		req.AppendHeader(from)
		req.AppendHeader(to)
		req.AppendHeader(&id)
		req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.INVITE})
		req.SetBody(nil)
		return req
	}
	c := clientBinding{e.s}
	for _, ctx := range []context.Context{context.Background(), context.TODO()} {
		if _, err := c.Request(ctx, invite("refused", "")); !errors.Is(err, ErrUngated) {
			t.Errorf("a new INVITE without the gate's mark: %v, want ErrUngated", err)
		}
	}
	if v := metricValue(e.s.metrics.ungatedInvites); v != 2 {
		t.Errorf("plateau_sip_ungated_invites_total %v, want 2", v)
	}
	e.audit.mu.Lock()
	audited := strings.Count(strings.Join(e.audit.kinds, " "), "egress.refused:NOT_THROUGH_GATE")
	e.audit.mu.Unlock()
	if audited != 2 {
		t.Errorf("egress.refused NOT_THROUGH_GATE audited %d times, want 2", audited)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	arrived := func(callID string) bool {
		for _, m := range received() {
			if strings.Contains(m, "Call-ID: "+callID+"\r\n") {
				return true
			}
		}
		return false
	}
	for _, tc := range []struct {
		ctx           context.Context
		callID, toTag string
	}{{ThroughEgressGate(ctx), "gated", ""}, {ctx, "reinvite", "theirs"}} {
		tx, err := c.Request(tc.ctx, invite(tc.callID, tc.toTag))
		if err != nil {
			t.Fatalf("INVITE %s: %v", tc.callID, err)
		}
		defer tx.Terminate()
		for deadline := time.Now().Add(10 * time.Second); !arrived(tc.callID); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("INVITE %s never reached the peer", tc.callID)
			}
		}
	}
	// The refused INVITEs were refused before the allowed ones were sent.
	if arrived("refused") {
		t.Error("a refused INVITE reached the peer")
	}
}
