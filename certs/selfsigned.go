package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// SelfSignedValidity is how long a generated certificate lasts.
const SelfSignedValidity = 825 * 24 * time.Hour

// EnsureSelfSigned returns dir/name.crt and dir/name.key, creating a
// self-signed ECDSA P-256 certificate for hosts (IP addresses or DNS
// names) when neither file exists. An existing pair is never overwritten,
// so its fingerprint stays what users pinned; one file without the other
// is an error rather than a silent replacement.
func EnsureSelfSigned(dir, name string, hosts []string, now time.Time) (certFile, keyFile string, created bool, err error) {
	certFile = filepath.Join(dir, name+".crt")
	keyFile = filepath.Join(dir, name+".key")
	if err := checkDir(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", "", false, err
	}
	_, cerr := os.Stat(certFile)
	_, kerr := os.Stat(keyFile)
	switch {
	case cerr == nil && kerr == nil:
		return certFile, keyFile, false, nil
	case cerr == nil || kerr == nil:
		return "", "", false, fmt.Errorf("%s and %s: one exists without the other; remove it or restore its pair", certFile, keyFile)
	case !errors.Is(cerr, fs.ErrNotExist):
		return "", "", false, fmt.Errorf("certificate file: %w", cerr)
	case !errors.Is(kerr, fs.ErrNotExist):
		return "", "", false, fmt.Errorf("key file: %w", kerr)
	}
	certPEM, keyPEM, err := SelfSigned(hosts, now)
	if err != nil {
		return "", "", false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", false, err
	}
	if err := checkDir(dir); err != nil {
		return "", "", false, err
	}
	// The key first, private from its first byte; the certificate last,
	// so a crash in between leaves a pair that reports itself incomplete.
	if err := writeNew(keyFile, keyPEM, 0o600); err != nil {
		return "", "", false, err
	}
	if err := writeNew(certFile, certPEM, 0o644); err != nil {
		return "", "", false, err
	}
	return certFile, keyFile, true, nil
}

// checkDir refuses a directory every user may write: any of them could
// swap the pair (remove and recreate: the files' own modes do not stop it).
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if m := fi.Mode(); m.Perm()&0o002 != 0 && m&os.ModeSticky == 0 {
		return fmt.Errorf("%s: mode %04o lets every user of this host replace the certificate: chmod o-w %s", dir, m.Perm(), dir)
	}
	return nil
}

func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

// SelfSigned makes a PEM certificate and PKCS#8 key for hosts, valid from
// an hour before now for SelfSignedValidity. It can sign others (tests
// use it as a small CA).
func SelfSigned(hosts []string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	cn := "plateau"
	if len(hosts) > 0 {
		cn = hosts[0]
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Plateau (self-signed)"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(SelfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}
