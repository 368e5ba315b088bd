package media

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
)

// tones returns frames 20 ms frames of the sum of the given tones, each at
// the self-test's level, with phase continuous across frames.
func tones(frames int, hz ...float64) []int16 {
	out := make([]int16, frames*FrameSamples)
	for _, f := range hz {
		for i := range out {
			out[i] += int16(10000 * math.Sin(2*math.Pi*f*float64(i)/SampleRate))
		}
	}
	return out
}

// fragmented returns frames frames of hz where the phase jumps by half a
// cycle every run frames, and frame k is silent when gap(k): what the
// operator hears of a whisper on a starved host, where the monitor's
// jitter buffer drops late packets and resynchronises.
func fragmented(frames, run int, hz float64, gap func(k int) bool) []int16 {
	out := make([]int16, frames*FrameSamples)
	for i := range out {
		k := i / FrameSamples
		if gap != nil && gap(k) {
			continue
		}
		phase := math.Pi * float64(k/run%2)
		out[i] = int16(10000 * math.Sin(2*math.Pi*hz*float64(i)/SampleRate+phase))
	}
	return out
}

func add(a, b []int16) []int16 {
	out := append([]int16(nil), a...)
	for i := range min(len(a), len(b)) {
		out[i] = sat16(int32(a[i]) + int32(b[i]))
	}
	return out
}

// scale returns pcm at db relative to its level.
func scale(pcm []int16, db float64) []int16 {
	g := math.Pow(10, db/20)
	out := make([]int16, len(pcm))
	for i, s := range pcm {
		out[i] = int16(float64(s) * g)
	}
	return out
}

func TestJudgeWhisper(t *testing.T) {
	const n = 40
	voiceOp, voiceCust := tones(n, selfTestOperatorHz), tones(n, selfTestCustomerHz)
	whisper := tones(n, selfTestSupervisorHz)
	// The starved host: the whisper comes in two-frame pieces in opposite
	// phases with a few frames lost. Every piece is loud, but a Goertzel
	// over the whole capture (the old verdict) cancels them out.
	busyOp := add(voiceCust, fragmented(n, 2, selfTestSupervisorHz, func(k int) bool { return k%7 == 3 }))
	if Goertzel(busyOp, selfTestSupervisorHz)*10 >= Goertzel(busyOp, selfTestCustomerHz) {
		t.Fatal("fixture: the old whole-capture verdict would pass, it must reproduce the failure seen under load")
	}
	good := func() whisperCapture {
		return whisperCapture{
			pcm:               [numParties][]int16{add(voiceCust, whisper), voiceOp, add(voiceOp, voiceCust)},
			packets:           [numParties]int{n, n, n},
			custDuringWhisper: n / 2,
		}
	}
	tests := []struct {
		name   string
		change func(c *whisperCapture)
		want   error // nil, ErrWhisperLeak or ErrSelfTestInconclusive
	}{
		{"clean whisper", func(c *whisperCapture) {}, nil},
		{"busy machine: the whisper reached the operator in pieces", func(c *whisperCapture) { c.pcm[partyOperator] = busyOp }, nil},
		{"customer got extra silent frames", func(c *whisperCapture) { c.pcm[partyCustomer] = append(voiceOp, make([]int16, 20*FrameSamples)...) }, nil},
		{"leak in one frame", func(c *whisperCapture) {
			c.pcm[partyCustomer] = add(voiceOp, append(make([]int16, 20*FrameSamples), whisper[:FrameSamples]...))
		}, ErrWhisperLeak},
		{"leak in every frame at -25 dB", func(c *whisperCapture) { c.pcm[partyCustomer] = add(voiceOp, scale(whisper, -25)) }, ErrWhisperLeak},
		{"faint steady leak at -35 dB", func(c *whisperCapture) { c.pcm[partyCustomer] = add(voiceOp, scale(whisper, -35)) }, ErrWhisperLeak},
		{"leak alone on a silent customer leg (operator muted)", func(c *whisperCapture) {
			c.pcm[partyCustomer] = append(voiceOp[:10*FrameSamples:10*FrameSamples], whisper[:5*FrameSamples]...)
		}, ErrWhisperLeak},
		{"leak while the operator never heard the whisper", func(c *whisperCapture) {
			c.pcm[partyCustomer] = add(voiceOp, whisper)
			c.pcm[partyOperator] = voiceCust
		}, ErrWhisperLeak},
		{"leak in an attempt that timed out", func(c *whisperCapture) {
			c.pcm[partyCustomer] = add(voiceOp, whisper)
			c.incomplete = "timed out"
		}, ErrWhisperLeak},
		{"leak with too few packets everywhere", func(c *whisperCapture) {
			c.pcm = [numParties][]int16{nil, whisper[:3*FrameSamples], nil}
			c.custDuringWhisper = 3
		}, ErrWhisperLeak},
		{"customer received nothing", func(c *whisperCapture) { c.pcm[partyCustomer] = nil }, ErrSelfTestInconclusive},
		{"customer received nothing during the whisper", func(c *whisperCapture) { c.custDuringWhisper = 2 }, ErrSelfTestInconclusive},
		{"operator heard too little whisper", func(c *whisperCapture) {
			c.pcm[partyOperator] = add(voiceCust, append(whisper[:10*FrameSamples:10*FrameSamples], make([]int16, 30*FrameSamples)...))
		}, ErrSelfTestInconclusive},
		{"supervisor heard nothing", func(c *whisperCapture) { c.pcm[partySupervisor] = make([]int16, n*FrameSamples) }, ErrSelfTestInconclusive},
		{"attempt timed out", func(c *whisperCapture) { c.incomplete = "timed out" }, ErrSelfTestInconclusive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good()
			tt.change(&c)
			m, err := judgeWhisper(c)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("verdict %v, want %v; measured %v", err, tt.want, m.logAttrs())
			}
			if tt.want == ErrSelfTestInconclusive && errors.Is(err, ErrWhisperLeak) {
				t.Fatalf("a shortage was judged a leak: %v", err)
			}
		})
	}
}

// The voices leave the whisper's frequency clean frame by frame, so the
// leak limits sit far above what a clean call measures after G.711.
func TestJudgeWhisperNoiseFloor(t *testing.T) {
	pcm := tones(50, selfTestOperatorHz)
	var pkt [FrameSamples]byte
	for off := 0; off < len(pcm); off += FrameSamples {
		encodeFrame(PCMA, pkt[:], pcm[off:off+FrameSamples])
		decodeFrame(PCMA, pcm[off:off+FrameSamples], pkt[:])
	}
	for k, l := range frameLevels(pcm, selfTestSupervisorHz) {
		if l > leakFrameDB-20 {
			t.Errorf("frame %d: the operator's voice measures %.1f dB at the whisper's frequency, within 20 dB of the leak limit", k, l)
		}
	}
	if l := frameLevels(tones(1, selfTestSupervisorHz), selfTestSupervisorHz)[0]; math.Abs(l) > 0.5 {
		t.Errorf("a whisper frame measures %.1f dB, want 0", l)
	}
}

// records keeps what a self-test logged.
type records struct {
	mu   sync.Mutex
	msgs []string
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *records) WithGroup(string) slog.Handler            { return r }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Message)
	rec.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	r.mu.Lock()
	r.msgs = append(r.msgs, b.String())
	r.mu.Unlock()
	return nil
}

func (r *records) count(prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if strings.HasPrefix(m, prefix) {
			n++
		}
	}
	return n
}

func (r *records) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.msgs, "\n")
}

func TestSelfTestWhisper(t *testing.T) {
	rec := &records{}
	if err := SelfTestWhisper(context.Background(), testPool(t, 0, nil), lo, WithSelfTestLogger(slog.New(rec))); err != nil {
		t.Fatalf("%v\n%s", err, rec)
	}
	if rec.count("whisper self-test passed") != 1 {
		t.Fatalf("want one pass logged with its measurements:\n%s", rec)
	}
	for _, k := range []string{"packets_customer=", "customer_whisper_max_db=", "operator_whisper_frames=", "attempt=1"} {
		if !strings.Contains(rec.String(), k) {
			t.Errorf("log lacks %s:\n%s", k, rec)
		}
	}
}

// busyStalls holds every phone up now and then, as a machine too busy to
// run the senders on time does: the supervisor 120 ms before its 4th frame
// and 100 ms before its 21st, the customer and the operator 100 ms once.
// Each stall is longer than the monitor's 40 ms playout delay, and the
// customer's lets the relay send whisper frames of its own (it does after
// 60 ms without the customer's packets).
func busyStalls(p party, k int) time.Duration {
	switch {
	case p == partySupervisor && k == 3:
		return 120 * time.Millisecond
	case p == partySupervisor && k == 20, p == partyCustomer && k == 7, p == partyOperator && k == 12:
		return 100 * time.Millisecond
	}
	return 0
}

// A busy machine must not stop the start: the verdict rests on what
// arrived, and the phases wait for it.
func TestSelfTestWhisperBusyMachine(t *testing.T) {
	pool := testPool(t, 0, nil)
	for i := range 3 {
		rec := &records{}
		st := newSelfTest(WithSelfTestLogger(slog.New(rec)))
		st.stall = busyStalls
		if err := st.run(context.Background(), pool, lo); err != nil {
			t.Fatalf("run %d: %v\n%s", i, err, rec)
		}
		t.Logf("run %d:\n%s", i, rec)
	}
}

// A leak stops the start every time, on the first attempt, busy or not:
// Barge sends the supervisor to the customer as a leaking whisper would.
func TestSelfTestWhisperLeakAlwaysFails(t *testing.T) {
	pool := testPool(t, 0, nil)
	for i := range 4 {
		rec := &records{}
		st := newSelfTest(WithSelfTestLogger(slog.New(rec)))
		st.mode = Barge
		if i%2 == 1 {
			st.stall = busyStalls
		}
		err := st.run(context.Background(), pool, lo)
		if !errors.Is(err, ErrWhisperLeak) {
			t.Fatalf("run %d: %v, want a leak\n%s", i, err, rec)
		}
		if rec.count("whisper self-test inconclusive") != 0 || rec.count("whisper self-test found a leak attempt=1 ") != 1 {
			t.Fatalf("run %d: a leak must end the test on its first attempt:\n%s", i, rec)
		}
	}
}

// An attempt that cannot show the paths work is retried, a bounded number
// of times, and then the start is refused all the same.
func TestSelfTestWhisperInconclusiveIsBounded(t *testing.T) {
	rec := &records{}
	st := newSelfTest(WithSelfTestLogger(slog.New(rec)))
	st.timeout = 500 * time.Millisecond
	st.stall = func(p party, k int) time.Duration { // the supervisor never gets to speak
		if p == partySupervisor {
			return time.Hour
		}
		return 0
	}
	err := st.run(context.Background(), testPool(t, 0, nil), lo)
	if !errors.Is(err, ErrSelfTestInconclusive) || errors.Is(err, ErrWhisperLeak) {
		t.Fatalf("%v, want inconclusive", err)
	}
	if n := rec.count("whisper self-test inconclusive"); n != 3 {
		t.Fatalf("%d attempts logged, want 3:\n%s", n, rec)
	}
	if !strings.Contains(err.Error(), "after 3 attempts") {
		t.Errorf("error does not say how many attempts: %v", err)
	}
}

// Cancelling the start ends the self-test at once, as a failure.
func TestSelfTestWhisperCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := SelfTestWhisper(ctx, testPool(t, 0, nil), lo); err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("%v, want context.Canceled", err)
	}
}
