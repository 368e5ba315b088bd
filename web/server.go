package web

import (
	"context"
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
	mux    *http.ServeMux
	log    *slog.Logger
	checks []Check
}

// New builds the server with the probes and /metrics; callers add API
// routes with Handle.
func New(gatherer prometheus.Gatherer, checks []Check, log *slog.Logger) *Server {
	s := &Server{mux: http.NewServeMux(), log: log, checks: checks}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	s.mux.HandleFunc("GET /readyz", s.ready)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	return s
}

// EnablePprof serves Go's profiler under /debug/pprof/ (config http.pprof;
// off by default: it exposes internals).
func (s *Server) EnablePprof() {
	s.mux.HandleFunc("/debug/pprof/", pprof.Index)
	s.mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	s.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	s.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
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

// Serve listens on addr until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("http listen %s: %w", addr, err)
	}
	hs := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	s.log.Info("http listening", "addr", l.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err = hs.Shutdown(sctx)
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	return err
}
