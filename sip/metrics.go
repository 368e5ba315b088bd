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
	acceptErrors   prometheus.Counter
	udpReadErrors  prometheus.Counter
	limitedSources prometheus.Gauge
	banUntracked   prometheus.Counter

	callsActive      prometheus.Gauge
	callsAnswered    prometheus.Counter
	callsRefused     *prometheus.CounterVec
	callsEnded       *prometheus.CounterVec
	requestsInDialog *prometheus.CounterVec
	trunkUp          *prometheus.GaugeVec
	legsLeaked       prometheus.Counter
	egressRefused    prometheus.Counter
	inDialogRejected *prometheus.CounterVec
	trunkLegEvents   *prometheus.CounterVec // trunkleg.go
	trunkRegistered  *prometheus.GaugeVec   // trunkreg.go
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
	m.callsActive = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "plateau_calls_active", Help: "Calls in progress (from admission to hang-up).",
	})
	m.callsAnswered = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "plateau_calls_answered_total", Help: "Calls answered by the outside party and bridged.",
	})
	m.callsRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plateau_calls_refused_total", Help: "Call attempts refused, by reason code.",
	}, []string{"reason"})
	m.callsEnded = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plateau_calls_ended_total", Help: "Calls ended, by why.",
	}, []string{"why"})
	m.requestsInDialog = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plateau_sip_in_dialog_requests_total", Help: "In-dialog requests handled, by method.",
	}, []string{"method"})
	m.trunkUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "plateau_trunk_up", Help: "1 when the trunk answered its last OPTIONS keepalive.",
	}, []string{"trunk"})
	m.legsLeaked = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "plateau_call_legs_leaked_total", Help: "Outside legs still up when their call ended (BYE failed or never sent); audited as call.leg_leaked.",
	})
	m.egressRefused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "plateau_egress_refused_total", Help: "Requests the egress gate refused to send (no policy permit, or an address not allowed for phones).",
	})
	m.inDialogRejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plateau_sip_in_dialog_rejected_total", Help: "In-dialog requests answered 481, by why: unknown_dialog, tags, source (not the dialog's peer).",
	}, []string{"reason"})
	reg.MustRegister(m.legsLeaked, m.egressRefused, m.inDialogRejected)
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
		Name: "plateau_sip_tcp_connections_refused_total", Help: "SIP TCP connections closed at accept, by the limit reached (total, per_source).",
	}, []string{"limit"})
	m.tcpIdleClosed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "plateau_sip_tcp_idle_closed_total", Help: "SIP TCP connections closed after sip.limits.tcp_idle_timeout without traffic.",
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
	reg.MustRegister(m.panics, m.malformed, m.stateless, m.tcpConns, m.tcpRefused, m.tcpIdleClosed, m.acceptErrors, m.udpReadErrors, m.limitedSources)
	m.trunkLegEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plateau_trunk_leg_events_total", Help: "What trunk INVITEs did: prack, cancel, late_answer, auth_retry, extension_retry.",
	}, []string{"event"})
	m.trunkRegistered = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "plateau_trunk_registered", Help: "1 while a registration trunk holds a registration with its carrier.",
	}, []string{"trunk"})
	reg.MustRegister(m.trunkLegEvents, m.trunkRegistered)
	reg.MustRegister(m.callsActive, m.callsAnswered, m.callsRefused, m.callsEnded, m.requestsInDialog, m.trunkUp)
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
	return m
}

var statusClasses = [...]string{"", "1xx", "2xx", "3xx", "4xx", "5xx", "6xx"}

func statusClass(code int) string {
	if c := code / 100; c > 0 && c < len(statusClasses) {
		return statusClasses[c]
	}
	return strconv.Itoa(code)
}
