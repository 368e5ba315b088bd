package media

import (
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The sequence rules of RFC 3550 A.1 as the relay applies them: loss and
// reordering stay in one segment, a restart on the same SSRC starts a
// new one.
func TestRecvStatsRestart(t *testing.T) {
	tests := []struct {
		name    string
		seq     uint16
		ts      uint32
		audio   bool
		restart bool
		gap     int
	}{
		{"next", 1001, 160 * 1001, true, false, 0},
		{"two lost", 1003, 160 * 1003, true, false, 2},
		{"reordered by 50", 951, 160 * 951, true, false, 0},
		{"duplicate", 1000, 160 * 1000, true, false, 0},
		{"2999 ahead: loss", 3999, 160 * 3999, true, false, 2998},
		{"3000 ahead: restart", 4000, 160 * 4000, true, true, 0},
		{"100 behind: reordered", 900, 160 * 900, true, false, 0},
		{"101 behind: restart", 899, 160 * 899, true, true, 0},
		{"lower numbers, new timestamps (re-INVITE)", 12, 7, true, true, 0},
		{"next number, timestamp back: restart", 1001, 5, true, true, 0},
		{"next number, timestamp a minute on: restart", 1001, 160*1000 + 61*SampleRate, true, true, 0},
		{"event keeping an older start timestamp", 1001, 160 * 990, false, false, 0},
		{"wraparound", 0, 160 * 1001, true, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s recvStats
			base := uint16(1000)
			if tt.name == "wraparound" {
				base = 65535
			}
			s.update(base, 160*1000, 7, 160, 0, true)
			seg := s.seg
			gap, restart := s.update(tt.seq, tt.ts, 7, 160, 20*time.Millisecond, tt.audio)
			if restart != tt.restart || gap != tt.gap {
				t.Fatalf("update = gap %d restart %v, want %d %v", gap, restart, tt.gap, tt.restart)
			}
			if (s.seg != seg) != tt.restart {
				t.Fatalf("segment %d → %d, restart %v", seg, s.seg, tt.restart)
			}
		})
	}
}

// Whatever feeds it, the stream toward a party has continuous numbering:
// a new segment continues after the last number sent, and a packet older
// than the resynchronisation point is refused (its number was used).
func TestOutStreamForward(t *testing.T) {
	now := time.Unix(0, 0)
	var o outStream
	s1, t1, _, ok := o.forward(1, 500, 8000, now, true)
	if !ok {
		t.Fatal("first packet refused")
	}
	s2, t2, m2, _ := o.forward(1, 501, 8160, now.Add(ptime), true)
	if s2 != s1+1 || t2 != t1+160 || m2 {
		t.Fatalf("in segment: %d/%d marker %v after %d/%d", s2, t2, m2, s1, t1)
	}
	// A restart (segment 2) with lower numbers continues our numbering.
	s3, t3, m3, ok := o.forward(2, 7, 99, now.Add(2*ptime), true)
	if !ok || s3 != s2+1 || t3-t2 != 160 || !m3 {
		t.Fatalf("new segment: %d/%d marker %v ok %v after %d/%d", s3, t3, m3, ok, s2, t2)
	}
	// A generated frame, then a packet of the segment older than the
	// resync point: refused, it would reuse a number.
	si, _, _ := o.inject(now.Add(3 * ptime))
	s4, _, _, ok := o.forward(2, 8, 259, now.Add(4*ptime), true)
	if !ok || s4 != si+1 {
		t.Fatalf("after a generated frame: %d ok %v, want %d", s4, ok, si+1)
	}
	if _, _, _, ok := o.forward(2, 7, 99, now.Add(4*ptime), true); ok {
		t.Fatal("a packet older than the resync point was numbered")
	}
}

// A call longer than 32768 packets (11 minutes of 20 ms frames) keeps
// flowing: the resync point stays comparable with the newest packet, so
// in-order packets are never taken as older than it (they were, for the
// next 32768 packets, once the 16-bit distance wrapped), across several
// wraps of the sender's sequence number, with or without a resync first.
func TestOutStreamForwardLongCall(t *testing.T) {
	for _, inject := range []bool{false, true} {
		now := time.Unix(0, 0)
		var o outStream
		if inject {
			o.inject(now) // the notice before the first forwarded packet
		}
		var last uint16
		for i := range 3*65536 + 10 {
			seq := uint16(40000 + i)
			now = now.Add(ptime)
			out, _, _, ok := o.forward(1, seq, uint32(i)*FrameSamples, now, true)
			if !ok {
				t.Fatalf("inject %v: in-order packet %d (seq %d) refused as late", inject, i, seq)
			}
			if i > 0 && out != last+1 {
				t.Fatalf("inject %v: packet %d numbered %d after %d", inject, i, out, last)
			}
			last = out
		}
		// Reordering just behind the newest is still forwarded; a packet
		// from before the resync point still is not (its number was used).
		if _, _, _, ok := o.forward(1, last-o.seqOff-50, 0, now, true); !ok {
			t.Fatalf("inject %v: a packet 50 behind the newest refused", inject)
		}
	}
	var o outStream
	now := time.Unix(0, 0)
	o.forward(1, 100, 0, now, true)
	o.inject(now.Add(ptime))
	o.forward(1, 101, 160, now.Add(2*ptime), true)
	for seq := uint16(102); seq != 101+40000; seq++ {
		o.forward(1, seq, 0, now, true)
	}
	if _, _, _, ok := o.forward(1, 100, 0, now, true); ok {
		t.Fatal("a packet older than the resync point was numbered after a long run")
	}
}

// The same through the relay: 40000 in-order packets of one operator
// stream (13 minutes of audio) are all sent on and recorded, none dropped
// as late. Packets go straight into handleRTP with a simulated clock, so
// the test takes a second, not 13 minutes.
func TestRelayLongCallKeepsFlowing(t *testing.T) {
	tap := &recTap{}
	reg := prometheus.NewRegistry()
	r, err := NewRelay(testPool(t, 0, nil), lo, WithTap(tap), WithMetrics(NewMetrics(reg)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	op := sink(t)
	r.SetRemote(LegOperator, op, PCMU.Codec(), 101)
	r.SetRemote(LegOutside, sink(t), PCMU.Codec(), 101)
	l := r.legs[LegOperator]
	pkt := rawRTP(0, 0, 0, 1234, make([]byte, FrameSamples))
	now := time.Now()
	const n = 40000
	for i := range n {
		seq, ts := uint16(1000+i), uint32(i)*FrameSamples
		pkt[2], pkt[3] = byte(seq>>8), byte(seq)
		pkt[4], pkt[5], pkt[6], pkt[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
		now = now.Add(ptime)
		r.handleRTP(l, copy(l.buf[:], pkt), op, now)
	}
	if late := counter(t, reg, "plateau_rtp_dropped_packets_total", "reason", DropLate); late != 0 {
		t.Fatalf("%v of %d in-order packets dropped as late", late, n)
	}
	if got := tap.count(LegOperator); got != n {
		t.Fatalf("%d of %d packets recorded", got, n)
	}
}

// Latching, row by row: the signalled host only (any port), or any host
// within the window for LatchAny; never before SetRemote's address.
func TestLegAccept(t *testing.T) {
	sdp := netip.MustParseAddrPort("192.0.2.10:4000")
	nat := netip.MustParseAddrPort("192.0.2.10:31000")
	other := netip.MustParseAddrPort("198.51.100.7:4000")
	tests := []struct {
		name  string
		latch LatchMode
		from  []netip.AddrPort
		want  []bool
	}{
		{"signalled address", LatchHost, []netip.AddrPort{sdp, sdp}, []bool{true, true}},
		{"same host, NAT port latches", LatchHost, []netip.AddrPort{nat, nat, other}, []bool{true, true, false}},
		{"other host first is refused", LatchHost, []netip.AddrPort{other, other, sdp, other}, []bool{false, false, true, false}},
		{"signalled address takes over a NAT guess", LatchHost, []netip.AddrPort{nat, sdp, nat}, []bool{true, true, false}},
		{"any: other host latches in the window", LatchAny, []netip.AddrPort{other, other, nat}, []bool{true, true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &leg{hasRemote: true, sdpAddr: sdp, srcHost: sdp.Addr(), latch: tt.latch}
			for i, from := range tt.from {
				if got := l.accept(from, 16); got != tt.want[i] {
					t.Fatalf("packet %d from %v: accept %v, want %v", i, from, got, tt.want[i])
				}
			}
		})
	}
	l := &leg{hasRemote: true, sdpAddr: sdp, srcHost: sdp.Addr(), latch: LatchAny}
	for range 16 {
		l.accept(sdp, 16) // the window passes while latched to the SDP address
	}
	l.latched = false
	if l.accept(other, 16) {
		t.Fatal("LatchAny accepted a new host after the window")
	}
}
