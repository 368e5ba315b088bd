// Package certs loads the TLS certificates Plateau serves and presents
// (HTTPS consoles, SIP over TLS, the recorder link), keeps them current
// when the files are renewed, and holds the one TLS policy of the project:
// TLS 1.2 or newer with AEAD ECDHE suites only.
package certs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// Pair is a certificate and its private key read from two PEM files. It
// serves the current certificate to TLS handshakes; Reload (on SIGHUP) and
// Watch (file change) replace it without a restart. A renewal that fails
// to load keeps the previous certificate in service.
type Pair struct {
	certFile, keyFile string

	mu    sync.RWMutex
	cert  *tls.Certificate
	stamp fileStamp
}

// fileStamp tells whether either file changed since the last load.
type fileStamp struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
}

// Load reads certFile and keyFile. Its errors name the file at fault.
func Load(certFile, keyFile string) (*Pair, error) {
	p := &Pair{certFile: certFile, keyFile: keyFile}
	if err := p.Reload(); err != nil {
		return nil, err
	}
	return p, nil
}

// Reload reads both files again and puts the new certificate in service.
// On error the certificate in service is kept.
func (p *Pair) Reload() error {
	stamp, err := statPair(p.certFile, p.keyFile)
	if err != nil {
		return err
	}
	cert, err := readPair(p.certFile, p.keyFile)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.cert, p.stamp = cert, stamp
	p.mu.Unlock()
	return nil
}

func readPair(certFile, keyFile string) (*tls.Certificate, error) {
	if err := CheckKeyFile(keyFile); err != nil {
		return nil, err
	}
	certPEM, err := readPEMFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("certificate file: %w", err)
	}
	keyPEM, err := readPEMFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if !bytes.Contains(certPEM, []byte("-----BEGIN CERTIFICATE-----")) {
		return nil, fmt.Errorf("certificate file %s: no PEM certificate in it", certFile)
	}
	if !bytes.Contains(keyPEM, []byte("PRIVATE KEY-----")) {
		return nil, fmt.Errorf("key file %s: no PEM private key in it", keyFile)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate %s with key %s: %w", certFile, keyFile, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("certificate file %s: %w", certFile, err)
	}
	cert.Leaf = leaf
	return &cert, nil
}

// maxPEMFile bounds what is read as a certificate chain or a key.
const maxPEMFile = 1 << 20

// readPEMFile reads a regular file of at most maxPEMFile bytes: a FIFO or
// a device put in a certificate's place (a renewal gone wrong, a swapped
// symlink) must neither block the reload for ever nor fill the memory.
func readPEMFile(path string) ([]byte, error) {
	// Stat before open: opening a FIFO blocks until someone writes it.
	if fi, err := os.Stat(path); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%v)", path, fi.Mode().Type())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPEMFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > maxPEMFile {
		return nil, fmt.Errorf("%s is larger than %d bytes: not a PEM certificate or key", path, maxPEMFile)
	}
	return b, nil
}

// CheckKeyFile refuses a private key file (or the file its symlink names)
// that every user of the host may read or write: whoever reads it can
// impersonate the server to the whole LAN, whoever writes it can swap it.
// Group access stays allowed (Debian's ssl-cert group, 0640).
func CheckKeyFile(keyFile string) error {
	fi, err := os.Stat(keyFile)
	if err != nil {
		return fmt.Errorf("key file: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o007 != 0 {
		return fmt.Errorf("key file %s: mode %04o lets every user of this host read or write it: chmod o-rwx %s (0600, or 0640 for a group)", keyFile, perm, keyFile)
	}
	return nil
}

func statPair(certFile, keyFile string) (fileStamp, error) {
	c, err := os.Stat(certFile)
	if err != nil {
		return fileStamp{}, fmt.Errorf("certificate file: %w", err)
	}
	k, err := os.Stat(keyFile)
	if err != nil {
		return fileStamp{}, fmt.Errorf("key file: %w", err)
	}
	return fileStamp{c.ModTime(), k.ModTime(), c.Size(), k.Size()}, nil
}

// Watch reloads the pair whenever either file changes (checked every
// interval) until ctx ends. Renewal tools write the two files one after
// the other: a half-written pair fails to load and is retried at the next
// tick, the old certificate staying in service meanwhile.
func (p *Pair) Watch(ctx context.Context, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		stamp, err := statPair(p.certFile, p.keyFile)
		p.mu.RLock()
		same := err == nil && stamp == p.stamp
		p.mu.RUnlock()
		if same {
			continue
		}
		if err == nil {
			err = p.Reload()
		}
		if err != nil {
			if err.Error() != lastErr {
				log.Warn("certificate not reloaded, the previous one stays in service", "cert", p.certFile, "err", err)
			}
			lastErr = err.Error()
			continue
		}
		lastErr = ""
		log.Info("certificate reloaded", "cert", p.certFile, "fingerprint", p.Fingerprint(), "not_after", p.NotAfter())
	}
}

// Certificate is the certificate in service.
func (p *Pair) Certificate() *tls.Certificate {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.cert
}

// Fingerprint is the SHA-256 of the certificate in service, as colon
// separated hex (what browsers and `openssl x509 -fingerprint -sha256` show).
func (p *Pair) Fingerprint() string {
	return Fingerprint(p.Certificate().Certificate[0])
}

// NotAfter is when the certificate in service expires.
func (p *Pair) NotAfter() time.Time { return p.Certificate().Leaf.NotAfter }

// Fingerprint formats the SHA-256 of a DER certificate as AB:CD:….
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	var b strings.Builder
	for i, c := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}

// ServerConfig is the TLS policy for what Plateau serves, presenting p's
// current certificate. With clientCAs set, clients must present a
// certificate signed by one of them (mutual authentication).
func ServerConfig(p *Pair, clientCAs *x509.CertPool) *tls.Config {
	c := baseConfig()
	c.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return p.Certificate(), nil }
	if clientCAs != nil {
		c.ClientCAs = clientCAs
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c
}

// ClientConfig is the TLS policy for connections Plateau opens: the
// server's certificate is verified against roots (the system's when nil)
// for serverName. client, if set, is presented for mutual authentication.
func ClientConfig(serverName string, roots *x509.CertPool, client *Pair) *tls.Config {
	c := baseConfig()
	c.ServerName = serverName
	c.RootCAs = roots
	if client != nil {
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return client.Certificate(), nil }
	}
	return c
}

func baseConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// TLS 1.3 suites are not configurable (all are AEAD); for 1.2 only
		// forward-secret AEAD suites.
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
	}
}

// LoadCAs reads a PEM bundle of CA certificates. Its errors name the file.
func LoadCAs(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate in it", file)
	}
	return pool, nil
}
