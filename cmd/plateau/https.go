package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"plateau/certs"
	"plateau/config"
	"plateau/sip"
	"plateau/web"
)

// enableHTTPS puts the consoles and the API on HTTPS when http.tls is set:
// the configured certificate, or a self-signed one created under data_dir
// on the first start and kept afterwards. Its fingerprint is logged (and
// audited) so users can check what their browser shows; reload keeps it
// current (renewals and failed reloads audited).
func enableHTTPS(cfg *config.Config, srv *web.Server, reg prometheus.Registerer, a sip.Auditor, log *slog.Logger, now time.Time, reload *certReloader) error {
	t := cfg.HTTP.TLS
	if t == nil {
		return nil
	}
	host := t.Host
	if host == "" {
		host, _, _ = net.SplitHostPort(t.Listen) // config: a specific address then
	}
	certFile, keyFile := cfg.Resolve(t.CertFile), cfg.Resolve(t.KeyFile)
	created := false
	if t.SelfSigned {
		var err error
		certFile, keyFile, created, err = certs.EnsureSelfSigned(cfg.HTTPSelfSignedDir(), "https", selfSignedHosts(host), now)
		if err != nil {
			return fmt.Errorf("http.tls.self_signed: %w", err)
		}
	}
	pair, err := certs.Load(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("http.tls: %w", err)
	}
	hostPort := web.HTTPSHost(host, t.Listen)
	if err := srv.EnableHTTPS(web.HTTPS{Addr: t.Listen, TLS: certs.ServerConfig(pair, nil), Host: hostPort, NotAfter: pair.NotAfter}, reg); err != nil {
		return err
	}
	leaf := pair.Certificate().Leaf
	if err := leaf.VerifyHostname(host); err != nil {
		log.Warn("the https certificate does not name http.tls.host: browsers will refuse it", "host", host, "err", err)
	}
	if now.After(leaf.NotAfter) {
		log.Warn("the https certificate has expired: browsers will refuse it", "not_after", leaf.NotAfter)
	}
	log.Info("https certificate", "url", "https://"+hostPort+"/", "sha256", pair.Fingerprint(), "file", certFile,
		"not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "self_signed", t.SelfSigned, "created", created)
	auditCert := func(ctx context.Context, outcome, reason string) {
		a.Audit(ctx, "https.certificate", "", pair.Fingerprint(), outcome, reason, "",
			map[string]any{"file": certFile, "not_after": pair.NotAfter().UTC().Format(time.RFC3339)})
	}
	reason := ""
	if created {
		reason = "self-signed, created"
	}
	auditCert(context.Background(), "in_service", reason)

	reload.add("http.tls", pair, auditCert)
	return nil
}

// selfSignedHosts: the name users type, and loopback for the machine itself.
func selfSignedHosts(host string) []string {
	hosts := []string{host}
	for _, h := range []string{"127.0.0.1", "::1", "localhost"} {
		if h != host {
			hosts = append(hosts, h)
		}
	}
	return hosts
}
