package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"plateau/audit"
	"plateau/b2bua"
	"plateau/config"
	"plateau/dialer"
	"plateau/media"
	"plateau/policy"
	"plateau/recordings"
	"plateau/sip"
	"plateau/store"
	"plateau/web"
)

func runServe(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "serve")
	path := configFlag(fs)
	jsonLogs := fs.Bool("log-json", false, "log as JSON (overrides log.format)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return fmt.Errorf("%s: %w", *path, err)
	}
	log := newLogger(e.stderr, cfg.Log, *jsonLogs)
	st, err := store.Open(ctx, cfg.DBPath())
	if err != nil {
		return err
	}
	defer st.Close()
	if n, err := bootstrapUsers(ctx, cfg, st, e.now()); err != nil {
		return err
	} else if n > 0 {
		log.Info("bootstrap users created", "count", n)
	}
	if err := os.MkdirAll(cfg.RecordingsDir(), 0o750); err != nil {
		return fmt.Errorf("recordings.dir: %w", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	auditor := &auditLog{chain: audit.New(st.DB(), e.now), log: log}
	reload := &certReloader{log: log.With("component", "certs")}
	sopts := sipOptions(cfg)
	if sopts.TLS, err = sipTLSOptions(cfg, reload); err != nil {
		return err
	}
	sipSrv, err := sip.NewServer(sopts, sipUsers{st}, sipBindings{st}, auditor, reg, log.With("component", "sip"), e.now)
	if err != nil {
		return err
	}
	defer sipSrv.Close()

	recMetrics, err := recordings.NewMetrics(reg)
	if err != nil {
		return err
	}
	recIndex, recLock, err := startRecordings(ctx, cfg, st, log.With("component", "recorder"), e.now)
	if err != nil {
		return err
	}
	defer recLock.Close()
	recIndex.UseLog(auditor.chain) // one write path with the audit entries
	recorder := recordings.NewManager(cfg.RecordingsDir(), cfg.Recordings.MinFreeMB, recIndex, auditor, log.With("component", "recorder"), e.now, recMetrics)
	retention := &recordings.Retention{Dir: cfg.RecordingsDir(), Index: recIndex, Days: cfg.Recordings.RetentionDays,
		Log: log.With("component", "retention"), Now: e.now}
	// recordings.remote: every recording goes to a remote recorder (SIPREC).
	var callRec b2bua.Recorder = callRecorder{recorder}
	var readyRec policy.Recorder = recorder
	if r := cfg.Recordings.Remote; r.Address != "" {
		rc, err := newRemoteRecorder(cfg, reg, log.With("component", "siprec"), e.now, reload)
		if err != nil {
			return fmt.Errorf("recordings.remote: %w", err)
		}
		defer rc.Close()
		callRec, readyRec = remoteRecorder{rc}, remoteRecorder{rc}
	}
	active := b2bua.NewActiveCalls()
	pcfg, err := policy.ConfigFrom(cfg)
	if err != nil {
		return err
	}
	engine, err := policy.New(pcfg, policy.Deps{
		Operators: operators{st}, Allowlist: st, DoNotCall: st, Calls: active, Recorder: readyRec,
	})
	if err != nil {
		return err
	}
	minPort, maxPort := cfg.Media.PortRange()
	pool, err := media.NewPortPool(minPort, maxPort, cfg.Media.PortDrain.D(), e.now)
	if err != nil {
		return fmt.Errorf("media.rtp_ports: %w", err)
	}
	mediaMetrics := media.NewMetrics(reg)
	pool.SetMetrics(mediaMetrics) // plateau_media_ports_in_use
	copts, err := callOptions(cfg, pool, mediaMetrics)
	if err != nil {
		return err
	}
	if err := applyTrunkTLS(cfg, &copts, reload); err != nil {
		return err
	}
	calls, err := b2bua.New(sipSrv, copts, policyAt(engine, e), engine, callRec, active, reg)
	if err != nil {
		return err
	}
	// Whisper must never reach a customer: prove it on real sockets before
	// taking calls (its own pool, no drain: no call's ports stay held).
	selfPool, err := media.NewPortPool(minPort, maxPort, 0, e.now)
	if err != nil {
		return fmt.Errorf("media.rtp_ports: %w", err)
	}
	err = media.SelfTestWhisper(ctx, selfPool, netip.MustParseAddr("127.0.0.1"), media.WithSelfTestLogger(log.With("component", "selftest")))
	auditSelfTest(ctx, auditor, err)
	if err != nil {
		return fmt.Errorf("monitoring self-test failed, not starting: %w", err)
	}
	if err := calls.EnableMonitoring(b2bua.MonitorOptions{
		FollowNextCall: cfg.Monitoring.FollowNextCall, Training: st, Registerer: reg,
	}); err != nil {
		return err
	}

	httpSrv := web.New(reg, []web.Check{
		{Name: "store", Fn: st.Ping},
		{Name: "sip", Fn: func(context.Context) error {
			if !sipSrv.Listening() {
				return errors.New("not listening")
			}
			if sipSrv.Draining() {
				return errors.New("draining")
			}
			return nil
		}},
		// Each trunk's keepalive state, for information: trunks down leave
		// the node ready (registrations, consoles and recordings still
		// work; plateau_trunk_up is what alerts).
		{Name: "trunks", Info: func(context.Context) []string {
			var lines []string
			for _, t := range sipSrv.TrunkStatus() {
				lines = append(lines, t.String())
			}
			return lines
		}},
	}, log.With("component", "http"))
	// The preview dialer; click-to-call goes through the SIP server.
	caller := &clickToCall{calls: calls}
	dialSvc, err := dialer.New(st, pcfg.Windows, cfg.Site.DefaultRegion, dialer.WithClock(e.now),
		dialer.WithLogger(log.With("component", "dialer")), dialer.WithCaller(caller.Call))
	if err != nil {
		return err
	}
	defer dialSvc.Close()
	caller.dialer = dialSvc

	loc, _ := time.LoadLocation(cfg.Site.Timezone) // checked by config.Load
	app, err := web.NewApp(web.Deps{Store: st, Audit: auditor.chain, Policy: engine, Location: loc, Now: e.now,
		Log: log.With("component", "web"), Recordings: recIndex, RecordingsDir: cfg.RecordingsDir(),
		Dialer: dialSvc, Calls: calls, Monitor: calls, TrainingCalls: cfg.Monitoring.TrainingCalls,
		Region: cfg.Site.DefaultRegion, Realm: cfg.SIP.Realm, SecureCookies: cfg.HTTP.TLS != nil})
	if err != nil {
		return err
	}
	httpSrv.Handle("/", app)

	// SIGTERM drains: new calls get 503, /readyz goes unready, calls in
	// progress may finish up to drain_timeout; then everything stops.
	ctx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	go func() {
		select {
		case <-ctx.Done():
			return
		case <-e.drain:
		}
		sipSrv.Drain()
		log.Info("draining: new calls refused", "calls", sipSrv.ActiveCalls(), "limit", cfg.SIP.DrainTimeout.D())
		deadline := time.NewTimer(cfg.SIP.DrainTimeout.D())
		defer deadline.Stop()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for sipSrv.ActiveCalls() > 0 {
			select {
			case <-ctx.Done():
				return
			case <-deadline.C:
				log.Warn("drain limit reached, ending calls", "calls", sipSrv.ActiveCalls())
				stopAll()
				return
			case <-tick.C:
			}
		}
		stopAll()
	}()

	if cfg.HTTP.Pprof {
		httpSrv.EnablePprof()
	}
	// http.tls: the consoles and the API over HTTPS only (https.go).
	if err := enableHTTPS(cfg, httpSrv, reg, auditor, log.With("component", "http"), e.now(), reload); err != nil {
		return err
	}
	keepCertificates := reload.catchSIGHUP()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return sipSrv.Serve(gctx) })
	g.Go(func() error { keepCertificates(gctx); return nil })
	g.Go(func() error { recorder.Run(gctx); return nil })
	g.Go(func() error { retention.Run(gctx); return nil })
	g.Go(func() error { return httpSrv.Serve(gctx, cfg.HTTP.Listen) })
	log.Info("plateau started", "site", cfg.Site.Name, "sip", cfg.SIP.Listen, "http", cfg.HTTP.Listen, "data", cfg.DataDir)
	err = g.Wait()
	log.Info("plateau stopped", "err", err)
	return err
}

// sipUsers gives the SIP server the narrow user lookup (store.SIPUser):
// it needs only the extension, role, HA1 values and status.
type sipUsers struct{ st *store.Store }

func (u sipUsers) User(ctx context.Context, ext string) (sip.Account, error) {
	su, err := u.st.SIPUser(ctx, ext)
	if errors.Is(err, store.ErrNotFound) {
		return sip.Account{}, sip.ErrUnknownAccount
	}
	if err != nil {
		return sip.Account{}, err
	}
	return sip.Account{Extension: su.Extension, DisplayName: su.DisplayName, Role: sip.Role(su.Role),
		HA1MD5: su.HA1MD5, HA1SHA256: su.HA1SHA256, Active: su.Status == store.StatusActive}, nil
}

// sipBindings keeps the registrar's bindings in the store (the two types
// have the same fields).
type sipBindings struct{ st *store.Store }

func (b sipBindings) SaveBindings(ctx context.Context, upserts, removals []sip.Binding) error {
	return b.st.SaveBindings(ctx, convertBindings[store.Binding](upserts), convertBindings[store.Binding](removals))
}

func (b sipBindings) Bindings(ctx context.Context, ext string, now time.Time) ([]sip.Binding, error) {
	bs, err := b.st.Bindings(ctx, ext, now)
	return convertBindings[sip.Binding](bs), err
}

func convertBindings[To, From sip.Binding | store.Binding](in []From) []To {
	if in == nil {
		return nil
	}
	out := make([]To, len(in))
	for i, b := range in {
		out[i] = To(b)
	}
	return out
}

func sipOptions(cfg *config.Config) sip.Options {
	return sip.Options{
		Listen:           cfg.SIP.Listen,
		Transports:       cfg.SIP.Transports,
		Realm:            cfg.SIP.Realm,
		ExternalAddress:  cfg.SIP.ExternalAddress,
		NonceTTL:         cfg.SIP.NonceTTL.D(),
		DigestAlgorithms: cfg.SIP.DigestAlgorithms,
		MinExpires:       cfg.SIP.MinExpires.D(),
		MaxExpires:       cfg.SIP.MaxExpires.D(),
		DefaultExpires:   cfg.SIP.DefaultExpires.D(),
		UDPBufferBytes:   cfg.SIP.UDPBufferBytes,
		BanMaxFailures:   cfg.Policy.Ban.MaxFailures,
		BanWindow:        cfg.Policy.Ban.Window.D(),
		BanDuration:      cfg.Policy.Ban.Duration.D(),
		PhoneNetworks:    phoneNetworks(cfg.SIP.PhoneNetworks),
		TrustedProxies:   cfg.SIP.TrustedProxyPrefixes(),
		// The front door's limits (sip/transport_*.go).
		RequestsPerSource: cfg.SIP.Limits.RequestsPerSource,
		TCP: sip.TCPLimits{
			MaxConnections:          cfg.SIP.Limits.TCPConnections,
			MaxConnectionsPerSource: cfg.SIP.Limits.TCPConnectionsPerSource,
			IdleTimeout:             cfg.SIP.Limits.TCPIdleTimeout.D(),
		},
		DigestURIServer: cfg.SIP.DigestURICheck == "server",
	}
}

// phoneNetworks parses sip.phone_networks (validated by config).
func phoneNetworks(cidrs []string) []netip.Prefix {
	var out []netip.Prefix
	for _, n := range cidrs {
		if p, err := netip.ParsePrefix(n); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// auditSelfTest records the whisper self-test's verdict: a start refused
// for a leak is a security event, and so is the proof that let one go on.
func auditSelfTest(ctx context.Context, a sip.Auditor, err error) {
	outcome, reason := "passed", ""
	switch {
	case errors.Is(err, media.ErrWhisperLeak):
		outcome, reason = "leak", err.Error()
	case err != nil:
		outcome, reason = "failed", err.Error()
	}
	a.Audit(ctx, "monitor.selftest", "", "whisper", outcome, reason, "", nil)
}
