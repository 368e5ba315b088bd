package sip

import (
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
