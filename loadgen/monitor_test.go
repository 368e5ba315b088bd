package loadgen

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"testing"
	"time"

	"plateau/media"
)

func TestProbeHasNoUlawMinusZero(t *testing.T) {
	// 0x7f is the one µ-law code a decode-mix-encode round trip (whisper,
	// barge) turns into 0xff: no probe may contain it, whatever its fields.
	for _, c := range []struct {
		name        string
		stream, seq uint32
		sent        time.Duration
	}{
		{"zero", 0, 0, 0},
		{"0x7f fields", 0x7f, 0x7f7f, 0x7f7f7f7f},
		{"stream 127 seq 383", 127, 383, 127 * time.Millisecond},
		{"all ones", math.MaxUint32, math.MaxUint32, math.MaxInt64},
		{"an hour in", 1999, 180_000, time.Hour + 127},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := payload(c.stream, c.seq, c.sent)
			if i := bytes.IndexByte(p[:probeLen], 0x7f); i >= 0 {
				t.Errorf("probe byte %d is 0x7f: % x", i, p[:probeLen])
			}
			stream, seq, sent, ok := readProbe(p)
			if !ok || stream != c.stream || seq != c.seq || sent != c.sent {
				t.Errorf("readProbe = %d %d %v %v, want %d %d %v", stream, seq, sent, ok, c.stream, c.seq, c.sent)
			}
		})
	}
	// A field byte without its top bit (altered in transit) is not a probe.
	p := payload(3, 4, time.Second)
	p[10] &^= 0x80
	if _, _, _, ok := readProbe(p); ok {
		t.Error("altered probe accepted")
	}
}

func TestSeqTrackerExtend(t *testing.T) {
	for _, c := range []struct {
		name string
		seqs []uint16
		want []int64
	}{
		{"in order", []uint16{10, 11, 12}, []int64{10, 11, 12}},
		{"gap", []uint16{10, 13}, []int64{10, 13}},
		{"wrap", []uint16{65534, 65535, 0, 1}, []int64{65534, 65535, 65536, 65537}},
		{"reordered", []uint16{10, 12, 11, 13}, []int64{10, 12, 11, 13}},
		{"reordered across the wrap", []uint16{65535, 1, 0, 2}, []int64{65535, 65537, 65536, 65538}},
		{"repeated", []uint16{7, 7}, []int64{7, 7}},
		{"older before the first wrap", []uint16{0, 65535}, []int64{0, -1}},
		{"two wraps", []uint16{65535, 0, 30000, 60000, 0}, []int64{65535, 65536, 95536, 125536, 131072}},
		{"half the space ahead is older", []uint16{0, 32768}, []int64{0, -32768}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var tr seqTracker
			for i, s := range c.seqs {
				if got := tr.extend(s); got != c.want[i] {
					t.Errorf("extend(%d) #%d = %d, want %d", s, i, got, c.want[i])
				}
			}
		})
	}
}

func TestMonitorWindowStats(t *testing.T) {
	ms := time.Millisecond
	type pkt struct {
		j   int
		seq int64
		at  time.Duration
	}
	for _, c := range []struct {
		name string
		up   int
		pkts []pkt
		want MonitorStats
	}{
		{"nothing", 2, nil, MonitorStats{Up: 2}},
		{
			"two clean sessions, one second",
			2,
			func() (p []pkt) {
				for i := range 50 {
					p = append(p, pkt{0, int64(100 + i), time.Duration(i) * 20 * ms}, pkt{1, int64(7 + i), time.Duration(i)*20*ms + ms})
				}
				return p
			}(),
			MonitorStats{Up: 2, Receiving: 2, Recv: 100, Expected: 100, MaxGap: 20 * ms, PerSecond: 50},
		},
		{
			"losses and a silent session",
			2,
			[]pkt{{0, 1, 0}, {0, 2, 20 * ms}, {0, 5, 80 * ms}},
			MonitorStats{Up: 2, Receiving: 1, Recv: 3, Expected: 5, Lost: 2, LossPct: 40, WorstPct: 40, MaxGap: 60 * ms, PerSecond: 1.5},
		},
		{
			"outside the window and unknown sessions ignored",
			1,
			[]pkt{{0, 1, -ms}, {0, 2, time.Second}, {5, 3, 0}, {-1, 4, 0}, {0, 10, 0}},
			MonitorStats{Up: 1, Receiving: 1, Recv: 1, Expected: 1, PerSecond: 1},
		},
		{
			"reordered: nothing lost",
			1,
			[]pkt{{0, 10, 0}, {0, 12, 20 * ms}, {0, 11, 21 * ms}},
			MonitorStats{Up: 1, Receiving: 1, Recv: 3, Expected: 3, MaxGap: 20 * ms, PerSecond: 3},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := NewMonitorWindow(2, 0, time.Second)
			for _, p := range c.pkts {
				w.Received(p.j, p.seq, p.at)
			}
			got := w.Stats(c.up)
			if math.Abs(got.PerSecond-c.want.PerSecond) < 1e-9 {
				got.PerSecond = c.want.PerSecond
			}
			if got != c.want {
				t.Errorf("Stats(%d) = %+v\nwant       %+v", c.up, got, c.want)
			}
		})
	}
}

func TestFeatureCode(t *testing.T) {
	for _, c := range []struct {
		mode media.MonitorMode
		want string
	}{
		{media.Listen, "*11000"}, {media.Whisper, "*21000"}, {media.Barge, "*31000"}, {media.MonitorMode(9), ""},
	} {
		got, err := featureCode(c.mode, "1000")
		if got != c.want || (err != nil) != (c.want == "") {
			t.Errorf("featureCode(%v) = %q, %v; want %q", c.mode, got, err, c.want)
		}
	}
}

func TestCheckMonitors(t *testing.T) {
	sups := []User{{"2000", "pw2000"}, {"2001", "pw2001"}}
	for _, c := range []struct {
		name string
		cfg  Config
		err  string // "" for none
	}{
		{"none", Config{}, ""},
		{"two monitors", Config{Monitors: 2, Supervisors: sups}, ""},
		{"watched only", Config{Watched: 4}, ""},
		{"whisper", Config{Monitors: 1, Supervisors: sups, MonitorMode: media.Whisper}, ""},
		{"too few supervisors", Config{Monitors: 3, Supervisors: sups}, "2 supervisors for 3 monitors"},
		{"more monitors than calls", Config{Monitors: 5, Supervisors: make([]User, 5)}, "5 monitors for 4 calls"},
		{"direct", Config{Monitors: 1, Supervisors: sups, Direct: true}, "need Plateau"},
		{"watched beyond the calls", Config{Watched: 5}, "5 watched calls out of 4"},
		{"negative", Config{Monitors: -1}, "negative"},
		{"unknown mode", Config{Monitors: 1, Supervisors: sups, MonitorMode: 7}, "no feature code"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.checkMonitors(4)
			if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
				t.Errorf("checkMonitors = %v, want %q", err, c.err)
			}
		})
	}
}

func TestRTPPayload(t *testing.T) {
	hdr := func(b0 byte, extra ...byte) []byte {
		h := make([]byte, rtpHeader)
		h[0] = b0
		return append(h, extra...)
	}
	ext := []byte{0xbe, 0xde, 0, 1, 1, 2, 3, 4} // one 32-bit word of extension
	for _, c := range []struct {
		name string
		pkt  []byte
		want []byte // nil: not RTP
	}{
		{"plain", hdr(0x80, 9, 8), []byte{9, 8}},
		{"one CSRC", hdr(0x81, 0, 0, 0, 1, 7), []byte{7}},
		{"extension", hdr(0x90, append(ext, 5)...), []byte{5}},
		{"empty payload", hdr(0x80), []byte{}},
		{"short", make([]byte, rtpHeader-1), nil},
		{"version 1", hdr(0x40, 1), nil},
		{"CSRCs beyond the packet", hdr(0x8f, 1), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := rtpPayload(c.pkt)
			if ok != (c.want != nil) || !bytes.Equal(got, c.want) {
				t.Errorf("rtpPayload = % x, %v; want % x", got, ok, c.want)
			}
		})
	}
}

// The per-packet path allocates nothing: the sender's packet, the echo's
// accounting and the supervisor's.
func TestPerPacketNoAllocs(t *testing.T) {
	s := newStream(3, nil)
	sup := newStream(4, nil)
	sup.silent = true
	w := NewWindow(4, 0, time.Hour)
	w.Watched = 4
	mw := NewMonitorWindow(1, 0, time.Hour)
	var (
		r   RTTs
		seq seqTracker
		now time.Duration
	)
	for name, fn := range map[string]func(){
		"send": func() { now += ptime; w.Sent(3, now); s.next(now) },
		"echo": func() {
			p, _ := rtpPayload(s.next(now))
			w.Received(p, now+time.Millisecond, &r)
		},
		"monitor": func() {
			pkt := sup.next(now)
			if _, ok := rtpPayload(pkt); ok {
				mw.Received(0, seq.extend(binary.BigEndian.Uint16(pkt[2:])), now)
			}
		},
	} {
		if n := testing.AllocsPerRun(100, fn); n != 0 {
			t.Errorf("%s: %v allocations per packet", name, n)
		}
	}
	if pkt := sup.next(0); bytes.Count(pkt[rtpHeader:], []byte{ulawSilence}) != payloadSize {
		t.Error("a supervisor's packet is not pure µ-law silence")
	}
}
