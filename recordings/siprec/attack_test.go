package siprec

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"plateau/certs"
	"plateau/recordings"
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

// issueWith is testCA.issue with the template's fields set by edit.
func (ca *testCA) issueWith(t *testing.T, cn string, edit func(*x509.Certificate)) *certs.Pair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	edit(tmpl)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	return writePair(t, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}

// TestTLSClientCertificateKinds: with one CA for the whole link (what
// scripts/recorder-certs.sh makes), only a current client certificate of
// that CA opens the link: not the recorder's own (serverAuth) certificate
// presented by a host that copied it, not one for signing only, not one
// not yet valid, and the refusal is classified as a bad certificate.
func TestTLSClientCertificateKinds(t *testing.T) {
	ca := newTestCA(t, "link CA")
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	rec := &tlsRecorder{audit: &memAudit{}, metrics: m, ca: ca}
	conf := recorderTLS(t, ca, ca) // one CA signs both sides
	rec.testRecorder = startRecorderWith(t, 0, func(o *ServerOptions) {
		o.Transports, o.TLS, o.Audit, o.Metrics = []string{"tls"}, conf, rec.audit, m
	})
	roots := ca.pool()
	// The CA's own certificate as a client one passes (it chains to
	// itself): accepted, as presenting it takes the CA's key, which
	// mints client certificates anyway (docs/ARCHITECTURE.md).
	caKey, _ := x509.MarshalPKCS8PrivateKey(ca.key)
	caAsClient := writePair(t, ca.pem, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: caKey}))
	c := newTLSClientTimeout(t, rec.srv.Addr().String(), certs.ClientConfig("recorder.test", roots, caAsClient), time.Second)
	if err := c.Ready(); err != nil {
		t.Errorf("the link CA's own certificate: %v (documented as accepted)", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*x509.Certificate)
		ok   bool
	}{
		{"a node's client certificate", func(*x509.Certificate) {}, true},
		{"the recorder's kind (serverAuth only)", func(c *x509.Certificate) {
			c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		}, false},
		{"code signing only", func(c *x509.Certificate) {
			c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}
		}, false},
		{"not yet valid", func(c *x509.Certificate) {
			c.NotBefore, c.NotAfter = time.Now().Add(time.Hour), time.Now().Add(48*time.Hour)
		}, false},
		{"expired a second ago", func(c *x509.Certificate) {
			c.NotAfter = time.Now().Add(-time.Second)
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pair := ca.issueWith(t, "node", tc.edit)
			before := rec.refused(RefusedBadCert)
			c := newTLSClientTimeout(t, rec.srv.Addr().String(), certs.ClientConfig("recorder.test", roots, pair), 500*time.Millisecond)
			err := c.Ready()
			if tc.ok {
				if err != nil {
					t.Fatalf("Ready = %v", err)
				}
				return
			}
			if !errors.Is(err, recordings.ErrRecorderUnavailable) {
				t.Fatalf("Ready = %v, want recorder unavailable", err)
			}
			waitFor(t, "refused{tls_bad_certificate} to grow", func() bool { return rec.refused(RefusedBadCert) > before })
			if rec.srv.Open() != 0 {
				t.Errorf("%d sessions open", rec.srv.Open())
			}
		})
	}
}

// TestSourceIsTheSocketNotTheHeaders: a request whose Via (with received
// and rport), Contact, From and X-Forwarded-For all name an allowed node,
// sent from a host that is not one, is refused: the source is the
// packet's, never what the message says about itself.
func TestSourceIsTheSocketNotTheHeaders(t *testing.T) {
	m, _ := NewMetrics(prometheus.NewRegistry())
	audit := &memAudit{}
	// The "node" the headers claim to be: 127.0.0.3, where the test
	// listens too, to see where the answer goes.
	node, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.0.3")})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	nodeAddr := node.LocalAddr().String()
	rec := startRecorderWith(t, 0, func(o *ServerOptions) {
		o.AllowedSources, o.Audit, o.Metrics = []netip.Prefix{netip.MustParsePrefix("127.0.0.3/32")}, audit, m
	})
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	to := net.UDPAddrFromAddrPort(rec.srv.Addr())
	port := strings.Split(nodeAddr, ":")[1]
	for i, tc := range []struct{ method, via string }{
		{"OPTIONS", ";rport"},
		{"INVITE", ";rport"},
		{"OPTIONS", ";received=127.0.0.3;rport=" + port},
		{"INVITE", ";received=127.0.0.3;rport=" + port},
	} {
		method := tc.method
		msg := method + " sip:recorder@" + rec.srv.Addr().String() + " SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP " + nodeAddr + ";branch=z9hG4bK-spoof" + string(rune('a'+i)) + tc.via + "\r\n" +
			"Max-Forwards: 70\r\n" +
			"From: <sip:plateau@" + nodeAddr + ">;tag=spoof\r\n" +
			"To: <sip:recorder@" + rec.srv.Addr().String() + ">\r\n" +
			"Call-ID: spoof-" + method + "@127.0.0.3\r\n" +
			"CSeq: 1 " + method + "\r\n" +
			"Contact: <sip:plateau@" + nodeAddr + ">;+sip.src\r\n" +
			"X-Forwarded-For: 127.0.0.3\r\n" +
			"Require: siprec\r\n" +
			"Content-Length: 0\r\n\r\n"
		if _, err := conn.WriteToUDP([]byte(msg), to); err != nil {
			t.Fatal(err)
		}
		// The 403 comes back to the real source, not to the node the
		// headers (even a forged received/rport) name.
		got := make(chan string, 2)
		for _, c := range []*net.UDPConn{conn, node} {
			go func() {
				wait := 5 * time.Second
				if c == node {
					wait = 500 * time.Millisecond // nothing is expected there
				}
				c.SetReadDeadline(time.Now().Add(wait))
				buf := make([]byte, 4096)
				if n, err := c.Read(buf); err == nil {
					got <- c.LocalAddr().String() + " " + strings.SplitN(string(buf[:n]), "\r\n", 2)[0]
					return
				}
				got <- ""
			}()
		}
		answers := []string{<-got, <-got}
		t.Logf("%s via %s: answers %q", method, tc.via, answers)
		for _, a := range answers {
			if a != "" && !strings.Contains(a, "SIP/2.0 403") {
				t.Errorf("%s with headers naming an allowed node: %q, want 403", method, a)
			}
		}
		if answers[0]+answers[1] != conn.LocalAddr().String()+" SIP/2.0 403 Forbidden" {
			t.Errorf("%s: answers %q, want a 403 to the real source", method, answers)
		}
	}
	waitFor(t, "every refusal counted", func() bool { return counterValue(m.refused.WithLabelValues(RefusedSource)) == 4 })
	audit.mu.Lock()
	for _, e := range audit.entries {
		if e.source != "127.0.0.1" {
			t.Errorf("audited source %q, want the packet's 127.0.0.1", e.source)
		}
	}
	audit.mu.Unlock()
	if rec.srv.Open() != 0 {
		t.Errorf("a spoofed request opened a session")
	}
}

// TestDualStackListenerSeesIPv4Sources: a recorder listening on [::] sees
// IPv4 clients as IPv4-mapped addresses; allowed_sources (IPv4) still
// lets a listed node in and keeps another host out.
func TestDualStackListenerSeesIPv4Sources(t *testing.T) {
	if l, err := net.Listen("tcp6", "[::]:0"); err != nil {
		t.Skip("no IPv6 here:", err)
	} else {
		l.Close()
	}
	plateauCA := newTestCA(t, "plateau CA")
	good := plateauCA.issue(t, "plateau-good", nil, x509.ExtKeyUsageClientAuth, time.Now().Add(24*time.Hour))
	for _, tc := range []struct {
		allowed string
		ok      bool
	}{{"127.0.0.0/8", true}, {"10.99.0.0/16", false}} {
		t.Run(tc.allowed, func(t *testing.T) {
			m, _ := NewMetrics(prometheus.NewRegistry())
			audit := &memAudit{}
			ca := newTestCA(t, "recorder CA")
			conf := recorderTLS(t, ca, plateauCA)
			rec := startRecorderWith(t, 0, func(o *ServerOptions) {
				o.Listen, o.Transports, o.TLS, o.Audit, o.Metrics = "[::]:0", []string{"tls"}, conf, audit, m
				o.AllowedSources = []netip.Prefix{netip.MustParsePrefix(tc.allowed)}
			})
			addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), rec.srv.Addr().Port()).String()
			c := newTLSClientTimeout(t, addr, certs.ClientConfig("recorder.test", ca.pool(), good), 1*time.Second)
			err := c.Ready()
			if tc.ok && err != nil {
				t.Fatalf("a listed node over IPv4 to [::]: %v", err)
			}
			if !tc.ok {
				if !errors.Is(err, recordings.ErrRecorderUnavailable) {
					t.Fatalf("Ready = %v, want unavailable", err)
				}
				waitFor(t, "the refusal audited", func() bool { return audit.count(AuditSourceNotAllowed) == 1 })
				audit.mu.Lock()
				src := audit.entries[0].source
				audit.mu.Unlock()
				if src != "127.0.0.1" {
					t.Errorf("audited source %q, want 127.0.0.1 (not its IPv4-mapped form)", src)
				}
			}
		})
	}
}
