package media

import (
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
	dto "github.com/prometheus/client_model/go"

	"plateau/srtp"
)

type nopTap struct{}

func (nopTap) TapRTP(Leg, *rtp.Packet, time.Time) error { return nil }

// BenchmarkRelayForward measures one PCMU→PCMA packet through the relay over
// loopback: receive, latch check, stats, tap, transcode, rewrite, send. The
// 0 allocs/op figure covers the relay goroutine too (ReportAllocs counts
// every goroutine's mallocs).
func BenchmarkRelayForward(b *testing.B) {
	pool := testPool(b, 0, nil)
	r, err := NewRelay(pool, lo, WithTap(nopTap{}), WithInactivityTimeout(time.Minute))
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	listen := func() *net.UDPConn {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo, 0)))
		if err != nil {
			b.Fatal(err)
		}
		c.SetReadBuffer(1 << 20)
		return c
	}
	a, o := listen(), listen()
	defer a.Close()
	defer o.Close()
	r.SetRemote(LegOperator, a.LocalAddr().(*net.UDPAddr).AddrPort(), PCMU.Codec(), 101)
	r.SetRemote(LegOutside, o.LocalAddr().(*net.UDPAddr).AddrPort(), PCMA.Codec(), 101)
	dst := netip.AddrPortFrom(lo, uint16(r.LocalPort(LegOperator)))
	pkt := rawRTP(0, 0, 0, 1234, make([]byte, FrameSamples))
	buf := make([]byte, 1500)
	o.SetReadDeadline(time.Now().Add(time.Minute))

	send := func(i int) {
		pkt[2], pkt[3] = byte(i>>8), byte(i)
		if _, err := a.WriteToUDPAddrPort(pkt, dst); err != nil {
			b.Fatal(err)
		}
		if _, _, err := o.ReadFromUDPAddrPort(buf); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 100 { // warm up: latch, first-use growth
		send(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		send(i)
	}
	b.StopTimer()
	if buf[1]&0x7f != 8 {
		b.Fatalf("forwarded payload type %d, want 8", buf[1]&0x7f)
	}
}

// BenchmarkRelayHandleRTP measures the relay's own work per packet, without
// the receive syscall: latch check, payload-type map, stats, the gate,
// transcoding into a fresh packet, the tap, and the send (one sendto).
// Run against main's relay the same way to see what the invariant costs.
// The srtp-in cases receive from an SRTP carrier: srtp-in authenticates
// and decrypts genuine packets (made before the timer runs), srtp-forged
// and srtp-replayed are an attacker's packets refused on the drop path,
// which must allocate nothing either (a flood of them must not feed the
// garbage collector).
func BenchmarkRelayHandleRTP(b *testing.B) {
	for _, tc := range []struct {
		name    string
		op, out Codec
		monitor bool
		srtp    bool   // the outside leg is SRTP: each frame is protected
		in      string // "": the operator sends; else what the SRTP carrier sends: genuine, forged, replayed
	}{
		{"PCMU-PCMA", PCMU.Codec(), PCMA.Codec(), false, false, ""},
		{"PCMU96-PCMU", Codec{Encoding: PCMU, PayloadType: 96}, PCMU.Codec(), false, false, ""},
		{"PCMU-PCMA-monitored", PCMU.Codec(), PCMA.Codec(), true, false, ""},
		{"PCMU-PCMA-srtp", PCMU.Codec(), PCMA.Codec(), false, true, ""},
		{"PCMA-PCMU-srtp-in", PCMU.Codec(), PCMA.Codec(), false, true, "genuine"},
		{"srtp-forged", PCMU.Codec(), PCMA.Codec(), false, true, "forged"},
		{"srtp-replayed", PCMU.Codec(), PCMA.Codec(), false, true, "replayed"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			pool := testPool(b, 0, nil)
			r, err := NewRelay(pool, lo, WithTap(nopTap{}))
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			opAddr, outAddr := sink(b), sink(b)
			r.SetRemote(LegOperator, opAddr, tc.op, 101)
			r.SetRemote(LegOutside, outAddr, tc.out, 101)
			var carrier *srtp.Session
			if tc.srtp {
				var rs *srtp.Session
				rs, carrier = srtpKeys(b)
				remote := Remote{Addr: r.legs[LegOutside].sdpAddr, Codecs: []Codec{tc.out}, DTMFPT: 101}
				if err := r.SetRemoteSRTP(LegOutside, remote, tc.out, rs); err != nil {
					b.Fatal(err)
				}
			}
			if tc.monitor {
				m, err := NewMonitor(pool, lo, Listen)
				if err != nil {
					b.Fatal(err)
				}
				defer m.Close()
				if err := m.Attach(r); err != nil {
					b.Fatal(err)
				}
			}
			l, from, codec := r.legs[LegOperator], opAddr, tc.op
			if tc.in != "" {
				l, from, codec = r.legs[LegOutside], outAddr, tc.out
			}
			pkt := rawRTP(codec.PayloadType, 0, 0, 1234, make([]byte, FrameSamples))
			encodeFrame(codec.Encoding, pkt[12:], Tone(440, 20*time.Millisecond))
			number := func(i int) []byte {
				ts := uint32(i) * FrameSamples
				pkt[2], pkt[3] = byte(i>>8), byte(i)
				pkt[4], pkt[5], pkt[6], pkt[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
				return pkt
			}
			protect := func(dst []byte, i int) []byte {
				p, err := carrier.ProtectRTP(dst[:0], number(i))
				if err != nil {
					b.Fatal(err)
				}
				return p
			}
			var fixed []byte // the one packet an attacker case sends again and again
			want := rSRTPAuth
			switch tc.in {
			case "forged":
				// Under a key the carrier never signalled, on the carrier's
				// SSRC (known to the relay) and ahead of its replay window:
				// only the authentication tag refuses it.
				r.handleRTP(l, copy(l.buf[:], protect(nil, 1)), from, time.Now())
				_, carrier = srtpKeys(b)
				fixed = protect(nil, 100)
			case "replayed":
				want = rSRTPReplay
				fixed = protect(nil, 1)
				r.handleRTP(l, copy(l.buf[:], fixed), from, time.Now())
			}
			// genuine: the carrier's packets are protected in batches with
			// the timer stopped (an SRTP index passes once), and the CPU
			// that takes is not counted.
			var batch [4096][]byte
			var genCPU time.Duration
			next := func(i int) []byte {
				switch {
				case fixed != nil:
					return fixed
				case tc.in == "":
					return number(i)
				case i%len(batch) == 0:
					b.StopTimer()
					c0 := cpuTime()
					for k := range batch {
						batch[k] = protect(batch[k], i+k)
					}
					genCPU += cpuTime() - c0
					b.StartTimer()
				}
				return batch[i%len(batch)]
			}
			drops := func(only ...dropReason) (n float64) {
				for i, c := range r.cfg.metrics.drops {
					var m dto.Metric
					c.Write(&m)
					if len(only) == 0 || dropReason(i) == only[0] {
						n += m.GetCounter().GetValue()
					}
				}
				return n
			}
			all0, want0 := drops(), drops(want)
			now := time.Now()
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			n := 0
			defer func() {
				// CPU time (user+system, every thread) per packet: steadier
				// than ns/op on a host shared with other jobs.
				b.ReportMetric(float64(cpuTime()-cpu0-genCPU)/float64(n), "cpu-ns/op")
				// The benchmark measures what its name says: every packet
				// sent on, or every attacker's packet refused for its reason.
				all, refused := drops()-all0, drops(want)-want0
				switch {
				case fixed != nil && (refused != float64(n) || all != refused):
					b.Fatalf("%s: %v of %d packets refused for %s, %v dropped in all", tc.in, refused, n, want, all)
				case fixed == nil && all != 0:
					b.Fatalf("%v of %d packets dropped, want none", all, n)
				}
			}()
			for i := 0; b.Loop(); i++ {
				m := copy(l.buf[:], next(i))
				now = now.Add(ptime)
				r.handleRTP(l, m, from, now)
				n++
			}
		})
	}
}

// sink is the address of a socket nobody reads, closed at the end of the
// test: the kernel drops what overflows, and no test goroutine's work is
// counted in a benchmark.
func sink(t testing.TB) netip.AddrPort {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo, 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// The per-packet path allocates nothing: forwarding (plain and toward an
// SRTP leg), receiving SRTP, and refusing a forged SRTP packet. The
// benchmark above shows allocs/op; this fails when one appears. Under
// -race pion/srtp's encryption and decryption are not counted: it pools
// buffers, and sync.Pool drops items at random under the race detector
// (a forged packet is refused before it decrypts anything).
func TestRelayHandleRTPAllocs(t *testing.T) {
	for _, tc := range []struct {
		name string
		srtp bool
		in   string // "": the operator sends toward the outside leg; genuine or forged: the SRTP carrier sends
	}{
		{"plain", false, ""},
		{"srtp-out", true, ""},
		{"srtp-in", true, "genuine"},
		{"srtp-forged", true, "forged"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.srtp && tc.in != "forged" && raceEnabled {
				t.Skip("pion/srtp's sync.Pool allocates at random under -race")
			}
			r, err := NewRelay(testPool(t, 0, nil), lo, WithTap(nopTap{}), WithRTCPInterval(0))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			opAddr, outAddr := sink(t), sink(t)
			r.SetRemote(LegOperator, opAddr, PCMU.Codec(), 101)
			r.SetRemote(LegOutside, outAddr, PCMA.Codec(), 101)
			var carrier *srtp.Session
			if tc.srtp {
				var rs *srtp.Session
				rs, carrier = srtpKeys(t)
				if err := r.SetRemoteSRTP(LegOutside, Remote{Addr: outAddr, Codecs: []Codec{PCMA.Codec()}, DTMFPT: 101}, PCMA.Codec(), rs); err != nil {
					t.Fatal(err)
				}
			}
			l, from, codec := r.legs[LegOperator], opAddr, PCMU.Codec()
			if tc.in != "" {
				l, from, codec = r.legs[LegOutside], outAddr, PCMA.Codec()
			}
			const runs = 200
			pkts := make([][]byte, runs+2) // AllocsPerRun calls once more to warm up
			for i := range pkts {
				p := rawRTP(codec.PayloadType, uint16(i), uint32(i)*FrameSamples, 1234, make([]byte, FrameSamples))
				if carrier != nil && tc.in != "" {
					if p, err = carrier.ProtectRTP(nil, p); err != nil {
						t.Fatal(err)
					}
				}
				pkts[i] = p
			}
			if tc.in == "forged" {
				r.handleRTP(l, copy(l.buf[:], pkts[0]), from, time.Now()) // the carrier's SSRC is known
				_, other := srtpKeys(t)
				forged, _ := other.ProtectRTP(nil, rawRTP(codec.PayloadType, 100, 0, 1234, make([]byte, FrameSamples)))
				for i := range pkts {
					pkts[i] = forged
				}
			}
			i := 0
			now := time.Now()
			allocs := testing.AllocsPerRun(runs, func() {
				now = now.Add(ptime)
				r.handleRTP(l, copy(l.buf[:], pkts[i]), from, now)
				i++
			})
			if allocs != 0 {
				t.Fatalf("%.1f allocations per packet, want 0", allocs)
			}
		})
	}
}
