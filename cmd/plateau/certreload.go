package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"plateau/certs"
)

// certWatchInterval is how often certificate files are looked at for a
// renewal (a stat of two files each); SIGHUP reloads at once.
const certWatchInterval = 10 * time.Second

// certReloader keeps every certificate a process serves or presents
// (http.tls, sip.tls, trunks' client certificates, the recorder link)
// current: reloaded on SIGHUP and when their files change, so a renewal
// needs no restart. A renewal that fails to load keeps the certificate in
// service.
type certReloader struct {
	log   *slog.Logger
	certs []reloadedCert
}

type reloadedCert struct {
	key  string // the config key, for the logs
	pair *certs.Pair
	// audit records a renewal or a failed reload; nil: logged only.
	audit func(ctx context.Context, outcome, reason string)
}

func (r *certReloader) add(key string, p *certs.Pair, audit func(ctx context.Context, outcome, reason string)) {
	r.certs = append(r.certs, reloadedCert{key: key, pair: p, audit: audit})
}

// catchSIGHUP subscribes to SIGHUP now — call it before serving, so a
// SIGHUP sent once the process is ready never meets the default action
// (ending it) — and returns the loop that keeps the certificates current
// until its context ends. Without certificates SIGHUP keeps its default.
func (r *certReloader) catchSIGHUP() func(context.Context) {
	if len(r.certs) == 0 {
		return func(context.Context) {}
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return func(ctx context.Context) {
		defer signal.Stop(hup)
		var wg sync.WaitGroup
		defer wg.Wait()
		last := make([]string, len(r.certs))
		for i, c := range r.certs {
			last[i] = c.pair.Fingerprint()
			wg.Add(1)
			go func() { defer wg.Done(); c.pair.Watch(ctx, certWatchInterval, r.log.With("key", c.key)) }()
		}
		tick := time.NewTicker(certWatchInterval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				for _, c := range r.certs {
					if err := c.pair.Reload(); err != nil {
						r.log.Warn("SIGHUP: certificate not reloaded, the previous one stays in service", "key", c.key, "err", err)
						if c.audit != nil {
							c.audit(ctx, "reload_failed", err.Error())
						}
						continue
					}
					r.log.Info("SIGHUP: certificate reloaded", "key", c.key, "sha256", c.pair.Fingerprint(), "not_after", c.pair.NotAfter())
				}
			case <-tick.C: // Watch reloads; this notices it for the audit log
			}
			for i, c := range r.certs {
				if fp := c.pair.Fingerprint(); fp != last[i] {
					last[i] = fp
					if c.audit != nil {
						c.audit(ctx, "renewed", "")
					}
				}
			}
		}
	}
}
