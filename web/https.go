package web

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// HTTPS is how the consoles and the API are served over TLS (config
// http.tls). With it, plain HTTP keeps only /healthz, /readyz, /metrics
// (and pprof if enabled): on the workshop's LAN, passwords and session
// cookies must never cross in clear, and the plain listener must offer no
// way to log in or to plant a session.
type HTTPS struct {
	// Addr is the HTTPS listener's host:port.
	Addr string
	// TLS is certs.ServerConfig (the project's one TLS policy), whose
	// GetCertificate serves the reloadable certificate.
	TLS *tls.Config
	// Host is the name or address users type, with the port when it is
	// not 443: plain HTTP redirects to https://Host/<same path>. It comes
	// from the configuration, never from a request's Host header, so the
	// redirect cannot be pointed at another site.
	Host string
	// NotAfter, if set, is when the certificate in service expires
	// (exported as plateau_http_tls_certificate_expiry_timestamp_seconds).
	NotAfter func() time.Time
}

// hstsHeader: a year; browsers then refuse plain HTTP and certificate
// errors for the host. Not includeSubDomains: Plateau owns one host only.
const hstsHeader = "max-age=31536000"

type httpsState struct {
	addr, host, url string
	tls             *tls.Config
	errorLog        *log.Logger

	redirects, refused, plainCookies, handshakeFailures prometheus.Counter
	connsRefused                                        prometheus.Counter
	// Warnings about what came in clear, at most one a minute each: the
	// plain listener takes anyone's requests, the log must not flood.
	lastCookieWarn, lastRefusedWarn atomic.Int64 // unix seconds
}

// EnableHTTPS serves the consoles and the API over TLS only (see HTTPS);
// call it before Serve. Its metrics go on reg.
func (s *Server) EnableHTTPS(h HTTPS, reg prometheus.Registerer) error {
	if h.Addr == "" || h.TLS == nil || h.Host == "" {
		return errors.New("https: Addr, TLS and Host are required")
	}
	if h.TLS.MinVersion < tls.VersionTLS12 {
		return errors.New("https: the TLS configuration allows versions below 1.2: use certs.ServerConfig")
	}
	u := url.URL{Scheme: "https", Host: h.Host}
	if strings.ContainsAny(h.Host, "/?#@") || u.String() != "https://"+h.Host {
		return fmt.Errorf("https: %q is not host[:port]", h.Host)
	}
	st := &httpsState{addr: h.Addr, host: h.Host, url: u.String(), tls: h.TLS,
		redirects: prometheus.NewCounter(prometheus.CounterOpts{Name: "plateau_http_plain_redirects_total",
			Help: "Requests on the plain HTTP listener redirected to HTTPS."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "plateau_http_plain_refused_total",
			Help: "Requests other than GET/HEAD on the plain HTTP listener, refused (a login or form sent in clear)."}),
		plainCookies: prometheus.NewCounter(prometheus.CounterOpts{Name: "plateau_http_plain_session_cookies_total",
			Help: "Requests on the plain HTTP listener carrying a session cookie (ignored: a cookie seen in clear)."}),
		handshakeFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "plateau_http_tls_handshake_failures_total",
			Help: "TLS handshakes refused on the HTTPS listener (old versions or ciphers, untrusted certificates, scans)."}),
		connsRefused: prometheus.NewCounter(prometheus.CounterOpts{Name: "plateau_http_connections_refused_total",
			Help: "Connections closed at accept because their host already held the most allowed open (both listeners)."}),
	}
	cs := []prometheus.Collector{st.redirects, st.refused, st.plainCookies, st.handshakeFailures, st.connsRefused}
	if h.NotAfter != nil {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "plateau_http_tls_certificate_expiry_timestamp_seconds",
			Help: "When the HTTPS certificate in service expires (Unix time); alert well before."},
			func() float64 { return float64(h.NotAfter().Unix()) }))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("https metrics: %w", err)
		}
	}
	st.errorLog = log.New(&serverErrors{log: s.log, handshakes: st.handshakeFailures}, "", 0)
	s.https = st
	return nil
}

// secure marks every HTTPS answer with HSTS.
func (s *Server) secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", hstsHeader)
		h.ServeHTTP(w, r)
	})
}

// plain is the plain HTTP listener once HTTPS is on: the operations
// routes, and for everything else a redirect (GET, HEAD) or a refusal
// (other methods: a password posted in clear is not carried on to a
// login over HTTPS, where it would seem to have worked). It never reads
// a session, never sets a cookie, never serves a console page.
func (s *Server) plain() http.Handler {
	st := s.https
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := s.ops.Handler(r); pattern != "" {
			s.ops.ServeHTTP(w, r)
			return
		}
		if hasSessionCookie(r) {
			// Only its presence: the value is neither looked up nor logged.
			st.plainCookies.Inc()
			if everyMinute(&st.lastCookieWarn) {
				s.log.Warn("a session cookie came over plain HTTP: ignored; a browser sends it only to HTTPS, so a tool or an old cookie sent it in clear",
					"source", clientIP(r), "path", r.URL.Path)
			}
		}
		to := url.URL{Scheme: "https", Host: st.host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
		if !strings.HasPrefix(to.Path, "/") { // "*", an authority form: the home page
			to = url.URL{Scheme: "https", Host: st.host, Path: "/"}
		}
		target := to.String()
		w.Header().Set("Cache-Control", "no-store")
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			st.redirects.Inc()
			http.Redirect(w, r, target, http.StatusMovedPermanently)
			return
		}
		st.refused.Inc()
		if everyMinute(&st.lastRefusedWarn) {
			s.log.Warn("a request other than GET or HEAD came over plain HTTP (a login or a form sent in clear?): refused",
				"source", clientIP(r), "method", r.Method, "path", r.URL.Path)
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Connection", "close") // do not read a body sent in clear
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, "plain HTTP serves only /healthz, /readyz and /metrics; use %s\n", st.url)
	})
}

// serverErrors routes net/http's error log to slog: failed TLS handshakes
// (scans, TLS 1.1 clients, untrusted certificates) are counted and logged
// at debug level, anything else is a warning.
type serverErrors struct {
	log        *slog.Logger
	handshakes prometheus.Counter
}

func (e *serverErrors) Write(p []byte) (int, error) {
	msg := string(bytes.TrimSpace(p))
	if strings.Contains(msg, "TLS handshake error") {
		e.handshakes.Inc()
		e.log.Debug("https: handshake refused", "detail", msg)
		return len(p), nil
	}
	e.log.Warn("https server", "detail", msg)
	return len(p), nil
}

// HTTPSHost is the host[:port] of https URLs for host (a name or an IP
// address) and the HTTPS listener's addr: the port is left out when 443.
func HTTPSHost(host, addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "443" {
		return hostForURL(host)
	}
	return net.JoinHostPort(host, port)
}

func hostForURL(h string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}

// hasSessionCookie: r carries a session cookie under either name.
func hasSessionCookie(r *http.Request) bool {
	for _, c := range r.Cookies() {
		if c.Name == sessionCookie || c.Name == "__Host-"+sessionCookie {
			return true
		}
	}
	return false
}

// everyMinute is true at most once a minute for the same last.
func everyMinute(last *atomic.Int64) bool {
	now := time.Now().Unix()
	prev := last.Load()
	return now-prev >= 60 && last.CompareAndSwap(prev, now)
}
