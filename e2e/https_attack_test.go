package e2e

import (
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"plateau/certs"
)

// TestHTTPSHostileRenewals: the certificate files are renewed badly or
// maliciously (half-written, a key every user can read, a directory or a
// dangling link in their place) and SIGHUP asks for a reload each time:
// the running binary keeps serving the certificate in service, says why
// it did not reload, and serves a good renewal made by swapping the
// symlinks (certbot's live/ layout) afterwards.
func TestHTTPSHostileRenewals(t *testing.T) {
	dir := t.TempDir()
	archive, live := filepath.Join(dir, "archive"), filepath.Join(dir, "live")
	for _, d := range []string{archive, live} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	roots := x509.NewCertPool()
	// issue writes archive/NAME.crt and .key, returning its fingerprint.
	issue := func(name string) string {
		c, k, err := certs.SelfSigned([]string{"127.0.0.1"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(archive, name+".key"), k, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(archive, name+".crt"), c, 0o644); err != nil {
			t.Fatal(err)
		}
		roots.AppendCertsFromPEM(c)
		return fileFingerprint(t, filepath.Join(archive, name+".crt"))
	}
	certFile, keyFile := filepath.Join(live, "https.crt"), filepath.Join(live, "https.key")
	// link points live/ at archive/NAME (an atomic rename, as certbot).
	link := func(name string) {
		for _, ext := range []string{".crt", ".key"} {
			tmp := filepath.Join(live, "tmp"+ext)
			os.Remove(tmp)
			if err := os.Symlink(filepath.Join(archive, name+ext), tmp); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, filepath.Join(live, "https"+ext)); err != nil {
				t.Fatal(err)
			}
		}
	}
	first := issue("a")
	link("a")
	p := startPlateau(t, serverOpts{tlsYAML: fmt.Sprintf("cert_file: %q, key_file: %q", certFile, keyFile)})
	base, _ := p.web(certFile)
	addr := strings.TrimPrefix(base, "https://")
	served := func() string {
		fp, err := servedFingerprint(t, addr, roots)
		if err != nil {
			t.Fatalf("the HTTPS listener after a bad renewal: %v\n%s", err, p.logs.String())
		}
		return fp
	}
	if got := served(); got != first {
		t.Fatalf("served %s, want %s", got, first)
	}
	refusals := func() int { return strings.Count(p.logs.String(), "SIGHUP: certificate not reloaded") }

	for _, tc := range []struct {
		name  string
		spoil func()
		why   string // in the log line
	}{
		{"half-written certificate", func() {
			issue("b")
			c, _ := os.ReadFile(filepath.Join(archive, "b.crt"))
			os.WriteFile(filepath.Join(archive, "b.crt"), c[:len(c)/2], 0o644)
			link("b")
		}, "PEM data"},
		{"a key every user can read", func() {
			issue("c")
			os.Chmod(filepath.Join(archive, "c.key"), 0o644)
			link("c")
		}, "chmod o-rwx"},
		{"a directory for the certificate", func() {
			os.Chmod(filepath.Join(archive, "c.key"), 0o600)
			os.Remove(certFile)
			os.Mkdir(certFile, 0o700)
		}, "not a regular file"},
		{"dangling links", func() {
			os.Remove(certFile)
			os.Symlink(filepath.Join(archive, "gone.crt"), certFile)
			os.Remove(keyFile)
			os.Symlink(filepath.Join(archive, "gone.key"), keyFile)
		}, "no such file"},
	} {
		before := refusals()
		tc.spoil()
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatalf("%s: SIGHUP: %v", tc.name, err)
		}
		eventually(t, tc.name+": the refused reload logged", func() (bool, string) {
			return refusals() > before, fmt.Sprintf("%d refusals", refusals())
		})
		if !strings.Contains(p.logs.String(), tc.why) {
			t.Errorf("%s: the log does not say why (%q)", tc.name, tc.why)
		}
		if got := served(); got != first {
			t.Fatalf("%s: served %s, want the certificate in service %s", tc.name, got, first)
		}
	}

	// A good renewal by swapping the links.
	os.Remove(certFile) // the directory of the third case
	good := issue("d")
	link("d")
	p.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, "the good renewal served", func() (bool, string) { got := served(); return got == good, got })
}

// TestPlainListenerLeaksNoPeople: after calls (one answered, one refused)
// and failed logins, what the plain listener still serves to the whole LAN
// (/metrics, /readyz, /healthz) names no person and no number: no
// extension, dialled number, caller id or password in a label or a line.
// What it does show (trunk names and states, counts, Go's runtime) is
// the accepted part (docs/ARCHITECTURE.md, "What crosses the LAN").
func TestPlainListenerLeaksNoPeople(t *testing.T) {
	carrierPort := freePort(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}})
	carrier := startCarrier(t, carrierPort, "uas_answer.xml")
	op := startOperator(t, p, "uac_talk.xml", approved, "-d", "1000")
	op.mustSucceed(45 * time.Second)
	carrier.mustSucceed(15 * time.Second)
	startOperator(t, p, "uac_refused.xml", unapproved).mustSucceed(30 * time.Second)
	base, tr := p.web("")
	hc := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	for _, pass := range []string{"wrong-" + opPass, opPass + "x"} {
		res, err := hc.Post(base+"/api/v1/session", "application/json", strings.NewReader(fmt.Sprintf(`{"username":%q,"password":%q}`, opExt, pass)))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}

	secrets := []string{opExt, approved, unapproved, callerID, strings.TrimPrefix(approved, "+"), strings.TrimPrefix(unapproved, "+"), opPass}
	labelRE := regexp.MustCompile(`\{([^}]*)\}`)
	valueRE := regexp.MustCompile(`="((?:[^"\\]|\\.)*)"`)
	for _, path := range []string{"/metrics", "/readyz", "/healthz"} {
		res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", p.httpPort, path))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || len(body) == 0 {
			t.Fatalf("plain %s: %d", path, res.StatusCode)
		}
		for _, line := range strings.Split(string(body), "\n") {
			// Long numbers may appear as sample values (byte counts):
			// look at label values, and at /readyz's words.
			var texts []string
			if path == "/metrics" {
				for _, m := range labelRE.FindAllStringSubmatch(line, -1) {
					for _, v := range valueRE.FindAllStringSubmatch(m[1], -1) {
						texts = append(texts, v[1])
					}
				}
				if strings.HasPrefix(line, "#") {
					texts = append(texts, line)
				}
			} else {
				texts = strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == ':' || r == '(' || r == ')' || r == ',' })
			}
			for _, txt := range texts {
				for _, s := range secrets {
					if txt == s || strings.Contains(txt, s) && len(s) > 3 {
						t.Errorf("plain %s shows %q: %s", path, s, line)
					}
				}
			}
		}
	}
}
