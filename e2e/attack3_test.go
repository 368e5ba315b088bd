package e2e

import (
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	"plateau/certs"
)

// An inmate's scriptable phone opens TLS connections to the SIP TLS port
// in a loop (connect, handshake, close: under the per-source connection
// cap, each handshake costing Plateau a signature). Plateau paces new TLS
// connections per source (10 messages of sip.limits.requests_per_source
// each: here 10/s, so one handshake a second, bursts of two) and closes
// the rest before any handshake; another source still connects.
func TestAttackTLSHandshakeLoop(t *testing.T) {
	sipYAML, tlsPort, own := sipTLS(t, "127.0.0.1")
	p := startPlateau(t, serverOpts{
		users:      []user{{opExt, opPass}},
		transports: "[udp, tcp, tls]",
		sipYAML:    sipYAML + "  limits: {requests_per_source: 10}\n",
	})
	roots, err := certs.LoadCAs(own.cert)
	if err != nil {
		t.Fatal(err)
	}
	handshake := func(ip string) bool {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
		c, err := tls.DialWithDialer(d, "tcp", fmt.Sprintf("127.0.0.1:%d", tlsPort), certs.ClientConfig("127.0.0.1", roots, nil))
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	const attempts = 30
	start := time.Now()
	ok := 0
	for range attempts {
		if handshake("127.0.0.3") {
			ok++
		}
	}
	elapsed := time.Since(start)
	// Burst 2, then one a second: whatever the machine's speed, far
	// fewer than the attempts (the unpaced listener completed them all).
	if limit := 2 + int(elapsed/time.Second) + 1; ok > limit || ok == attempts {
		t.Errorf("%d of %d handshakes from one source completed in %v, want at most %d", ok, attempts, elapsed.Round(time.Millisecond), limit)
	}
	if ok == 0 {
		t.Error("no handshake completed: the first connections of a source must pass")
	}
	if !handshake("127.0.0.4") {
		t.Error("another source could not complete a handshake")
	}
	refused := `plateau_sip_tcp_connections_refused_total{limit="tls_rate"}`
	eventually(t, refused, func() (bool, string) {
		v := p.metricOf(refused)
		return v >= float64(attempts-ok), fmt.Sprint(v)
	})
}
