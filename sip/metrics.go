package sip

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests      *prometheus.CounterVec
	responses     *prometheus.CounterVec
	registrations prometheus.Gauge
	authFailures  prometheus.Counter
	bans          prometheus.Counter
	bannedSources prometheus.Gauge
	dropped       *prometheus.CounterVec

	accountBans    prometheus.Counter // bans of accounts (bans counts sources)
	bannedAccounts prometheus.Gauge
	// Front door (recover.go, server.go, transport_*.go).
	panics         *prometheus.CounterVec
	malformed      *prometheus.CounterVec
	stateless      *prometheus.CounterVec
	tcpConns       prometheus.Gauge
	tcpRefused     *prometheus.CounterVec
	tcpIdleClosed  prometheus.Counter
	tcpThrottled   prometheus.Counter
	acceptErrors   prometheus.Counter
	udpReadErrors  prometheus.Counter
	limitedSources prometheus.Gauge
	banUntracked   prometheus.Counter

	// SIP over TLS (transport_tls*.go).
	tlsConns             prometheus.Gauge
	tlsOutConns          prometheus.Gauge
	tlsHandshakeFailures *prometheus.CounterVec

	trunkUp         *prometheus.GaugeVec
	trunkRegistered *prometheus.GaugeVec // trunkreg.go

	ungatedInvites prometheus.Counter // transport_client.go
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plateau_sip_requests_total", Help: "SIP requests received, by method.",
		}, []string{"method"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plateau_sip_responses_total", Help: "SIP responses sent, by request method and status class.",
		}, []string{"method", "class"}),
		registrations: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "plateau_sip_registrations_active", Help: "Registered contacts (bindings) not yet expired.",
		}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "plateau_sip_auth_failures_total", Help: "Digest authentications that failed (wrong password or unknown user).",
		}),
		bans: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "plateau_sip_bans_total", Help: "Sources banned after repeated authentication failures.",
		}),
		bannedSources: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "plateau_sip_banned_sources", Help: "Sources currently banned.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plateau_sip_dropped_requests_total", Help: "SIP requests dropped without answer, by reason.",
		}, []string{"reason"}),
	}
	m.trunkUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "plateau_trunk_up", Help: "1 when the trunk answered its last OPTIONS keepalive.",
	}, []string{"trunk"})
	m.panics = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plateau_panics_total", Help: "Panics recovered (the process went on), by where they happened; each is logged and audited as process.panic.",
	}, []string{"where"})
	m.malformed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plateau_sip_malformed_requests_total", Help: "Requests refused before any handler (400, 416, 505), by what was wrong.",
	}, []string{"reason"})
	m.stateless = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plateau_sip_stateless_responses_total", Help: "UDP requests answered without a transaction (challenges, OPTIONS, refusals), by method.",
	}, []string{"method"})
	m.tcpConns = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "plateau_sip_tcp_connections", Help: "Accepted SIP TCP connections open.",
	})
	m.tcpRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plateau_sip_tcp_connections_refused_total", Help: "SIP TCP connections closed at accept, by the limit reached (total, per_source, banned; tls_rate: a TLS connection beyond its source's handshake pace).",
	}, []string{"limit"})
	m.tcpIdleClosed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "plateau_sip_tcp_idle_closed_total", Help: "SIP TCP connections closed after sip.limits.tcp_idle_timeout without traffic.",
	})
	m.tcpThrottled = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "plateau_sip_tcp_throttled_total", Help: "Times a SIP TCP connection's reads were slowed to its source's sip.limits.requests_per_source.",
	})
	m.acceptErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "plateau_sip_tcp_accept_errors_total", Help: "Errors accepting SIP TCP connections (retried with backoff).",
	})
	m.udpReadErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "plateau_sip_udp_read_errors_total", Help: "Errors reading the SIP UDP socket (retried with backoff).",
	})
	m.limitedSources = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "plateau_sip_rate_limited_sources", Help: "Sources whose requests are being dropped by sip.limits.requests_per_source.",
	})
	reg.MustRegister(m.panics, m.malformed, m.stateless, m.tcpConns, m.tcpRefused, m.tcpIdleClosed, m.tcpThrottled, m.acceptErrors, m.udpReadErrors, m.limitedSources)
	m.trunkRegistered = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "plateau_trunk_registered", Help: "1 while a registration trunk holds a registration with its carrier.",
	}, []string{"trunk"})
	reg.MustRegister(m.trunkRegistered)
	m.tlsConns = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "plateau_sip_tls_connections", Help: "Accepted SIP TLS connections open.",
	})
	m.tlsOutConns = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "plateau_sip_tls_outbound_connections", Help: "SIP TLS connections Plateau opened to carriers (verified), open.",
	})
	m.tlsHandshakeFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plateau_sip_tls_handshake_failures_total", Help: "SIP TLS connections refused, by direction (in: accepted, out: to a carrier or phone) and reason (certificate, timeout, not_tls, alert, connect, no_connection, other).",
	}, []string{"direction", "reason"})
	reg.MustRegister(m.tlsConns, m.tlsOutConns, m.tlsHandshakeFailures)
	reg.MustRegister(m.trunkUp)
	reg.MustRegister(m.requests, m.responses, m.registrations, m.authFailures, m.bans, m.bannedSources, m.dropped)
	m.accountBans = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "plateau_sip_account_bans_total", Help: "Accounts banned after repeated authentication failures (from any sources).",
	})
	m.bannedAccounts = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "plateau_sip_banned_accounts", Help: "Accounts currently banned.",
	})
	m.banUntracked = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "plateau_sip_ban_untracked_total", Help: "Authentication failures the ban list could not count: its maps were full of bans (a flood).",
	})
	reg.MustRegister(m.accountBans, m.bannedAccounts, m.banUntracked)
	m.ungatedInvites = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "plateau_sip_ungated_invites_total", Help: "New INVITEs refused at the transport because they did not come through the egress gate (a bug if ever non-zero; each is logged and audited).",
	})
	reg.MustRegister(m.ungatedInvites)
	return m
}

var statusClasses = [...]string{"", "1xx", "2xx", "3xx", "4xx", "5xx", "6xx"}

func statusClass(code int) string {
	if c := code / 100; c > 0 && c < len(statusClasses) {
		return statusClasses[c]
	}
	return strconv.Itoa(code)
}
