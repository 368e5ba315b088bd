package config

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"

	"plateau/certs"
)

// httpsHostRE is a DNS name (letters, digits, hyphens, dots).
var httpsHostRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)

// validateHTTPTLS checks http.tls: its listener, the host plain HTTP
// redirects to, and that the certificate files load as a pair, so that
// check-config catches a bad renewal before serve does.
func (c *Config) validateHTTPTLS() error {
	t := c.HTTP.TLS
	if t == nil {
		return nil
	}
	bad := func(key, format string, args ...any) error {
		return &FieldError{Key: key, Msg: fmt.Sprintf(format, args...)}
	}
	if err := checkHostPort(t.Listen); err != nil {
		return bad("http.tls.listen", "%v", err)
	}
	if sameListener(c.HTTP.Listen, t.Listen) {
		return bad("http.tls.listen", "%q is also http.listen: HTTPS needs a port of its own", t.Listen)
	}
	host, _, _ := net.SplitHostPort(t.Listen)
	if t.Host == "" {
		if a, err := netip.ParseAddr(host); host == "" || err == nil && a.IsUnspecified() {
			return bad("http.tls.host", "is required when http.tls.listen (%q) listens on every address: the name or address users type, where plain HTTP redirects", t.Listen)
		}
	} else if !httpsHostRE.MatchString(t.Host) {
		if _, err := netip.ParseAddr(t.Host); err != nil {
			return bad("http.tls.host", "%q is not a host name or an IP address (no scheme, no port)", t.Host)
		}
	}
	switch {
	case t.SelfSigned && (t.CertFile != "" || t.KeyFile != ""):
		return bad("http.tls.self_signed", "is set with cert_file/key_file: choose one")
	case t.SelfSigned:
		// Made at the first start; once there, it must still be a pair
		// (serve never replaces it).
		crt, key := filepath.Join(c.HTTPSelfSignedDir(), "https.crt"), filepath.Join(c.HTTPSelfSignedDir(), "https.key")
		_, cerr := os.Stat(crt)
		_, kerr := os.Stat(key)
		if cerr == nil || kerr == nil {
			if _, err := checkCertKeyFiles(crt, key); err != nil {
				return bad("http.tls.self_signed", "the certificate made at the first start is damaged (%v): restore %s and %s, or remove both to make a new one", err, crt, key)
			}
		}
		return nil
	case t.CertFile == "" && t.KeyFile == "":
		return bad("http.tls", "needs cert_file and key_file, or self_signed: true")
	case t.CertFile == "":
		return bad("http.tls.cert_file", "is required with http.tls.key_file")
	case t.KeyFile == "":
		return bad("http.tls.key_file", "is required with http.tls.cert_file")
	}
	if key, err := checkCertKeyFiles(c.Resolve(t.CertFile), c.Resolve(t.KeyFile)); err != nil {
		return bad("http.tls."+key, "%v", err)
	}
	return nil
}

// checkCertKeyFiles reads a PEM certificate and key and checks they are a
// pair. The key it returns is the one at fault: "cert_file" or "key_file".
func checkCertKeyFiles(certFile, keyFile string) (string, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return "cert_file", fmt.Errorf("cannot read: %v", err)
	}
	if !bytes.Contains(certPEM, []byte("-----BEGIN CERTIFICATE-----")) {
		return "cert_file", fmt.Errorf("%s has no PEM certificate in it", certFile)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return "key_file", fmt.Errorf("cannot read: %v", err)
	}
	if !bytes.Contains(keyPEM, []byte("PRIVATE KEY-----")) {
		return "key_file", fmt.Errorf("%s has no PEM private key in it", keyFile)
	}
	if err := certs.CheckKeyFile(keyFile); err != nil {
		return "key_file", err // serve would refuse it (certs.Load)
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return "key_file", fmt.Errorf("%s is not the key of %s: %v", keyFile, certFile, err)
	}
	return "", nil
}

// sameListener: two host:port that would bind the same port (equal, or
// one of them on every address).
func sameListener(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || pa != pb {
		return false
	}
	every := func(h string) bool {
		ip, err := netip.ParseAddr(h)
		return h == "" || err == nil && ip.IsUnspecified()
	}
	return ha == hb || every(ha) || every(hb)
}
