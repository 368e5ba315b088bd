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

	callsActive      prometheus.Gauge
	callsAnswered    prometheus.Counter
	callsRefused     *prometheus.CounterVec
	callsEnded       *prometheus.CounterVec
	requestsInDialog *prometheus.CounterVec
	trunkUp          *prometheus.GaugeVec
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
	m.trunkLegEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plateau_trunk_leg_events_total", Help: "What trunk INVITEs did: prack, cancel, late_answer, auth_retry, extension_retry.",
	}, []string{"event"})
	m.trunkRegistered = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "plateau_trunk_registered", Help: "1 while a registration trunk holds a registration with its carrier.",
	}, []string{"trunk"})
	reg.MustRegister(m.trunkLegEvents, m.trunkRegistered)
	reg.MustRegister(m.callsActive, m.callsAnswered, m.callsRefused, m.callsEnded, m.requestsInDialog, m.trunkUp)
	reg.MustRegister(m.requests, m.responses, m.registrations, m.authFailures, m.bans, m.bannedSources, m.dropped)
	return m
}

var statusClasses = [...]string{"", "1xx", "2xx", "3xx", "4xx", "5xx", "6xx"}

func statusClass(code int) string {
	if c := code / 100; c > 0 && c < len(statusClasses) {
		return statusClasses[c]
	}
	return strconv.Itoa(code)
}
