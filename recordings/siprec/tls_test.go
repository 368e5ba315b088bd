package siprec

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"plateau/certs"
	"plateau/media"
	"plateau/recordings"
)

// auditEntry is one Audit call.
type auditEntry struct{ kind, subject, outcome, reason, source string }

// memAudit collects audit entries.
type memAudit struct {
	mu      sync.Mutex
	entries []auditEntry
}

func (a *memAudit) Audit(_ context.Context, kind, _, subject, outcome, reason, source string, _ map[string]any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.entries = append(a.entries, auditEntry{kind, subject, outcome, reason, source})
}

func (a *memAudit) count(reason string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, e := range a.entries {
		if e.kind == "recorder.refused" && e.reason == reason {
			n++
		}
	}
	return n
}

// waitFor polls cond (condition, not sleep, for a loaded CI machine).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type tlsRecorder struct {
	*testRecorder
	audit   *memAudit
	metrics *Metrics
	ca      *testCA // signs the recorder's certificate
}

// startTLSRecorder runs an SRS that takes TLS only, from clients whose
// certificate clientCA signed.
func startTLSRecorder(t *testing.T, clientCA *testCA, allowedSrc ...netip.Prefix) *tlsRecorder {
	t.Helper()
	ca := newTestCA(t, "recorder CA")
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	r := &tlsRecorder{audit: &memAudit{}, metrics: m, ca: ca}
	conf := recorderTLS(t, ca, clientCA)
	r.testRecorder = startRecorderWith(t, 0, func(o *ServerOptions) {
		o.Transports, o.TLS, o.Audit, o.Metrics, o.AllowedSources = []string{"tls"}, conf, r.audit, m, allowedSrc
	})
	return r
}

func (r *tlsRecorder) refused(reason string) float64 {
	return counterValue(r.metrics.refused.WithLabelValues(reason))
}

func newTLSClient(t *testing.T, addr string, conf *tls.Config) *Client {
	t.Helper()
	return newTLSClientTimeout(t, addr, conf, 2*time.Second)
}

// newTLSClientTimeout: a refused client waits its whole timeout (with TLS
// 1.3 the server refuses the certificate after the client's side of the
// handshake is done, so the request is sent and never answered).
func newTLSClientTimeout(t *testing.T, addr string, conf *tls.Config, timeout time.Duration) *Client {
	t.Helper()
	c, err := NewClient(ClientOptions{Address: addr, Transport: "tls", TLS: conf, Timeout: timeout, Log: testLog(t),
		ProbeInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestTLSRecording: a client with a certificate of the client CA records
// over TLS; the recorder's BYE at shutdown reaches the client on its own
// connection (it does not listen) and ends the session.
func TestTLSRecording(t *testing.T) {
	plateauCA := newTestCA(t, "plateau CA")
	rec := startTLSRecorder(t, plateauCA)
	client := plateauCA.issue(t, "plateau-node1", nil, x509.ExtKeyUsageClientAuth, time.Now().Add(24*time.Hour))
	c := newTLSClient(t, rec.srv.Addr().String(), certs.ClientConfig("recorder.test", rec.ca.pool(), client))
	recordAndCheck(t, rec.testRecorder, c)
	if got := counterValue(rec.metrics.tlsAccepted); got < 1 {
		t.Errorf("plateau_recorder_tls_connections_total = %v, want at least 1", got)
	}
	for _, reason := range []string{RefusedSource, RefusedNoCertificate, RefusedBadCert, RefusedHandshake} {
		if n := rec.refused(reason); n != 0 {
			t.Errorf("refused{%s} = %v for a good client", reason, n)
		}
	}

	// The recorder's BYE goes back over the client's TLS connection.
	s, err := c.Start(context.Background(), recordings.Info{ID: "tls-bye", Operator: "101", Number: "+33123456789", Start: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(time.Now())
	pkts := tonePackets(ptPCMU, 440, 400, 9)
	if err := s.TapRTP(media.LegOperator, &pkts[0], time.Now()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the session on the recorder", func() bool { return rec.srv.Open() == 1 })
	rec.srv.mu.Lock()
	var rs *recSession
	for _, x := range rec.srv.sessions {
		rs = x
	}
	rec.srv.mu.Unlock()
	rec.srv.finish(rs, "test", true)
	tapErr := tapUntilError(s, pkts)
	if !errors.Is(tapErr, ErrSessionEnded) {
		t.Fatalf("TapRTP after the recorder's BYE = %v, want ErrSessionEnded", tapErr)
	}
}

// TestTLSRefusesClients: whatever a client presents other than a
// certificate of the client CA, the handshake fails, the client finds the
// recorder unavailable (calls are refused), and the recorder logs, counts
// and audits the refusal by its reason.
func TestTLSRefusesClients(t *testing.T) {
	plateauCA := newTestCA(t, "plateau CA")
	otherCA := newTestCA(t, "another CA")
	rec := startTLSRecorder(t, plateauCA)
	roots := rec.ca.pool()
	good := plateauCA.issue(t, "plateau-good", nil, x509.ExtKeyUsageClientAuth, time.Now().Add(24*time.Hour))
	expired := plateauCA.issue(t, "plateau-expired", nil, x509.ExtKeyUsageClientAuth, time.Now().Add(-time.Hour))
	foreign := otherCA.issue(t, "impostor", nil, x509.ExtKeyUsageClientAuth, time.Now().Add(24*time.Hour))
	selfPEM, selfKey, err := certs.SelfSigned([]string{"impostor-self"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	selfSigned := writePair(t, selfPEM, selfKey)
	// The recorder's own certificate as a client one: right CA... of the
	// wrong side (the recorder's CA is not the client CA).
	recorderAsClient := rec.ca.issue(t, "recorder-as-client", nil, x509.ExtKeyUsageClientAuth, time.Now().Add(24*time.Hour))

	cases := []struct {
		name   string
		client *certs.Pair
		reason string
		audit  string
	}{
		{"no certificate", nil, RefusedNoCertificate, AuditTLSNoCertificate},
		{"another CA", foreign, RefusedBadCert, AuditTLSBadCert},
		{"self-signed", selfSigned, RefusedBadCert, AuditTLSBadCert},
		{"the recorder's CA", recorderAsClient, RefusedBadCert, AuditTLSBadCert},
		{"expired", expired, RefusedBadCert, AuditTLSBadCert},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := rec.refused(tc.reason)
			c := newTLSClientTimeout(t, rec.srv.Addr().String(), certs.ClientConfig("recorder.test", roots, tc.client), 500*time.Millisecond)
			err := c.Ready()
			if !errors.Is(err, recordings.ErrRecorderUnavailable) {
				t.Fatalf("Ready = %v, want recorder unavailable", err)
			}
			if _, err := c.Start(context.Background(), recordings.Info{ID: "refused", Operator: "101", Number: "+33123456789", Start: time.Now()}); !errors.Is(err, recordings.ErrRecorderUnavailable) {
				t.Fatalf("Start = %v, want recorder unavailable", err)
			}
			waitFor(t, "refused{"+tc.reason+"} to grow", func() bool { return rec.refused(tc.reason) > before })
			waitFor(t, "the audit entry "+tc.audit, func() bool { return rec.audit.count(tc.audit) > 0 })
			if rec.srv.Open() != 0 {
				t.Errorf("%d sessions open on the recorder", rec.srv.Open())
			}
		})
	}

	// A good certificate for the wrong name: the client refuses the
	// recorder (the recorder's certificate does not name it).
	c := newTLSClient(t, rec.srv.Addr().String(), certs.ClientConfig("someone-else.test", roots, good))
	if err := c.Ready(); !errors.Is(err, recordings.ErrRecorderUnavailable) {
		t.Fatalf("Ready against a recorder of another name = %v, want unavailable", err)
	}
	// And a good client still gets in.
	c = newTLSClient(t, rec.srv.Addr().String(), certs.ClientConfig("recorder.test", roots, good))
	if err := c.Ready(); err != nil {
		t.Fatalf("Ready with the right certificate: %v", err)
	}
	if n := rec.testRecorder.idx; len(n.rows) != 0 {
		t.Errorf("refused clients left index rows: %v", n.rows)
	}
}

func writePair(t *testing.T, certPEM, keyPEM []byte) *certs.Pair {
	t.Helper()
	dir := t.TempDir()
	cf, kf := dir+"/c.crt", dir+"/c.key"
	if err := errors.Join(os.WriteFile(cf, certPEM, 0o600), os.WriteFile(kf, keyPEM, 0o600)); err != nil {
		t.Fatal(err)
	}
	p, err := certs.Load(cf, kf)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTLSPlainClientRefused: plain SIP sent to the TLS port is a failed
// handshake, counted and audited; a plain client cannot record.
func TestTLSPlainClientRefused(t *testing.T) {
	plateauCA := newTestCA(t, "plateau CA")
	rec := startTLSRecorder(t, plateauCA)
	c := newTestClient(t, rec.srv.Addr().String(), "tcp")
	if err := c.Ready(); !errors.Is(err, recordings.ErrRecorderUnavailable) {
		t.Fatalf("plain TCP Ready against the TLS recorder = %v, want unavailable", err)
	}
	waitFor(t, "a refused handshake", func() bool { return rec.refused(RefusedHandshake) > 0 })
	waitFor(t, "its audit entry", func() bool { return rec.audit.count(AuditTLSHandshake) > 0 })
}

// TestSourceNotAllowed: a source outside allowed_sources gets 403 over
// UDP, a closed connection over TCP and TLS (before any handshake), and
// each refusal is counted and audited.
func TestSourceNotAllowed(t *testing.T) {
	elsewhere := []netip.Prefix{netip.MustParsePrefix("10.99.0.0/16")}
	t.Run("udp and tcp", func(t *testing.T) {
		m, _ := NewMetrics(prometheus.NewRegistry())
		audit := &memAudit{}
		rec := startRecorderWith(t, 0, func(o *ServerOptions) {
			o.AllowedSources, o.Audit, o.Metrics = elsewhere, audit, m
		})
		for _, transport := range []string{"udp", "tcp"} {
			c := newTestClient(t, rec.srv.Addr().String(), transport)
			err := c.Ready()
			if !errors.Is(err, recordings.ErrRecorderUnavailable) {
				t.Fatalf("%s: Ready = %v, want unavailable", transport, err)
			}
			if transport == "udp" && !strings.Contains(err.Error(), "403") {
				t.Errorf("udp: Ready = %v, want the recorder's 403", err)
			}
			if _, err := c.Start(context.Background(), recordings.Info{ID: "nope", Operator: "101", Number: "+33123456789", Start: time.Now()}); !errors.Is(err, recordings.ErrRecorderUnavailable) {
				t.Fatalf("%s: Start = %v, want unavailable", transport, err)
			}
		}
		if got := counterValue(m.refused.WithLabelValues(RefusedSource)); got < 3 {
			t.Errorf("refused{source} = %v, want every refused request and connection counted", got)
		}
		// One audit entry per source and minute, whatever the count.
		if n := audit.count(AuditSourceNotAllowed); n != 1 {
			t.Errorf("%d audit entries for one source within a minute, want 1", n)
		}
		if rec.srv.Open() != 0 || len(rec.idx.rows) != 0 {
			t.Errorf("a refused source opened a recording")
		}
	})
	t.Run("tls", func(t *testing.T) {
		plateauCA := newTestCA(t, "plateau CA")
		rec := startTLSRecorder(t, plateauCA, elsewhere...)
		good := plateauCA.issue(t, "plateau-good", nil, x509.ExtKeyUsageClientAuth, time.Now().Add(24*time.Hour))
		c := newTLSClient(t, rec.srv.Addr().String(), certs.ClientConfig("recorder.test", rec.ca.pool(), good))
		if err := c.Ready(); !errors.Is(err, recordings.ErrRecorderUnavailable) {
			t.Fatalf("Ready from a source not allowed = %v, want unavailable", err)
		}
		waitFor(t, "refused{source}", func() bool { return rec.refused(RefusedSource) > 0 })
		if got := counterValue(rec.metrics.tlsAccepted); got != 0 {
			t.Errorf("a source not allowed completed %v handshakes", got)
		}
		if n := rec.audit.count(AuditSourceNotAllowed); n != 1 {
			t.Errorf("audit entries for the source = %d, want 1", n)
		}
	})
}

// TestRefusalsRateLimit: every refusal counts; the audit chain gets one
// entry per source and reason per minute, then one that says how many
// were held back; the memory per source is bounded.
func TestRefusalsRateLimit(t *testing.T) {
	now := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	m, _ := NewMetrics(prometheus.NewRegistry())
	audit := &memAudit{}
	r := newRefusals(testLog(t), audit, m, func() time.Time { return now })
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	for i := 0; i < 100; i++ {
		r.refuse(a, RefusedSource, "INVITE", nil)
	}
	r.refuse(b, RefusedSource, "INVITE", nil)
	r.refuse(a, RefusedBadCert, "TLS handshake", nil)
	if n := audit.count(AuditSourceNotAllowed); n != 2 {
		t.Errorf("audit entries = %d, want one per source", n)
	}
	if n := audit.count(AuditTLSBadCert); n != 1 {
		t.Errorf("audit entries for another reason = %d, want 1", n)
	}
	now = now.Add(59 * time.Second)
	r.refuse(a, RefusedSource, "INVITE", nil)
	if n := audit.count(AuditSourceNotAllowed); n != 2 {
		t.Errorf("at 59 s: audit entries = %d, want still 2", n)
	}
	now = now.Add(time.Second)
	r.refuse(a, RefusedSource, "INVITE", nil)
	if n := audit.count(AuditSourceNotAllowed); n != 3 {
		t.Errorf("at 60 s: audit entries = %d, want 3", n)
	}
	if got := counterValue(m.refused.WithLabelValues(RefusedSource)); got != 103 {
		t.Errorf("refused{source} = %v, want 103 (every refusal counted)", got)
	}
	// A flood of forged UDP sources: memory stays bounded, all counted.
	for i := 0; i < 2*maxRefusalKeys; i++ {
		r.refuse(netip.AddrFrom4([4]byte{172, 16, byte(i >> 8), byte(i)}), RefusedSource, "OPTIONS", nil)
	}
	if len(r.seen) > maxRefusalKeys {
		t.Errorf("%d refusal keys kept, want at most %d", len(r.seen), maxRefusalKeys)
	}
	if got := counterValue(m.refused.WithLabelValues(RefusedSource)); got != 103+2*maxRefusalKeys {
		t.Errorf("refused{source} = %v after the flood", got)
	}
}

// TestGateSlowHandshake: a client that connects to the TLS port and says
// nothing holds up no other client.
func TestGateSlowHandshake(t *testing.T) {
	plateauCA := newTestCA(t, "plateau CA")
	rec := startTLSRecorder(t, plateauCA)
	for i := 0; i < 5; i++ {
		idle, err := net.Dial("tcp", rec.srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer idle.Close()
	}
	good := plateauCA.issue(t, "plateau-good", nil, x509.ExtKeyUsageClientAuth, time.Now().Add(24*time.Hour))
	c := newTLSClient(t, rec.srv.Addr().String(), certs.ClientConfig("recorder.test", rec.ca.pool(), good))
	if err := c.Ready(); err != nil {
		t.Fatalf("Ready with idle connections open: %v", err)
	}
}

func TestNewServerTLSAlone(t *testing.T) {
	pool, _ := media.NewPortPool(33000, 33010, 0, time.Now)
	ca := newTestCA(t, "ca")
	conf := recorderTLS(t, ca, ca)
	for _, tc := range []struct {
		transports []string
		conf       *tls.Config
	}{
		{[]string{"tls", "udp"}, conf},
		{[]string{"tcp", "tls"}, conf},
		{[]string{"tls"}, nil},
	} {
		_, err := NewServer(ServerOptions{Listen: "127.0.0.1:0", Transports: tc.transports, TLS: tc.conf,
			MediaIP: netip.MustParseAddr("127.0.0.1"), Ports: pool, Log: testLog(t)}, nil)
		if err == nil {
			t.Errorf("NewServer(%v, tls config %v) succeeded, want refused", tc.transports, tc.conf != nil)
		}
	}
}

func TestTLSRefusalClassification(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{errors.New("tls: client didn't provide a certificate"), RefusedNoCertificate},
		{&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, RefusedBadCert},
		{fmt.Errorf("wrapped: %w", x509.CertificateInvalidError{Reason: x509.Expired}), RefusedBadCert},
		{errors.New("tls: first record does not look like a TLS handshake"), RefusedHandshake},
		{context.DeadlineExceeded, RefusedHandshake},
	} {
		if got := tlsRefusal(tc.err); got != tc.want {
			t.Errorf("tlsRefusal(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}

func counterValue(c prometheus.Counter) float64 {
	var d dto.Metric
	if err := c.Write(&d); err != nil {
		panic(err)
	}
	return d.Counter.GetValue()
}
