package web

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check is one readiness condition; a non-nil error makes /readyz fail.
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
	// Info, when set, adds its lines to every /readyz answer without
	// deciding readiness (e.g. each trunk's state).
	Info func(ctx context.Context) []string
}

// Server is the HTTP server.
type Server struct {
	mux *http.ServeMux
	// ops holds the probes, /metrics and pprof: all that plain HTTP still
	// serves once HTTPS is on (https.go).
	ops    *http.ServeMux
	log    *slog.Logger
	checks []Check
	https  *httpsState // nil: everything over plain HTTP
}

// New builds the server with the probes and /metrics; callers add API
// routes with Handle.
func New(gatherer prometheus.Gatherer, checks []Check, log *slog.Logger) *Server {
	s := &Server{mux: http.NewServeMux(), ops: http.NewServeMux(), log: log, checks: checks}
	s.handleOps("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	}))
	s.handleOps("GET /readyz", http.HandlerFunc(s.ready))
	s.handleOps("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	return s
}

// handleOps serves an operations route on every listener.
func (s *Server) handleOps(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h)
	s.ops.Handle(pattern, h)
}

// EnablePprof serves Go's profiler under /debug/pprof/ (config http.pprof;
// off by default: it exposes internals).
func (s *Server) EnablePprof() {
	s.handleOps("/debug/pprof/", http.HandlerFunc(pprof.Index))
	s.handleOps("/debug/pprof/cmdline", http.HandlerFunc(pprof.Cmdline))
	s.handleOps("/debug/pprof/profile", http.HandlerFunc(pprof.Profile))
	s.handleOps("/debug/pprof/symbol", http.HandlerFunc(pprof.Symbol))
	s.handleOps("/debug/pprof/trace", http.HandlerFunc(pprof.Trace))
}

// Handle registers an extra route.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	failed := false
	for _, c := range s.checks {
		if c.Fn == nil {
			continue
		}
		if err := c.Fn(ctx); err != nil {
			if !failed {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			failed = true
			fmt.Fprintf(w, "%s: %v\n", c.Name, err)
		}
	}
	if !failed {
		fmt.Fprintln(w, "ready")
	}
	for _, c := range s.checks {
		if c.Info != nil {
			for _, l := range c.Info(ctx) {
				fmt.Fprintln(w, l)
			}
		}
	}
}

// Serve listens on addr until ctx ends, then shuts down gracefully. With
// HTTPS enabled (EnableHTTPS) addr serves only the operations routes and
// redirects the rest, and the HTTPS listener serves everything.
func (s *Server) Serve(ctx context.Context, addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("http listen %s: %w", addr, err)
	}
	if s.https == nil {
		s.log.Info("http listening", "addr", l.Addr().String())
		return s.run(ctx, l, s.mux, nil)
	}
	tl, err := net.Listen("tcp", s.https.addr)
	if err != nil {
		l.Close()
		return fmt.Errorf("https listen %s: %w", s.https.addr, err)
	}
	return s.serveBoth(ctx, l, tl)
}

// serveBoth serves the plain listener l and the HTTPS listener tl.
func (s *Server) serveBoth(ctx context.Context, l, tl net.Listener) error {
	s.log.Info("http listening: health, readiness and metrics only, the rest redirected", "addr", l.Addr().String(), "to", s.https.url)
	s.log.Info("https listening", "addr", tl.Addr().String(), "url", s.https.url)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Each host holds a bounded number of connections on either listener
	// (limit.go).
	l = limitPerSource(l, maxConnsPerSource, s.https.connsRefused, s.log)
	tl = limitPerSource(tl, maxConnsPerSource, s.https.connsRefused, s.log)
	errc := make(chan error, 2)
	go func() { errc <- s.run(ctx, l, s.plain(), nil) }()
	go func() { errc <- s.run(ctx, tl, s.secure(s.mux), s.https.tls) }()
	// The first to stop (an error, or ctx) stops the other.
	err := <-errc
	cancel()
	if e := <-errc; err == nil {
		err = e
	}
	return err
}

// run serves h on l (over TLS when cfg is set) until ctx ends.
func (s *Server) run(ctx context.Context, l net.Listener, h http.Handler, cfg *tls.Config) error {
	// IdleTimeout: a kept-alive connection left silent is closed (else it
	// is held for ever: ReadTimeout is 0 for the supervisor's live stream).
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, TLSConfig: cfg}
	if cfg != nil {
		hs.ErrorLog = s.https.errorLog
	}
	errc := make(chan error, 1)
	go func() {
		if cfg != nil {
			// The certificate comes from cfg.GetCertificate (reloadable);
			// ServeTLS adds HTTP/2.
			errc <- hs.ServeTLS(l, "", "")
			return
		}
		errc <- hs.Serve(l)
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := hs.Shutdown(sctx)
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	return err
}
