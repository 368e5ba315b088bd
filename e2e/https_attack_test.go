package e2e

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
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
	refusals := func() int { return strings.Count(p.logs.String(), "SIGHUP: https certificate not reloaded") }

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
		}, "is a directory"},
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
