package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The locked-down link between plateau serve and plateau recorder (issue
// 17): SIPREC over TLS with certificates on both sides made by
// scripts/recorder-certs.sh (the README's way), SRTP on the recording
// streams, and a recorder that refuses sources and certificates it does
// not know, counting (its /metrics) and auditing (its audit chain) each.

// linkCerts runs scripts/recorder-certs.sh as the README says, for a
// recorder at 127.0.0.1 and one Plateau node.
func linkCerts(t *testing.T) string {
	t.Helper()
	need(t, "openssl")
	dir := t.TempDir()
	out, err := exec.Command(filepath.Join(repoRoot, "scripts", "recorder-certs.sh"), dir, "127.0.0.1", "node1").CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/recorder-certs.sh: %v\n%s", err, out)
	}
	return dir
}

// tlsRecorderKeys is the recorder section's TLS block, listening on the
// recorder's SIP port.
func tlsRecorderKeys(certDir string) func(int) string {
	return func(port int) string {
		return fmt.Sprintf(`tls: {listen: "127.0.0.1:%d", cert_file: %q, key_file: %q, client_ca_file: %q}`, port,
			filepath.Join(certDir, "recorder.crt"), filepath.Join(certDir, "recorder.key"), filepath.Join(certDir, "ca.crt"))
	}
}

// tlsRemoteKeys is plateau serve's recordings.remote over TLS with the
// node certificate from certDir and the recorder's CA from caDir.
func tlsRemoteKeys(certDir, caDir string) string {
	return fmt.Sprintf(`transport: tls, timeout: 1s, ca_file: %q, server_name: 127.0.0.1, cert_file: %q, key_file: %q`,
		filepath.Join(caDir, "ca.crt"), filepath.Join(certDir, "plateau-node1.crt"), filepath.Join(certDir, "plateau-node1.key"))
}

// metric reads one sample of the recorder's /metrics (name with its
// labels as exposed, e.g. plateau_recorder_refused_total{reason="source"}).
func (r *recorderProc) metric(name string) float64 {
	r.t.Helper()
	return scrapeMetric(r.t, fmt.Sprintf("http://127.0.0.1:%d/metrics", r.metricsPort), name)
}

// audit lists the recorder's audit entries of one kind.
func (r *recorderProc) audit(kind string) string {
	r.t.Helper()
	out, err := exec.Command(plateauBin, "audit", "list", "-c", r.cfg, "--kind", kind, "--limit", "100").CombinedOutput()
	if err != nil {
		r.t.Fatalf("plateau audit list on the recorder: %v\n%s", err, out)
	}
	return string(out)
}

// rtpPorts are the RTP ports the recorder answered with, from its log
// (rtp_ports="[30002 30004]"): the link's packets go there and nowhere
// else, whatever other tests send on loopback meanwhile.
func (r *recorderProc) rtpPorts() map[int]bool {
	r.t.Helper()
	ports := map[int]bool{}
	for _, m := range rtpPortsRE.FindAllStringSubmatch(r.logs.String(), -1) {
		for _, f := range strings.Fields(m[1]) {
			if n, err := strconv.Atoi(f); err == nil {
				ports[n] = true
			}
		}
	}
	if len(ports) == 0 {
		r.t.Fatalf("the recorder logged no rtp_ports:\n%s", tail(r.logs.String(), 2000))
	}
	return ports
}

var rtpPortsRE = regexp.MustCompile(`rtp_ports="?\[([0-9 ]*)\]`)

// linkLeaks compares the recorder link's packets (to the recorder's RTP
// ports) with the plain RTP of the call's legs captured at the same time:
// it returns how many link packets there were and how many carry an
// 8-byte run of some leg packet's payload (plaintext audio on the link).
func linkLeaks(pkts []capturedUDP, linkPorts map[int]bool) (link, leaks int) {
	isRTP := func(b []byte) bool { return len(b) > 12 && b[0]>>6 == 2 && (b[1]&0x7f == 0 || b[1]&0x7f == 8) }
	plain := map[uint64]struct{}{}
	for _, p := range pkts {
		if linkPorts[p.dstPort] || !isRTP(p.payload) {
			continue
		}
		pl := p.payload[12:]
		for off := 0; off+8 <= len(pl); off += 8 {
			plain[binary.BigEndian.Uint64(pl[off:])] = struct{}{}
		}
	}
	for _, p := range pkts {
		if !linkPorts[p.dstPort] || len(p.payload) <= 12 {
			continue
		}
		link++
		pl := p.payload[12:]
		for i := 0; i+8 <= len(pl); i++ {
			if _, ok := plain[binary.BigEndian.Uint64(pl[i:])]; ok {
				leaks++
				break
			}
		}
	}
	return link, leaks
}

// TestRecorderLinkTLS: a call recorded over the TLS link; the recording is
// whole on the recorder, the recorder counted a verified TLS client, and
// no packet on the link (captured on loopback) carries the call's audio
// in clear: the streams are SRTP. TestSIPRECRemoteRecorder is the
// capture's control (plain link: the audio is there).
func TestRecorderLinkTLS(t *testing.T) {
	certDir := linkCerts(t)
	rec := startRecorderWith(t, tlsRecorderKeys(certDir))
	carrierPort := freePort(t)
	p := startRemoteCallServerWith(t, rec, carrierPort, tlsRemoteKeys(certDir, certDir))
	capture := startUDPCapture(t)
	remoteRecordedCall(t, p, rec, carrierPort)
	capture.stop()

	// The script's certificates last 825 days; both sides expose when.
	soon := float64(time.Now().Add(800 * 24 * time.Hour).Unix())
	if v := rec.metric(`plateau_recorder_link_certificate_expiry_timestamp_seconds{side="recorder"}`); v < soon {
		t.Errorf("recorder certificate expiry = %v, want the certificate's (about 825 days ahead)", v)
	}
	if v := p.metric(`plateau_recorder_link_certificate_expiry_timestamp_seconds{side="client"}`); v < soon {
		t.Errorf("client certificate expiry on plateau serve = %v, want about 825 days ahead", v)
	}
	if v := rec.metric("plateau_recorder_tls_connections_total"); v < 1 {
		t.Errorf("plateau_recorder_tls_connections_total = %v, want the node's connection", v)
	}
	for _, reason := range []string{"source", "tls_no_certificate", "tls_bad_certificate"} {
		if v := rec.metric(`plateau_recorder_refused_total{reason="` + reason + `"}`); v != 0 {
			t.Errorf("refused{%s} = %v on a good link", reason, v)
		}
	}
	for _, reason := range []string{"auth", "replay", "malformed"} {
		if v := rec.metric(`plateau_recorder_srtp_dropped_total{reason="` + reason + `"}`); v != 0 {
			t.Errorf("srtp_dropped{%s} = %v on a good link", reason, v)
		}
	}
	if !strings.Contains(rec.logs.String(), "TLS client accepted") || !strings.Contains(rec.logs.String(), "CN=node1") {
		t.Errorf("the recorder did not log the client certificate's subject:\n%s", tail(rec.logs.String(), 2000))
	}
	if capture == nil {
		t.Skip("no packet capture here (logged above): the plaintext check needs it")
	}
	link, leaks := linkLeaks(capture.packets(), rec.rtpPorts())
	t.Logf("recorder link: %d packets captured, %d with plaintext audio", link, leaks)
	if link < 200 {
		t.Fatalf("only %d packets captured on the recorder link, want the call's (~2 x 300)", link)
	}
	if leaks != 0 {
		t.Errorf("%d of %d packets on the TLS recorder link carry plaintext audio: the streams must be SRTP", leaks, link)
	}
}

// TestRecorderRefusesCertificates: Plateau nodes whose certificate the
// recorder's client CA did not sign, or with none, cannot record: their
// calls are refused RECORDER_UNAVAILABLE, and the recorder counts and
// audits each refusal.
func TestRecorderRefusesCertificates(t *testing.T) {
	certDir := linkCerts(t)
	otherDir := linkCerts(t) // another CA, same names
	rec := startRecorderWith(t, tlsRecorderKeys(certDir))
	cases := []struct {
		name, remote, reason, audit string
	}{
		// The node's certificate from another CA (it trusts the recorder).
		{"another CA", tlsRemoteKeys(otherDir, certDir), "tls_bad_certificate", "TLS_BAD_CERTIFICATE"},
		// Plain TCP to the TLS port.
		{"plain tcp", "transport: tcp, timeout: 1s", "tls_handshake", "TLS_HANDSHAKE_FAILED"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := startRemoteCallServerWith(t, rec, freePort(t), tc.remote)
			refusedCall(t, p)
			eventually(t, "refused{"+tc.reason+"} counted", func() (bool, string) {
				v := rec.metric(`plateau_recorder_refused_total{reason="` + tc.reason + `"}`)
				return v >= 1, fmt.Sprint(v)
			})
			if a := rec.audit("recorder.refused"); !strings.Contains(a, tc.audit) || !strings.Contains(a, "127.0.0.1") {
				t.Errorf("the recorder's audit has no %s refusal of 127.0.0.1:\n%s", tc.audit, a)
			}
		})
	}
	if files := rec.files(); len(files[".wav"]) != 0 {
		t.Errorf("refused nodes recorded: %v", files)
	}
	if out, err := exec.Command(plateauBin, "audit", "verify", "-c", rec.cfg).CombinedOutput(); err != nil || !strings.Contains(string(out), "audit chain ok") {
		t.Errorf("plateau audit verify on the recorder: %v\n%s", err, out)
	}
}

// TestRecorderRefusesSource: a recorder whose allowed_sources leave out
// the node refuses its sessions (403 over UDP), counted and audited, and
// the node refuses its calls.
func TestRecorderRefusesSource(t *testing.T) {
	rec := startRecorderWith(t, func(int) string { return "allowed_sources: [10.99.0.0/16]" })
	p := startRemoteCallServer(t, rec, freePort(t))
	refusedCall(t, p)
	eventually(t, "refused{source} counted", func() (bool, string) {
		v := rec.metric(`plateau_recorder_refused_total{reason="source"}`)
		return v >= 1, fmt.Sprint(v)
	})
	if a := rec.audit("recorder.refused"); !strings.Contains(a, "SOURCE_NOT_ALLOWED") || !strings.Contains(a, "127.0.0.1") {
		t.Errorf("the recorder's audit has no SOURCE_NOT_ALLOWED refusal of 127.0.0.1:\n%s", a)
	}
	if !strings.Contains(rec.logs.String(), "recorder refused a client") {
		t.Errorf("the recorder did not log the refusal")
	}
}

// TestRecorderRefusesToStartOpen: plateau recorder (and check-config on
// its file) will not listen beyond loopback with no allowed sources, nor in
// clear (allowed_sources alone: a UDP source and the RTP are forged at
// will on the LAN).
func TestRecorderRefusesToStartOpen(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, listen, extra, key string }{
		{"any", "0.0.0.0", "", "recorder.allowed_sources"},
		{"lan", "192.0.2.10", "", "recorder.allowed_sources"},
		{"plain-sources", "0.0.0.0", ", allowed_sources: [192.0.2.0/24]", "recorder.tls"},
		{"plain-tcp-sources", "192.0.2.10", ", transports: [tcp], allowed_sources: [192.0.2.11/32]", "recorder.tls"},
	} {
		cfg := filepath.Join(dir, tc.name+".yaml")
		doc := fmt.Sprintf(`site: {name: open recorder, timezone: Europe/Paris}
recorder: {listen: "%s:%d"%s}
media: {ip: 127.0.0.1, rtp_ports: "40000-40019"}
data_dir: %q
recordings: {notice_prompt: %q}
`, tc.listen, freePort(t), tc.extra, filepath.Join(dir, "data-"+tc.name), filepath.Join(repoRoot, "configs", "prompts", "notice-fr.wav"))
		if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"recorder", "-c", cfg}, {"check-config", "-c", cfg}} {
			// Bounded: a recorder that wrongly starts would otherwise run
			// (and hang the test) until the package's timeout.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			cmd := exec.CommandContext(ctx, plateauBin, args...)
			out, err := cmd.CombinedOutput()
			cancel()
			code := cmd.ProcessState.ExitCode()
			if err == nil || code != 2 || !strings.Contains(string(out), tc.key) {
				t.Errorf("plateau %s (%s): exit %d, %s; want exit 2 naming %s", args[0], tc.name, code, out, tc.key)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "data-"+tc.name)); err == nil {
			t.Errorf("plateau recorder (%s) created its data directory before refusing to start", tc.name)
		}
	}
}

// TestRecorderCertReload: a renewed recorder certificate is served after
// SIGHUP without a restart (the renewal the README describes: delete the
// pair, run the script again).
func TestRecorderCertReload(t *testing.T) {
	certDir := linkCerts(t)
	rec := startRecorderWith(t, tlsRecorderKeys(certDir))
	served := func() string {
		t.Helper()
		client, err := tls.LoadX509KeyPair(filepath.Join(certDir, "plateau-node1.crt"), filepath.Join(certDir, "plateau-node1.key"))
		if err != nil {
			t.Fatal(err)
		}
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", fmt.Sprintf("127.0.0.1:%d", rec.sipPort),
			&tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{client}}) // the fingerprint is what is checked
		if err != nil {
			t.Fatalf("TLS to the recorder: %v", err)
		}
		defer conn.Close()
		return fmt.Sprintf("%x", sha256.Sum256(conn.ConnectionState().PeerCertificates[0].Raw))
	}
	before := served()
	for _, f := range []string{"recorder.crt", "recorder.key"} {
		os.Remove(filepath.Join(certDir, f))
	}
	if out, err := exec.Command(filepath.Join(repoRoot, "scripts", "recorder-certs.sh"), certDir, "127.0.0.1").CombinedOutput(); err != nil {
		t.Fatalf("renewal: %v\n%s", err, out)
	}
	rec.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, "the renewed certificate served", func() (bool, string) {
		return served() != before, "still " + before
	})
	// The new certificate is in service a moment before the line is written.
	eventually(t, "the recorder logged the reload", func() (bool, string) {
		return strings.Contains(rec.logs.String(), "SIGHUP: certificate reloaded"), "no line"
	})
}
