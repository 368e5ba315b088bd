package media

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus"
)

// capTap keeps a copy of every frame the relay records, per channel.
type capTap struct {
	mu     sync.Mutex
	frames [2][]*rtp.Packet
}

func (c *capTap) TapRTP(l Leg, pkt *rtp.Packet, _ time.Time) error {
	p := pkt.Clone()
	c.mu.Lock()
	c.frames[l] = append(c.frames[l], p)
	c.mu.Unlock()
	return nil
}

func (c *capTap) get(l Leg) []*rtp.Packet {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.frames[l])
}

// pcmOf decodes the frames as a recorder does: by static payload type
// only (0 PCMU, 8 PCMA); anything else is not audio to it.
func pcmOf(frames []*rtp.Packet) []int16 {
	var out []int16
	for _, f := range frames {
		var enc Encoding
		switch f.PayloadType {
		case 0:
			enc = PCMU
		case 8:
			enc = PCMA
		default:
			continue
		}
		p := make([]int16, len(f.Payload))
		decodeFrame(enc, p, f.Payload)
		out = append(out, p...)
	}
	return out
}

// peer is a raw RTP peer: it sends whatever the test builds and keeps a
// copy of every packet it receives, raw.
type peer struct {
	conn *net.UDPConn
	mu   sync.Mutex
	got  [][]byte
	done chan struct{}
}

func newPeer(t testing.TB, ip netip.Addr) *peer {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadBuffer(1 << 20)
	p := &peer{conn: c, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		buf := make([]byte, 1500)
		for {
			n, _, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			p.got = append(p.got, bytes.Clone(buf[:n]))
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Close(); <-p.done })
	return p
}

func (p *peer) addr() netip.AddrPort {
	a := p.conn.LocalAddr().(*net.UDPAddr).AddrPort()
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

func (p *peer) send(to netip.AddrPort, b []byte) { p.conn.WriteToUDPAddrPort(b, to) }

func (p *peer) raw() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.got)
}

func (p *peer) packets(t testing.TB) []*rtp.Packet {
	var out []*rtp.Packet
	for _, b := range p.raw() {
		var pkt rtp.Packet
		if err := pkt.Unmarshal(b); err != nil {
			t.Fatalf("peer got a packet that is not RTP: %v", err)
		}
		out = append(out, &pkt)
	}
	return out
}

func (p *peer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.got)
}

// quiet waits until the counters stop moving for 300 ms.
func quiet(t testing.TB, counts ...func() int) {
	t.Helper()
	last := make([]int, len(counts))
	stable := time.Now()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		changed := false
		for i, c := range counts {
			if n := c(); n != last[i] {
				last[i], changed = n, true
			}
		}
		if changed {
			stable = time.Now()
		} else if time.Since(stable) > 300*time.Millisecond {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("traffic never settled")
}

// audioPacket builds an RTP packet of pcm encoded as codec.
func audioPacket(codec Codec, seq uint16, ts, ssrc uint32, pcm []int16) []byte {
	b := make([]byte, 12+len(pcm))
	writeHeader(b, codec.PayloadType, false, seq, ts, ssrc)
	encodeFrame(codec.Encoding, b[12:], pcm)
	return b
}

// checkRecordedAsSent is the invariant, for one direction: the frames the
// party at p received (audio in its codec) are exactly the frames recorded
// on channel ch, same numbering, same decoded audio, none missing on
// either side. Telephone events are the only other thing it may receive.
// A frame is recorded before it is sent, so a recorded frame may still be
// in flight: the count is compared again until it matches or 5 s pass.
func checkRecordedAsSent(t *testing.T, tap *capTap, ch Leg, p *peer, codec Codec, dtmfPT uint8) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		recorded, sent, err := recordedAsSent(tap, ch, p, codec, dtmfPT)
		if err != nil {
			t.Fatal(err)
		}
		if recorded == sent {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("channel %v: %d frames recorded, %d sent toward %v", ch, recorded, sent, ch.Other())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func recordedAsSent(tap *capTap, ch Leg, p *peer, codec Codec, dtmfPT uint8) (recorded, sent int, err error) {
	rec := map[uint16]*rtp.Packet{}
	for _, f := range tap.get(ch) {
		if f.PayloadType != 0 && f.PayloadType != 8 {
			return 0, 0, fmt.Errorf("%v channel: recorded payload type %d, want a static G.711 type", ch, f.PayloadType)
		}
		if _, dup := rec[f.SequenceNumber]; dup {
			return 0, 0, fmt.Errorf("%v channel: sequence %d recorded twice", ch, f.SequenceNumber)
		}
		rec[f.SequenceNumber] = f
	}
	for _, b := range p.raw() {
		if len(b) < 12 || b[0] != 0x80 {
			return 0, 0, fmt.Errorf("toward %v: header with extension/CSRC/padding left the relay: % x", ch.Other(), b[:min(len(b), 16)])
		}
		var pkt rtp.Packet
		pkt.Unmarshal(b)
		switch {
		case pkt.PayloadType == codec.PayloadType:
			sent++
			f, ok := rec[pkt.SequenceNumber]
			if !ok {
				return 0, 0, fmt.Errorf("toward %v: frame seq %d left and was not recorded", ch.Other(), pkt.SequenceNumber)
			}
			if f.Timestamp != pkt.Timestamp || f.SSRC != pkt.SSRC {
				return 0, 0, fmt.Errorf("toward %v: frame seq %d recorded as ts %d ssrc %x, sent as ts %d ssrc %x", ch.Other(), pkt.SequenceNumber, f.Timestamp, f.SSRC, pkt.Timestamp, pkt.SSRC)
			}
			pcm := make([]int16, len(pkt.Payload))
			decodeFrame(codec.Encoding, pcm, pkt.Payload)
			if got := pcmOf([]*rtp.Packet{f}); !slices.Equal(got, pcm) {
				return 0, 0, fmt.Errorf("toward %v: frame seq %d: recorded audio differs from the audio sent", ch.Other(), pkt.SequenceNumber)
			}
		case dtmfPT != 0 && pkt.PayloadType == dtmfPT:
			if len(pkt.Payload) != 4 || pkt.Payload[0] > 15 {
				return 0, 0, fmt.Errorf("toward %v: event payload % x is not one DTMF event", ch.Other(), pkt.Payload)
			}
		default:
			return 0, 0, fmt.Errorf("toward %v: payload type %d left the relay", ch.Other(), pkt.PayloadType)
		}
	}
	return len(rec), sent, nil
}

// rig is a relay between two raw peers, with a capturing tap.
type rig struct {
	r        *Relay
	op, out  *peer
	tap      *capTap
	reg      *prometheus.Registry
	opCodec  Codec
	outCodec Codec
}

func newRig(t *testing.T, opCodec, outCodec Codec, opts ...Option) *rig {
	t.Helper()
	g := &rig{tap: &capTap{}, reg: prometheus.NewRegistry(), opCodec: opCodec, outCodec: outCodec}
	m := NewMetrics(g.reg)
	r, err := NewRelay(testPool(t, 0, nil), lo, append([]Option{WithMetrics(m), WithTap(g.tap), WithRTCPInterval(0)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	g.r = r
	g.op, g.out = newPeer(t, lo), newPeer(t, lo)
	if err := r.SetRemote(LegOperator, g.op.addr(), opCodec, 101); err != nil {
		t.Fatal(err)
	}
	if err := r.SetRemote(LegOutside, g.out.addr(), outCodec, 101); err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *rig) relayAddr(l Leg) netip.AddrPort {
	return netip.AddrPortFrom(lo, uint16(g.r.LocalPort(l)))
}

func (g *rig) drops(reason string) float64 {
	mfs, _ := g.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "plateau_rtp_dropped_packets_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// talk sends pcm from the peer of leg l in 20 ms frames, paced by pace.
func (g *rig) talk(l Leg, pcm []int16, seq uint16, ts, ssrc uint32, pace time.Duration) {
	p, codec := g.op, g.opCodec
	if l == LegOutside {
		p, codec = g.out, g.outCodec
	}
	for off := 0; off+FrameSamples <= len(pcm); off += FrameSamples {
		p.send(g.relayAddr(l), audioPacket(codec, seq, ts, ssrc, pcm[off:off+FrameSamples]))
		seq++
		ts += FrameSamples
		time.Sleep(pace)
	}
}

func (g *rig) settle(t *testing.T) { quiet(t, g.op.count, g.out.count) }

// A phone offering PCMU as dynamic type 96 is heard, recorded and
// monitored (main at 12849c6: the recorder and the monitor dropped PT 96,
// the outside party heard the operator for the whole call).
func TestRelayDynamicPTRecordedAndMonitored(t *testing.T) {
	g := newRig(t, Codec{Encoding: PCMU, PayloadType: 96}, PCMA.Codec())
	sup := newPeer(t, lo)
	m, err := NewMonitor(testPool(t, 0, nil), lo, Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.SetRemote(sup.addr(), PCMU.Codec(), 0)
	if err := m.Attach(g.r); err != nil {
		t.Fatal(err)
	}
	g.talk(LegOperator, Tone(hzOp, 600*time.Millisecond), 100, 1000, 0xA, 5*time.Millisecond)
	g.settle(t)
	checkRecordedAsSent(t, g.tap, LegOperator, g.out, g.outCodec, 101)
	if rec := pcmOf(g.tap.get(LegOperator)); !hears(rec, hzOp) {
		t.Fatalf("operator channel does not hold the operator's tone (%d samples)", len(rec))
	}
	waitFor(t, "the supervisor hears the operator", func() bool {
		var pcm []int16
		for _, p := range sup.packets(t) {
			s := make([]int16, len(p.Payload))
			decodeFrame(PCMU, s, p.Payload)
			pcm = append(pcm, s...)
		}
		return hears(pcm, hzOp)
	})
}

// Comfort noise, unknown payload types, malformed events and the sender's
// header extension never reach the other party; each drop is counted.
func TestRelayOnlyRecordedAudioLeaves(t *testing.T) {
	g := newRig(t, PCMU.Codec(), PCMU.Codec())
	secret := []byte("MEET AT GATE 3, 22:00")
	to := g.relayAddr(LegOperator)
	// A valid audio packet whose header extension carries text.
	ext := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: 1, Timestamp: 160, SSRC: 9}, Payload: make([]byte, FrameSamples)}
	ext.Header.SetExtension(1, secret[:8])
	encodeFrame(PCMU, ext.Payload, Tone(hzOp, 20*time.Millisecond))
	b, _ := ext.Marshal()
	g.op.send(to, b)
	g.op.send(to, rawRTP(ptComfortNoise, 2, 320, 9, secret))              // CN carrying text
	g.op.send(to, rawRTP(99, 3, 480, 9, secret))                          // not negotiated
	g.op.send(to, rawRTP(101, 4, 480, 9, secret))                         // not one event
	g.op.send(to, rawRTP(101, 5, 480, 9, []byte{40, 0x0a, 0, 160}))       // event 40 is no key
	g.op.send(to, rawRTP(101, 6, 480, 9, []byte{5, 0x0a | 0x40, 0, 160})) // reserved bit
	g.op.send(to, rawRTP(101, 7, 480, 9, []byte{5, 0x3f, 0xAB, 0xCD}))    // a valid event
	g.op.send(to, rawRTP(0, 8, 640, 9, make([]byte, FrameSamples)))       // audio
	g.settle(t)
	for _, b := range g.out.raw() {
		if bytes.Contains(b, secret[:4]) {
			t.Fatalf("text reached the outside party: % x", b)
		}
	}
	checkRecordedAsSent(t, g.tap, LegOperator, g.out, g.outCodec, 101)
	if n := len(g.out.raw()); n != 3 {
		t.Fatalf("outside got %d packets, want 2 audio + 1 event", n)
	}
	for reason, want := range map[string]float64{DropComfortNoise: 1, DropUnknownPayload: 1, DropBadEvent: 3} {
		if got := g.drops(reason); got != want {
			t.Errorf("drops{%s} = %v, want %v", reason, got, want)
		}
	}
}

// The operator's phone is muted (no RTP at all) while a supervisor barges
// or whispers: what the parties hear of the supervisor is recorded, on the
// channel of the party who heard it, frame by frame (main at 12849c6 sent
// the supervisor to the outside party and recorded nothing).
func TestRelayMonitorWithMutedOperatorIsRecorded(t *testing.T) {
	for _, mode := range []MonitorMode{Whisper, Barge} {
		t.Run(mode.String(), func(t *testing.T) {
			g := newRig(t, PCMU.Codec(), PCMA.Codec())
			g.supervise(t, mode, Tone(hzSup, 600*time.Millisecond))
			checkRecordedAsSent(t, g.tap, LegOperator, g.out, g.outCodec, 101)
			checkRecordedAsSent(t, g.tap, LegOutside, g.op, g.opCodec, 101)
			outHeard := pcmOf(g.tap.get(LegOperator))
			if got := hears(outHeard, hzSup); got != (mode == Barge) {
				t.Fatalf("outside party heard the supervisor: %v, want %v", got, mode == Barge)
			}
			if !hears(pcmOf(g.tap.get(LegOutside)), hzSup) {
				t.Fatal("the operator's channel of hearing does not hold the supervisor")
			}
		})
	}
}

// supervise attaches a monitor in mode to the rig's relay, has the
// supervisor say pcm at the real pace (the monitor's clock mixes it),
// then detaches it, so that no clock frame is in flight when the test
// compares, and waits for the relay to settle.
func (g *rig) supervise(t *testing.T, mode MonitorMode, pcm []int16) {
	t.Helper()
	m, err := NewMonitor(testPool(t, 0, nil), lo, mode)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	sup := newPeer(t, lo)
	m.SetRemote(sup.addr(), PCMU.Codec(), 0)
	if err := m.Attach(g.r); err != nil {
		t.Fatal(err)
	}
	supAddr := netip.AddrPortFrom(lo, uint16(m.LocalPort()))
	for i := 0; i+FrameSamples <= len(pcm); i += FrameSamples {
		sup.send(supAddr, audioPacket(PCMU.Codec(), uint16(i/FrameSamples), uint32(i), 77, pcm[i:i+FrameSamples]))
		time.Sleep(20 * time.Millisecond)
	}
	m.Detach()
	g.settle(t)
}

// Early media is one-way: the operator hears the outside party; nothing
// of the operator reaches the called party before the answer.
func TestRelayEarlyMediaOneWay(t *testing.T) {
	g := newRig(t, PCMU.Codec(), PCMU.Codec())
	g.r.SetEarly(true)
	go g.talk(LegOutside, Tone(hzCust, 200*time.Millisecond), 1, 1, 0xB, 5*time.Millisecond)
	g.talk(LegOperator, Tone(hzOp, 200*time.Millisecond), 1, 1, 0xA, 5*time.Millisecond)
	g.settle(t)
	if n := g.out.count(); n != 0 {
		t.Fatalf("called party got %d packets during early media", n)
	}
	if g.op.count() == 0 {
		t.Fatal("operator heard nothing of the early media")
	}
	if got := g.drops(DropEarlyMedia); got != 10 {
		t.Errorf("early_media drops = %v, want 10", got)
	}
	g.r.SetEarly(false)
	g.talk(LegOperator, Tone(hzOp, 100*time.Millisecond), 11, 1601, 0xA, 5*time.Millisecond)
	g.settle(t)
	checkRecordedAsSent(t, g.tap, LegOperator, g.out, g.outCodec, 101)
	if n := g.out.count(); n != 5 {
		t.Fatalf("after answer the called party got %d packets, want 5", n)
	}
}

// Detention: nothing of the operator reaches an outside party before it
// has heard the whole notice; a new outside party (REFER, failover) closes
// the gate again.
func TestRelayDetentionNoticeGate(t *testing.T) {
	g := newRig(t, PCMU.Codec(), PCMA.Codec(), WithDetention())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var seq uint16 = 1
	var ts uint32 = 1
	say := func(d time.Duration) {
		g.talk(LegOperator, Tone(hzOp, d), seq, ts, 0xA, 5*time.Millisecond)
		n := uint16(d / ptime)
		seq += n
		ts += uint32(n) * FrameSamples
	}
	say(100 * time.Millisecond)
	g.settle(t)
	if n := g.out.count(); n != 0 || !g.r.NoticePending() {
		t.Fatalf("before the notice the outside party got %d packets", n)
	}
	// The operator still hears the outside party meanwhile.
	g.talk(LegOutside, Tone(hzCust, 60*time.Millisecond), 1, 1, 0xB, 5*time.Millisecond)
	waitFor(t, "operator hears", func() bool { return g.op.count() == 3 })

	notice := Tone(800, 100*time.Millisecond)
	if err := g.r.PlayNotice(ctx, notice); err != nil {
		t.Fatal(err)
	}
	say(100 * time.Millisecond)
	g.settle(t)
	checkRecordedAsSent(t, g.tap, LegOperator, g.out, g.outCodec, 101)
	if n := g.out.count(); n != 10 {
		t.Fatalf("outside got %d packets, want the 5 of the notice then 5 of the operator", n)
	}
	rec := pcmOf(g.tap.get(LegOperator))
	if !hears(rec[:5*FrameSamples], 800) || hears(rec[:5*FrameSamples], hzOp) {
		t.Fatal("the first frames recorded toward the outside party are not the notice alone")
	}

	g.r.NewOutsideParty() // e.g. REFER: the target has not heard the notice
	before := g.out.count()
	say(100 * time.Millisecond)
	g.settle(t)
	if n := g.out.count(); n != before {
		t.Fatalf("the new outside party got %d packets before its notice", n-before)
	}
	if got := g.drops(DropNotice); got != 10 {
		t.Errorf("notice_pending drops = %v, want 10", got)
	}
	// A notice that cannot reach the party (hold) does not open the gate.
	g.r.SetDirection(LegOutside, SendOnly)
	if err := g.r.PlayNotice(ctx, notice); err == nil || !g.r.NoticePending() {
		t.Fatalf("PlayNotice toward a held party: %v, pending %v; want an error and the gate closed", err, g.r.NoticePending())
	}
}

// Only the signalled host may send a leg's media; an attacker on another
// LAN address who floods the port first is neither heard nor answered,
// and does not lock the real peer out. Before the address is signalled
// nothing is accepted.
func TestRelayLatchRefusesOtherHost(t *testing.T) {
	attackerIP := netip.MustParseAddr("127.0.0.2")
	if c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(attackerIP, 0))); err != nil {
		t.Skipf("no second loopback address: %v", err)
	} else {
		c.Close()
	}
	reg := prometheus.NewRegistry()
	tap := &capTap{}
	r, err := NewRelay(testPool(t, 0, nil), lo, WithMetrics(NewMetrics(reg)), WithTap(tap), WithRTCPInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	g := &rig{r: r, op: newPeer(t, lo), out: newPeer(t, lo), tap: tap, reg: reg, opCodec: PCMU.Codec(), outCodec: PCMU.Codec()}
	attacker := newPeer(t, attackerIP)
	flood := func(n int) {
		for i := range n {
			attacker.send(g.relayAddr(LegOperator), audioPacket(PCMU.Codec(), uint16(i), uint32(i*FrameSamples), 0xBAD, Tone(1000, 20*time.Millisecond)))
		}
	}
	flood(20) // before any SDP: the ports were guessed
	waitFor(t, "the early flood dropped", func() bool { return g.drops(DropNoRemote) == 20 })
	r.SetRemote(LegOperator, g.op.addr(), PCMU.Codec(), 101)
	r.SetRemote(LegOutside, g.out.addr(), PCMU.Codec(), 101)
	flood(20) // after: still not the signalled host
	g.talk(LegOperator, Tone(hzOp, 100*time.Millisecond), 1, 1, 0xA, 2*time.Millisecond)
	flood(20)
	g.talk(LegOutside, Tone(hzCust, 100*time.Millisecond), 1, 1, 0xB, 2*time.Millisecond)
	g.settle(t)
	if n := attacker.count(); n != 0 {
		t.Fatalf("the attacker received %d packets of the call", n)
	}
	if n := g.out.count(); n != 5 {
		t.Fatalf("outside got %d packets, want the operator's 5", n)
	}
	if n := g.op.count(); n != 5 {
		t.Fatalf("operator got %d packets, want 5: locked out?", n)
	}
	if s := r.Stats(LegOperator); s.Source != g.op.addr() {
		t.Fatalf("latched %v, want the phone %v", s.Source, g.op.addr())
	}
	if nr, us := g.drops(DropNoRemote), g.drops(DropUnknownSource); nr != 20 || us != 40 {
		t.Errorf("drops no_remote %v unknown_source %v, want 20 and 40", nr, us)
	}
	checkRecordedAsSent(t, tap, LegOperator, g.out, g.outCodec, 101)
	if hears(pcmOf(tap.get(LegOperator)), 1000) {
		t.Fatal("the attacker's audio was recorded as the operator")
	}

	// A carrier behind NAT (media_latch: any) may send from another host.
	r.SetLatch(LegOutside, LatchAny)
	r.SetRemote(LegOutside, netip.MustParseAddrPort("10.9.9.9:4000"), PCMU.Codec(), 101)
	attacker.send(g.relayAddr(LegOutside), audioPacket(PCMU.Codec(), 1, 1, 0xC, make([]int16, FrameSamples)))
	waitFor(t, "latched from another host", func() bool { return r.Stats(LegOutside).Source == attacker.addr() })
}

// A stream that restarts its sequence numbers on the same SSRC is a new
// segment: every packet is forwarded with continuous numbering (main at
// 12849c6 forwarded them numbered backwards, and a jitter buffer drops
// those as late).
func TestRelaySequenceRestart(t *testing.T) {
	g := newRig(t, PCMU.Codec(), PCMU.Codec())
	g.talk(LegOutside, Tone(hzCust, 400*time.Millisecond), 30000, 500000, 0xC, 2*time.Millisecond)
	g.talk(LegOutside, Tone(hzCust, 400*time.Millisecond), 12, 7, 0xC, 2*time.Millisecond) // re-INVITE: restart
	g.settle(t)
	got := g.op.packets(t)
	if len(got) != 40 {
		t.Fatalf("operator got %d packets, want 40", len(got))
	}
	for i := 1; i < len(got); i++ {
		if d := got[i].SequenceNumber - got[i-1].SequenceNumber; d != 1 {
			t.Fatalf("packet %d: sequence step %d, want 1", i, int16(d))
		}
		if d := int32(got[i].Timestamp - got[i-1].Timestamp); d <= 0 {
			t.Fatalf("packet %d: timestamp step %d, want forward", i, d)
		}
	}
	if s := g.r.Stats(LegOutside); s.Restarts != 1 {
		t.Errorf("restarts = %d, want 1", s.Restarts)
	}
	checkRecordedAsSent(t, g.tap, LegOutside, g.op, g.opCodec, 101)
}

// Ports come from the free pool at random: the next call's ports cannot
// be predicted from one's own.
func TestPortPoolRandom(t *testing.T) {
	p := testPool(t, 0, nil)
	var ports []int
	for range 20 {
		pp, err := p.Allocate(lo)
		if err != nil {
			t.Fatal(err)
		}
		defer pp.Close()
		ports = append(ports, pp.Port)
	}
	steps := map[int]int{}
	for i := 1; i < len(ports); i++ {
		steps[ports[i]-ports[i-1]]++
	}
	for step, n := range steps {
		if n > 5 {
			t.Fatalf("ports %v: step %d repeats %d times, predictable", ports, step, n)
		}
	}
}

// A key pressed by the outside party while a supervisor whispers (the
// monitor's clock sends the operator's frames) reaches the operator as one
// event: all its packets keep one timestamp, the first alone marked.
func TestRelayEventDuringWhisperStaysOneEvent(t *testing.T) {
	g := newRig(t, PCMU.Codec(), PCMU.Codec())
	m, err := NewMonitor(testPool(t, 0, nil), lo, Whisper)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Attach(g.r); err != nil {
		t.Fatal(err)
	}
	to := g.relayAddr(LegOutside)
	for i, flags := range []byte{0x0a, 0x0a, 0x8a, 0x8a} {
		g.out.send(to, rawRTP(101, uint16(10+i), 5000, 0xE, []byte{7, flags, 0, byte(160 * (i + 1))}))
		time.Sleep(45 * time.Millisecond) // monitor frames interleave
	}
	m.Detach()
	g.settle(t)
	var events []*rtp.Packet
	for _, p := range g.op.packets(t) {
		if p.PayloadType == 101 {
			events = append(events, p)
		}
	}
	if len(events) != 4 {
		t.Fatalf("operator got %d event packets, want 4", len(events))
	}
	for i, e := range events {
		if e.Timestamp != events[0].Timestamp || e.Marker != (i == 0) {
			t.Fatalf("event packet %d: ts %d marker %v; first ts %d: one key press split", i, e.Timestamp, e.Marker, events[0].Timestamp)
		}
	}
}
