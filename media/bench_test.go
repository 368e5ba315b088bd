package media

import (
	"net"
	"net/netip"
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
