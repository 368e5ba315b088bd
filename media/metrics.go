package media

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the media package's Prometheus collectors. Labels never carry
// call ids or numbers (cardinality, and numbers are personal data).
type Metrics struct {
	packets        *prometheus.CounterVec
	packetsIn      prometheus.Counter
	packetsOut     prometheus.Counter
	dropped        *prometheus.CounterVec
	dropUnknownSrc prometheus.Counter
	dropHold       prometheus.Counter
	dropNoDest     prometheus.Counter
	dropMuted      prometheus.Counter
	dropBadPacket  prometheus.Counter
	dropPayload    prometheus.Counter
	lost           prometheus.Counter
	jitter         prometheus.Histogram
	portsInUse     prometheus.Gauge
	sessions       prometheus.Gauge
}

// Drop reasons, the values of plateau_rtp_dropped_packets_total{reason}.
const (
	DropUnknownSource  = "unknown_source"
	DropHold           = "hold"
	DropNoDestination  = "no_destination"
	DropMuted          = "muted"
	DropMalformed      = "malformed"
	DropUnknownPayload = "unknown_payload"
)

// NewMetrics builds the collectors and registers them on reg. With a nil reg
// they still count (tests, or a caller not exporting) but are not exposed.
// Registering twice on the same registry fails, as it should.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		packets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plateau_rtp_packets_total",
			Help: "RTP packets relayed, by direction (in = received from a peer, out = sent to a peer).",
		}, []string{"direction"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plateau_rtp_dropped_packets_total",
			Help: "RTP packets received but not forwarded, by reason.",
		}, []string{"reason"}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "plateau_rtp_lost_packets_total",
			Help: "RTP packets missing from received streams (sequence gaps).",
		}),
		jitter: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "plateau_rtp_jitter_seconds",
			Help:    "RFC 3550 interarrival jitter of each received leg, observed when the relay closes.",
			Buckets: []float64{.001, .0025, .005, .01, .02, .04, .08, .16, .32},
		}),
		portsInUse: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "plateau_media_ports_in_use",
			Help: "RTP/RTCP port pairs currently allocated (draining pairs excluded).",
		}),
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "plateau_media_sessions_active",
			Help: "Relays currently open.",
		}),
	}
	// Resolve label children once: WithLabelValues on the packet path
	// would hash and look up per packet.
	m.packetsIn = m.packets.WithLabelValues("in")
	m.packetsOut = m.packets.WithLabelValues("out")
	m.dropUnknownSrc = m.dropped.WithLabelValues(DropUnknownSource)
	m.dropHold = m.dropped.WithLabelValues(DropHold)
	m.dropNoDest = m.dropped.WithLabelValues(DropNoDestination)
	m.dropMuted = m.dropped.WithLabelValues(DropMuted)
	m.dropBadPacket = m.dropped.WithLabelValues(DropMalformed)
	m.dropPayload = m.dropped.WithLabelValues(DropUnknownPayload)
	if reg != nil {
		reg.MustRegister(m.packets, m.dropped, m.lost, m.jitter, m.portsInUse, m.sessions)
	}
	return m
}
