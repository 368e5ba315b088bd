package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"plateau/certs"
	"plateau/config"
	"plateau/sip"
	"plateau/web"
)

// certCheckEvery is how often the HTTPS certificate files are looked at
// for a renewal (a stat of two files).
const certCheckEvery = 10 * time.Second

// enableHTTPS puts the consoles and the API on HTTPS when http.tls is set:
// the configured certificate, or a self-signed one created under data_dir
// on the first start and kept afterwards. Its fingerprint is logged (and
// audited) so users can check what their browser shows. The returned
// function keeps the certificate current until its context ends: reloaded
// on SIGHUP and when the files change, so a renewal needs no restart.
func enableHTTPS(cfg *config.Config, srv *web.Server, reg prometheus.Registerer, a sip.Auditor, log *slog.Logger, now time.Time) (func(context.Context), error) {
	t := cfg.HTTP.TLS
	if t == nil {
		return func(context.Context) {}, nil
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
			return nil, fmt.Errorf("http.tls.self_signed: %w", err)
		}
	}
	pair, err := certs.Load(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("http.tls: %w", err)
	}
	hostPort := web.HTTPSHost(host, t.Listen)
	if err := srv.EnableHTTPS(web.HTTPS{Addr: t.Listen, TLS: certs.ServerConfig(pair, nil), Host: hostPort, NotAfter: pair.NotAfter}, reg); err != nil {
		return nil, err
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

	// Subscribed now, before serving: a SIGHUP that arrived before the
	// loop runs must reload, not end the process (its default action).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return func(ctx context.Context) {
		defer signal.Stop(hup)
		watched := make(chan struct{})
		go func() { defer close(watched); pair.Watch(ctx, certCheckEvery, log) }()
		defer func() { <-watched }()
		tick := time.NewTicker(certCheckEvery)
		defer tick.Stop()
		last := pair.Fingerprint()
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := pair.Reload(); err != nil {
					log.Warn("SIGHUP: https certificate not reloaded, the previous one stays in service", "err", err)
					auditCert(ctx, "reload_failed", err.Error())
					continue
				}
				log.Info("SIGHUP: https certificate reloaded", "sha256", pair.Fingerprint(), "not_after", pair.NotAfter())
			case <-tick.C: // Watch reloads; this notices it for the audit log
			}
			if fp := pair.Fingerprint(); fp != last {
				last = fp
				auditCert(ctx, "renewed", "")
			}
		}
	}, nil
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
