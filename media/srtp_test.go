package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"

	"plateau/srtp"
)

// srtpKeys returns the relay's session and the carrier's, keyed as an
// SDES offer/answer would key them.
func srtpKeys(t testing.TB) (relay, carrier *srtp.Session) {
	t.Helper()
	carrierKey, err := srtp.NewCrypto(1, srtp.AES_CM_128_HMAC_SHA1_80)
	if err != nil {
		t.Fatal(err)
	}
	plateauKey, err := srtp.Answer(carrierKey)
	if err != nil {
		t.Fatal(err)
	}
	if relay, err = srtp.NewSession(plateauKey, carrierKey); err != nil {
		t.Fatal(err)
	}
	if carrier, err = srtp.NewSession(carrierKey, plateauKey); err != nil {
		t.Fatal(err)
	}
	return relay, carrier
}

// secureOutside makes the rig's outside leg SRTP with s.
func (g *rig) secureOutside(t testing.TB, s *srtp.Session) {
	t.Helper()
	remote := Remote{Addr: g.out.addr(), Codecs: []Codec{g.outCodec}, DTMFPT: 101, Direction: SendRecv}
	if err := g.r.SetRemoteSRTP(LegOutside, remote, g.outCodec, s); err != nil {
		t.Fatal(err)
	}
}

// decrypted is what the carrier got, unprotected with its key; a packet
// that does not authenticate fails the test.
func decrypted(t *testing.T, p *peer, s *srtp.Session) *peer {
	t.Helper()
	out := &peer{}
	for _, b := range p.raw() {
		d, err := s.UnprotectRTP(nil, b)
		if err != nil {
			t.Fatalf("the carrier got a packet its key does not authenticate: %v (% x)", err, b[:min(len(b), 16)])
		}
		out.got = append(out.got, d)
	}
	return out
}

// Toward an SRTP leg nothing leaves in clear: every packet the carrier
// gets authenticates under the key Plateau signalled, no payload equals
// (or contains) a recorded plaintext frame, and, decrypted, the stream is
// exactly what the operator channel recorded, frame by frame.
func TestRelaySRTPNoClearRTPTowardSecureLeg(t *testing.T) {
	g := newRig(t, PCMU.Codec(), PCMA.Codec())
	rs, cs := srtpKeys(t)
	g.secureOutside(t, rs)
	g.talk(LegOperator, Tone(hzOp, 400*time.Millisecond), 100, 1000, 0xA, 3*time.Millisecond)
	to := g.relayAddr(LegOperator)
	g.op.send(to, rawRTP(101, 120, 1000+20*160, 0xA, []byte{5, 0x0a, 0, 160})) // a DTMF event
	g.settle(t)

	raw := g.out.raw()
	if len(raw) < 20 {
		t.Fatalf("carrier got %d packets, want the 20 frames and the event", len(raw))
	}
	rec := g.tap.get(LegOperator)
	for _, b := range raw {
		for _, f := range rec {
			if len(f.Payload) > 0 && bytes.Contains(b[12:], f.Payload) {
				t.Fatalf("a recorded plaintext frame (seq %d) left in clear toward the SRTP leg", f.SequenceNumber)
			}
		}
		if bytes.Contains(b, []byte{5, 0x0a, 0, 160}) {
			t.Fatal("the DTMF event left in clear")
		}
	}
	checkRecordedAsSent(t, g.tap, LegOperator, decrypted(t, g.out, cs), g.outCodec, 101)
	if pcm := pcmOf(rec); !hears(pcm, hzOp) {
		t.Fatal("the operator channel does not hold the operator's tone")
	}
}

// From an SRTP leg: genuine packets are decrypted before the payload-type
// mapping and the tap (the operator and the recording get the plaintext);
// a tampered, forged, replayed or plain packet is dropped and counted by
// reason, never forwarded nor recorded.
func TestRelaySRTPIngressDropsWhatDoesNotAuthenticate(t *testing.T) {
	g := newRig(t, PCMU.Codec(), PCMA.Codec())
	rs, cs := srtpKeys(t)
	g.secureOutside(t, rs)
	to := g.relayAddr(LegOutside)
	tone := Tone(hzCust, 200*time.Millisecond)
	var sent [][]byte
	for i := 0; i < 10; i++ {
		p, err := cs.ProtectRTP(nil, audioPacket(g.outCodec, uint16(500+i), uint32(8000+160*i), 0xB, tone[i*FrameSamples:(i+1)*FrameSamples]))
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, p)
		g.out.send(to, p)
		time.Sleep(3 * time.Millisecond)
	}
	g.settle(t)
	checkRecordedAsSent(t, g.tap, LegOutside, g.op, g.opCodec, 101)
	if n := len(g.tap.get(LegOutside)); n != 10 {
		t.Fatalf("recorded %d frames of the carrier, want 10", n)
	}
	if !hears(pcmOf(g.tap.get(LegOutside)), hzCust) {
		t.Fatal("the outside channel does not hold the carrier's tone")
	}
	opBefore, recBefore := g.op.count(), len(g.tap.get(LegOutside))

	// Tampered: one payload bit flipped.
	next, _ := cs.ProtectRTP(nil, audioPacket(g.outCodec, 510, 8000+1600, 0xB, tone[:FrameSamples]))
	bad := bytes.Clone(next)
	bad[20] ^= 0x01
	g.out.send(to, bad)
	// Forged under another key.
	other, _ := srtpKeys(t)
	forged, _ := other.ProtectRTP(nil, audioPacket(g.outCodec, 511, 8000+1760, 0xB, tone[:FrameSamples]))
	g.out.send(to, forged)
	// Plain RTP on the SRTP leg.
	g.out.send(to, audioPacket(g.outCodec, 512, 8000+1920, 0xB, tone[:FrameSamples]))
	// Replays of a genuine packet already received.
	g.out.send(to, sent[3])
	g.out.send(to, sent[9])
	waitFor(t, "the drops counted", func() bool {
		return g.drops(DropSRTPAuth) == 3 && g.drops(DropSRTPReplay) == 2
	})
	g.settle(t)
	if g.op.count() != opBefore || len(g.tap.get(LegOutside)) != recBefore {
		t.Fatalf("a refused SRTP packet was forwarded (%d→%d) or recorded (%d→%d)", opBefore, g.op.count(), recBefore, len(g.tap.get(LegOutside)))
	}
	// The genuine packet the tampered one was made from still passes.
	g.out.send(to, next)
	waitFor(t, "the genuine packet forwarded", func() bool { return g.op.count() == opBefore+1 })
	checkRecordedAsSent(t, g.tap, LegOutside, g.op, g.opCodec, 101)
}

// A packet that does not authenticate must not latch the leg: with
// media_latch any, an attacker's forged first packet would otherwise take
// the carrier's place. The carrier sends from behind a NAT (another port
// than its SDP's, the case media_latch any exists for), so its signalled
// address cannot win the leg back: only refusing the forgery before
// latching keeps the leg for it.
func TestRelaySRTPForgedPacketDoesNotLatch(t *testing.T) {
	g := newRig(t, PCMU.Codec(), PCMU.Codec(), WithLatch(LegOutside, LatchAny))
	rs, cs := srtpKeys(t)
	g.secureOutside(t, rs)
	attacker, nat := newPeer(t, lo), newPeer(t, lo)
	to := g.relayAddr(LegOutside)
	other, _ := srtpKeys(t)
	forged, _ := other.ProtectRTP(nil, audioPacket(g.outCodec, 1, 160, 0xC, make([]int16, FrameSamples)))
	attacker.send(to, forged)
	waitFor(t, "the forged packet refused", func() bool { return g.drops(DropSRTPAuth) == 1 })
	if src := g.r.Stats(LegOutside).Source; src.IsValid() {
		t.Fatalf("a forged packet latched the leg to %v", src)
	}
	genuine, _ := cs.ProtectRTP(nil, audioPacket(g.outCodec, 2, 320, 0xB, make([]int16, FrameSamples)))
	nat.send(to, genuine)
	waitFor(t, "the carrier's packet forwarded", func() bool { return g.op.count() == 1 })
	if src := g.r.Stats(LegOutside).Source; src != nat.addr() {
		t.Fatalf("leg latched to %v, want the carrier %v", src, nat.addr())
	}
}

// Everything Plateau itself sends toward an SRTP leg is protected the
// same way as forwarded audio, and recorded as the plaintext of what was
// encrypted: the notice (a muted prompt, Play) and a barging supervisor's
// mix (the monitor's frame clock). Each has its own call of the one send
// function; a prompt or a mix sent in clear to the carrier would be heard
// by anyone on the path, and the carrier would drop it as unauthentic.
func TestRelaySRTPPromptsAndMonitorProtected(t *testing.T) {
	g := newRig(t, PCMU.Codec(), PCMA.Codec(), WithDetention())
	rs, cs := srtpKeys(t)
	g.secureOutside(t, rs)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.r.PlayNotice(ctx, Tone(800, 100*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the notice at the carrier", func() bool { return g.out.count() == 5 })

	g.supervise(t, Barge, Tone(hzSup, 600*time.Millisecond))

	got := decrypted(t, g.out, cs)
	checkRecordedAsSent(t, g.tap, LegOperator, got, g.outCodec, 101)
	rec := pcmOf(g.tap.get(LegOperator))
	if len(rec) < 5*FrameSamples || !hears(rec[:5*FrameSamples], 800) {
		t.Fatal("the notice is not what the carrier got first")
	}
	if !hears(rec[5*FrameSamples:], hzSup) {
		t.Fatal("the barging supervisor did not reach the carrier")
	}
}

// SRTCP: the carrier's reports are authenticated before they are read
// (a tampered one is dropped), and Plateau's own reports toward it are
// protected (no CNAME in clear) and authenticate under Plateau's key.
func TestRelaySRTCP(t *testing.T) {
	g := newRig(t, PCMU.Codec(), PCMU.Codec(), WithRTCPInterval(20*time.Millisecond))
	rs, cs := srtpKeys(t)
	g.secureOutside(t, rs)
	carrierRTCP, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer carrierRTCP.Close()
	rtcpTo := netip.AddrPortFrom(lo, uint16(g.r.LocalPort(LegOutside)+1))
	rr := make([]byte, 8)
	rr[0], rr[1] = 0x80, rtcpRR
	binary.BigEndian.PutUint16(rr[2:], 1)
	binary.BigEndian.PutUint32(rr[4:], 0xB)
	p, err := cs.ProtectRTCP(nil, rr)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(p)
	tampered[5] ^= 0xff
	carrierRTCP.WriteToUDPAddrPort(tampered, rtcpTo)
	waitFor(t, "the tampered SRTCP refused", func() bool { return g.drops(DropSRTPAuth) == 1 })
	carrierRTCP.WriteToUDPAddrPort(p, rtcpTo)

	carrierRTCP.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	n, _, err := carrierRTCP.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("no report from Plateau: %v", err)
	}
	if bytes.Contains(buf[:n], []byte(cname)) {
		t.Fatal("Plateau's report left in clear (CNAME readable)")
	}
	plain, err := cs.UnprotectRTCP(nil, buf[:n])
	if err != nil {
		t.Fatalf("Plateau's report does not authenticate: %v", err)
	}
	if !validRTCP(plain) || !bytes.Contains(plain, []byte(cname)) {
		t.Fatalf("decrypted report is not Plateau's compound report: % x", plain)
	}
}

// A leg returned to plain RTP (an optional trunk's next carrier) sends in
// clear again, and SetRemoteSDP never changes a leg's protection.
func TestRelaySRTPProtectionFollowsSetRemoteSRTP(t *testing.T) {
	g := newRig(t, PCMU.Codec(), PCMU.Codec())
	rs, _ := srtpKeys(t)
	g.secureOutside(t, rs)
	remote := Remote{Addr: g.out.addr(), Codecs: []Codec{g.outCodec}, DTMFPT: 101, Direction: SendRecv}
	if err := g.r.SetRemoteSDP(LegOutside, remote, g.outCodec); err != nil {
		t.Fatal(err)
	}
	if g.r.SRTP(LegOutside) != rs {
		t.Fatal("SetRemoteSDP changed the leg's SRTP session")
	}
	g.talk(LegOperator, Tone(hzOp, 60*time.Millisecond), 1, 160, 0xA, 3*time.Millisecond)
	g.settle(t)
	for _, b := range g.out.raw() {
		var pkt rtp.Packet
		if pkt.Unmarshal(b) == nil && len(pkt.Payload) == FrameSamples {
			t.Fatal("a clear 160-byte frame reached the SRTP leg")
		}
	}
	if err := g.r.SetRemoteSRTP(LegOutside, remote, g.outCodec, nil); err != nil {
		t.Fatal(err)
	}
	before := g.out.count()
	g.talk(LegOperator, Tone(hzOp, 60*time.Millisecond), 4, 640, 0xA, 3*time.Millisecond)
	g.settle(t)
	if g.out.count() != before+3 {
		t.Fatalf("plain leg got %d packets, want 3", g.out.count()-before)
	}
	rec := map[uint16][]byte{}
	for _, f := range g.tap.get(LegOperator) {
		rec[f.SequenceNumber] = f.Payload
	}
	for _, b := range g.out.raw()[before:] {
		var pkt rtp.Packet
		if err := pkt.Unmarshal(b); err != nil || !bytes.Equal(rec[pkt.SequenceNumber], pkt.Payload) {
			t.Fatalf("plain frame %d is not the frame recorded (%v)", pkt.SequenceNumber, err)
		}
	}
}

// FuzzParseSDPSRTP: an SRTP-capable leg's offer parser. No panic; an
// RTP/SAVP stream is never taken by ParseSDP (a leg not configured for
// SRTP); its a=crypto values are bounded and safe to hand to srtp.Select.
func FuzzParseSDPSRTP(f *testing.F) {
	f.Add([]byte(sdpHead + "c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4\r\n"))
	f.Add([]byte(sdpHead + "c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\r\n"))
	f.Add([]byte(sdpHead + "c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 UDP/TLS/RTP/SAVP 0\r\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseSDPSRTP(body)
		if err != nil {
			return
		}
		if r.Secure {
			if _, err := ParseSDP(body); err == nil {
				t.Fatal("ParseSDP accepted an RTP/SAVP stream")
			}
		} else if len(r.Crypto) != 0 {
			t.Fatal("a=crypto kept on a plain RTP/AVP stream")
		}
		if len(r.Crypto) > maxCryptoLines {
			t.Fatalf("%d a=crypto values kept", len(r.Crypto))
		}
		if c, err := srtp.Select(r.Crypto); err == nil {
			if err := c.Validate(); err != nil {
				t.Fatalf("selected an invalid key: %v", err)
			}
		}
	})
}
