package siprec

import (
	"crypto/x509"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"plateau/certs"
)

// TestRefusalsAuditBudget: however many sources a flood uses (forged UDP
// sources, an IPv6 host walking its /64, a LAN full of hosts), the audit
// chain gets a bounded number of refusal entries a window, then one that
// says how many were held back; every refusal is still counted.
func TestRefusalsAuditBudget(t *testing.T) {
	const flood = 3 * maxRefusalKeys
	v4 := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}) }
	v6 := func(i int) netip.Addr { // one host: every address in 2001:db8:0:1::/64
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 8: byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)})
	}
	mapped := func(i int) netip.Addr { return netip.AddrFrom16(v4(i).As16()) }
	for _, tc := range []struct {
		name      string
		src       func(int) netip.Addr
		maxAudits int
	}{
		{"forged IPv4 sources", v4, maxAuditsPerWindow},
		{"IPv4-mapped sources", mapped, maxAuditsPerWindow},
		{"one IPv6 host rotating its /64", v6, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
			m, _ := NewMetrics(prometheus.NewRegistry())
			audit := &memAudit{}
			r := newRefusals(testLog(t), audit, m, func() time.Time { return now })
			for i := range flood {
				r.refuse(tc.src(i), RefusedSource, "OPTIONS", nil)
			}
			if n := audit.count(AuditSourceNotAllowed); n > tc.maxAudits || n == 0 {
				t.Errorf("%d refused sources: %d audit entries in one window, want 1..%d", flood, n, tc.maxAudits)
			}
			if got := counterValue(m.refused.WithLabelValues(RefusedSource)); got != flood {
				t.Errorf("refused{source} = %v, want %d (every refusal counted)", got, flood)
			}
			if len(r.seen) > maxRefusalKeys {
				t.Errorf("%d refusal keys kept, want at most %d", len(r.seen), maxRefusalKeys)
			}
			// Next window: the held-back count is said once, and a
			// source refused again is audited again.
			now = now.Add(time.Minute)
			r.refuse(v4(0), RefusedSource, "OPTIONS", nil)
			held := audit.count(AuditHeldBack)
			if tc.maxAudits > 1 && held != 1 {
				t.Errorf("held-back entries = %d, want 1 after a window that held some back", held)
			}
			if tc.maxAudits == 1 && held != 0 {
				t.Errorf("held-back entries = %d, want 0 (one source, its own entry says suppressed_before)", held)
			}
			before := audit.count(AuditSourceNotAllowed)
			now = now.Add(time.Minute)
			r.refuse(netip.MustParseAddr("192.0.2.1"), RefusedSource, "INVITE", nil)
			if audit.count(AuditSourceNotAllowed) != before+1 {
				t.Errorf("a new source in a quiet window was not audited")
			}
		})
	}
}

// TestGateSlowlorisFromOneSource: a host inside allowed_sources but
// without a certificate (an inmate's PC on a LAN prefix listed whole)
// opens more idle connections than the recorder has handshake slots; the
// Plateau node must still get its recording link.
func TestGateSlowlorisFromOneSource(t *testing.T) {
	plateauCA := newTestCA(t, "plateau CA")
	rec := startTLSRecorder(t, plateauCA, netip.MustParsePrefix("127.0.0.0/8"))
	attacker := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for i := 0; i < maxHandshakes+8; i++ {
		c, err := attacker.Dial("tcp", rec.srv.Addr().String())
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		idle = append(idle, c)
	}
	// The gate has seen them all (each one took a slot or was refused).
	waitFor(t, "the idle connections at the gate", func() bool { return rec.refused(RefusedBusy) >= 8 })
	good := plateauCA.issue(t, "plateau-good", nil, x509.ExtKeyUsageClientAuth, time.Now().Add(24*time.Hour))
	c := newTLSClient(t, rec.srv.Addr().String(), certs.ClientConfig("recorder.test", rec.ca.pool(), good))
	if err := c.Ready(); err != nil {
		t.Fatalf("the Plateau node could not reach the recorder while 127.0.0.2 holds %d idle connections: %v", len(idle), err)
	}
	if n := rec.audit.count(AuditTLSHandshake); n > 1 {
		t.Errorf("%d audit entries for one flooding host, want 1", n)
	}
}
