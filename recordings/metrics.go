package recordings

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Drop reasons, the only values of the reason label (a closed set, so the
// series count stays fixed; never a call id or number).
const (
	DropLate     = "late"     // arrived after its samples were committed
	DropOversize = "oversize" // payload larger than any sane G.711 packet
	DropFailed   = "failed"   // the writer had already failed
)

// Metrics are the recorder's Prometheus metrics. They live on a registry
// the caller owns (no default registry, no package state), and one Metrics
// is shared by every Writer of a process. A nil *Metrics is valid and
// records nothing, which keeps tests and tools free of registries.
type Metrics struct {
	active      prometheus.Gauge
	dropped     *prometheus.CounterVec
	writeErrors prometheus.Counter
	bytes       prometheus.Counter
	completed   prometheus.Counter

	// Resolved children: WithLabelValues on the packet path would hash and
	// look up the label on every drop.
	droppedLate, droppedOversize, droppedFailed prometheus.Counter
}

// NewMetrics creates the recorder metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "plateau_recordings_active",
			Help: "Recordings currently open.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plateau_recorder_dropped_packets_total",
			Help: "RTP packets not written to a recording, by reason.",
		}, []string{"reason"}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "plateau_recorder_write_errors_total",
			Help: "Recording write, seek or sync failures (each one ends a recording).",
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "plateau_recordings_bytes_total",
			Help: "Audio bytes written to recordings.",
		}),
		completed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "plateau_recordings_completed_total",
			Help: "Recordings closed, synced and hashed successfully.",
		}),
	}
	for _, c := range []prometheus.Collector{m.active, m.dropped, m.writeErrors, m.bytes, m.completed} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register recorder metrics: %w", err)
		}
	}
	m.droppedLate = m.dropped.WithLabelValues(DropLate)
	m.droppedOversize = m.dropped.WithLabelValues(DropOversize)
	m.droppedFailed = m.dropped.WithLabelValues(DropFailed)
	return m, nil
}

func (m *Metrics) drop(reason string) {
	if m == nil {
		return
	}
	switch reason {
	case DropLate:
		m.droppedLate.Inc()
	case DropOversize:
		m.droppedOversize.Inc()
	default:
		m.droppedFailed.Inc()
	}
}

func (m *Metrics) addActive(d float64) {
	if m != nil {
		m.active.Add(d)
	}
}

func (m *Metrics) writeError() {
	if m != nil {
		m.writeErrors.Inc()
	}
}

func (m *Metrics) addBytes(n int) {
	if m != nil {
		m.bytes.Add(float64(n))
	}
}

func (m *Metrics) complete() {
	if m != nil {
		m.completed.Inc()
	}
}
