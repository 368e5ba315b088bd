package sip

import (
	"net/netip"
	"testing"
	"time"
)

// Each TLS connection costs Plateau a handshake (a signature with the
// certificate's key, an ECDHE): a phone that connects, handshakes and
// closes in a loop, within the per-source connection cap, would burn the
// CPU the calls need. New TLS connections from one source are paced by the
// per-source rate (sip.limits.requests_per_source), each costing
// tlsHandshakeCost messages, and refused before the handshake beyond it;
// other sources and trusted proxies are not affected.
func TestAttackTLSHandshakeFlood(t *testing.T) {
	const rate = 50 // messages a second: bursts of 100, so 100/tlsHandshakeCost handshakes
	e := newTLSEnv(t, TCPLimits{MaxConnections: 100, MaxConnectionsPerSource: 32, IdleTimeout: 5 * time.Second}, func(env *regEnv) {
		// The env's clock stands still: no token comes back by itself.
		env.s.limiter = newSourceLimiter(rate, env.clk.now)
	})
	m := e.env.s.metrics

	handshakes := func(ip string, n int) int {
		ok := 0
		for range n {
			c, err := e.dialTLS(ip)
			if err == nil {
				ok++
				c.Close()
			}
		}
		return ok
	}
	want := int(2 * rate / tlsHandshakeCost)
	if got := handshakes("127.0.0.3", 40); got != want {
		t.Errorf("%d of 40 handshakes from one source completed, want %d (burst %d / cost %d)", got, want, 2*rate, tlsHandshakeCost)
	}
	if got := handshakes("127.0.0.4", 1); got != 1 {
		t.Error("another source was refused: the pacing must be per source")
	}
	for deadline := time.Now().Add(5 * time.Second); metricValue(m.tcpRefused.WithLabelValues("tls_rate")) < float64(40-want); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("refused tls_rate counted %v, want %d", metricValue(m.tcpRefused.WithLabelValues("tls_rate")), 40-want)
		}
	}
	// A source's pace comes back with time.
	e.env.clk.advance(time.Second)
	if got := handshakes("127.0.0.3", 1); got != 1 {
		t.Error("a paced source did not get a connection a second later")
	}
}

// Two TLS devices on one host (two softphones on a PC, phones behind one
// NAT): a request to one phone's Contact must go over that phone's own
// connection (the one its REGISTER came on, or the one from the Contact's
// very address), never over the other device's, however new; with several
// connections from the host and nothing that tells which is the phone, the
// request fails rather than reach the wrong device.
func TestAttackTLSConnectionOfAnotherPhone(t *testing.T) {
	e := newTLSEnv(t, TCPLimits{MaxConnections: 100, MaxConnectionsPerSource: 32, IdleTimeout: 5 * time.Second})
	victim := e.phoneConn("127.0.0.1")
	contact := "sip:101@127.0.0.1:5061;transport=tls"
	// One device on the host: its connection, as before.
	if dest, err := e.routeTo(contact); err != nil || dest != victim.String() {
		t.Fatalf("one connection from the host: %s, %v; want %s", dest, err, victim)
	}
	attacker := e.phoneConn("127.0.0.1") // newer, from the same host
	if dest, err := e.routeTo(contact); err == nil {
		t.Errorf("two devices on the host, no binding: routed to %s, want no_connection (ambiguous)", dest)
	}
	// A Contact at a connection's very address is that connection, however
	// many others the host has.
	for _, c := range []netip.AddrPort{victim, attacker} {
		if dest, err := e.routeTo("sip:101@" + c.String() + ";transport=tls"); err != nil || dest != c.String() {
			t.Errorf("a Contact at the connection %s: routed to %s (%v)", c, dest, err)
		}
	}
	e.env.s.ApplyBindingsForTest("101", []Binding{{Extension: "101", Contact: contact, Source: victim.String(),
		Transport: "tls", ExpiresAt: e.env.clk.now().Add(time.Hour)}}, nil)
	if dest, err := e.routeTo(contact); err != nil || dest != victim.String() {
		t.Errorf("phone 101 registered over %s: routed to %s (%v), want its own connection, not %s", victim, dest, err, attacker)
	}
}

// An inmate registers their own extension over TLS with another phone's
// Contact (its address is in sip.phone_networks). Over UDP that Contact
// still leads to the other phone; over TLS the Contact is mapped to a
// connection through the registrations, and the attacker's must never be
// taken for the victim's: the connection of the device at the Contact's
// address wins, and when nothing tells which is the phone, none is.
func TestAttackTLSContactRegisteredByAnother(t *testing.T) {
	e := newTLSEnv(t, TCPLimits{MaxConnections: 100, MaxConnectionsPerSource: 32, IdleTimeout: 5 * time.Second})
	victim, attacker := e.phoneConn("127.0.0.1"), e.phoneConn("127.0.0.2")
	bind := func(ext, contact string, src netip.AddrPort) {
		e.env.s.ApplyBindingsForTest(ext, []Binding{{Extension: ext, Contact: contact, Source: src.String(),
			Transport: "tls", ExpiresAt: e.env.clk.now().Add(time.Hour)}}, nil)
	}
	// The victim (101) registered its own address; the attacker's
	// extension (100, listed first) registers the same Contact.
	own := "sip:101@127.0.0.1:5061;transport=tls"
	bind("101", own, victim)
	bind("100", own, attacker)
	if dest, err := e.routeTo(own); err != nil || dest != victim.String() {
		t.Errorf("the victim's Contact: routed to %s (%v), want the victim's connection %s, never the attacker's %s", dest, err, victim, attacker)
	}
	// A Contact at a private address (a phone behind NAT) registered by
	// two devices: nothing tells which is the phone.
	nat := "sip:101@10.9.9.9:5061;transport=tls"
	bind("101", nat, victim)
	bind("100", nat, attacker)
	if dest, err := e.routeTo(nat); err == nil {
		t.Errorf("a Contact registered by two devices: routed to %s, want no_connection", dest)
	}
}

// A trusted proxy (an SBC in front of the phones) keeps several TLS
// connections to Plateau: a request to it (a phone's Path, a Record-Route)
// may take any of them, unlike two phones on one host.
func TestTLSTrustedProxyConnections(t *testing.T) {
	e := newTLSEnv(t, TCPLimits{MaxConnections: 100, MaxConnectionsPerSource: 32, IdleTimeout: 5 * time.Second}, func(env *regEnv) {
		env.s.trusted = NewTrustedProxies([]netip.Prefix{netip.MustParsePrefix("127.0.0.5/32")})
	})
	conns := []string{e.phoneConn("127.0.0.5").String(), e.phoneConn("127.0.0.5").String()}
	if dest, err := e.routeTo("sip:127.0.0.5:5061;transport=tls;lr"); err != nil || (dest != conns[0] && dest != conns[1]) {
		t.Errorf("to a trusted proxy with two connections: %s (%v), want one of %v", dest, err, conns)
	}
}
