package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var now = time.Date(2026, 12, 5, 7, 30, 0, 0, time.UTC)

func writePair(t *testing.T, dir, name string, hosts ...string) (string, string) {
	t.Helper()
	c, k, err := SelfSigned(hosts, now)
	if err != nil {
		t.Fatal(err)
	}
	cf, kf := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(cf, c, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kf, k, 0o600); err != nil {
		t.Fatal(err)
	}
	return cf, kf
}

func TestLoadErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	cf, kf := writePair(t, dir, "a", "127.0.0.1")
	_, otherKey := writePair(t, dir, "b", "127.0.0.1")
	garbage := filepath.Join(dir, "garbage")
	os.WriteFile(garbage, []byte("hello"), 0o600)
	for _, tc := range []struct {
		name, cert, key, want string
	}{
		{"missing certificate", filepath.Join(dir, "none.crt"), kf, "certificate file"},
		{"missing key", cf, filepath.Join(dir, "none.key"), "key file"},
		{"certificate not PEM", garbage, kf, "certificate file " + garbage},
		{"key not PEM", cf, garbage, "key file " + garbage},
		{"key of another certificate", cf, otherKey, "does not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.cert, tc.key)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load error %v, want it to contain %q", err, tc.want)
			}
		})
	}
	if _, err := Load(cf, kf); err != nil {
		t.Fatalf("good pair: %v", err)
	}
}

func TestReloadKeepsTheCertificateInServiceOnError(t *testing.T) {
	dir := t.TempDir()
	cf, kf := writePair(t, dir, "a", "127.0.0.1")
	p, err := Load(cf, kf)
	if err != nil {
		t.Fatal(err)
	}
	before := p.Fingerprint()
	os.WriteFile(cf, []byte("half written"), 0o644)
	if err := p.Reload(); err == nil {
		t.Fatal("Reload of a broken file succeeded")
	}
	if p.Fingerprint() != before {
		t.Fatal("a failed reload replaced the certificate in service")
	}
	writePair(t, dir, "a", "127.0.0.1")
	if err := p.Reload(); err != nil {
		t.Fatal(err)
	}
	if p.Fingerprint() == before {
		t.Fatal("Reload kept the old certificate")
	}
}

func TestWatchPicksUpARenewal(t *testing.T) {
	dir := t.TempDir()
	cf, kf := writePair(t, dir, "a", "127.0.0.1")
	p, err := Load(cf, kf)
	if err != nil {
		t.Fatal(err)
	}
	before := p.Fingerprint()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Watch(ctx, 5*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil))); close(done) }()
	defer func() { cancel(); <-done }()
	// A different size or a later mtime marks the change; force the mtime
	// so a coarse file-system clock cannot hide it.
	writePair(t, dir, "a", "127.0.0.1", "plateau.example")
	later := time.Now().Add(time.Minute)
	os.Chtimes(cf, later, later)
	deadline := time.Now().Add(5 * time.Second)
	for p.Fingerprint() == before {
		if time.Now().After(deadline) {
			t.Fatal("Watch did not reload the renewed certificate")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestEnsureSelfSigned(t *testing.T) {
	dir := t.TempDir()
	cf, kf, created, err := EnsureSelfSigned(dir, "https", []string{"127.0.0.1", "localhost"}, now)
	if err != nil || !created {
		t.Fatalf("first call: created=%v err=%v", created, err)
	}
	if st, _ := os.Stat(kf); st.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v, want 0600", st.Mode().Perm())
	}
	p, err := Load(cf, kf)
	if err != nil {
		t.Fatal(err)
	}
	leaf := p.Certificate().Leaf
	if err := leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Errorf("IP SAN: %v", err)
	}
	if err := leaf.VerifyHostname("localhost"); err != nil {
		t.Errorf("DNS SAN: %v", err)
	}
	fp := p.Fingerprint()
	if _, _, created, err := EnsureSelfSigned(dir, "https", []string{"127.0.0.1"}, now); err != nil || created {
		t.Fatalf("second call: created=%v err=%v, want the existing pair kept", created, err)
	}
	if p2, _ := Load(cf, kf); p2.Fingerprint() != fp {
		t.Fatal("the existing pair was replaced")
	}
	os.Remove(kf)
	if _, _, _, err := EnsureSelfSigned(dir, "https", nil, now); err == nil || !strings.Contains(err.Error(), "one exists without the other") {
		t.Fatalf("certificate without key: %v", err)
	}
}

// serve accepts one TLS connection with cfg and reports its handshake error.
func serve(t *testing.T, cfg *tls.Config) (string, <-chan error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	errc := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		errc <- c.(*tls.Conn).Handshake()
	}()
	return ln.Addr().String(), errc
}

func TestMutualAuthentication(t *testing.T) {
	dir := t.TempDir()
	srv, _ := Load(writePair(t, dir, "server", "127.0.0.1"))
	cli, _ := Load(writePair(t, dir, "client", "recorder-client"))
	stranger, _ := Load(writePair(t, dir, "stranger", "recorder-client"))
	serverCAs := x509.NewCertPool()
	serverCAs.AddCert(srv.Certificate().Leaf)
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(cli.Certificate().Leaf)

	for _, tc := range []struct {
		name   string
		client *Pair
		roots  *x509.CertPool
		ok     bool
	}{
		{"trusted client", cli, serverCAs, true},
		{"no client certificate", nil, serverCAs, false},
		{"unknown client certificate", stranger, serverCAs, false},
		{"server not trusted by the client", cli, clientCAs, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, errc := serve(t, ServerConfig(srv, clientCAs))
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, ClientConfig("127.0.0.1", tc.roots, tc.client))
			if err == nil {
				// TLS 1.3 reports a refused client certificate on the first read.
				c.SetDeadline(time.Now().Add(5 * time.Second))
				_, err = c.Read(make([]byte, 1))
				if err == io.EOF {
					err = nil
				}
				c.Close()
			}
			serverErr := <-errc
			if tc.ok && (err != nil || serverErr != nil) {
				t.Fatalf("client %v, server %v; want a handshake", err, serverErr)
			}
			if !tc.ok && err == nil && serverErr == nil {
				t.Fatal("handshake succeeded, want it refused")
			}
		})
	}
}

func TestOldTLSRefused(t *testing.T) {
	dir := t.TempDir()
	srv, _ := Load(writePair(t, dir, "server", "127.0.0.1"))
	addr, errc := serve(t, ServerConfig(srv, nil))
	_, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11})
	if err == nil {
		t.Fatal("a TLS 1.1 client got a session")
	}
	<-errc
}

// TestKeyFileOpenToEveryUserRefused: a key any user of the host can read
// (or swap) is refused at load and at reload, naming the file and the fix;
// the certificate in service stays; owner and group modes load.
func TestKeyFileOpenToEveryUserRefused(t *testing.T) {
	dir := t.TempDir()
	cf, kf := writePair(t, dir, "a", "127.0.0.1")
	link := filepath.Join(dir, "live.key") // certbot's live/ symlinks
	if err := os.Symlink(kf, link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mode os.FileMode
		key  string
		ok   bool
	}{
		{0o600, kf, true},
		{0o640, kf, true},
		{0o400, kf, true},
		{0o644, kf, false},
		{0o604, kf, false},
		{0o602, kf, false},
		{0o666, kf, false},
		{0o644, link, false}, // the mode of what the link names
		{0o600, link, true},
	} {
		if err := os.Chmod(kf, tc.mode); err != nil {
			t.Fatal(err)
		}
		_, err := Load(cf, tc.key)
		if tc.ok != (err == nil) {
			t.Errorf("mode %04o via %s: Load error %v, want ok=%v", tc.mode, filepath.Base(tc.key), err, tc.ok)
		}
		if !tc.ok && (err == nil || !strings.Contains(err.Error(), tc.key) || !strings.Contains(err.Error(), "chmod o-rwx")) {
			t.Errorf("mode %04o: error %v, want it to name %s and the fix", tc.mode, err, tc.key)
		}
		if CheckKeyFile(tc.key) == nil != tc.ok {
			t.Errorf("mode %04o: CheckKeyFile disagrees with Load", tc.mode)
		}
	}
	os.Chmod(kf, 0o600)
	p, err := Load(cf, kf)
	if err != nil {
		t.Fatal(err)
	}
	before := p.Fingerprint()
	os.Chmod(kf, 0o644)
	if err := p.Reload(); err == nil {
		t.Fatal("Reload took a key every user can read")
	}
	if p.Fingerprint() != before || p.Certificate() == nil {
		t.Fatal("a refused reload left the server without its certificate")
	}
}

// TestLoadRefusesOddFiles: a FIFO, a device or a huge file where the
// certificate or key should be is refused at once, naming it (a FIFO
// would otherwise block the reload for ever, /dev/zero fill the memory).
func TestLoadRefusesOddFiles(t *testing.T) {
	dir := t.TempDir()
	cf, kf := writePair(t, dir, "a", "127.0.0.1")
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("no FIFO here:", err)
	}
	huge := filepath.Join(dir, "huge.crt")
	c, _ := os.ReadFile(cf)
	if err := os.WriteFile(huge, append(c, make([]byte, 2<<20)...), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, cert, key, want string }{
		{"FIFO certificate", fifo, kf, "not a regular file"},
		{"FIFO key", cf, fifo, "not a regular file"},
		{"device certificate", "/dev/zero", kf, "not a regular file"},
		{"huge certificate", huge, kf, "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { _, err := Load(tc.cert, tc.key); done <- err }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Load error %v, want %q", err, tc.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Load blocked on the file")
			}
		})
	}
}

// TestEnsureSelfSignedRefusesAnOpenDirectory: the pair is not made in a
// directory every user may write (any of them could swap it afterwards);
// the same with the sticky bit (like /tmp) is fine.
func TestEnsureSelfSignedRefusesAnOpenDirectory(t *testing.T) {
	for _, tc := range []struct {
		mode os.FileMode
		ok   bool
	}{{0o700, true}, {0o755, true}, {0o777, false}, {0o773, false}, {0o777 | os.ModeSticky, true}} {
		dir := filepath.Join(t.TempDir(), "tls")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, tc.mode); err != nil {
			t.Fatal(err)
		}
		_, _, created, err := EnsureSelfSigned(dir, "https", []string{"127.0.0.1"}, now)
		if tc.ok != (err == nil && created) {
			t.Errorf("directory mode %v: created=%v err=%v, want ok=%v", tc.mode, created, err, tc.ok)
		}
		if !tc.ok && (err == nil || !strings.Contains(err.Error(), "chmod o-w")) {
			t.Errorf("directory mode %v: error %v, want it to say chmod o-w", tc.mode, err)
		}
		if !tc.ok {
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("directory mode %v: files made anyway: %v", tc.mode, entries)
			}
		}
	}
}

// An existing pair in a directory opened to every user since: refused too.
func TestEnsureSelfSignedExistingPairInAnOpenDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	if _, _, _, err := EnsureSelfSigned(dir, "https", []string{"127.0.0.1"}, now); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o777)
	if _, _, _, err := EnsureSelfSigned(dir, "https", []string{"127.0.0.1"}, now); err == nil || !strings.Contains(err.Error(), "chmod o-w") {
		t.Fatalf("existing pair in a 0777 directory: %v", err)
	}
}
