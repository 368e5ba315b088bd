package media

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// jbArrival is one packet of a simulated stream: its number and the
// simulated time it reaches the jitter buffer.
type jbArrival struct {
	k  int
	at time.Duration
}

// jbResult is what a simulated listener heard.
type jbResult struct {
	played     map[int]int   // packet number → samples of it played out
	maxLatency time.Duration // playout time minus arrival, worst sample after from
	longestGap time.Duration // longest run of silence between two played samples after from
	latencyAt  func(time.Duration) time.Duration
	buf        *jitterBuffer
}

// runJitter drives a jitterBuffer as a Monitor does: its frame clock reads
// one frame every 20 ms of simulated time while the stream's packets
// (20 ms each, RTP timestamps 160 apart, every sample carrying its packet's
// number) arrive at their own times. Latency and gaps count from `from` on.
func runJitter(arrivals []jbArrival, from time.Duration) jbResult {
	slices.SortStableFunc(arrivals, func(a, b jbArrival) int { return int(a.at - b.at) })
	j := new(jitterBuffer)
	res := jbResult{played: map[int]int{}, buf: j}
	arrived := map[int]time.Duration{}
	var pcm [FrameSamples]int16
	var out [FrameSamples]int16
	const ts0 = 0xFFFF_F000 // the timestamp wraps during the run
	end := arrivals[len(arrivals)-1].at + 300*time.Millisecond
	next := 0
	var lastHeard time.Duration = -1
	for now := ptime; now <= end; now += ptime {
		for ; next < len(arrivals) && arrivals[next].at <= now; next++ {
			a := arrivals[next]
			for i := range pcm {
				pcm[i] = int16(a.k%30000 + 1)
			}
			arrived[a.k] = a.at
			j.writePCM(1234, ts0+uint32(a.k)*FrameSamples, pcm[:])
		}
		j.read(&out)
		for i, s := range out {
			at := now + time.Duration(i)*time.Second/8000
			if s == 0 {
				continue
			}
			k := int(s) - 1
			res.played[k]++
			if at < from {
				lastHeard = at
				continue
			}
			res.maxLatency = max(res.maxLatency, at-arrived[k])
			if lastHeard >= 0 {
				res.longestGap = max(res.longestGap, at-lastHeard-time.Second/8000)
			}
			lastHeard = at
		}
	}
	return res
}

// fullyPlayed counts the packets in [lo, hi) played out whole.
func (r jbResult) fullyPlayed(lo, hi int) int {
	n := 0
	for k := lo; k < hi; k++ {
		if r.played[k] == FrameSamples {
			n++
		}
	}
	return n
}

// A stream whose path delay changes at once (a phone's clock drift, a
// route change) must not be dropped as "late" for good, nor keep the
// added latency: the buffer re-anchors. Before re-anchoring, a lag of
// 40–256 ms silenced the stream until it drifted past the ring.
func TestJitterBufferDelayStep(t *testing.T) {
	tests := []struct {
		step       time.Duration // added to every arrival from packet 50 on
		minPlayed  int           // of packets 50–99, played out whole (a lag)
		maxLatency time.Duration // over the last second
	}{
		{0, 50, 80 * time.Millisecond},
		{20 * time.Millisecond, 50, 80 * time.Millisecond},
		{40 * time.Millisecond, 50, 80 * time.Millisecond},
		{60 * time.Millisecond, 49, 120 * time.Millisecond},
		{100 * time.Millisecond, 49, 120 * time.Millisecond},
		{200 * time.Millisecond, 49, 120 * time.Millisecond},
		{250 * time.Millisecond, 49, 120 * time.Millisecond},
		{300 * time.Millisecond, 49, 120 * time.Millisecond},
		{-60 * time.Millisecond, 50, 80 * time.Millisecond},
		{-100 * time.Millisecond, 50, 80 * time.Millisecond},
		{-150 * time.Millisecond, 50, 80 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.step.String(), func(t *testing.T) {
			const packets = 250 // 5 s
			base := 300 * time.Millisecond
			var arr []jbArrival
			for k := range packets {
				at := base + time.Duration(k)*ptime + 7*time.Millisecond
				if k >= 50 {
					at += tt.step
				}
				arr = append(arr, jbArrival{k, at})
			}
			res := runJitter(arr, base+time.Duration(packets-50)*ptime)
			if got := res.fullyPlayed(0, 50); got != 50 {
				t.Errorf("before the step %d of 50 packets played whole", got)
			}
			if got := res.fullyPlayed(50, 100); tt.step >= 0 && got < tt.minPlayed {
				t.Errorf("after a %v step %d of 50 packets played whole, want ≥ %d", tt.step, got, tt.minPlayed)
			}
			// Arriving earlier adds latency, which the buffer sheds once
			// by skipping that much audio (rounded up to a packet).
			skip := 0
			if tt.step < 0 {
				skip = int((-tt.step + ptime - 1) / ptime)
			}
			if got := res.fullyPlayed(50, packets); got < packets-50-skip-(50-tt.minPlayed) {
				t.Errorf("after the step %d of %d packets played whole, want ≥ %d", got, packets-50, packets-50-skip-(50-tt.minPlayed))
			}
			if res.maxLatency > tt.maxLatency {
				t.Errorf("latency in the last second %v, want ≤ %v", res.maxLatency, tt.maxLatency)
			}
		})
	}
}

// A phone whose clock runs 1 % slow or fast (far worse than real phones,
// to drift a lot within a simulated minute), with network jitter: the
// listener keeps hearing the stream, the latency stays bounded and the
// gaps short. A slow stream loses nothing; a fast one can only lose its
// surplus (1 %).
func TestJitterBufferClockDrift(t *testing.T) {
	tests := []struct {
		name      string
		rate      float64       // the phone's packet interval, in 20 ms
		jitter    time.Duration // uniform, either way
		minPlayed float64       // fraction of packets played whole
		maxGap    time.Duration
	}{
		{"1% slow", 1.01, 0, 0.995, 60 * time.Millisecond},
		{"1% slow, jitter", 1.01, 4 * time.Millisecond, 0.995, 60 * time.Millisecond},
		{"1% fast", 0.99, 0, 0.985, 0},
		{"1% fast, jitter", 0.99, 4 * time.Millisecond, 0.985, 0},
		{"100 ppm slow, jitter", 1.0001, 4 * time.Millisecond, 0.999, 60 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			const packets = 3000 // a minute
			var arr []jbArrival
			for k := range packets {
				at := 100*time.Millisecond + time.Duration(float64(k)*tt.rate*float64(ptime))
				if tt.jitter > 0 {
					at += time.Duration(rng.Int64N(int64(2*tt.jitter))) - tt.jitter
				}
				arr = append(arr, jbArrival{k, at})
			}
			res := runJitter(arr, time.Second)
			played := float64(res.fullyPlayed(0, packets)) / packets
			t.Logf("played whole %.2f %%, latency ≤ %v, longest gap %v, late %d, re-anchors %d",
				100*played, res.maxLatency, res.longestGap, res.buf.late, res.buf.reanchors)
			if played < tt.minPlayed {
				t.Errorf("%.2f %% of packets played whole, want ≥ %.1f %%", 100*played, 100*tt.minPlayed)
			}
			if res.maxLatency > 130*time.Millisecond {
				t.Errorf("latency reached %v, want ≤ 130ms", res.maxLatency)
			}
			if tt.maxGap > 0 && res.longestGap > tt.maxGap {
				t.Errorf("longest silence %v, want ≤ %v", res.longestGap, tt.maxGap)
			}
		})
	}
}

// Re-anchoring allocates nothing: placing packets of a drifting stream
// and reading frames is allocation-free.
func TestJitterBufferDriftAllocs(t *testing.T) {
	j := new(jitterBuffer)
	var pcm, out [FrameSamples]int16
	ts := uint32(0)
	allocs := testing.AllocsPerRun(2000, func() {
		j.writePCM(1, ts, pcm[:])
		ts += FrameSamples + 2 // 1.25 % fast
		j.read(&out)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per packet", allocs)
	}
	if j.reanchors == 0 {
		t.Fatal("the drifting stream never re-anchored")
	}
}

// jbSample is the test value of the sample at RTP timestamp ts: a sample
// played at the wrong time (aliased a ring away, or shifted by a
// re-anchor) shows as a wrong value.
func jbSample(ts uint32) int16 { return int16(ts%32749) + 1 }

// FuzzJitterBuffer drives a jitter buffer with any sequence of packets
// (timestamps jumping anywhere, any length, SSRC changes) and frame
// reads: it never panics, and every sample it plays is silence or the
// sample written for exactly that timestamp.
func FuzzJitterBuffer(f *testing.F) {
	f.Add([]byte{3, 0, 0, 3, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 3, 0, 0})   // lagging
	f.Add([]byte{3, 0, 0, 3, 0, 0, 3, 0, 0, 3, 0, 0, 3, 0, 0, 0, 0, 0, 3, 0, 0, 3, 0, 0})   // ahead
	f.Add([]byte{3, 0, 0, 0, 0, 0, 1, 0xF8, 0x00, 0, 0, 0, 2, 0, 0, 3, 0, 0, 0, 0, 0})      // jump back, new SSRC
	f.Add([]byte{253, 0x01, 0x40, 0, 0, 0, 1, 0x07, 0xFF, 0, 0, 0, 1, 0x80, 0x00, 0, 0, 0}) // odd lengths, far jumps
	f.Fuzz(func(t *testing.T, ops []byte) {
		var j jitterBuffer
		var pcm [2 * FrameSamples]int16
		var out [FrameSamples]int16
		ts, ssrc := uint32(0xFFFF_F000), uint32(1)
		write := func(n int) {
			for i := range n {
				pcm[i] = jbSample(ts + uint32(i))
			}
			j.writePCM(ssrc, ts, pcm[:n])
		}
		for ; len(ops) >= 3; ops = ops[3:] {
			op, a, b := ops[0], ops[1], ops[2]
			switch op % 4 {
			case 0: // the monitor's clock
				head := j.head
				j.read(&out)
				for i, s := range out {
					if s != 0 && s != jbSample(head+uint32(i)) {
						t.Fatalf("played %d at timestamp %d, want %d or silence", s, head+uint32(i), jbSample(head+uint32(i)))
					}
				}
			case 1: // a packet anywhere, of any length up to two frames
				ts += uint32(int32(int16(uint16(a)<<8 | uint16(b))))
				write(1 + int(op>>2)%len(pcm))
			case 2: // a new stream
				ssrc++
			case 3: // the next packet in order
				ts += FrameSamples
				write(FrameSamples)
			}
		}
	})
}

// A monitor counts its jitter buffers' re-anchors on the relay's metrics:
// a party's stream that keeps arriving late (here: the same timestamp
// again and again while the monitor's clock runs) is re-anchored, and
// plateau_monitor_jitter_reanchors_total says so.
func TestMonitorCountsReanchors(t *testing.T) {
	pool := testPool(t, 0, nil)
	reg := prometheus.NewRegistry()
	r, err := NewRelay(pool, lo, WithMetrics(NewMetrics(reg)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	m, err := NewMonitor(pool, lo, Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Attach(r); err != nil {
		t.Fatal(err)
	}
	var pcm [FrameSamples]int16
	const name = "plateau_monitor_jitter_reanchors_total"
	for deadline := time.Now().Add(10 * time.Second); counter(t, reg, name, "", "") == 0; time.Sleep(30 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s still 0 after a lagging stream", name)
		}
		m.feed(InCustomer, 7, 1000, pcm[:]) // late from the second frame on
	}
}
