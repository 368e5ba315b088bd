package recordings

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/rtp"
)

var t0 = time.Date(2026, 3, 2, 7, 30, 0, 0, time.UTC)

func operatorSpec(dur time.Duration, markers []time.Duration) streamSpec {
	return streamSpec{ch: Operator, pt: ptPCMU, freq: 600, ssrc: 0x1111, ts0: 12345, dur: dur, markers: markers}
}

func outsideSpec(start, dur time.Duration, markers []time.Duration) streamSpec {
	return streamSpec{ch: Outside, pt: ptPCMA, freq: 1400, ssrc: 0x2222, ts0: 999999, start: start, dur: dur - start, markers: markers}
}

// writeAndClose runs pkts through a fresh Writer on a memFile and returns
// the decoded channels with the Writer's view of the result.
func writeAndClose(t *testing.T, pkts []simPacket, end time.Time, opts ...Option) (left, right []int16, w *Writer, dur time.Duration) {
	t.Helper()
	f := newMemFile()
	w, err := NewWriter(f, opts...)
	if err != nil {
		t.Fatal(err)
	}
	feed(t, w, pkts)
	sum, dur, err := w.Close(end)
	if err != nil {
		t.Fatal(err)
	}
	b := f.bytes()
	if h := sha256.Sum256(b); hex.EncodeToString(h[:]) != sum {
		t.Fatalf("Close sha256 %s, file hashes to %x", sum, h)
	}
	left, right = decodeWAV(t, b)
	if got := framesDuration(int64(len(left))); got != dur {
		t.Fatalf("Close duration %v, file holds %v", dur, got)
	}
	return left, right, w, dur
}

func TestWriterLongCallLossJitter(t *testing.T) {
	const callDur = 10 * time.Minute
	answer := 1300 * time.Millisecond // the outside party speaks later
	var markers []time.Duration
	for m := 30 * time.Second; m < callDur; m += time.Minute {
		markers = append(markers, m)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	// Each phone's clock is off by 100 ppm, in opposite directions: 60 ms
	// each by the end, which the recording must not show.
	op, out := operatorSpec(callDur, markers), outsideSpec(answer, callDur, markers)
	op.ppm, out.ppm = 100, -100
	pkts := simulate(t0, rng, 0.02, 40*time.Millisecond, op, out)
	end := t0.Add(callDur + 50*time.Millisecond)
	left, right, w, dur := writeAndClose(t, pkts, end)

	if want := end.Sub(t0); abs(dur-want) > 20*time.Millisecond {
		t.Errorf("duration %v, want %v ± 20ms", dur, want)
	}
	if d := w.Start().Sub(t0); d < 0 || d > 20*time.Millisecond {
		t.Errorf("recording starts %v after the first packet was sent, want < 20ms", d)
	}
	checkMarkers(t, left, right, w.Start(), t0, markers)

	// Channel separation: a second of tone on each side, away from markers.
	from := int(t0.Add(10*time.Second).Sub(w.Start()) / sampleDur)
	l, r := left[from:from+SampleRate], right[from:from+SampleRate]
	if a, b := goertzel(l, 600), goertzel(l, 1400); a < 1000*b {
		t.Errorf("left: 600 Hz energy %.3g, 1400 Hz %.3g: operator tone not alone on the left", a, b)
	}
	if a, b := goertzel(r, 1400), goertzel(r, 600); a < 1000*b {
		t.Errorf("right: 1400 Hz energy %.3g, 600 Hz %.3g: outside tone not alone on the right", a, b)
	}
	// Before the answer the right channel is silent.
	for i, v := range right[:int(answer/sampleDur)-pktLen] {
		if v != 0 {
			t.Fatalf("right channel sample %d = %d before the outside party started", i, v)
		}
	}
	st := w.Stats()
	t.Logf("stats %+v", st)
	if st.Late != 0 || st.Segments != 2 {
		t.Errorf("stats %+v: want no late packet and one segment per channel (jitter < window)", st)
	}
	if want := uint64(len(pkts)); st.Packets != want {
		t.Errorf("placed %d packets, want %d", st.Packets, want)
	}
}

func TestWriterStreamEvents(t *testing.T) {
	const callDur = 20 * time.Second
	markers := []time.Duration{3 * time.Second, 12 * time.Second, 17 * time.Second}
	tests := []struct {
		name     string
		op       func(*streamSpec)
		segments uint64
		silent   [2]time.Duration // operator silence expected in this span
	}{
		{name: "steady", segments: 2},
		{
			name:     "sender clock 0.1% fast",
			op:       func(s *streamSpec) { s.ppm = 1000 },
			segments: 2,
		},
		{
			name:     "sender clock 0.1% slow",
			op:       func(s *streamSpec) { s.ppm = -1000 },
			segments: 2,
		},
		{
			name:     "ssrc change",
			op:       func(s *streamSpec) { s.ssrcChangeAt, s.newSSRC, s.newTS0 = 7*time.Second, 0xBEEF, 77 },
			segments: 3,
		},
		{
			name:     "timestamp wraparound",
			op:       func(s *streamSpec) { s.ts0 = 1<<32 - 8000 }, // wraps after 1 s
			segments: 2,
		},
		{
			name:     "timestamp jump forward",
			op:       func(s *streamSpec) { s.tsJumpAt, s.tsJump = 5*time.Second, 10*SampleRate },
			segments: 3,
		},
		{
			name:     "timestamp jump backward",
			op:       func(s *streamSpec) { s.tsJumpAt, s.tsJump = 5*time.Second, 1<<32-5*SampleRate },
			segments: 3,
		},
		{
			// A carrier re-INVITE restarted the numbering on the same
			// SSRC: lower sequence numbers, new timestamps. Not late.
			name: "sequence restart on the same SSRC",
			op: func(s *streamSpec) {
				s.tsJumpAt, s.tsJump, s.seqJump = 5*time.Second, 3*SampleRate, 1<<16-20000
			},
			segments: 3,
		},
		{
			name: "hold with frozen timestamp",
			op: func(s *streamSpec) {
				s.gapFrom, s.gapTo, s.freezeTS = 5*time.Second, 10*time.Second, true
			},
			segments: 3,
			silent:   [2]time.Duration{5*time.Second + 300*time.Millisecond, 9800 * time.Millisecond},
		},
		{
			name:     "silence suppression, timestamp runs on",
			op:       func(s *streamSpec) { s.gapFrom, s.gapTo = 5*time.Second, 10*time.Second },
			segments: 2,
			silent:   [2]time.Duration{5*time.Second + 300*time.Millisecond, 9800 * time.Millisecond},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := operatorSpec(callDur, markers)
			if tt.op != nil {
				tt.op(&op)
			}
			rng := rand.New(rand.NewPCG(3, 4))
			pkts := simulate(t0, rng, 0.02, 40*time.Millisecond, op, outsideSpec(500*time.Millisecond, callDur, markers))
			end := t0.Add(callDur + 40*time.Millisecond)
			left, right, w, dur := writeAndClose(t, pkts, end)
			if want := end.Sub(t0); abs(dur-want) > 20*time.Millisecond {
				t.Errorf("duration %v, want %v ± 20ms", dur, want)
			}
			checkMarkers(t, left, right, w.Start(), t0, markers)
			if st := w.Stats(); st.Segments != tt.segments || st.Late != 0 {
				t.Errorf("stats %+v, want %d segments and no late packet", st, tt.segments)
			}
			if tt.silent[1] > 0 {
				from := int(t0.Add(tt.silent[0]).Sub(w.Start()) / sampleDur)
				to := int(t0.Add(tt.silent[1]).Sub(w.Start()) / sampleDur)
				for i := from; i < to; i++ {
					if left[i] != 0 {
						t.Fatalf("operator sample %d = %d inside the gap", i, left[i])
					}
				}
			}
		})
	}
}

func TestWriterDropsAndIgnores(t *testing.T) {
	f := newMemFile()
	w, err := NewWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	pkt := func(pt uint8, seq uint16, ts uint32, n int) *rtp.Packet {
		return &rtp.Packet{Header: rtp.Header{PayloadType: pt, SequenceNumber: seq, Timestamp: ts, SSRC: 9}, Payload: make([]byte, n)}
	}
	steps := []struct {
		pt      uint8
		seq     uint16
		ts      uint32
		n       int
		arrival time.Duration
	}{
		{ptPCMU, 1, 0, 160, 0},
		{101, 2, 160, 4, 10 * time.Millisecond},          // DTMF event: ignored
		{ptPCMU, 3, 160, 2000, 20 * time.Millisecond},    // oversize
		{ptPCMU, 3, 160, 0, 20 * time.Millisecond},       // empty
		{ptPCMU, 50, 8000, 160, 1000 * time.Millisecond}, // advances the commit point
		{ptPCMU, 3, 320, 160, 1020 * time.Millisecond},   // 960 ms late: dropped
		{ptPCMU, 51, 8160, 160, 1040 * time.Millisecond},
		{ptPCMU, 4, 480, 160, 2040 * time.Millisecond}, // 2 s late: dropped, not a jump
	}
	for _, s := range steps {
		if err := w.WriteRTP(Operator, pkt(s.pt, s.seq, s.ts, s.n), t0.Add(s.arrival)); err != nil {
			t.Fatal(err)
		}
	}
	want := Stats{Packets: 3, Ignored: 1, Late: 2, Oversize: 1, Segments: 1}
	if got := w.Stats(); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
	if err := w.WriteRTP(Channel(2), pkt(0, 0, 0, 160), t0); !errors.Is(err, ErrInvalidChannel) {
		t.Errorf("channel 2: %v, want ErrInvalidChannel", err)
	}
	if _, _, err := w.Close(t0.Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRTP(Operator, pkt(0, 0, 0, 160), t0); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
	if err := w.Flush(t0); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush after Close: %v, want ErrClosed", err)
	}
}

func TestWriterFailingFile(t *testing.T) {
	tests := []struct {
		name      string
		failAfter int64
		failSync  bool
		newErr    bool // NewWriter itself fails
	}{
		{name: "header write fails", failAfter: 10, newErr: true},
		{name: "sync fails at start", failAfter: -1, failSync: true, newErr: true},
		{name: "fails after 10000 bytes", failAfter: headerSize + 10000},
		{name: "fails mid header rewrite", failAfter: headerSize + 5*SampleRate*frameBytes - 3*frameBytes*SampleRate/10},
		{name: "fails on odd byte", failAfter: headerSize + 12345},
	}
	pkts := simulate(t0, rand.New(rand.NewPCG(5, 6)), 0.02, 40*time.Millisecond,
		operatorSpec(20*time.Second, nil), outsideSpec(0, 20*time.Second, nil))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newMemFile()
			f.failAfter, f.failSync = tt.failAfter, tt.failSync
			w, err := NewWriter(f)
			if tt.newErr {
				if !errors.Is(err, ErrWriteFailed) || !errors.Is(err, errInjected) {
					t.Fatalf("NewWriter: %v, want ErrWriteFailed wrapping the cause", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var first error
			for _, p := range pkts {
				if err := w.WriteRTP(p.ch, p.pkt, p.arrival); err != nil {
					first = err
					break
				}
			}
			if !errors.Is(first, ErrWriteFailed) || !errors.Is(first, errInjected) {
				t.Fatalf("WriteRTP: %v, want ErrWriteFailed wrapping the cause", first)
			}
			// Once failed, always failed: nothing more reaches the file.
			n := f.written
			for _, p := range pkts[len(pkts)-100:] {
				if err := w.WriteRTP(p.ch, p.pkt, p.arrival); !errors.Is(err, ErrWriteFailed) {
					t.Fatalf("WriteRTP after failure: %v", err)
				}
			}
			if err := w.Flush(t0.Add(time.Minute)); !errors.Is(err, ErrWriteFailed) {
				t.Errorf("Flush after failure: %v", err)
			}
			if _, _, err := w.Close(t0.Add(time.Minute)); !errors.Is(err, ErrWriteFailed) {
				t.Errorf("Close after failure: %v", err)
			}
			if f.written != n {
				t.Errorf("%d bytes written after the failure", f.written-n)
			}
		})
	}
}

func TestWriterSyncFailsLater(t *testing.T) {
	f := newMemFile()
	w, err := NewWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	f.failSync = true
	pkts := simulate(t0, rand.New(rand.NewPCG(7, 8)), 0, 0, operatorSpec(6*time.Second, nil))
	var got error
	for _, p := range pkts {
		if got = w.WriteRTP(p.ch, p.pkt, p.arrival); got != nil {
			break
		}
	}
	if !errors.Is(got, ErrWriteFailed) {
		t.Fatalf("fsync failure at the 5 s header rewrite: %v, want ErrWriteFailed", got)
	}
}

func TestCreateCloseHashesFile(t *testing.T) {
	dir := t.TempDir()
	path := Path(dir, "call-1", t0)
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Create(path); !errors.Is(err, ErrWriteFailed) || !errors.Is(err, os.ErrExist) {
		t.Errorf("second Create on the same path: %v, want refusal (a recording is never overwritten)", err)
	}
	feed(t, w, simulate(t0, rand.New(rand.NewPCG(9, 9)), 0, 0, operatorSpec(3*time.Second, nil)))
	sum, dur, err := w.Close(t0.Add(4 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	sum2, dur2, err2 := w.Close(t0.Add(9 * time.Second))
	if sum2 != sum || dur2 != dur || err2 != nil {
		t.Errorf("second Close = %s %v %v, want the first result", sum2, dur2, err2)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if h := sha256.Sum256(b); hex.EncodeToString(h[:]) != sum {
		t.Errorf("sha256 %s, file on disk %x", sum, h)
	}
	if dur != 4*time.Second {
		t.Errorf("duration %v, want 4s", dur)
	}
	decodeWAV(t, b)
	if want := filepath.Join(dir, "2026", "03", "02", "call-1.wav"); path != want {
		t.Errorf("Path = %s, want %s", path, want)
	}
}

func TestWriterEmptyRecording(t *testing.T) {
	f := newMemFile()
	w, err := NewWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	_, dur, err := w.Close(t0)
	if err != nil || dur != 0 {
		t.Fatalf("Close with no media = %v, %v; want 0, nil", dur, err)
	}
	if l, _ := decodeWAV(t, f.bytes()); len(l) != 0 {
		t.Errorf("%d frames in a recording without media", len(l))
	}
	if !w.Start().IsZero() {
		t.Errorf("Start = %v without media", w.Start())
	}
}

func TestWriterFlushWritesSilenceDuringHold(t *testing.T) {
	f := newMemFile()
	w, err := NewWriter(f, WithSyncInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	feed(t, w, simulate(t0, rand.New(rand.NewPCG(1, 1)), 0, 0, operatorSpec(time.Second, nil)))
	syncs := f.syncs
	// No packets for 10 s: the owner's timer keeps the file current.
	for s := 2; s <= 10; s++ {
		if err := w.Flush(t0.Add(time.Duration(s) * time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if f.syncs-syncs != 9 {
		t.Errorf("%d syncs for 9 flushes", f.syncs-syncs)
	}
	l, _ := decodeWAV(t, f.synced)
	if got, want := framesDuration(int64(len(l))), 9800*time.Millisecond; got != want {
		t.Errorf("after flushing at 10 s the file holds %v, want %v (now - window)", got, want)
	}
}

// TestWriterConcurrentLegs runs both relays and the owner's flush timer at
// once, as in production; -race checks the locking.
func TestWriterConcurrentLegs(t *testing.T) {
	f := newMemFile()
	w, err := NewWriter(f, WithSyncInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	const callDur = 5 * time.Second
	legs := [2][]simPacket{
		simulate(t0, rand.New(rand.NewPCG(1, 5)), 0, 0, operatorSpec(callDur, nil)),
		simulate(t0, rand.New(rand.NewPCG(2, 5)), 0, 0, outsideSpec(0, callDur, nil)),
	}
	done := make(chan error, 3)
	for _, pkts := range legs {
		go func() {
			for _, p := range pkts {
				if err := w.WriteRTP(p.ch, p.pkt, p.arrival); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	go func() {
		for i := range 20 {
			if err := w.Flush(t0.Add(time.Duration(i) * 100 * time.Millisecond)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range 3 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := w.Close(t0.Add(callDur)); err != nil {
		t.Fatal(err)
	}
	decodeWAV(t, f.bytes())
}
