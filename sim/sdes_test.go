package sim

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// Two simulators, one placing a call to the other: SDES offer/answer,
// audio both ways under SRTP (the caller plays, the callee echoes), and a
// packet that does not authenticate is dropped and counted.
func TestPSTNSDESCall(t *testing.T) {
	callee := startPSTN(t, func(c *Config) { c.SRTP = "required" }) // echo
	wav := writeToneWAV(t)
	caller := startPSTN(t, func(c *Config) { c.SRTP = "optional"; c.Answer = AnswerConfig{Mode: "play", WAV: wav} })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan CallStats, 1)
	go func() {
		st, err := caller.Call(ctx, callee.Addr().String(), "101", "+33240999999", 1500*time.Millisecond)
		if err != nil {
			t.Error(err)
		}
		done <- st
	}()
	waitFor(t, "the callee's SRTP call up", func() bool {
		c := lastCall(callee)
		return c.Answered && c.SRTP && c.RTPTo != ""
	})
	// A forged packet to the caller's media port (where the callee sends).
	to := netip.MustParseAddrPort(lastCall(callee).RTPTo)
	forged, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: 9, SSRC: 1}, Payload: make([]byte, 170)}).Marshal()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.WriteToUDPAddrPort(forged, to)
	st := <-done
	if !st.Answered || !st.SRTP || st.RTPSent < 30 || st.RTPRecv < 25 || st.SRTPDropped != 1 {
		t.Errorf("caller stats %+v: want an SRTP call, echoed audio decrypted, the forged packet dropped", st)
	}
	waitFor(t, "callee end", func() bool { return !lastCall(callee).End.IsZero() })
	if c := lastCall(callee); !c.SRTP || c.RTPRecv < 25 || c.SRTPDropped != 0 {
		t.Errorf("callee stats %+v", c)
	}
}

// A required simulator refuses plain RTP; an off one refuses RTP/SAVP.
func TestPSTNSDESPolicy(t *testing.T) {
	for _, tc := range []struct{ caller, callee string }{{"off", "required"}, {"required", "off"}} {
		t.Run(tc.caller+" to "+tc.callee, func(t *testing.T) {
			callee := startPSTN(t, func(c *Config) { c.SRTP = tc.callee })
			caller := startPSTN(t, func(c *Config) { c.SRTP = tc.caller })
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			st, err := caller.Call(ctx, callee.Addr().String(), "101", "+33240999999", time.Second)
			if err == nil || st.Answered || !strings.Contains(err.Error(), "488") {
				t.Fatalf("call: %+v, %v; want 488", st, err)
			}
		})
	}
}

func TestPSTNSDESConfig(t *testing.T) {
	if _, err := ParseConfig([]byte("srtp: mandatory\n"), t.TempDir()); err == nil || !strings.Contains(err.Error(), "srtp") {
		t.Fatalf("srtp: mandatory accepted or error does not name the key: %v", err)
	}
}

// CallOver places the call on the given transport (TLS is how an SDES
// carrier calls Plateau; TCP exercises the same path here).
func TestPSTNCallOverTCP(t *testing.T) {
	callee := startPSTN(t, nil)
	caller := startPSTN(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := caller.CallOver(ctx, "tcp", callee.Addr().String(), "101", "+33240999999", 300*time.Millisecond)
	if err != nil || !st.Answered || st.Transport != "TCP" {
		t.Fatalf("call over TCP: %+v, %v", st, err)
	}
	waitFor(t, "callee end", func() bool { return !lastCall(callee).End.IsZero() })
	if c := lastCall(callee); c.Transport != "TCP" {
		t.Fatalf("callee saw transport %q", c.Transport)
	}
}
