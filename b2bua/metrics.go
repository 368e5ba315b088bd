package b2bua

import "github.com/prometheus/client_golang/prometheus"

// metrics are the call layer's (the signalling layer counts requests,
// registrations, bans, transports, trunks and panics).
type metrics struct {
	callsActive      prometheus.Gauge
	callsAnswered    prometheus.Counter
	callsRefused     *prometheus.CounterVec
	callsEnded       *prometheus.CounterVec
	requestsInDialog *prometheus.CounterVec
	legsLeaked       prometheus.Counter
	egressRefused    prometheus.Counter
	inDialogRejected *prometheus.CounterVec
	trunkLegEvents   *prometheus.CounterVec // trunkleg.go
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{}
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
	m.legsLeaked = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "plateau_call_legs_leaked_total", Help: "Outside legs still up when their call ended (BYE failed or never sent; audited as call.leg_leaked), or another fork's answer whose BYE failed (call.fork_answer leaked).",
	})
	m.egressRefused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "plateau_egress_refused_total", Help: "Requests the egress gate refused to send (no policy permit, or an address not allowed for phones).",
	})
	m.inDialogRejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plateau_sip_in_dialog_rejected_total", Help: "In-dialog requests answered 481, by why: unknown_dialog, tags, source (not the dialog's peer).",
	}, []string{"reason"})
	m.trunkLegEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plateau_trunk_leg_events_total", Help: "What trunk INVITEs did: prack, cancel, late_answer, fork_answer (another fork's 2xx acknowledged and hung up), auth_retry, extension_retry.",
	}, []string{"event"})
	reg.MustRegister(m.callsActive, m.callsAnswered, m.callsRefused, m.callsEnded, m.requestsInDialog,
		m.legsLeaked, m.egressRefused, m.inDialogRejected, m.trunkLegEvents)
	return m
}
