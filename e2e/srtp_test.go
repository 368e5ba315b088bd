package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/zaf/g711"

	"plateau/media"
	"plateau/sim"
	"plateau/srtp"
)

// SRTP with SDES keys on a TLS trunk (issue 13): pstn-sim as an SDES
// carrier over TLS. The carrier's endpoint drops and counts every packet
// that does not authenticate under the key Plateau signalled, so a clear
// RTP packet reaching it would show in SRTPDropped.

const (
	mSRTPAuth = `plateau_rtp_dropped_packets_total{reason="srtp_auth"}`
	noiseSeed = 4568
)

// noiseWAV writes frames×20 ms of seeded noise: every 160-sample frame is
// unique, so a frame found in the recording is that frame.
func noiseWAV(t *testing.T, dir string, frames int) (string, []int16) {
	t.Helper()
	r := rand.New(rand.NewPCG(noiseSeed, 1))
	pcm := make([]int16, frames*media.FrameSamples)
	for i := range pcm {
		pcm[i] = int16(r.IntN(16000) - 8000)
	}
	path := filepath.Join(dir, "noise.wav")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := media.WriteWAV(f, pcm); err != nil {
		t.Fatal(err)
	}
	return path, pcm
}

// sdesCarrier is pstn-sim over TLS on 127.0.0.2 (tlsCarrier) with srtp
// mode, playing wav (echo when empty).
func sdesCarrier(t *testing.T, cert pemPair, mode, wav string) *sim.PSTN {
	t.Helper()
	return tlsCarrier(t, cert, "", func(cfg *sim.Config) {
		cfg.SRTP = mode
		if wav != "" {
			cfg.Answer = sim.AnswerConfig{Mode: "play", WAV: wav}
		}
	})
}

// sdesPlateau starts plateau with SIP over TLS and one TLS trunk toward
// carrier (its certificate's CA: caFile) with trunks[].srtp mode.
func sdesPlateau(t *testing.T, carrier *sim.PSTN, caFile, mode string) (*plateau, int) {
	t.Helper()
	p, tlsPort, _ := tlsPlateauKeepalive(t, carrier, fmt.Sprintf("ca_file: %q", caFile), "0s", ", srtp: "+mode)
	return p, tlsPort
}

// liveCall waits for the carrier's answered call and returns its stats.
func liveCall(t *testing.T, carrier *sim.PSTN) sim.CallStats {
	t.Helper()
	var c sim.CallStats
	eventually(t, "the carrier's call answered", func() (bool, string) {
		cs := carrier.Calls()
		if len(cs) == 1 && cs[0].Answered && cs[0].RTPTo != "" {
			c = cs[0]
			return true, ""
		}
		return false, fmt.Sprintf("%+v", cs)
	})
	return c
}

// injectedRTP is what an attacker on the carrier's path sends: for each of
// n frames and each payload type of pts, plain RTP carrying a loud 3 kHz
// tone, and the same under an SRTP key nobody signalled: 2·n·len(pts)
// packets, numbered on from seq and ts in stream ssrc, all to be dropped
// as srtp_auth.
func injectedRTP(n int, ssrc uint32, seq uint16, ts uint32, pts ...uint8) [][]byte {
	k, _ := srtp.NewCrypto(1, srtp.AES_CM_128_HMAC_SHA1_80)
	forger, _ := srtp.NewSession(k, k)
	tone := media.Tone(3000, 20*time.Millisecond)
	var out [][]byte
	for i := range n {
		for _, pt := range pts {
			enc := g711.EncodeUlawFrame
			if pt == 8 {
				enc = g711.EncodeAlawFrame
			}
			pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq + uint16(i), Timestamp: ts + uint32(i*160), SSRC: ssrc}, Payload: make([]byte, 160)}
			for j, s := range tone {
				pkt.Payload[j] = enc(s)
			}
			plain, _ := pkt.Marshal()
			forged, _ := forger.ProtectRTP(nil, plain)
			out = append(out, plain, forged)
		}
	}
	return out
}

// injectFromCarrierHost sends, from the carrier's host (a port of its
// own), 20 injected packets (PCMU and PCMA) to Plateau's RTP address to.
func injectFromCarrierHost(t *testing.T, to string) {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dst := netip.MustParseAddrPort(to)
	for _, b := range injectedRTP(5, 0xBAD, 40000, 0, 0, 8) {
		conn.WriteToUDPAddrPort(b, dst)
	}
}

// carrierStream is the carrier's RTP toward Plateau's port (to) as an
// attacker on its path sees it, from the capture: its source address
// and, SRTP leaving RTP headers in clear, the last header sent.
func carrierStream(t *testing.T, capture *udpCapture, to string) (netip.AddrPort, rtp.Header) {
	t.Helper()
	dst := netip.MustParseAddrPort(to)
	var src netip.AddrPort
	var last rtp.Header
	eventually(t, "the carrier's RTP captured", func() (bool, string) {
		count, lastOf := map[int]int{}, map[int]rtp.Header{}
		for _, p := range capture.packets() {
			var h rtp.Header
			if p.dstPort != int(dst.Port()) {
				continue
			}
			if _, err := h.Unmarshal(p.payload); err != nil {
				continue
			}
			count[p.srcPort]++
			lastOf[p.srcPort] = h
		}
		for port, n := range count {
			if n >= 20 && (!src.IsValid() || n > count[int(src.Port())]) {
				src, last = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), uint16(port)), lastOf[port]
			}
		}
		return src.IsValid(), fmt.Sprint(count)
	})
	return src, last
}

// rightChannel reads the recording's right channel (what the operator was
// sent: the outside party).
func rightChannel(t *testing.T, p *plateau) []int16 {
	t.Helper()
	var files map[string][]string
	eventually(t, "the call recorded", func() (bool, string) {
		files = recordingFiles(t, p)
		return len(files[".wav"]) == 1 && len(files[".json"]) == 1, fmt.Sprint(files)
	})
	wav, err := os.ReadFile(files[".wav"][0])
	if err != nil || len(wav) < 44 {
		t.Fatalf("read %v: %v", files[".wav"], err)
	}
	pcm := wav[44:]
	out := make([]int16, len(pcm)/4)
	for i := range out {
		out[i] = int16(binary.LittleEndian.Uint16(pcm[i*4+2:]))
	}
	return out
}

// carrierFramesRecorded checks that the recording's outside channel holds,
// sample-exact, at least 80 % of the frames the carrier sent (sentFrames of
// sent, at least 150), and returns that channel.
func carrierFramesRecorded(t *testing.T, p *plateau, sent []int16, sentFrames int) []int16 {
	t.Helper()
	rec := rightChannel(t, p)
	found := framesFound(sent, rec, sentFrames)
	t.Logf("%d of the %d frames the carrier sent found sample-exact in the recording", found, sentFrames)
	if sentFrames < 150 || found < sentFrames*8/10 {
		t.Errorf("the recording's outside channel holds %d of the carrier's %d frames", found, sentFrames)
	}
	return rec
}

// toneWindows counts the 10 ms windows of pcm dominated by a tone at hz
// (an injected frame's steady part fills at least one): a tone of the
// injections' level there scores about 2.5e7, the carrier's noise about
// 2.6e5 (its variance over 80 samples). Over a whole call, a second of
// tone would not stand out of ten of noise.
func toneWindows(pcm []int16, hz float64) int {
	const n = media.FrameSamples / 2
	found := 0
	for i := 0; i+n <= len(pcm); i += n {
		if media.Goertzel(pcm[i:i+n], hz) > 5e6 {
			found++
		}
	}
	return found
}

// framesFound counts the frames of sent (the carrier's audio, frame k is
// sent[k*160:]) found sample-exact in rec, through any G.711 path
// (carrier codec, operator codec): the recording holds what the carrier
// sent, decrypted, or it does not.
func framesFound(sent, rec []int16, frames int) int {
	const n = media.FrameSamples
	type key [8]int16
	at := map[key][]int{}
	for i := 0; i+n <= len(rec); i++ {
		k := key(rec[i : i+8])
		at[k] = append(at[k], i)
	}
	paths := []func(int16) int16{
		func(s int16) int16 { return g711.DecodeAlawFrame(g711.Ulaw2AlawFrame(g711.EncodeUlawFrame(s))) },
		func(s int16) int16 { return g711.DecodeUlawFrame(g711.EncodeUlawFrame(s)) },
		func(s int16) int16 { return g711.DecodeAlawFrame(g711.EncodeAlawFrame(s)) },
		func(s int16) int16 { return g711.DecodeUlawFrame(g711.Alaw2UlawFrame(g711.EncodeAlawFrame(s))) },
	}
	found := 0
	exp := make([]int16, n)
	for f := range frames {
		off := (f * n) % len(sent)
		for _, path := range paths {
			for i := range exp {
				exp[i] = path(sent[off+i])
			}
			hit := false
			for _, pos := range at[key(exp[:8])] {
				if equal16(rec[pos:pos+n], exp) {
					hit = true
					break
				}
			}
			if hit {
				found++
				break
			}
		}
	}
	return found
}

func equal16(a, b []int16) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// An operator's call to a required SDES trunk: offered RTP/SAVP over TLS,
// answered by the carrier with its own key; everything that reached the
// carrier authenticated under Plateau's key (no clear RTP); clear and
// forged packets injected toward Plateau are dropped and counted, never
// recorded; the recording's outside channel holds, frame by frame, what
// the carrier sent, decrypted.
func TestSRTPOutboundCallRecorded(t *testing.T) {
	dir := t.TempDir()
	wav, sent := noiseWAV(t, dir, 500) // 10 s: no frame repeats in the call
	cert := writePair(t, dir, "carrier", "127.0.0.2")
	carrier := sdesCarrier(t, cert, "required", wav)
	p, _ := sdesPlateau(t, carrier, cert.cert, "required")

	capture := startUDPCapture(t)
	op := startOperator(t, p, "uac_talk.xml", approved, "-d", "6000")
	c := liveCall(t, carrier)
	// Once Plateau applied the answer (its keys): before, the packets
	// would be dropped for having no source yet, not for their keys.
	waitMetric(t, p, mAnswer, 1)
	want := 20.0
	if capture != nil {
		// The same from the carrier's own RTP address and port (spoofed),
		// with its SSRC, payload type and numbering 100 packets (2 s)
		// ahead: to the relay, a plain packet would be the carrier's next,
		// and only SRTP authentication keeps its tone (a second) out of
		// the recording. Read before anything else is sent to that port.
		src, h := carrierStream(t, capture, c.RTPTo)
		pkts := injectedRTP(50, h.SSRC, h.SequenceNumber+100, h.Timestamp+100*160, h.PayloadType)
		if spoofUDP(t, src, netip.MustParseAddrPort(c.RTPTo), pkts) {
			t.Logf("%d packets sent as the carrier's stream from %s (spoofed), after its %+v", len(pkts), src, h)
			want += float64(len(pkts))
		}
	}
	injectFromCarrierHost(t, c.RTPTo)
	capture.stop()
	eventually(t, "the injected packets dropped as srtp_auth", func() (bool, string) {
		v := p.metricOf(mSRTPAuth)
		return v >= want, strconv.FormatFloat(v, 'f', -1, 64)
	})
	op.mustSucceed(45 * time.Second)
	waitMetric(t, p, mActive, 0)

	eventually(t, "the carrier's call ended", func() (bool, string) {
		cs := carrier.Calls()
		return len(cs) == 1 && !cs[0].End.IsZero(), fmt.Sprintf("%+v", cs)
	})
	c = carrier.Calls()[0]
	t.Logf("carrier: %+v", c)
	if !strings.EqualFold(c.Transport, "TLS") || !c.SRTP || !c.Answered {
		t.Fatalf("carrier's call %+v: want answered SRTP over TLS", c)
	}
	if c.RTPRecv < 100 || c.SRTPDropped != 0 {
		t.Errorf("carrier received %d packets, %d not authenticating: want the operator's audio, all SRTP under Plateau's key", c.RTPRecv, c.SRTPDropped)
	}
	rec := carrierFramesRecorded(t, p, sent, c.RTPSent)
	if n := toneWindows(rec, 3000); n != 0 {
		t.Errorf("the injected 3 kHz tone reached the recording (%d windows of 10 ms)", n)
	}
	if out, err := p.plateauCmd("recordings", "verify"); err != nil {
		t.Errorf("recordings verify: %v\n%s", err, out)
	}
}

// A carrier's SDES call over TLS is answered with SRTP under Plateau's own
// key: the operator is rung, and what the carrier receives (the notice,
// the operator) all authenticates; a carrier offering plain RTP to a
// required trunk is refused 488 SRTP_REQUIRED, audited, ringing nobody.
func TestSRTPInboundCall(t *testing.T) {
	dir := t.TempDir()
	wav, sent := noiseWAV(t, dir, 500)
	cert := writePair(t, dir, "carrier", "127.0.0.2")
	carrier := sdesCarrier(t, cert, "required", wav)
	plain := sdesCarrier(t, cert, "off", "")
	p, tlsPort := sdesPlateau(t, carrier, cert.cert, "required")

	phonePort := registerSippPhone(t, p)
	target := fmt.Sprintf("127.0.0.1:%d", tlsPort)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()

	// Plain RTP on a required trunk: refused before anyone is rung.
	if st, err := plain.CallOver(ctx, "TLS", target, callerID, approved, time.Second); err == nil || st.Answered || st.Status != 488 {
		t.Fatalf("plain RTP offer on a required trunk: %+v, %v; want 488", st, err)
	}
	waitMetric(t, p, mRefused("SRTP_REQUIRED"), 1)
	if got := auditLines(t, p, "policy.decision"); !strings.Contains(got, "SRTP_REQUIRED") {
		t.Errorf("the refusal is not audited:\n%s", got)
	}

	phone := startSipp(t, "operator phone answers", "uas_answer.xml", "-p", phonePort)
	st, err := carrier.CallOver(ctx, "TLS", target, callerID, approved, 6*time.Second)
	if err != nil {
		t.Fatalf("SDES call in: %v (%+v)", err, st)
	}
	phone.mustSucceed(30 * time.Second)
	waitMetric(t, p, mActive, 0)
	t.Logf("carrier: %+v", st)
	if !st.Answered || !st.SRTP || !strings.EqualFold(st.Transport, "TLS") {
		t.Fatalf("carrier's call %+v: want answered SRTP over TLS", st)
	}
	if st.RTPRecv < 100 || st.SRTPDropped != 0 {
		t.Errorf("carrier received %d packets, %d not authenticating", st.RTPRecv, st.SRTPDropped)
	}
	carrierFramesRecorded(t, p, sent, st.RTPSent)
	auditVerify(t, p)
}

// A required trunk whose carrier refuses RTP/SAVP: the operator gets 488
// and the call is not placed again in clear; an optional trunk places it
// again in RTP/AVP, audited call.srtp_fallback.
func TestSRTPCarrierWithoutSRTP(t *testing.T) {
	for _, mode := range []string{"required", "optional"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			cert := writePair(t, dir, "carrier", "127.0.0.2")
			carrier := sdesCarrier(t, cert, "off", "")
			p, _ := sdesPlateau(t, carrier, cert.cert, mode)
			if mode == "required" {
				startOperator(t, p, "uac_488.xml", approved).mustSucceed(45 * time.Second)
				waitMetric(t, p, mActive, 0)
				if cs := carrier.Calls(); len(cs) != 1 || cs[0].Status != 488 || cs[0].Answered {
					t.Fatalf("carrier saw %+v: want one INVITE, refused 488", cs)
				}
				return
			}
			startOperator(t, p, "uac_call.xml", approved).mustSucceed(45 * time.Second)
			waitMetric(t, p, mActive, 0)
			cs := carrier.Calls()
			if len(cs) != 2 || cs[0].Status != 488 || !cs[1].Answered || cs[1].SRTP {
				t.Fatalf("carrier saw %+v: want an RTP/SAVP INVITE refused 488, then a plain call answered", cs)
			}
			if got := auditLines(t, p, "call.srtp_fallback"); !strings.Contains(got, "SRTP_REFUSED_BY_CARRIER") {
				t.Errorf("the downgrade is not audited:\n%s", got)
			}
		})
	}
}
