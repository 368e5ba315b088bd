package media

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the media package's Prometheus collectors. Labels never carry
// call ids or numbers (cardinality, and numbers are personal data).
type Metrics struct {
	packets    *prometheus.CounterVec
	packetsIn  prometheus.Counter
	packetsOut prometheus.Counter
	dropped    *prometheus.CounterVec
	drops      [numDropReasons]prometheus.Counter
	rtcp       *prometheus.CounterVec
	rtcpIn     prometheus.Counter
	rtcpOut    prometheus.Counter
	lost       prometheus.Counter
	restarts   prometheus.Counter
	jitter     prometheus.Histogram
	reanchors  prometheus.Counter
	portsInUse prometheus.Gauge
	sessions   prometheus.Gauge
}

// Drop reasons, the values of plateau_rtp_dropped_packets_total{reason}.
// Every packet received and not sent on, and every frame not sent toward a
// party, is counted under exactly one of them.
const (
	DropUnknownSource  = "unknown_source"  // not from the leg's signalled host / latched source
	DropNoRemote       = "no_remote"       // before the leg's address was signalled
	DropHold           = "hold"            // the destination put the call on hold
	DropNoDestination  = "no_destination"  // the destination leg has no address yet
	DropMuted          = "muted"           // a muted prompt (the notice) plays toward the destination
	DropMalformed      = "malformed"       // not RTP version 2
	DropUnknownPayload = "unknown_payload" // a payload type not negotiated on the leg
	DropComfortNoise   = "comfort_noise"   // RFC 3389 CN: never relayed (it is not recorded audio)
	DropBadEvent       = "invalid_event"   // a telephone-event payload that is not one RFC 4733 event
	DropOversize       = "oversize"        // an audio payload over maxAudioBytes
	DropNotice         = "notice_pending"  // detention: the outside party has not heard the notice yet
	DropEarlyMedia     = "early_media"     // before answer the path is outside → operator only
	DropNoEvents       = "no_events"       // the destination negotiated no telephone-event
	DropLate           = "late"            // older than the packet forwarding resynchronised on
	DropSRTPAuth       = "srtp_auth"       // an SRTP/SRTCP packet that failed authentication (forged, tampered, wrong key)
	DropSRTPReplay     = "srtp_replay"     // an SRTP/SRTCP packet already received, or older than the replay window
	DropSRTPKey        = "srtp_key_exhausted"
)

type dropReason uint8

const (
	rUnknownSource dropReason = iota
	rNoRemote
	rHold
	rNoDestination
	rMuted
	rMalformed
	rUnknownPayload
	rComfortNoise
	rBadEvent
	rOversize
	rNotice
	rEarlyMedia
	rNoEvents
	rLate
	rSRTPAuth
	rSRTPReplay
	rSRTPKey
	numDropReasons
)

var dropNames = [numDropReasons]string{
	DropUnknownSource, DropNoRemote, DropHold, DropNoDestination, DropMuted, DropMalformed,
	DropUnknownPayload, DropComfortNoise, DropBadEvent, DropOversize, DropNotice, DropEarlyMedia, DropNoEvents, DropLate,
	DropSRTPAuth, DropSRTPReplay, DropSRTPKey,
}

func (d dropReason) String() string { return dropNames[d] }

// drop counts one packet or frame dropped for reason d.
func (m *Metrics) drop(d dropReason) { m.drops[d].Inc() }

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
			Help: "RTP packets received, or frames generated, that were not sent toward a party, by reason.",
		}, []string{"reason"}),
		rtcp: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plateau_rtcp_packets_total",
			Help: "RTCP packets, by direction: in = received and terminated (never relayed), out = Plateau's own reports.",
		}, []string{"direction"}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "plateau_rtp_lost_packets_total",
			Help: "RTP packets missing from received streams (sequence gaps).",
		}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "plateau_rtp_stream_restarts_total",
			Help: "Received streams that kept their SSRC but restarted their sequence numbers, handled as a new segment.",
		}),
		jitter: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "plateau_rtp_jitter_seconds",
			Help:    "RFC 3550 interarrival jitter of each received leg, observed when the relay closes.",
			Buckets: []float64{.001, .0025, .005, .01, .02, .04, .08, .16, .32},
		}),
		reanchors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "plateau_monitor_jitter_reanchors_total",
			Help: "Times a monitored call's jitter buffer moved its playout point to follow a stream that lagged, ran slow or ran fast (a phone's clock, a path's delay).",
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
	for i, name := range dropNames {
		m.drops[i] = m.dropped.WithLabelValues(name)
	}
	m.rtcpIn = m.rtcp.WithLabelValues("in")
	m.rtcpOut = m.rtcp.WithLabelValues("out")
	if reg != nil {
		reg.MustRegister(m.packets, m.dropped, m.rtcp, m.lost, m.restarts, m.jitter, m.reanchors, m.portsInUse, m.sessions)
	}
	return m
}
