package media

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus"
)

var lo = netip.MustParseAddr("127.0.0.1")

// testPool uses a random high range so parallel test binaries (and other
// engineers' tests) rarely collide; busy ports are skipped anyway.
func testPool(t testing.TB, drain time.Duration, now func() time.Time) *PortPool {
	t.Helper()
	base := 30000 + 2*rand.IntN(10000)
	p, err := NewPortPool(base, base+999, drain, now)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Generous: CI runs every package at once under -race on two cores; only a
// failing test waits this long.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type call struct {
	r       *Relay
	a, b    *Endpoint
	reg     *prometheus.Registry
	metrics *Metrics
}

func (c *call) relayAddr(l Leg) netip.AddrPort {
	return netip.AddrPortFrom(lo, uint16(c.r.LocalPort(l)))
}

// newCall wires operator endpoint a and outside endpoint b through a relay.
func newCall(t *testing.T, codecA, codecB Codec, opts ...Option) *call {
	t.Helper()
	c := &call{reg: prometheus.NewRegistry()}
	c.metrics = NewMetrics(c.reg)
	r, err := NewRelay(testPool(t, 0, nil), lo, append([]Option{WithMetrics(c.metrics)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	c.r = r
	t.Cleanup(func() { r.Close() })
	for i, codec := range []Codec{codecA, codecB} {
		e, err := NewEndpoint(nil, lo, codec)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		if err := r.SetRemote(Leg(i), e.LocalAddr(), codec, 101); err != nil {
			t.Fatal(err)
		}
		e.SetRemote(c.relayAddr(Leg(i)))
		if i == 0 {
			c.a = e
		} else {
			c.b = e
		}
	}
	return c
}

func counter(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
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
			match := label == ""
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					match = true
				}
			}
			if match {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func play(t *testing.T, e *Endpoint, pcm []int16) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Play(ctx, pcm); err != nil {
		t.Fatal(err)
	}
}

func TestRelayBothWaysAndTranscoding(t *testing.T) {
	tests := []struct {
		name   string
		ca, cb Codec
	}{
		{"pcmu both", PCMU.Codec(), PCMU.Codec()},
		{"pcmu to pcma", PCMU.Codec(), PCMA.Codec()},
		{"pcma to dynamic pcmu", PCMA.Codec(), Codec{Encoding: PCMU, PayloadType: 97}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCall(t, tt.ca, tt.cb)
			tone := Tone(1000, 200*time.Millisecond) // 10 packets
			play(t, c.a, tone)
			waitFor(t, "A→B audio", func() bool { return c.b.Received() >= 10 })
			play(t, c.b, tone)
			waitFor(t, "B→A audio", func() bool { return c.a.Received() >= 10 })

			if pt := c.b.Last().PayloadType; pt != tt.cb.PayloadType {
				t.Errorf("B got payload type %d, want %d", pt, tt.cb.PayloadType)
			}
			if pt := c.a.Last().PayloadType; pt != tt.ca.PayloadType {
				t.Errorf("A got payload type %d, want %d", pt, tt.ca.PayloadType)
			}
			if from := c.b.Last().From; from != c.relayAddr(LegOutside) {
				t.Errorf("B got media from %v, want the relay's outside port %v (symmetric RTP)", from, c.relayAddr(LegOutside))
			}
			// Two G.711 quantisations (and one transcoding) stay within a
			// few percent of a -10 dBFS tone.
			for name, got := range map[string][]int16{"B": c.b.PCM(), "A": c.a.PCM()} {
				if len(got) != len(tone) {
					t.Fatalf("%s decoded %d samples, want %d", name, len(got), len(tone))
				}
				for i := range tone {
					if d := int(got[i]) - int(tone[i]); d > 700 || d < -700 {
						t.Fatalf("%s sample %d = %d, want ~%d", name, i, got[i], tone[i])
					}
				}
			}
			st := c.r.Stats(LegOperator)
			if st.Packets != 10 || st.Lost != 0 || st.Source != c.a.LocalAddr() {
				t.Errorf("operator stats %+v", st)
			}
			if got := counter(t, c.reg, "plateau_rtp_packets_total", "direction", "out"); got != 20 {
				t.Errorf("packets out = %v, want 20", got)
			}
		})
	}
}

func rawRTP(pt uint8, seq uint16, ts, ssrc uint32, payload []byte) []byte {
	b, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, Timestamp: ts, SSRC: ssrc}, Payload: payload}).Marshal()
	return b
}

func TestRelayDropsUnknownSource(t *testing.T) {
	c := newCall(t, PCMU.Codec(), PCMU.Codec())
	play(t, c.a, Tone(440, 60*time.Millisecond)) // latch A
	waitFor(t, "latched", func() bool { return c.b.Received() == 3 })

	intruder, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer intruder.Close()
	// Past the latch window: even a burst must not take the stream over.
	for i := range 40 {
		intruder.WriteToUDPAddrPort(rawRTP(0, uint16(i), uint32(i*160), 666, make([]byte, 160)), c.relayAddr(LegOperator))
	}
	waitFor(t, "drops counted", func() bool {
		return counter(t, c.reg, "plateau_rtp_dropped_packets_total", "reason", DropUnknownSource) == 40
	})
	if got := c.b.Received(); got != 3 {
		t.Fatalf("B received %d packets, want 3 (intruder forwarded)", got)
	}
	if st := c.r.Stats(LegOperator); st.Dropped != 40 || st.Source != c.a.LocalAddr() {
		t.Fatalf("stats %+v", st)
	}
}

func TestRelayLatchesNATedSource(t *testing.T) {
	// The SDP says one address; media really comes from another (NAT).
	c := newCall(t, PCMU.Codec(), PCMU.Codec())
	c.r.SetRemote(LegOperator, netip.MustParseAddrPort("127.0.0.1:9"), PCMU.Codec(), 101)
	play(t, c.a, Tone(440, 60*time.Millisecond))
	play(t, c.b, Tone(440, 60*time.Millisecond))
	waitFor(t, "both ways", func() bool { return c.b.Received() == 3 && c.a.Received() == 3 })
}

func TestRelayReinviteNewPort(t *testing.T) {
	c := newCall(t, PCMU.Codec(), PCMU.Codec())
	play(t, c.a, Tone(440, 60*time.Millisecond))
	waitFor(t, "before", func() bool { return c.b.Received() == 3 })
	firstSSRC := c.b.Last().SSRC

	// Outside party moves its media (re-INVITE with new c=/port and codec).
	b2, err := NewEndpoint(nil, lo, PCMA.Codec())
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	b2.SetRemote(c.relayAddr(LegOutside))
	if err := c.r.SetRemote(LegOutside, b2.LocalAddr(), PCMA.Codec(), 101); err != nil {
		t.Fatal(err)
	}
	play(t, c.a, Tone(440, 60*time.Millisecond))
	waitFor(t, "after", func() bool { return b2.Received() == 3 })
	if got := c.b.Received(); got != 3 {
		t.Errorf("old address still gets media: %d packets", got)
	}
	last := b2.Last()
	if last.PayloadType != 8 || last.SSRC != firstSSRC {
		t.Errorf("after re-INVITE: %+v, want PCMA and the same SSRC %d", last, firstSSRC)
	}
	// The new source is latched; the old one is now unknown.
	play(t, b2, Tone(440, 60*time.Millisecond))
	waitFor(t, "new B latched", func() bool { return c.a.Received() == 3 })
}

func TestRelayHold(t *testing.T) {
	c := newCall(t, PCMU.Codec(), PCMU.Codec())
	c.r.SetDirection(LegOutside, SendOnly) // outside put us on hold
	play(t, c.a, Tone(440, 60*time.Millisecond))
	play(t, c.b, Tone(440, 60*time.Millisecond)) // music on hold still reaches A
	waitFor(t, "B→A", func() bool { return c.a.Received() == 3 })
	waitFor(t, "hold drops", func() bool {
		return counter(t, c.reg, "plateau_rtp_dropped_packets_total", "reason", DropHold) == 3
	})
	if got := c.b.Received(); got != 0 {
		t.Fatalf("held leg got %d packets", got)
	}
	// Resume: re-INVITE back to sendrecv.
	c.r.SetRemote(LegOutside, c.b.LocalAddr(), PCMU.Codec(), 101)
	play(t, c.a, Tone(440, 60*time.Millisecond))
	waitFor(t, "resumed", func() bool { return c.b.Received() == 3 })

	// RFC 2543 hold: c=0.0.0.0.
	c.r.SetRemote(LegOutside, netip.MustParseAddrPort("0.0.0.0:4000"), PCMU.Codec(), 101)
	play(t, c.a, Tone(440, 60*time.Millisecond))
	waitFor(t, "hold drops", func() bool {
		return counter(t, c.reg, "plateau_rtp_dropped_packets_total", "reason", DropHold) == 6
	})
}

func TestRelayDTMFPassThrough(t *testing.T) {
	c := newCall(t, PCMU.Codec(), PCMU.Codec())
	c.r.SetRemote(LegOutside, c.b.LocalAddr(), PCMU.Codec(), 96)
	// Send events from A's own socket so they come from the latched source.
	c.a.conn.WriteToUDPAddrPort(rawRTP(101, 1, 1000, 7, []byte{5, 0x0a, 0, 160}), c.relayAddr(LegOperator))
	c.a.conn.WriteToUDPAddrPort(rawRTP(101, 2, 1000, 7, []byte{5, 0x8a, 1, 64}), c.relayAddr(LegOperator))
	waitFor(t, "events", func() bool { return c.b.Events() == 2 })
	if pt := c.b.Last().PayloadType; pt != 96 {
		t.Fatalf("event payload type %d, want 96 (mapped)", pt)
	}
	c.a.conn.WriteToUDPAddrPort(rawRTP(99, 3, 1000, 7, []byte{1}), c.relayAddr(LegOperator))
	waitFor(t, "unknown payload dropped", func() bool {
		return counter(t, c.reg, "plateau_rtp_dropped_packets_total", "reason", DropUnknownPayload) == 1
	})
}

type recTap struct {
	mu      sync.Mutex
	n       [2]int
	ssrcs   [2]map[uint32]bool
	failAt  int
	payload [][]byte
}

func (r *recTap) TapRTP(l Leg, pkt *rtp.Packet, _ time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n[l]++
	if r.ssrcs[l] == nil {
		r.ssrcs[l] = map[uint32]bool{}
	}
	r.ssrcs[l][pkt.SSRC] = true
	r.payload = append(r.payload, append([]byte(nil), pkt.Payload...))
	if r.failAt > 0 && r.n[0]+r.n[1] >= r.failAt {
		return errors.New("disk full")
	}
	return nil
}

func (r *recTap) count(l Leg) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[l]
}

func TestRelayTapBothLegs(t *testing.T) {
	tap := &recTap{}
	c := newCall(t, PCMU.Codec(), PCMA.Codec(), WithTap(tap))
	play(t, c.a, Tone(440, 100*time.Millisecond))
	play(t, c.b, Tone(440, 60*time.Millisecond))
	waitFor(t, "tap", func() bool { return tap.count(LegOperator) == 5 && tap.count(LegOutside) == 3 })
}

func TestRelayTapErrorEndsCall(t *testing.T) {
	tap := &recTap{failAt: 2}
	c := newCall(t, PCMU.Codec(), PCMU.Codec(), WithTap(tap))
	play(t, c.a, Tone(440, 100*time.Millisecond))
	select {
	case <-c.r.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("relay still running after tap failure")
	}
	if err := c.r.Err(); !errors.Is(err, ErrTapFailed) {
		t.Fatalf("Err = %v, want ErrTapFailed", err)
	}
	if got := c.b.Received(); got > 1 {
		t.Fatalf("%d packets forwarded after the tap failed", got)
	}
}

func TestRelayInactivity(t *testing.T) {
	c := newCall(t, PCMU.Codec(), PCMU.Codec(), WithInactivityTimeout(150*time.Millisecond))
	play(t, c.a, Tone(440, 100*time.Millisecond)) // activity keeps it up
	if c.r.Err() != nil {
		t.Fatalf("ended while active: %v", c.r.Err())
	}
	select {
	case <-c.r.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("no inactivity timeout")
	}
	if !errors.Is(c.r.Err(), ErrInactive) {
		t.Fatalf("Err = %v, want ErrInactive", c.r.Err())
	}
}

func TestRelayPlay(t *testing.T) {
	tap := &recTap{}
	c := newCall(t, PCMU.Codec(), PCMA.Codec(), WithTap(tap))
	// A prompt long enough that the operator's three packets, sent once
	// it has started, land inside it even on a loaded machine.
	const promptPackets = 50
	notice := Tone(800, promptPackets*20*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()

	// Recording notice to the outside party while the operator talks:
	// the operator must not be heard until the prompt is over.
	promptDone := make(chan error, 1)
	go func() { promptDone <- c.r.Play(ctx, LegOutside, notice, Muted()) }()
	waitFor(t, "prompt start", func() bool { return c.b.Received() > 0 })
	if err := c.a.Play(ctx, Tone(300, 60*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "operator muted", func() bool {
		return counter(t, c.reg, "plateau_rtp_dropped_packets_total", "reason", DropMuted) == 3
	})
	if err := <-promptDone; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "prompt", func() bool { return c.b.Received() == promptPackets })
	got := c.b.PCM()
	for i := range notice {
		if d := int(got[i]) - int(notice[i]); d > 400 || d < -400 {
			t.Fatalf("prompt sample %d = %d, want ~%d", i, got[i], notice[i])
		}
	}
	if n := counter(t, c.reg, "plateau_rtp_dropped_packets_total", "reason", DropMuted); n != 3 {
		t.Errorf("muted drops = %v, want 3", n)
	}
	// The tap heard the prompt on the operator channel (what B hears), as
	// its own stream, in place of the phone's muted packets: a recorder
	// never gets two interleaved streams on one channel.
	waitFor(t, "tap", func() bool { return tap.count(LegOperator) == promptPackets })
	tap.mu.Lock()
	nssrc := len(tap.ssrcs[LegOperator])
	tap.mu.Unlock()
	if nssrc != 1 {
		t.Errorf("tap saw %d SSRCs on operator channel, want 1 (the prompt; the muted phone is not recorded)", nssrc)
	}

	// Forwarding resumes after the prompt with the same SSRC and in-order
	// sequence numbers.
	before := c.b.Last()
	play(t, c.a, Tone(300, 40*time.Millisecond))
	waitFor(t, "bridged", func() bool { return c.b.Received() == promptPackets+2 })
	after := c.b.Last()
	if after.SSRC != before.SSRC || after.Seq != before.Seq+2 || int32(after.Timestamp-before.Timestamp) < 2*FrameSamples {
		t.Errorf("stream not continuous: before %+v after %+v", before, after)
	}

	ctx2, cancel2 := context.WithCancel(ctx)
	cancel2()
	if err := c.r.Play(ctx2, LegOutside, notice); !errors.Is(err, context.Canceled) {
		t.Errorf("Play with cancelled ctx: %v", err)
	}
}

func TestRelayPlayMixesBeep(t *testing.T) {
	c := newCall(t, PCMU.Codec(), PCMU.Codec())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	talk := make(chan error, 1)
	go func() { talk <- c.a.Play(ctx, make([]int16, 30*FrameSamples)) }() // silence, 600 ms
	waitFor(t, "talking", func() bool { return c.b.Received() > 3 })
	if err := c.r.Play(ctx, LegOutside, Tone(1000, 100*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := <-talk; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "all", func() bool { return c.b.Received() >= 30 })
	loud := 0
	for _, s := range c.b.PCM() {
		if s > 5000 || s < -5000 {
			loud++
		}
	}
	if loud == 0 {
		t.Fatal("beep not mixed into the forwarded stream")
	}
	if n := c.b.Received(); n > 32 {
		t.Errorf("B got %d packets for 30 frames: beep sent as a second stream", n)
	}
}

func TestRelayCloseIdempotentAndNoLeaks(t *testing.T) {
	var now time.Time
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	pool := testPool(t, time.Second, clock)
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	pool.SetMetrics(m)
	runtime.GC()
	base := runtime.NumGoroutine()
	for i := range 1000 {
		r, err := NewRelay(pool, lo, WithMetrics(m), WithInactivityTimeout(time.Minute))
		if err != nil {
			t.Fatalf("relay %d: %v", i, err)
		}
		if i%2 == 0 {
			r.SetRemote(LegOperator, netip.MustParseAddrPort("127.0.0.1:9"), PCMU.Codec(), 0)
		}
		r.Close()
		r.Close()
		if !errors.Is(r.Err(), ErrClosed) {
			t.Fatalf("Err after Close = %v", r.Err())
		}
		mu.Lock()
		now = now.Add(time.Second) // let ports drain so 500 pairs suffice
		mu.Unlock()
	}
	if n := pool.InUse(); n != 0 {
		t.Fatalf("%d port pairs still in use", n)
	}
	var g int
	for range 100 {
		if g = runtime.NumGoroutine(); g <= base+2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if g > base+2 {
		t.Fatalf("goroutines: %d before, %d after", base, g)
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		switch mf.GetName() {
		case "plateau_media_sessions_active", "plateau_media_ports_in_use":
			if v := mf.GetMetric()[0].GetGauge().GetValue(); v != 0 {
				t.Errorf("%s = %v", mf.GetName(), v)
			}
		}
	}
}

// RTCP is terminated per leg: an APP packet (free text) sent by one peer
// never reaches the other; each peer gets Plateau's own reports instead.
func TestRelayRTCPTerminated(t *testing.T) {
	c := newCall(t, PCMU.Codec(), PCMU.Codec(), WithRTCPInterval(40*time.Millisecond))
	listen := func() *net.UDPConn {
		s, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo, 0)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	ra, rb := listen(), listen()
	bRTCP := rb.LocalAddr().(*net.UDPAddr).AddrPort()
	// B's SDP port is rb-1, so its RTCP goes to rb (RFC 3550 port+1).
	c.r.SetRemote(LegOutside, netip.AddrPortFrom(lo, bRTCP.Port()-1), PCMU.Codec(), 101)
	secret := []byte("MEET AT GATE 3")
	rr := []byte{0x80, 201, 0, 1, 0, 0, 0, 7} // empty receiver report
	app := append([]byte{0x80, 204, 0, byte(2 + len(secret)/4), 0, 0, 0, 7, 'T', 'E', 'X', 'T'}, secret[:len(secret)/4*4]...)
	compound := append(append([]byte(nil), rr...), app...)
	relayRTCP := netip.AddrPortFrom(lo, uint16(c.r.LocalPort(LegOperator)+1))
	deadline := time.Now().Add(time.Second)
	buf := make([]byte, 1500)
	reports := 0
	bRelayRTCP := netip.AddrPortFrom(lo, uint16(c.r.LocalPort(LegOutside)+1))
	for time.Now().Before(deadline) {
		ra.WriteToUDPAddrPort(compound, relayRTCP)
		rb.WriteToUDPAddrPort(rr, bRelayRTCP) // B speaks RTCP: it gets reports
		rb.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, from, err := rb.ReadFromUDPAddrPort(buf)
		if err != nil {
			continue
		}
		if from.Port() != uint16(c.r.LocalPort(LegOutside)+1) {
			t.Fatalf("RTCP from %v", from)
		}
		if n == len(rr) && bytes.Equal(buf[:n], rr) {
			t.Fatal("B's own RR came back: relayed, not terminated")
		}
		if bytes.Contains(buf[:n], secret[:4]) || bytes.Contains(buf[:n], []byte("TEXT")) {
			t.Fatalf("the APP packet's text reached the other leg: % x", buf[:n])
		}
		if !validRTCP(buf[:n]) || !bytes.Contains(buf[:n], []byte(cname)) {
			t.Fatalf("not a compound report with our CNAME: % x", buf[:n])
		}
		reports++
	}
	if reports == 0 {
		t.Fatal("no RTCP report from Plateau to B")
	}
	if got := counter(t, c.reg, "plateau_rtcp_packets_total", "direction", "in"); got == 0 {
		t.Error("A's RTCP not counted as received")
	}
}
