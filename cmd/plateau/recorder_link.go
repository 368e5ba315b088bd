package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"plateau/certs"
	"plateau/config"
	"plateau/recordings/siprec"
)

// newRemoteRecorder is the SIPREC client of recordings.remote. With
// transport tls it presents Plateau's client certificate (reloaded on
// SIGHUP or when its files change, by reload) and verifies the
// recorder's against ca_file for server_name.
func newRemoteRecorder(cfg *config.Config, reg prometheus.Registerer, log *slog.Logger, now func() time.Time, reload *certReloader) (*siprec.Client, error) {
	r := cfg.Recordings.Remote
	opts := siprec.ClientOptions{Address: r.Address, Transport: r.Transport, Timeout: r.Timeout.D(),
		Domain: cfg.SIP.Realm, Log: log, Now: now}
	if r.Transport == "tls" {
		roots, err := certs.LoadCAs(cfg.Resolve(r.CAFile))
		if err != nil {
			return nil, fmt.Errorf("recordings.remote.ca_file: %w", err)
		}
		pair, err := certs.Load(cfg.Resolve(r.CertFile), cfg.Resolve(r.KeyFile))
		if err != nil {
			return nil, fmt.Errorf("recordings.remote.cert_file: %w", err)
		}
		opts.TLS = certs.ClientConfig(r.ServerName, roots, pair)
		if err := siprec.RegisterCertExpiry(reg, "client", pair.NotAfter); err != nil {
			return nil, err
		}
		reload.add("recordings.remote.cert_file", pair, nil)
		log.Info("recorder link over TLS", "recorder", r.Address, "server_name", r.ServerName,
			"client_certificate", pair.Fingerprint(), "not_after", pair.NotAfter())
	}
	return siprec.NewClient(opts)
}

// recorderServerTLS is plateau recorder's TLS configuration: its
// certificate (kept current like the client's) and the client CA every
// Plateau node's certificate must chain to.
func recorderServerTLS(cfg *config.Config, reg prometheus.Registerer, log *slog.Logger, reload *certReloader) (*tls.Config, error) {
	t := cfg.Recorder.TLS
	pair, err := certs.Load(cfg.Resolve(t.CertFile), cfg.Resolve(t.KeyFile))
	if err != nil {
		return nil, fmt.Errorf("recorder.tls.cert_file: %w", err)
	}
	cas, err := certs.LoadCAs(cfg.Resolve(t.ClientCAFile))
	if err != nil {
		return nil, fmt.Errorf("recorder.tls.client_ca_file: %w", err)
	}
	if err := siprec.RegisterCertExpiry(reg, "recorder", pair.NotAfter); err != nil {
		return nil, err
	}
	reload.add("recorder.tls.cert_file", pair, nil)
	log.Info("recorder TLS certificate", "fingerprint", pair.Fingerprint(), "not_after", pair.NotAfter(),
		"client_ca_file", cfg.Resolve(t.ClientCAFile))
	return certs.ServerConfig(pair, cas), nil
}

// serveRecorderMetrics serves /metrics and /healthz on addr (recorder.
// metrics_listen) until ctx ends.
func serveRecorderMetrics(ctx context.Context, addr string, reg *prometheus.Registry, log *slog.Logger) (func() error, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("recorder.metrics_listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	log.Info("recorder metrics", "listen", l.Addr().String())
	return func() error {
		go func() {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
		}()
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("recorder.metrics_listen: %w", err)
		}
		return nil
	}, nil
}
