package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// curlLineRE is a curl command of a ```sh block, with its comment.
var curlLineRE = regexp.MustCompile(`(?m)^(curl [^#\n]*?)\s*(?:#.*)?$`)

// TestDemoHTTPSDocCommands: `make run`'s configuration (configs/plateau.yaml,
// only its ports and directories moved) serves the consoles over HTTPS
// with a self-signed certificate created at the first start under
// data_dir, whose fingerprint is logged; the curl commands of README.md
// and docs/API.md, run as written from the demo directory, work: the
// certificate checked with --cacert (never -k), the plain port
// redirecting, an API login and a request with its cookie.
func TestDemoHTTPSDocCommands(t *testing.T) {
	need(t, "curl")
	d := newDemoDir(t, plateauBin)
	logs, done := d.background(t, nil, "serve")
	if err := waitFor(done, func() bool {
		res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", d.httpPort))
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	}); err != nil {
		t.Fatalf("plateau serve %v:\n%s", err, logs.String())
	}
	certFile := filepath.Join(d.dir, "data", "tls", "https.crt")
	if fi, err := os.Stat(filepath.Join(d.dir, "data", "tls", "https.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the self-signed key: %v %v", fi, err)
	}
	fp := fileFingerprint(t, certFile)
	if m := certLineRE.FindStringSubmatch(logs.String()); m == nil || m[1] != fp {
		t.Fatalf("the logged fingerprint %v is not the file's %s:\n%s", m, fp, logs.String())
	}
	if out, code := d.sh(t, "openssl x509 -in data/tls/https.crt -noout -fingerprint -sha256"); code != 0 || !strings.Contains(out, fp) {
		t.Errorf("the README's openssl fingerprint command: exit %d %s, want %s", code, out, fp)
	}

	var lines []string
	for _, doc := range []string{"README.md", "docs/API.md"} {
		b, err := os.ReadFile(filepath.Join(repoRoot, doc))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range curlLineRE.FindAllStringSubmatch(string(b), -1) {
			lines = append(lines, m[1])
		}
	}
	if len(lines) < 4 {
		t.Fatalf("README.md and docs/API.md have %d curl commands, want the HTTPS ones", len(lines))
	}
	// What each command must print, by the path it asks for.
	want := map[string]string{
		"/healthz":        "ok",
		"/login":          fmt.Sprintf("Location: https://127.0.0.1:%d/login", d.httpsPort),
		"/api/v1/session": `"csrf_token"`,
		"/api/v1/me":      `"extension": "301"`,
	}
	seen := map[string]bool{}
	for _, line := range lines {
		if strings.Contains(line, " -k") || strings.Contains(line, "--insecure") {
			t.Errorf("a documented curl skips the certificate check: %s", line)
		}
		cmd := strings.NewReplacer("127.0.0.1:8443", fmt.Sprintf("127.0.0.1:%d", d.httpsPort),
			"127.0.0.1:8080", fmt.Sprintf("127.0.0.1:%d", d.httpPort)).Replace(line)
		out, code := d.sh(t, cmd)
		if code != 0 {
			t.Errorf("%s: exit %d\n%s", line, code, out)
			continue
		}
		for path, w := range want {
			if strings.HasSuffix(strings.Fields(line)[len(strings.Fields(line))-1], path) {
				seen[path] = true
				if !strings.Contains(out, w) {
					t.Errorf("%s: output lacks %q\n%s", line, w, out)
				}
			}
		}
	}
	for path := range want {
		if !seen[path] {
			t.Errorf("no documented curl asks for %s", path)
		}
	}
}
