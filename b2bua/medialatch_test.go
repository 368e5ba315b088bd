package b2bua

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"

	"plateau/media"
	psip "plateau/sip"
)

// sendRTPFrom sends n PCMA packets from a fresh socket on ip to the call's
// outside media port and returns the sender's address.
func sendRTPFrom(t *testing.T, ip string, to netip.AddrPort, n int) netip.AddrPort {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatalf("listen %s: %v", ip, err)
	}
	t.Cleanup(func() { conn.Close() })
	for i := range n {
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SequenceNumber: uint16(100 + i), Timestamp: uint32(i * 160), SSRC: 0xC0FFEE},
			Payload: make([]byte, 160)}
		b, _ := pkt.Marshal()
		if _, err := conn.WriteToUDPAddrPort(b, to); err != nil {
			t.Fatal(err)
		}
	}
	return conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// checkLatch sends RTP to the call's outside leg from a host its SDP did
// not name (127.0.0.3: the carrier's public address behind NAT, or an
// inmate's scriptable phone) and checks the trunk's media_latch decided:
// any latches it, host drops every packet.
func checkLatch(t *testing.T, e *callEnv, mode media.LatchMode) {
	t.Helper()
	relay := e.relayOf(t) // srtp_test.go
	port := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(relay.LocalPort(media.LegOutside)))
	const n = 3
	src := sendRTPFrom(t, "127.0.0.3", port, n)
	waitFor(t, "the packets read", func() bool {
		st := relay.Stats(media.LegOutside)
		return st.Packets+st.Dropped >= n
	})
	st := relay.Stats(media.LegOutside)
	switch mode {
	case media.LatchAny:
		if st.Packets != n || st.Source != src {
			t.Errorf("media_latch any: %d packets accepted from %v, want %d from %v", st.Packets, st.Source, n, src)
		}
	case media.LatchHost:
		if st.Packets != 0 || st.Dropped != n || st.Source.IsValid() {
			t.Errorf("media_latch host: %d accepted (source %v), %d dropped; want all %d dropped", st.Packets, st.Source, st.Dropped, n)
		}
	}
}

func withTrunkLatch(m media.LatchMode) envOpt {
	return func(co *CallOptions) { co.Trunks[0].MediaLatch = m }
}

// A trunk's media_latch reaches the relay on calls placed through it: its
// answer's SDP names 127.0.0.1; RTP from another host is latched only
// when the trunk says any.
func TestTrunkMediaLatchOutbound(t *testing.T) {
	for _, mode := range []media.LatchMode{media.LatchHost, media.LatchAny} {
		t.Run(mode.String(), func(t *testing.T) {
			e := newCallEnv(t, withTrunkLatch(mode))
			id, o := clickToCall(t, e) // srtp_test.go
			if !o.Answered {
				t.Fatalf("outcome %+v", o)
			}
			checkLatch(t, e, mode)
			if err := e.b.Hangup(id, testOperator); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "teardown", func() bool { return e.callsLeft() == 0 })
		})
	}
}

// Calls from a trunk get its media_latch too: the trunk source's offer
// names 127.0.0.2.
func TestTrunkMediaLatchInbound(t *testing.T) {
	for _, mode := range []media.LatchMode{media.LatchHost, media.LatchAny} {
		t.Run(mode.String(), func(t *testing.T) {
			e := newCallEnv(t, withTrunkLatch(mode))
			d, r := e.placeInbound("0240123456")
			if d == nil {
				t.Fatalf("inbound call not answered: %q", r)
			}
			checkLatch(t, e, mode)
			e.trunkSrc.send(e.addr, e.request(e.trunkSrc, "BYE", d, "0240123456", "", "", ""))
			waitFor(t, "teardown", func() bool { return e.callsLeft() == 0 })
		})
	}
}

// latchTrunkMedia, step by step: the ringing trunk's rule applies to its
// early media; a transfer's ringing party leaves the current party's rule
// alone until its answer.
func TestLatchTrunkMedia(t *testing.T) {
	tests := []struct {
		name      string
		replacing bool // a transfer: the call already has an outside party
		answered  bool
		trunk     media.LatchMode
		wantAny   bool
	}{
		{"early media, trunk any", false, false, media.LatchAny, true},
		{"early media, trunk host", false, false, media.LatchHost, false},
		{"answer, trunk any", false, true, media.LatchAny, true},
		{"transfer ringing: the current party's rule stays", true, false, media.LatchAny, false},
		{"transfer answered: the new trunk's rule", true, true, media.LatchAny, true},
	}
	pool, err := media.NewPortPool(41000, 41999, 0, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	lo := netip.MustParseAddr("127.0.0.1")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			relay, err := media.NewRelay(pool, lo)
			if err != nil {
				t.Fatal(err)
			}
			defer relay.Close()
			c := &call{relay: relay}
			if tt.replacing {
				c.out = &leg{}
			}
			relay.SetEarly(!tt.answered)
			c.latchTrunkMedia(&psip.Trunk{TrunkConfig: psip.TrunkConfig{Name: "t", MediaLatch: tt.trunk}}, tt.answered)
			// The trunk's SDP names 127.0.0.1; RTP comes from 127.0.0.3.
			if err := relay.SetRemote(media.LegOutside, netip.AddrPortFrom(lo, 9), media.PCMA.Codec(), 101); err != nil {
				t.Fatal(err)
			}
			port := netip.AddrPortFrom(lo, uint16(relay.LocalPort(media.LegOutside)))
			src := sendRTPFrom(t, "127.0.0.3", port, 1)
			waitFor(t, "the packet read", func() bool {
				st := relay.Stats(media.LegOutside)
				return st.Packets+st.Dropped >= 1
			})
			st := relay.Stats(media.LegOutside)
			if got := st.Packets == 1 && st.Source == src; got != tt.wantAny {
				t.Errorf("RTP from another host accepted: %v (stats %+v), want %v", got, st, tt.wantAny)
			}
		})
	}
}
