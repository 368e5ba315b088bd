package e2e

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"plateau/certs"
)

// Issue 17: the consoles and the API over HTTPS only, as an inmate on the
// LAN sees them: what the plain listener still answers, what it refuses,
// where it redirects, and which TLS it speaks.

var certLineRE = regexp.MustCompile(`msg="https certificate" .*sha256=([0-9A-F:]{95})`)

// servedFingerprint is the SHA-256 of the certificate the HTTPS listener
// presents, verified against roots.
func servedFingerprint(t *testing.T, addr string, roots *x509.CertPool) (string, error) {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return certs.Fingerprint(conn.ConnectionState().PeerCertificates[0].Raw), nil
}

// certDER is the first PEM certificate of certFile.
func certDER(t *testing.T, certFile string) []byte {
	t.Helper()
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", certFile)
	}
	return blk.Bytes
}

func fileFingerprint(t *testing.T, certFile string) string {
	t.Helper()
	return certs.Fingerprint(certDER(t, certFile))
}

// spkiPin is Chromium's --ignore-certificate-errors-spki-list value for
// certFile: base64 of the SHA-256 of its public key. Chromium then trusts
// that one key, not every certificate.
func spkiPin(t *testing.T, certFile string) string {
	t.Helper()
	c, err := x509.ParseCertificate(certDER(t, certFile))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// TestHTTPSConsoles: the self-signed certificate is made at the first
// start under data_dir, its fingerprint logged is the one served and the
// one of the file, and kept across a restart; the plain listener answers
// health, readiness and metrics, redirects a browser to the configured
// HTTPS host whatever Host it names, refuses a login sent in clear, and
// ignores a live session cookie; over HTTPS the session cookie is
// __Host- and Secure, with HSTS; TLS 1.1 is refused.
func TestHTTPSConsoles(t *testing.T) {
	p := startPlateau(t, serverOpts{users: []user{{opExt, opPass}}})
	const opWeb = "operator-web-pw-101"
	mustCmd(t, p, "user", "passwd", "--web-password", opWeb, opExt)
	certFile := filepath.Join(p.dataDir, "tls", "https.crt")
	fp := fileFingerprint(t, certFile)
	m := certLineRE.FindStringSubmatch(p.logs.String())
	if m == nil || m[1] != fp {
		t.Fatalf("the log's certificate fingerprint %v is not the file's %s:\n%s", m, fp, p.logs.String())
	}
	base, tr := p.web("")
	httpsAddr := strings.TrimPrefix(base, "https://")
	if got, err := servedFingerprint(t, httpsAddr, tr.TLSClientConfig.RootCAs); err != nil || got != fp {
		t.Fatalf("served %s (%v), want %s", got, err, fp)
	}
	plainBase := fmt.Sprintf("http://127.0.0.1:%d", p.httpPort)
	plain := &http.Client{Timeout: 30 * time.Second, CheckRedirect: noRedirect}

	t.Run("plain listener: operations only", func(t *testing.T) {
		for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
			res, err := plain.Get(plainBase + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || len(res.Cookies()) != 0 {
				t.Errorf("plain %s: %d cookies %v\n%s", path, res.StatusCode, res.Cookies(), body)
			}
			if path == "/metrics" && !strings.Contains(string(body), "plateau_http_tls_certificate_expiry_timestamp_seconds") {
				t.Errorf("/metrics lacks the certificate's expiry")
			}
		}
	})

	// An API login over HTTPS: the session an attacker would like to use
	// or replace from the plain side.
	api := &http.Client{Timeout: 30 * time.Second, Transport: tr, CheckRedirect: noRedirect}
	login := func(t *testing.T, c *http.Client, u string) *http.Response {
		t.Helper()
		res, err := c.Post(u+"/api/v1/session", "application/json", strings.NewReader(fmt.Sprintf(`{"username":%q,"password":%q}`, opExt, opWeb)))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	res := login(t, api, base)
	var session *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == "__Host-plateau_session" {
			session = c
		}
	}
	if res.StatusCode != 200 || session == nil || !session.Secure || !session.HttpOnly || session.Path != "/" || session.Domain != "" {
		t.Fatalf("HTTPS login: %d, session cookie %+v, want __Host-, Secure, HttpOnly, Path=/", res.StatusCode, session)
	}
	if got := res.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(got, "max-age=") || got == "max-age=0" {
		t.Errorf("HSTS = %q", got)
	}

	t.Run("plain listener: redirects to the configured host only", func(t *testing.T) {
		for _, path := range []string{"/", "/login?next=/operator", "/operator", "/api/v1/me", "//evil.example/login"} {
			req, _ := http.NewRequest("GET", plainBase+path, nil)
			req.Host = "evil.example"
			req.AddCookie(&http.Cookie{Name: "plateau_session", Value: session.Value})
			req.AddCookie(session)
			res, err := plain.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			loc, _ := url.Parse(res.Header.Get("Location"))
			if res.StatusCode != 301 || loc == nil || loc.Scheme != "https" || loc.Host != httpsAddr {
				t.Errorf("plain GET %s: %d to %q, want 301 to https://%s", path, res.StatusCode, res.Header.Get("Location"), httpsAddr)
			}
			if len(res.Cookies()) != 0 || strings.Contains(string(body), opExt) || strings.Contains(string(body), "csrf") {
				t.Errorf("plain GET %s with a live session: cookies %v, body %s", path, res.Cookies(), body)
			}
		}
	})

	t.Run("plain listener: no login in clear", func(t *testing.T) {
		res := login(t, plain, plainBase)
		if res.StatusCode != http.StatusForbidden || len(res.Cookies()) != 0 || res.Header.Get("Location") != "" {
			t.Errorf("API login over plain HTTP: %d cookies %v Location %q, want 403, none", res.StatusCode, res.Cookies(), res.Header.Get("Location"))
		}
		// The login form too, even with a valid login token from HTTPS.
		res, err := plain.PostForm(plainBase+"/login", url.Values{"username": {opExt}, "password": {opWeb}, "csrf": {"x"}})
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden || len(res.Cookies()) != 0 {
			t.Errorf("form login over plain HTTP: %d cookies %v", res.StatusCode, res.Cookies())
		}
		// Neither attempt reached the login: no web.login entry beyond the
		// HTTPS one.
		out := mustCmd(t, p, "audit", "list")
		if n := strings.Count(out, "web.login"); n != 1 {
			t.Errorf("%d web.login audit entries, want 1 (HTTPS only):\n%s", n, out)
		}
	})

	t.Run("TLS 1.1 refused", func(t *testing.T) {
		_, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", httpsAddr,
			&tls.Config{RootCAs: tr.TLSClientConfig.RootCAs, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
		if err == nil {
			t.Fatal("a TLS 1.1 handshake succeeded")
		}
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", httpsAddr,
			&tls.Config{RootCAs: tr.TLSClientConfig.RootCAs, ServerName: "127.0.0.1", MaxVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatalf("TLS 1.2: %v", err)
		}
		conn.Close()
	})

	// A restart keeps the certificate users pinned.
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	p.stopsItself = true
	q := p.restart(t)
	if got, err := servedFingerprint(t, httpsAddr, tr.TLSClientConfig.RootCAs); err != nil || got != fp {
		t.Fatalf("after a restart served %s (%v), want the same %s", got, err, fp)
	}
	if m := certLineRE.FindStringSubmatch(q.logs.String()); m == nil || m[1] != fp || !strings.Contains(q.logs.String(), "created=false") {
		t.Errorf("restart's certificate line: %v", m)
	}
}

// TestHTTPSCertificateRenewal: a renewed certificate is served without a
// restart, on SIGHUP and on a file change alone; a broken renewal keeps
// the certificate in service.
func TestHTTPSCertificateRenewal(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "https.crt"), filepath.Join(dir, "https.key")
	roots := x509.NewCertPool()
	write := func() string {
		c, k, err := certs.SelfSigned([]string{"127.0.0.1"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		// The key first, as renewal tools do not promise any order: the
		// watcher retries a half-written pair.
		if err := os.WriteFile(keyFile, k, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(certFile, c, 0o644); err != nil {
			t.Fatal(err)
		}
		roots.AppendCertsFromPEM(c)
		return fileFingerprint(t, certFile)
	}
	first := write()
	p := startPlateau(t, serverOpts{tlsYAML: fmt.Sprintf("cert_file: %q, key_file: %q", certFile, keyFile)})
	base, _ := p.web(certFile)
	addr := strings.TrimPrefix(base, "https://")
	served := func() string {
		fp, err := servedFingerprint(t, addr, roots)
		if err != nil {
			t.Fatal(err)
		}
		return fp
	}
	if got := served(); got != first {
		t.Fatalf("served %s, want %s", got, first)
	}

	second := write()
	p.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, "the SIGHUP renewal served", func() (bool, string) { got := served(); return got == second, got })

	// The files are looked at every 10 s: allow a loaded machine 60.
	third := write()
	for deadline := time.Now().Add(60 * time.Second); served() != third; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the file change is not served after 60 s:\n%s", p.logs.String())
		}
	}

	// A renewal whose key is not the certificate's: refused, the third
	// certificate stays in service, the server keeps running.
	c, _, err := certs.SelfSigned([]string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, c, 0o644); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, "the broken renewal logged", func() (bool, string) {
		for _, l := range strings.Split(p.logs.String(), "\n") {
			if strings.Contains(l, "SIGHUP: certificate not reloaded") && strings.Contains(l, "key=http.tls") {
				return true, ""
			}
		}
		return false, ""
	})
	if got := served(); got != third {
		t.Fatalf("after a broken renewal served %s, want %s still", got, third)
	}
	// Meanwhile check-config (and every command reading the config) names
	// the bad file; a good pair puts things right.
	if out, err := exec.Command(plateauBin, "check-config", "-c", p.cfg).CombinedOutput(); err == nil || !strings.Contains(string(out), "http.tls.key_file") {
		t.Errorf("check-config on a mismatched pair: %v\n%s", err, out)
	}
	write()
	out := mustCmd(t, p, "audit", "list", "--kind", "https.certificate")
	for _, w := range []string{"in_service", "renewed", "reload_failed"} {
		if !strings.Contains(out, w) {
			t.Errorf("audit lacks https.certificate %s:\n%s", w, out)
		}
	}
}
