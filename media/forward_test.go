package media

import (
	"net/netip"
	"testing"
	"time"
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
