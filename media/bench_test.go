package media

import (
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
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
func BenchmarkRelayHandleRTP(b *testing.B) {
	for _, tc := range []struct {
		name    string
		op, out Codec
		monitor bool
		srtp    bool // the outside leg is SRTP: each frame is protected
	}{
		{"PCMU-PCMA", PCMU.Codec(), PCMA.Codec(), false, false},
		{"PCMU96-PCMU", Codec{Encoding: PCMU, PayloadType: 96}, PCMU.Codec(), false, false},
		{"PCMU-PCMA-monitored", PCMU.Codec(), PCMA.Codec(), true, false},
		{"PCMU-PCMA-srtp", PCMU.Codec(), PCMA.Codec(), false, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			pool := testPool(b, 0, nil)
			r, err := NewRelay(pool, lo, WithTap(nopTap{}))
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			// Sinks nobody reads: the kernel drops what overflows, and no
			// test goroutine's work is counted.
			sink := func() netip.AddrPort {
				c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo, 0)))
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { c.Close() })
				return c.LocalAddr().(*net.UDPAddr).AddrPort()
			}
			from := sink()
			r.SetRemote(LegOperator, from, tc.op, 101)
			r.SetRemote(LegOutside, sink(), tc.out, 101)
			if tc.srtp {
				rs, _ := srtpKeys(b)
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
			l := r.legs[LegOperator]
			pkt := rawRTP(tc.op.PayloadType, 0, 0, 1234, make([]byte, FrameSamples))
			encodeFrame(tc.op.Encoding, pkt[12:], Tone(440, 20*time.Millisecond))
			now := time.Now()
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			defer func() {
				// CPU time (user+system, every thread) per packet: steadier
				// than ns/op on a host shared with other jobs.
				b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			}()
			for i := 0; b.Loop(); i++ {
				pkt[2], pkt[3] = byte(i>>8), byte(i)
				ts := uint32(i) * FrameSamples
				pkt[4], pkt[5], pkt[6], pkt[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
				n := copy(l.buf[:], pkt)
				now = now.Add(ptime)
				r.handleRTP(l, n, from, now)
			}
		})
	}
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
