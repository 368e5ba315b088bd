package siprec

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Refusal reasons, the only values of plateau_recorder_refused_total's
// reason label (a closed set: never an address as a label).
const (
	RefusedSource        = "source"              // not in recorder.allowed_sources
	RefusedNoCertificate = "tls_no_certificate"  // TLS client presented no certificate
	RefusedBadCert       = "tls_bad_certificate" // not signed by the client CA, expired, ...
	RefusedHandshake     = "tls_handshake"       // any other TLS failure (protocol, timeout)
	RefusedBusy          = "tls_busy"            // too many handshakes in progress
)

// srtpDropReasons are the reasons of plateau_recorder_srtp_dropped_total:
// srtp.Reason's names (auth: forged, tampered or wrong key; replay: an
// index already received or too old; malformed; key_exhausted; other).
var srtpDropReasons = []string{"auth", "replay", "malformed", "key_exhausted", "other"}

// Metrics are the SIPREC server's Prometheus metrics, on a registry the
// caller owns. A nil *Metrics records nothing.
type Metrics struct {
	refused     *prometheus.CounterVec
	srtpDropped *prometheus.CounterVec
	tlsAccepted prometheus.Counter
	// Resolved children: a flood of forged packets must not cost a label
	// hash each.
	srtpDrops map[string]prometheus.Counter
}

// NewMetrics creates the metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plateau_recorder_refused_total",
			Help: "Connections or requests the recorder refused, by reason (source not allowed, TLS client certificate missing or wrong).",
		}, []string{"reason"}),
		srtpDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plateau_recorder_srtp_dropped_total",
			Help: "SRTP packets the recorder dropped, by reason (auth: forged, tampered or wrong key; replay; malformed; key_exhausted).",
		}, []string{"reason"}),
		tlsAccepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "plateau_recorder_tls_connections_total",
			Help: "TLS connections accepted with a valid client certificate.",
		}),
	}
	for _, c := range []prometheus.Collector{m.refused, m.srtpDropped, m.tlsAccepted} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register siprec metrics: %w", err)
		}
	}
	// Every reason exists from the start, at 0, so alerts see a rate.
	for _, r := range []string{RefusedSource, RefusedNoCertificate, RefusedBadCert, RefusedHandshake, RefusedBusy} {
		m.refused.WithLabelValues(r)
	}
	m.srtpDrops = map[string]prometheus.Counter{}
	for _, r := range srtpDropReasons {
		m.srtpDrops[r] = m.srtpDropped.WithLabelValues(r)
	}
	return m, nil
}

func (m *Metrics) refuse(reason string) {
	if m != nil {
		m.refused.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) srtpDrop(reason string) {
	if m == nil {
		return
	}
	c, ok := m.srtpDrops[reason]
	if !ok {
		c = m.srtpDrops["other"]
	}
	c.Inc()
}

func (m *Metrics) tlsAccept() {
	if m != nil {
		m.tlsAccepted.Inc()
	}
}

// RegisterCertExpiry exposes when the link's certificate in service
// expires, as plateau_recorder_link_certificate_expiry_timestamp_seconds
// {side="recorder"} on the recorder or {side="client"} on a Plateau node:
// an expired one stops every call (the link fails closed), so alert
// before. notAfter is read at each scrape (a reload shows at once).
func RegisterCertExpiry(reg prometheus.Registerer, side string, notAfter func() time.Time) error {
	g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "plateau_recorder_link_certificate_expiry_timestamp_seconds",
		Help:        "When the recorder link's TLS certificate in service expires (Unix time).",
		ConstLabels: prometheus.Labels{"side": side},
	}, func() float64 { return float64(notAfter().Unix()) })
	if err := reg.Register(g); err != nil {
		return fmt.Errorf("register certificate expiry: %w", err)
	}
	return nil
}
