package media

import (
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// feed writes pcm into the mixer as 20 ms packets of input in.
func feed(m *Mixer, in MixInput, enc Encoding, ssrc uint32, ts uint32, pcm []int16) {
	var pkt rtp.Packet
	payload := make([]byte, FrameSamples)
	for off := 0; off+FrameSamples <= len(pcm); off += FrameSamples {
		encodeFrame(enc, payload, pcm[off:off+FrameSamples])
		pkt.Header = rtp.Header{Version: 2, SSRC: ssrc, Timestamp: ts + uint32(off), SequenceNumber: uint16(off / FrameSamples)}
		pkt.Payload = payload
		m.Write(in, enc, &pkt)
	}
}

const (
	hzOp, hzCust, hzSup = 440.0, 620.0, 1750.0
)

// mixAll runs a mixer with a tone on each input, 3 frames at a time as a
// real 20 ms clock would (the jitter buffer holds 6), and returns what
// each output received.
func mixAll(t *testing.T, mode MonitorMode, skipDirect bool) map[MixOutput][]int16 {
	t.Helper()
	m := NewMixer()
	tones := map[MixInput][]int16{
		InOperator: Tone(hzOp, time.Second), InCustomer: Tone(hzCust, time.Second), InSupervisor: Tone(hzSup, time.Second),
	}
	encs := map[MixInput]Encoding{InOperator: PCMU, InCustomer: PCMA, InSupervisor: PCMU}
	got := map[MixOutput][]int16{}
	const chunk = 3 * FrameSamples
	for off := 0; off+chunk <= len(tones[InOperator]); off += chunk {
		for in, pcm := range tones {
			feed(m, in, encs[in], uint32(in)+1, 1000*uint32(in)+uint32(off), pcm[off:off+chunk])
		}
		for range 3 {
			m.Next()
			for out := range numOutputs {
				var f [FrameSamples]int16
				m.Mix(&f, mode, out, skipDirect)
				got[out] = append(got[out], f[:]...)
			}
		}
	}
	return got
}

func hears(pcm []int16, hz float64) bool { return Goertzel(pcm, hz) > 1e5 }

func TestMixMatrix(t *testing.T) {
	// The policy, written out: who hears whom.
	want := map[MonitorMode]map[MixOutput][]MixInput{
		Listen: {
			OutOperator: {InCustomer}, OutCustomer: {InOperator}, OutSupervisor: {InOperator, InCustomer},
			OutRecordOperator: {InOperator}, OutRecordCustomer: {InCustomer},
		},
		Whisper: {
			OutOperator: {InCustomer, InSupervisor}, OutCustomer: {InOperator}, OutSupervisor: {InOperator, InCustomer},
			OutRecordOperator: {InOperator}, OutRecordCustomer: {InCustomer, InSupervisor},
		},
		Barge: {
			OutOperator: {InCustomer, InSupervisor}, OutCustomer: {InOperator, InSupervisor}, OutSupervisor: {InOperator, InCustomer},
			OutRecordOperator: {InOperator, InSupervisor}, OutRecordCustomer: {InCustomer, InSupervisor},
		},
	}
	for mode := range numModes {
		for out := range numOutputs {
			var row [numInputs]bool
			for _, in := range want[mode][out] {
				row[in] = true
			}
			if MixMatrix[mode][out] != row {
				t.Errorf("%v: %v gets %v, want %v", mode, out, MixMatrix[mode][out], row)
			}
		}
		// Invariants that must hold whatever the table becomes.
		// Each recording channel is what a party was sent: left what the
		// outside party heard, right what the operator heard.
		if MixMatrix[mode][OutRecordOperator] != MixMatrix[mode][OutCustomer] || MixMatrix[mode][OutRecordCustomer] != MixMatrix[mode][OutOperator] {
			t.Errorf("%v: recording rows differ from what the parties hear", mode)
		}
		if MixMatrix[mode][OutCustomer][InSupervisor] && mode != Barge {
			t.Errorf("%v: the supervisor reaches the customer", mode)
		}
		if MixMatrix[mode][OutSupervisor][InSupervisor] {
			t.Errorf("%v: the supervisor hears their own echo", mode)
		}
		for out := range numOutputs {
			if MixMatrix[mode][out][InCustomer] && out == OutCustomer || MixMatrix[mode][out][InOperator] && out == OutOperator {
				t.Errorf("%v: %v hears itself", mode, out)
			}
			for in := range numInputs {
				if DirectPath[out][in] && !MixMatrix[mode][out][in] {
					t.Errorf("%v: direct path %v->%v not in the matrix", mode, in, out)
				}
			}
		}
	}
}

func TestMixerListen(t *testing.T) {
	got := mixAll(t, Listen, false)
	sup := got[OutSupervisor]
	if !hears(sup, hzOp) || !hears(sup, hzCust) {
		t.Fatalf("supervisor hears operator %.0f, customer %.0f", Goertzel(sup, hzOp), Goertzel(sup, hzCust))
	}
	if hears(sup, hzSup) {
		t.Fatal("supervisor hears themself")
	}
	for _, out := range []MixOutput{OutOperator, OutCustomer, OutRecordOperator, OutRecordCustomer} {
		if hears(got[out], hzSup) {
			t.Errorf("listen: %v hears the supervisor", out)
		}
	}
}

func TestMixerWhisper(t *testing.T) {
	got := mixAll(t, Whisper, false)
	if !hears(got[OutOperator], hzSup) || !hears(got[OutOperator], hzCust) {
		t.Fatal("operator does not hear the whisper and the customer")
	}
	cust := got[OutCustomer]
	if !hears(cust, hzOp) {
		t.Fatal("customer does not hear the operator")
	}
	if leak, voice := Goertzel(cust, hzSup), Goertzel(cust, hzOp); leak*1e4 > voice {
		t.Fatalf("whisper leaks to the customer: %.3g vs voice %.3g", leak, voice)
	}
	if hears(got[OutRecordOperator], hzSup) || !hears(got[OutRecordCustomer], hzSup) {
		t.Fatal("whisper must be recorded with what the operator heard (right channel) only")
	}
	// What the monitor adds on top of the relay: only the whisper, only
	// toward the operator.
	inj := mixAll(t, Whisper, true)
	if !hears(inj[OutOperator], hzSup) || hears(inj[OutOperator], hzCust) {
		t.Fatal("injected toward the operator: want the whisper alone")
	}
	for _, s := range inj[OutCustomer] {
		if s != 0 {
			t.Fatal("whisper: the monitor injects something toward the customer")
		}
	}
}

func TestMixerBarge(t *testing.T) {
	got := mixAll(t, Barge, false)
	for out, ins := range map[MixOutput][]float64{
		OutOperator: {hzCust, hzSup}, OutCustomer: {hzOp, hzSup}, OutSupervisor: {hzOp, hzCust},
	} {
		for _, hz := range ins {
			if !hears(got[out], hz) {
				t.Errorf("barge: %v does not hear %v Hz", out, hz)
			}
		}
	}
}

func TestMixerSaturates(t *testing.T) {
	m := NewMixer()
	loud := make([]int16, 4*FrameSamples)
	for i := range loud {
		loud[i] = 30000
	}
	feed(m, InOperator, PCMU, 1, 0, loud)
	feed(m, InCustomer, PCMU, 2, 0, loud)
	m.Next()
	m.Next()
	m.Next()
	var f [FrameSamples]int16
	m.Mix(&f, Listen, OutSupervisor, true)
	for _, s := range f {
		if s != 32767 {
			t.Fatalf("sample %d, want saturated 32767", s)
		}
	}
}

func TestJitterBufferReorderAndLoss(t *testing.T) {
	var j jitterBuffer
	tone := Tone(hzOp, 200*time.Millisecond)
	pkts := [][2]int{{0, 0}, {2, 2}, {1, 1}, {4, 4}} // frame 3 lost, 1 and 2 swapped
	var pkt rtp.Packet
	payload := make([]byte, FrameSamples)
	for _, p := range pkts {
		f := p[0]
		encodeFrame(PCMU, payload, tone[f*FrameSamples:(f+1)*FrameSamples])
		pkt.Header = rtp.Header{SSRC: 7, Timestamp: uint32(5000 + f*FrameSamples)}
		pkt.Payload = payload
		j.write(PCMU, &pkt)
	}
	var out [7][FrameSamples]int16
	for i := range out {
		j.read(&out[i])
	}
	energy := func(f [FrameSamples]int16) (e int64) {
		for _, s := range f {
			e += int64(s) * int64(s)
		}
		return e
	}
	// 2 frames of playout delay, then frames 0,1,2, silence for 3, then 4.
	for i, want := range []bool{false, false, true, true, true, false, true} {
		if got := energy(out[i]) > 0; got != want {
			t.Errorf("frame %d: audio %v, want %v", i, got, want)
		}
	}
}

// BenchmarkMixerFrame measures the CPU of one monitor session per 20 ms
// frame: three inputs' packets into the jitter buffers, the mix of every
// output and the supervisor's encode. 50 frames are one second of session.
func BenchmarkMixerFrame(b *testing.B) {
	m := NewMixer()
	var pkts [numInputs]rtp.Packet
	for i := range pkts {
		pkts[i].Payload = make([]byte, FrameSamples)
		encodeFrame(PCMU, pkts[i].Payload, Tone(400*float64(i+1), 20*time.Millisecond))
		pkts[i].SSRC = uint32(i)
	}
	var f monitorFrame
	b.ReportAllocs()
	ts := uint32(0)
	for b.Loop() {
		for i := range pkts {
			pkts[i].Timestamp = ts
			m.Write(MixInput(i), PCMU, &pkts[i])
		}
		ts += FrameSamples
		m.Next()
		m.Mix(&f.sup, Barge, OutSupervisor, true)
		encodeFrame(PCMA, f.pkt[12:], f.sup[:])
		m.Mix(&f.leg[LegOperator].pcm, Barge, OutOperator, false)
		m.Mix(&f.leg[LegOutside].pcm, Barge, OutCustomer, false)
	}
}

// With nothing to mix into (both sides silent), the supervisor's voice is
// sent as packets of its own — to the operator in whisper, to both in
// barge, never to the customer in whisper.
func TestMonitorInjectsWhenSidesSilent(t *testing.T) {
	for _, mode := range []MonitorMode{Whisper, Barge} {
		t.Run(mode.String(), func(t *testing.T) {
			pool := testPool(t, 0, nil)
			r, err := NewRelay(pool, lo)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			op, _ := NewEndpoint(nil, lo, PCMU.Codec())
			cust, _ := NewEndpoint(nil, lo, PCMA.Codec())
			sup, _ := NewEndpoint(nil, lo, PCMU.Codec())
			defer op.Close()
			defer cust.Close()
			defer sup.Close()
			r.SetRemote(LegOperator, op.LocalAddr(), PCMU.Codec(), 101)
			r.SetRemote(LegOutside, cust.LocalAddr(), PCMA.Codec(), 101)
			m, err := NewMonitor(pool, lo, mode)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			m.SetRemote(sup.LocalAddr(), PCMU.Codec(), 101)
			if err := m.Attach(r); err != nil {
				t.Fatal(err)
			}
			if err := m.Attach(r); err != nil {
				t.Fatalf("re-attaching the same monitor: %v", err)
			}
			other, _ := NewMonitor(pool, lo, Listen)
			defer other.Close()
			if err := other.Attach(r); err != ErrMonitorBusy {
				t.Fatalf("second monitor: %v, want ErrMonitorBusy", err)
			}
			sup.SetRemote(netip.AddrPortFrom(lo, uint16(m.LocalPort())))
			play(t, sup, Tone(hzSup, 600*time.Millisecond))
			time.Sleep(150 * time.Millisecond)
			if !hears(op.PCM(), hzSup) {
				t.Fatalf("%v: the operator does not hear the supervisor", mode)
			}
			if got := hears(cust.PCM(), hzSup); got != (mode == Barge) {
				t.Fatalf("%v: the customer hears the supervisor: %v (%d samples)", mode, got, len(cust.PCM()))
			}
		})
	}
}

// The monitor's frame loop catches up on ticks it missed (a ticker drops
// them), up to maxCatchUp frames, and skips older ones.
func TestFramesDue(t *testing.T) {
	tests := []struct {
		name      string
		elapsed   time.Duration
		done      int64
		run, skip int64
	}{
		{"first tick", 20 * time.Millisecond, 0, 1, 0},
		{"on time", 100*time.Millisecond + 300*time.Microsecond, 4, 1, 0},
		{"tick delivered late, nothing new", 100 * time.Millisecond, 5, 0, 0},
		{"two ticks missed", 100 * time.Millisecond, 2, 3, 0},
		{"stall of exactly maxCatchUp", 100 * time.Millisecond, 0, maxCatchUp, 0},
		{"long stall", time.Second, 10, maxCatchUp, 35},
		{"before the first frame", 19 * time.Millisecond, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run, skip := framesDue(tt.elapsed, tt.done)
			if run != tt.run || skip != tt.skip {
				t.Errorf("framesDue(%v, %d) = %d, %d; want %d, %d", tt.elapsed, tt.done, run, skip, tt.run, tt.skip)
			}
		})
	}
}
