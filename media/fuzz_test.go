package media

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// FuzzRelayPacket feeds arbitrary datagrams from the operator's phone to
// the relay's packet path. Whatever the bytes: no panic; what reaches the
// outside party is either one G.711 frame in its codec with a bare 12-byte
// header, recorded as sent (same numbering, same bytes), or one 4-byte
// DTMF event; nothing else.
func FuzzRelayPacket(f *testing.F) {
	for _, seed := range [][]byte{
		rawRTP(0, 1, 160, 7, make([]byte, FrameSamples)),
		rawRTP(96, 2, 320, 7, make([]byte, FrameSamples)),
		rawRTP(101, 3, 320, 7, []byte{5, 0x0a, 0, 160}),
		rawRTP(13, 4, 480, 7, []byte("text")),
		rawRTP(99, 5, 640, 7, []byte("text")),
		append([]byte{0x90, 0, 0, 6, 0, 0, 3, 0, 0, 0, 0, 7, 0xbe, 0xde, 0, 1, 't', 'e', 'x', 't'}, make([]byte, 160)...),
		{0x80, 200, 0, 1, 0, 0, 0, 7},
	} {
		f.Add(seed)
	}
	pool := testPool(f, 0, nil)
	tap := &capTap{}
	r, err := NewRelay(pool, lo, WithTap(tap), WithRTCPInterval(0))
	if err != nil {
		f.Fatal(err)
	}
	defer r.Close()
	sink, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo, 0)))
	if err != nil {
		f.Fatal(err)
	}
	defer sink.Close()
	from := netip.MustParseAddrPort("127.0.0.1:9")
	out := Codec{Encoding: PCMA, PayloadType: 8}
	r.SetRemote(LegOperator, from, Codec{Encoding: PCMU, PayloadType: 96}, 101)
	r.SetRemote(LegOutside, sink.LocalAddr().(*net.UDPAddr).AddrPort(), out, 101)
	l := r.legs[LegOperator]
	now := time.Now()
	buf := make([]byte, 2048)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > len(l.buf) {
			return
		}
		before := len(tap.get(LegOperator))
		now = now.Add(ptime)
		r.handleRTP(l, copy(l.buf[:], b), from, now)
		frames := tap.get(LegOperator)
		wait := 2 * time.Millisecond
		if len(frames) != before {
			wait = time.Second // a frame was recorded: it must arrive
		}
		sink.SetReadDeadline(time.Now().Add(wait))
		n, _, err := sink.ReadFromUDPAddrPort(buf)
		if err != nil {
			if len(frames) != before {
				t.Fatalf("a frame was recorded and not sent")
			}
			return
		}
		var pkt rtp.Packet
		if err := pkt.Unmarshal(buf[:n]); err != nil || buf[0] != 0x80 {
			t.Fatalf("sent % x: not a bare RTP packet", buf[:n])
		}
		switch pkt.PayloadType {
		case out.PayloadType:
			if len(frames) != before+1 {
				t.Fatalf("%d frames recorded for one sent", len(frames)-before)
			}
			rec := frames[len(frames)-1]
			if rec.SequenceNumber != pkt.SequenceNumber || rec.Timestamp != pkt.Timestamp || string(rec.Payload) != string(pkt.Payload) {
				t.Fatalf("recorded %v, sent %v", rec.Header, pkt.Header)
			}
		case 101:
			if len(pkt.Payload) != 4 || pkt.Payload[0] > 15 || len(frames) != before {
				t.Fatalf("event % x sent", pkt.Payload)
			}
		default:
			t.Fatalf("payload type %d sent", pkt.PayloadType)
		}
	})
}

// FuzzValidRTCP: the RTCP framing check never panics and accepts only
// compound packets whose lengths add up.
func FuzzValidRTCP(f *testing.F) {
	f.Add([]byte{0x80, 201, 0, 1, 0, 0, 0, 7})
	f.Add([]byte{0x80, 201, 0, 1, 0, 0, 0, 7, 0x80, 204, 0, 2, 0, 0, 0, 7, 'T', 'E', 'X', 'T'})
	f.Add([]byte{0x80, 200, 0, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		if !validRTCP(b) {
			return
		}
		for len(b) > 0 {
			size := (int(b[2])<<8 | int(b[3]) + 1) * 4
			if b[0]>>6 != 2 || size > len(b) {
				t.Fatalf("accepted a bad compound packet")
			}
			b = b[size:]
		}
	})
}
