package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"plateau/certs"
)

// writeCertPair writes name.crt and name.key into dir.
func writeCertPair(t *testing.T, dir, name string) {
	t.Helper()
	c, k, err := certs.SelfSigned([]string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".crt"), c, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".key"), k, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestHTTPTLSValid(t *testing.T) {
	for _, tc := range []struct{ name, tls, listen, host string }{
		{"self-signed, defaults", `{self_signed: true}`, "127.0.0.1:8443", ""},
		{"files relative to the config", `{listen: "127.0.0.1:9443", cert_file: a.crt, key_file: a.key}`, "127.0.0.1:9443", ""},
		{"every address with a host", `{listen: "0.0.0.0:443", host: plateau.atelier.local, self_signed: true}`, "0.0.0.0:443", "plateau.atelier.local"},
		{"every address with an IP host", `{listen: ":443", host: 10.20.0.5, self_signed: true}`, ":443", "10.20.0.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := testDir(t)
			writeCertPair(t, dir, "a")
			y := strings.Replace(base, `http: {listen: "127.0.0.1:8080"}`, `http: {listen: "127.0.0.1:8080", tls: `+tc.tls+`}`, 1)
			c, err := Parse([]byte(y), dir)
			if err != nil {
				t.Fatal(err)
			}
			if c.HTTP.TLS == nil || c.HTTP.TLS.Listen != tc.listen || c.HTTP.TLS.Host != tc.host {
				t.Fatalf("http.tls = %+v", c.HTTP.TLS)
			}
			if c.HTTP.Listen != "127.0.0.1:8080" {
				t.Errorf("http.listen = %q", c.HTTP.Listen)
			}
		})
	}
	c, err := Parse([]byte(base), testDir(t))
	if err != nil || c.HTTP.TLS != nil {
		t.Fatalf("no http.tls: %+v %v", c.HTTP.TLS, err)
	}
}

// Every http.tls mistake names its key, and the certificate files are
// read at check-config time: missing, unreadable, not PEM, mismatched.
func TestHTTPTLSErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct{ name, tls, key, want string }{
		{"nothing to serve", `{}`, "http.tls", "cert_file and key_file, or self_signed"},
		{"both files and self-signed", `{self_signed: true, cert_file: a.crt, key_file: a.key}`, "http.tls.self_signed", "choose one"},
		{"key without certificate", `{key_file: a.key}`, "http.tls.cert_file", "required"},
		{"certificate without key", `{cert_file: a.crt}`, "http.tls.key_file", "required"},
		{"missing certificate", `{cert_file: none.crt, key_file: a.key}`, "http.tls.cert_file", "cannot read"},
		{"missing key", `{cert_file: a.crt, key_file: none.key}`, "http.tls.key_file", "cannot read"},
		{"unreadable key", `{cert_file: a.crt, key_file: locked.key}`, "http.tls.key_file", "cannot read"},
		{"certificate not PEM", `{cert_file: garbage, key_file: a.key}`, "http.tls.cert_file", "no PEM certificate"},
		{"key not PEM", `{cert_file: a.crt, key_file: garbage}`, "http.tls.key_file", "no PEM private key"},
		{"key of another certificate", `{cert_file: a.crt, key_file: b.key}`, "http.tls.key_file", "is not the key of"},
		{"key every user can read", `{cert_file: a.crt, key_file: open.key}`, "http.tls.key_file", "chmod o-rwx"},
		{"key given as the certificate", `{cert_file: a.key, key_file: a.key}`, "http.tls.cert_file", "no PEM certificate"},
		{"bad listen", `{listen: "web.example:8443", self_signed: true}`, "http.tls.listen", "IP address"},
		{"same port as http.listen", `{listen: "127.0.0.1:8080", self_signed: true}`, "http.tls.listen", "port of its own"},
		{"every address on http.listen's port", `{listen: "0.0.0.0:8080", host: a.example, self_signed: true}`, "http.tls.listen", "port of its own"},
		{"every address without a host", `{listen: "0.0.0.0:8443", self_signed: true}`, "http.tls.host", "required"},
		{"host with a scheme", `{host: "https://evil.example", self_signed: true}`, "http.tls.host", "not a host name"},
		{"host with a port", `{host: "plateau.local:8443", self_signed: true}`, "http.tls.host", "not a host name"},
		{"unknown key", `{self_signed: true, min_version: "1.0"}`, "http.tls.min_version", "unknown key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := testDir(t)
			writeCertPair(t, dir, "a")
			writeCertPair(t, dir, "b")
			os.WriteFile(filepath.Join(dir, "garbage"), []byte("hello"), 0o600)
			if k, err := os.ReadFile(filepath.Join(dir, "a.key")); err != nil || os.WriteFile(filepath.Join(dir, "open.key"), k, 0o644) != nil {
				t.Fatal("open.key", err)
			}
			os.Chmod(filepath.Join(dir, "open.key"), 0o644) // whatever the umask
			locked := filepath.Join(dir, "locked.key")
			os.WriteFile(locked, []byte("-----BEGIN PRIVATE KEY-----\n"), 0o000)
			if tc.name == "unreadable key" && os.Geteuid() == 0 {
				t.Skip("root reads any file")
			}
			y := strings.Replace(base, `http: {listen: "127.0.0.1:8080"}`, `http: {listen: "127.0.0.1:8080", tls: `+tc.tls+`}`, 1)
			_, err := Parse([]byte(y), dir)
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v, want a FieldError on %s", err, tc.key)
			}
			if fe.Key != tc.key || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want key %s and %q", err, tc.key, tc.want)
			}
		})
	}
}

// The self-signed pair, once made, is checked like configured files.
func TestHTTPTLSSelfSignedPairChecked(t *testing.T) {
	dir := testDir(t)
	data := filepath.Join(dir, "data")
	y := strings.Replace(base, `http: {listen: "127.0.0.1:8080"}`, `http: {listen: "127.0.0.1:8080", tls: {self_signed: true}}`, 1)
	y = strings.Replace(y, "data_dir: ./data", "data_dir: "+data, 1)
	if _, err := Parse([]byte(y), dir); err != nil {
		t.Fatalf("before the first start: %v", err)
	}
	tlsDir := filepath.Join(data, "tls")
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeCertPair(t, tlsDir, "https")
	if _, err := Parse([]byte(y), dir); err != nil {
		t.Fatalf("a good pair: %v", err)
	}
	os.Remove(filepath.Join(tlsDir, "https.key"))
	_, err := Parse([]byte(y), dir)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Key != "http.tls.self_signed" || !strings.Contains(err.Error(), "https.key") {
		t.Fatalf("a lost key: %v", err)
	}
}
