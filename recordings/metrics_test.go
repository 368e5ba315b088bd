package recordings

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// metricValue reads one series from reg; label is "" or "name=value".
func metricValue(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label != "" && !hasLabel(m, label) {
				continue
			}
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func hasLabel(m *dto.Metric, label string) bool {
	for _, lp := range m.GetLabel() {
		if lp.GetName()+"="+lp.GetValue() == label {
			return true
		}
	}
	return false
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Error("registering the metrics twice on one registry succeeded")
	}
	w, err := NewWriter(newMemFile(), WithMetrics(m))
	if err != nil {
		t.Fatal(err)
	}
	failing := newMemFile()
	failing.failAfter = headerSize + 100
	wf, err := NewWriter(failing, WithMetrics(m))
	if err != nil {
		t.Fatal(err)
	}
	if got := metricValue(t, reg, "plateau_recordings_active", ""); got != 2 {
		t.Errorf("active = %v, want 2", got)
	}
	pkts := simulate(t0, rand.New(rand.NewPCG(1, 3)), 0, 0, operatorSpec(2*time.Second, nil))
	feed(t, w, pkts)
	late := &rtp.Packet{Header: rtp.Header{SSRC: pkts[0].pkt.SSRC, Timestamp: pkts[0].pkt.Timestamp}, Payload: make([]byte, 160)}
	if err := w.WriteRTP(Operator, late, t0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	var werr error
	for _, p := range pkts {
		if werr = wf.WriteRTP(p.ch, p.pkt, p.arrival); werr != nil {
			break
		}
	}
	if !errors.Is(werr, ErrWriteFailed) {
		t.Fatalf("failing writer: %v", werr)
	}
	wf.WriteRTP(Operator, pkts[0].pkt, t0) // dropped: already failed
	if _, _, err := w.Close(t0.Add(3 * time.Second)); err != nil {
		t.Fatal(err)
	}
	wf.Close(t0)

	want := []struct {
		name, label string
		v           float64
	}{
		{"plateau_recordings_active", "", 0},
		{"plateau_recordings_completed_total", "", 1},
		{"plateau_recorder_write_errors_total", "", 1},
		{"plateau_recorder_dropped_packets_total", "reason=late", 1},
		{"plateau_recorder_dropped_packets_total", "reason=failed", 1},
		{"plateau_recordings_bytes_total", "", 3 * SampleRate * frameBytes}, // a failed write counts nothing
	}
	for _, tt := range want {
		if got := metricValue(t, reg, tt.name, tt.label); got != tt.v {
			t.Errorf("%s{%s} = %v, want %v", tt.name, tt.label, got, tt.v)
		}
	}
}
