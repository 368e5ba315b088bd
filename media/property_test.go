package media

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// randomCodec is PCMU or PCMA under its static type or a dynamic one.
func randomCodec(rng *rand.Rand) Codec {
	c := PCMU.Codec()
	if rng.IntN(2) == 1 {
		c = PCMA.Codec()
	}
	if rng.IntN(2) == 1 {
		c.PayloadType = uint8(102 + rng.IntN(25)) // dynamic, clear of telephone-event 101
	}
	return c
}

// TestRelayInvariantProperty drives a relay on real sockets with random
// packet sequences — any payload-type mapping, PCMU/PCMA, loss,
// reordering, DTX pauses, comfort noise, unknown payload types, valid and
// malformed events, RTCP APP, sequence restarts, hold, tones, monitor
// modes with a talking supervisor, early media and the notice gate — and
// checks the invariant in both directions: the recording channel of each
// party holds exactly, frame by frame, the audio sent toward that party,
// and nothing else left the relay (checkRecordedAsSent). With the gate
// never opened or the call never answered, nothing reached the outside.
// PLATEAU_PROPERTY_SEED replays one scenario.
func TestRelayInvariantProperty(t *testing.T) {
	scenarios := 16
	if testing.Short() {
		scenarios = 4
	}
	first := uint64(1)
	if s := os.Getenv("PLATEAU_PROPERTY_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		first, scenarios = n, 1
	}
	for seed := first; seed < first+uint64(scenarios); seed++ {
		t.Run("seed="+strconv.FormatUint(seed, 10), func(t *testing.T) { runScenario(t, seed) })
	}
}

func runScenario(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	opCodec, outCodec := randomCodec(rng), randomCodec(rng)
	detention, early := rng.IntN(2) == 1, rng.IntN(2) == 1
	var opts []Option
	if detention {
		opts = append(opts, WithDetention())
	}
	g := newRig(t, opCodec, outCodec, opts...)
	g.r.SetEarly(early)
	t.Logf("operator %v, outside %v, detention %v, early %v", opCodec, outCodec, detention, early)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	notice := Tone(800, 100*time.Millisecond)
	var bg sync.WaitGroup
	defer bg.Wait()

	var mon *Monitor
	if mode := rng.IntN(4); mode > 0 {
		m, err := NewMonitor(testPool(t, 0, nil), lo, MonitorMode(mode-1))
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		sup := newPeer(t, lo)
		m.SetRemote(sup.addr(), PCMU.Codec(), 0)
		if err := m.Attach(g.r); err != nil {
			t.Fatal(err)
		}
		mon = m
		t.Logf("monitor %v", m.Mode())
		supAddr := netip.AddrPortFrom(lo, uint16(m.LocalPort()))
		bg.Add(1)
		go func() {
			defer bg.Done()
			pcm := Tone(hzSup, time.Second)
			for i := 0; i+FrameSamples <= len(pcm) && ctx.Err() == nil; i += FrameSamples {
				sup.send(supAddr, audioPacket(PCMU.Codec(), uint16(i/FrameSamples), uint32(i), 77, pcm[i:i+FrameSamples]))
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}

	type stream struct {
		p     *peer
		to    netip.AddrPort
		codec Codec
		seq   uint16
		ts    uint32
		ssrc  uint32
	}
	streams := [2]*stream{
		{p: g.op, to: g.relayAddr(LegOperator), codec: opCodec, seq: uint16(rng.Uint32()), ts: rng.Uint32(), ssrc: rng.Uint32()},
		{p: g.out, to: g.relayAddr(LegOutside), codec: outCodec, seq: uint16(rng.Uint32()), ts: rng.Uint32(), ssrc: rng.Uint32()},
	}
	frame := func() []int16 {
		f := make([]int16, FrameSamples)
		hz := 300 + rng.Float64()*3000
		copy(f, Tone(hz, 20*time.Millisecond))
		if rng.IntN(4) == 0 { // noise
			for i := range f {
				f[i] = int16(rng.IntN(20000) - 10000)
			}
		}
		return f
	}
	var noticePlayed atomic.Bool
	steps := 40 + rng.IntN(40)
	for range steps {
		s := streams[rng.IntN(2)]
		next := func() (uint16, uint32) {
			s.seq++
			s.ts += FrameSamples
			return s.seq, s.ts
		}
		switch k := rng.IntN(100); {
		case k < 50: // audio
			seq, ts := next()
			s.p.send(s.to, audioPacket(s.codec, seq, ts, s.ssrc, frame()))
		case k < 55: // loss
			next()
		case k < 60: // reordering
			seq1, ts1 := next()
			seq2, ts2 := next()
			b1 := audioPacket(s.codec, seq1, ts1, s.ssrc, frame())
			s.p.send(s.to, audioPacket(s.codec, seq2, ts2, s.ssrc, frame()))
			s.p.send(s.to, b1)
		case k < 63: // DTX: a pause, the timestamp runs on
			for range 3 + rng.IntN(5) {
				next()
			}
			time.Sleep(time.Duration(40+rng.IntN(60)) * time.Millisecond)
		case k < 67: // comfort noise, with arbitrary bytes
			seq, ts := next()
			s.p.send(s.to, rawRTP(ptComfortNoise, seq, ts, s.ssrc, []byte("covert channel")[:1+rng.IntN(14)]))
		case k < 71: // a payload type nobody negotiated
			seq, ts := next()
			pt := uint8(rng.IntN(128))
			for pt == s.codec.PayloadType || pt == 101 {
				pt = uint8(rng.IntN(128))
			}
			s.p.send(s.to, rawRTP(pt, seq, ts, s.ssrc, make([]byte, 1+rng.IntN(200))))
		case k < 76: // telephone events, valid or not
			seq, ts := next()
			ev := []byte{byte(rng.IntN(20)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))}
			if rng.IntN(3) == 0 {
				ev = append(ev, "more text"[:1+rng.IntN(9)]...)
			}
			s.p.send(s.to, rawRTP(101, seq, ts, s.ssrc, ev))
		case k < 79: // RTCP APP toward the relay
			app := []byte{0x80, 201, 0, 1, 0, 0, 0, 7, 0x80, 204, 0, 3, 0, 0, 0, 7, 'T', 'E', 'X', 'T', 'h', 'i', '!', '!'}
			s.p.send(netip.AddrPortFrom(lo, s.to.Port()+1), app)
		case k < 81: // sequence restart on the same SSRC
			s.seq, s.ts = uint16(rng.Uint32()), rng.Uint32()
		case k < 82: // new SSRC
			s.ssrc = rng.Uint32()
		case k < 83: // the supervisor switches mode (DTMF 1/2/3)
			if mon != nil {
				mon.SetMode(MonitorMode(rng.IntN(int(numModes))))
			}
		case k < 86: // a tone toward a party
			l := Leg(rng.IntN(2))
			bg.Add(1)
			go func() { defer bg.Done(); g.r.Play(ctx, l, Tone(1000, 60*time.Millisecond)) }()
		case k < 89: // hold and resume of a party
			l := Leg(rng.IntN(2))
			g.r.SetDirection(l, SendOnly)
			time.Sleep(10 * time.Millisecond)
			g.r.SetDirection(l, SendRecv)
		case k < 93: // answer
			g.r.SetEarly(false)
			early = false
		case k < 97: // the notice, if detention
			if detention {
				bg.Add(1)
				go func() {
					defer bg.Done()
					if g.r.PlayNotice(ctx, notice) == nil {
						noticePlayed.Store(true)
					}
				}()
			}
		default: // a new outside party (REFER, failover)
			g.r.NewOutsideParty()
		}
		time.Sleep(time.Duration(1+rng.IntN(4)) * time.Millisecond)
	}
	bg.Wait()
	if mon != nil {
		mon.Detach()
	}
	g.settle(t)
	checkRecordedAsSent(t, g.tap, LegOperator, g.out, outCodec, 101)
	checkRecordedAsSent(t, g.tap, LegOutside, g.op, opCodec, 101)
	if early {
		if n := g.out.count(); n != 0 {
			t.Fatalf("outside party got %d packets with the call unanswered", n)
		}
	}
	if detention && !noticePlayed.Load() {
		// Only frames of the notice itself may have reached the outside.
		want := map[string]bool{}
		for i := 0; i < len(notice); i += FrameSamples {
			b := make([]byte, FrameSamples)
			encodeFrame(outCodec.Encoding, b, notice[i:i+FrameSamples])
			want[string(b)] = true
		}
		for _, p := range g.out.packets(t) {
			if !want[string(p.Payload)] {
				t.Fatalf("with the notice never completed, a frame that is not the notice reached the outside (pt %d)", p.PayloadType)
			}
		}
	}
}
