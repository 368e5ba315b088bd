package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"plateau/audit"
	"plateau/config"
	"plateau/media"
	"plateau/recordings"
	"plateau/recordings/siprec"
	"plateau/store"
)

// runRecorder is `plateau recorder -c FILE`: the recorder alone, on another
// host, taking recording sessions from plateau serve (or any SIPREC
// client) on recorder.listen. Recordings, index and audit chain are laid
// out as plateau serve's, so `plateau recordings verify -c FILE` works on
// the recorder host too.
func runRecorder(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "recorder")
	path := fs.String("c", "configs/recorder.yaml", "configuration file")
	jsonLogs := fs.Bool("log-json", false, "log as JSON (overrides log.format)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err == nil {
		err = cfg.ValidateRecorder()
	}
	if err != nil {
		return fmt.Errorf("%s: %w", *path, err)
	}
	log := newLogger(e.stderr, cfg.Log, *jsonLogs)
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	if err := os.MkdirAll(cfg.RecordingsDir(), 0o750); err != nil {
		return fmt.Errorf("recordings.dir: %w", err)
	}
	st, err := store.Open(ctx, cfg.DBPath())
	if err != nil {
		return err
	}
	defer st.Close()
	recLog := log.With("component", "recorder")
	idx, lock, err := startRecordings(ctx, cfg, st, recLog, e.now)
	if err != nil {
		return err
	}
	defer lock.Close()
	auditor := &auditLog{chain: audit.New(st.DB(), e.now), log: log}
	idx.UseLog(auditor.chain) // one write path with the audit entries
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	recMetrics, err := recordings.NewMetrics(reg)
	if err != nil {
		return err
	}
	linkMetrics, err := siprec.NewMetrics(reg)
	if err != nil {
		return err
	}
	mgr := recordings.NewManager(cfg.RecordingsDir(), cfg.Recordings.MinFreeMB, idx, auditor, recLog, e.now, recMetrics)
	retention := &recordings.Retention{Dir: cfg.RecordingsDir(), Index: idx, Days: cfg.Recordings.RetentionDays,
		Log: log.With("component", "retention"), Now: e.now}

	minPort, maxPort := cfg.Media.PortRange()
	pool, err := media.NewPortPool(minPort, maxPort, cfg.Media.PortDrain.D(), e.now)
	if err != nil {
		return fmt.Errorf("media.rtp_ports: %w", err)
	}
	var allowed []netip.Prefix
	for _, s := range cfg.Recorder.AllowedSources {
		p, _ := netip.ParsePrefix(s) // checked by config.Load
		allowed = append(allowed, p)
	}
	listen, listenKey := cfg.RecorderListen()
	opts := siprec.ServerOptions{
		Listen: listen, Transports: cfg.Recorder.Transports, MediaIP: netip.MustParseAddr(cfg.Media.IP),
		Ports: pool, RTPTimeout: cfg.Recorder.RTPTimeout.D(), AllowedSources: allowed,
		Audit: auditor, Metrics: linkMetrics, Log: log.With("component", "siprec"), Now: e.now,
	}
	reload := &certReloader{log: log.With("component", "certs")}
	if cfg.Recorder.TLS != nil {
		// TLS alone: plain udp/tcp stay closed (config.validateRecorderLink).
		if opts.TLS, err = recorderServerTLS(cfg, reg, log.With("component", "siprec"), reload); err != nil {
			return err
		}
		opts.Transports = []string{"tls"}
	}
	srv, err := siprec.NewServer(opts, mgr)
	if err != nil {
		return fmt.Errorf("%s: %w", listenKey, err)
	}
	var serveMetrics func() error
	if m := cfg.Recorder.MetricsListen; m != "" {
		if serveMetrics, err = serveRecorderMetrics(ctx, m, reg, log.With("component", "metrics")); err != nil {
			return err
		}
	}

	// SIGTERM or SIGINT: recordings in progress are closed (BYE to their
	// client, which ends those calls: they would go on unrecorded).
	go func() {
		select {
		case <-ctx.Done():
		case <-e.drain:
			stop()
		}
	}()
	keepCertificates := reload.catchSIGHUP()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { keepCertificates(gctx); return nil })
	g.Go(func() error { return srv.Serve(gctx) })
	g.Go(func() error { mgr.Run(gctx); return nil })
	g.Go(func() error { retention.Run(gctx); return nil })
	if serveMetrics != nil {
		g.Go(serveMetrics)
	}
	log.Info("plateau recorder started", "sip", srv.Addr().String(), "transports", opts.Transports,
		"recordings", cfg.RecordingsDir(), "min_free_mb", cfg.Recordings.MinFreeMB)
	err = g.Wait()
	log.Info("plateau recorder stopped", "err", err)
	return err
}
