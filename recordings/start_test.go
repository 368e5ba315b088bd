package recordings

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"
)

// A recording has one start: the wall-clock time of its WAV's first sample
// (the call's first media), not the INVITE's. The index (recordings list,
// the API) and the sidecar say the same, and start + duration = end in
// both, when the call rang a while before audio came.
func TestRecordingStartIsTheFirstSample(t *testing.T) {
	for _, ring := range []time.Duration{0, 3 * time.Second, 1500 * time.Millisecond} {
		f := newFixture(t)
		id := "call-ring-" + ring.String()
		in := info(id, t0) // the call's setup: the row opens now
		s, err := f.m.Start(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		if r := f.get(id); !r.Start.Equal(t0) {
			t.Fatalf("open row start %v, want the setup time %v until audio comes", r.Start, t0)
		}
		answered := t0.Add(ring)
		talk := 5 * time.Second
		for _, p := range simulate(answered, rand.New(rand.NewPCG(3, 4)), 0, 20*time.Millisecond,
			operatorSpec(talk, nil), outsideSpec(0, talk, nil)) {
			if err := s.WriteRTP(p.ch, p.pkt, p.arrival); err != nil {
				t.Fatal(err)
			}
		}
		end := answered.Add(talk)
		if err := s.Close(end); err != nil {
			t.Fatal(err)
		}
		r := f.get(id)
		sc, err := ReadSidecar(f.abs(r.SidecarRel()))
		if err != nil {
			t.Fatal(err)
		}
		if !r.Start.Equal(sc.Start) {
			t.Errorf("ring %v: index start %v, sidecar start %v: they must agree", ring, r.Start, sc.Start)
		}
		if d := r.Start.Sub(answered); d < -20*time.Millisecond || d > 20*time.Millisecond {
			t.Errorf("ring %v: start %v, want the first sample at %v", ring, r.Start, answered)
		}
		for name, v := range map[string]struct {
			start, end time.Time
			ms         int64
		}{"index": {r.Start, r.End, r.DurationMS}, "sidecar": {sc.Start, sc.End, sc.DurationMS}} {
			if d := v.end.Sub(v.start) - time.Duration(v.ms)*time.Millisecond; d < -20*time.Millisecond || d > 20*time.Millisecond {
				t.Errorf("ring %v: %s start %v + %d ms is not its end %v", ring, name, v.start, v.ms, v.end)
			}
		}
		// The file stays where the setup time put it.
		if r.Path != "2026/03/02/"+id+".wav" {
			t.Errorf("path %s moved", r.Path)
		}
	}
}
