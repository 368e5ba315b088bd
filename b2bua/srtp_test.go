package b2bua

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus"

	"plateau/media"
	"plateau/srtp"
)

// sdesCarrier is a scripted carrier that speaks SDES: it answers an
// RTP/SAVP offer with its own fresh key (or refuses it, or answers plain
// RTP, per how), keeps every offer it got, and receives media on its own
// socket.
type sdesCarrier struct {
	t     testing.TB
	conn  *net.UDPConn
	media *net.UDPConn
	how   string // "answer" (SRTP for SRTP, RTP for RTP), "refuse_savp" (488 to RTP/SAVP), "plain" (RTP/AVP answer whatever the offer),
	// "wrong_tag" (SRTP, under a tag Plateau did not offer), "savp_always" (SRTP with a key of its own whatever the offer)

	mu     sync.Mutex
	offers []string
	sess   *srtp.Session // keyed by the last SRTP answer
	key    srtp.Crypto   // its key in that answer
	rtp    [][]byte      // raw packets received on media
}

func newSDESCarrier(t testing.TB, how string) *sdesCarrier {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	m, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	c := &sdesCarrier{t: t, conn: conn, media: m, how: how}
	go c.serve()
	go c.readMedia()
	t.Cleanup(func() { conn.Close(); m.Close() })
	return c
}

func (c *sdesCarrier) addr() netip.AddrPort { return c.conn.LocalAddr().(*net.UDPAddr).AddrPort() }
func (c *sdesCarrier) mediaAddr() netip.AddrPort {
	return c.media.LocalAddr().(*net.UDPAddr).AddrPort()
}

func (c *sdesCarrier) readMedia() {
	buf := make([]byte, 1500)
	for {
		n, _, err := c.media.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		c.mu.Lock()
		c.rtp = append(c.rtp, bytes.Clone(buf[:n]))
		c.mu.Unlock()
	}
}

func (c *sdesCarrier) packets() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.rtp...)
}

func (c *sdesCarrier) offersGot() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.offers...)
}

func (c *sdesCarrier) session() *srtp.Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess
}

// sdesSDP is an SDP at ap: RTP/SAVP with crypto when crypto is set.
func sdesSDP(ap netip.AddrPort, crypto string) string {
	proto, extra := "RTP/AVP", ""
	if crypto != "" {
		proto, extra = "RTP/SAVP", "a=crypto:"+crypto+"\r\n"
	}
	return fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d %s 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n%sa=sendrecv\r\n",
		ap.Addr(), ap.Addr(), ap.Port(), proto, extra)
}

func (c *sdesCarrier) serve() {
	buf := make([]byte, 65535)
	for {
		n, from, err := c.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		msg := string(buf[:n])
		first, _, _ := strings.Cut(msg, "\r\n")
		if strings.HasPrefix(first, "SIP/2.0") {
			continue
		}
		method, _, _ := strings.Cut(first, " ")
		switch method {
		case "ACK":
		case "INVITE":
			_, body, _ := strings.Cut(msg, "\r\n\r\n")
			c.mu.Lock()
			c.offers = append(c.offers, body)
			c.mu.Unlock()
			secure := strings.Contains(body, "RTP/SAVP")
			if secure && c.how == "refuse_savp" {
				c.conn.WriteToUDP([]byte(replyTo(msg, "488 Not Acceptable Here", "na", "", "")), from)
				continue
			}
			crypto := ""
			if !secure && c.how == "savp_always" {
				k, _ := srtp.NewCrypto(1, srtp.AES_CM_128_HMAC_SHA1_80)
				crypto = k.String()
			}
			if secure && (c.how == "answer" || c.how == "wrong_tag") {
				var attrs []string
				for _, l := range strings.Split(body, "\r\n") {
					if v, ok := strings.CutPrefix(l, "a=crypto:"); ok {
						attrs = append(attrs, v)
					}
				}
				offered, err := srtp.Select(attrs)
				if err != nil {
					c.conn.WriteToUDP([]byte(replyTo(msg, "488 Not Acceptable Here", "na", "", "")), from)
					continue
				}
				mine, _ := srtp.Answer(offered)
				if c.how == "wrong_tag" {
					mine.Tag++
				}
				sess, err := srtp.NewSession(mine, offered)
				if err != nil {
					c.t.Error(err)
					continue
				}
				c.mu.Lock()
				c.sess, c.key = sess, mine
				c.mu.Unlock()
				crypto = mine.String()
			}
			tag := tagOf(header(msg, toRE))
			if tag == "" {
				tag = fmt.Sprintf("sd%d", time.Now().UnixNano())
			}
			c.conn.WriteToUDP([]byte(replyTo(msg, "200 OK", tag, fmt.Sprintf("Contact: <sip:carrier@%s>\r\nContent-Type: application/sdp\r\n", c.addr()), sdesSDP(c.mediaAddr(), crypto))), from)
		default:
			c.conn.WriteToUDP([]byte(replyTo(msg, "200 OK", "", "", "")), from)
		}
	}
}

// withSDESTrunk points the env's trunk at carrier, with srtp mode.
func withSDESTrunk(carrier *sdesCarrier, mode media.SRTPMode) envOpt {
	return func(co *CallOptions) {
		co.Trunks[0].Address = carrier.addr().String()
		co.Trunks[0].SRTP = mode
		co.SDESWithoutTLS = true // the test's SIP runs on UDP; e2e covers TLS
	}
}

// clickToCall places an outbound call and waits for its outcome.
func clickToCall(t *testing.T, e *callEnv) (string, Outcome) {
	t.Helper()
	outcome := make(chan Outcome, 1)
	id, err := e.b.ClickToCall(context.Background(), ClickToCallRequest{Operator: testOperator, Number: testApproved, Source: "web"},
		func(o Outcome) { outcome <- o })
	if err != nil {
		t.Fatal(err)
	}
	select {
	case o := <-outcome:
		return id, o
	case <-time.After(15 * time.Second):
		t.Fatal("no outcome")
	}
	return "", Outcome{}
}

func (e *callEnv) relayOf(t *testing.T) *media.Relay {
	t.Helper()
	c := e.b.findCall(testOperator)
	if c == nil {
		t.Fatal("no call")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.relay
}

// An outbound call on a required trunk: the INVITE offers RTP/SAVP with
// a fresh AES_CM_128_HMAC_SHA1_80 key, the carrier's answer keys the
// relay, and what the operator says reaches the carrier encrypted under
// Plateau's offered key, never in clear.
func TestSRTPOutboundRequired(t *testing.T) {
	carrier := newSDESCarrier(t, "answer")
	reg := prometheus.NewRegistry()
	e := newCallEnv(t, withSDESTrunk(carrier, media.SRTPRequired), withMediaMetrics(reg))
	id, o := clickToCall(t, e)
	if !o.Answered {
		t.Fatalf("outcome %+v", o)
	}
	offers := carrier.offersGot()
	if len(offers) != 1 || !strings.Contains(offers[0], "m=audio") || !strings.Contains(offers[0], " RTP/SAVP ") ||
		!strings.Contains(offers[0], "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:") {
		t.Fatalf("offer is not SDES SRTP:\n%s", offers)
	}
	relay := e.relayOf(t)
	if relay.SRTP(media.LegOutside) == nil {
		t.Fatal("the outside leg runs plain RTP")
	}
	// The operator's phone (127.0.0.1, the host of its SDP) talks.
	opPort := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(relay.LocalPort(media.LegOperator)))
	plain := make([]byte, 160)
	for i := range plain {
		plain[i] = byte(0x55 ^ i) // PCMU: what reaches the carrier is re-encoded PCMA, compare decoded
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := range 10 {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SequenceNumber: uint16(10 + i), Timestamp: uint32(160 * i), SSRC: 7}, Payload: plain}
		b, _ := p.Marshal()
		conn.WriteToUDPAddrPort(b, opPort)
	}
	waitFor(t, "media at the carrier", func() bool { return len(carrier.packets()) >= 10 })
	cs := carrier.session()
	for _, b := range carrier.packets() {
		if bytes.Contains(b, plain[:16]) {
			t.Fatal("the operator's audio reached the carrier in clear")
		}
		got, err := cs.UnprotectRTP(nil, b)
		if err != nil {
			t.Fatalf("a packet at the carrier does not authenticate under Plateau's key: %v", err)
		}
		var pkt rtp.Packet
		if err := pkt.Unmarshal(got); err != nil || pkt.PayloadType != 8 || !bytes.Equal(pkt.Payload, plain) {
			t.Fatalf("decrypted packet: pt %d, payload differs: %v", pkt.PayloadType, err)
		}
	}
	// The carrier's SRTP is accepted; a tampered packet is not.
	outPort := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(relay.LocalPort(media.LegOutside)))
	gen := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SequenceNumber: 500, Timestamp: 8000, SSRC: 9}, Payload: make([]byte, 160)}
	b, _ := gen.Marshal()
	sp, _ := cs.ProtectRTP(nil, b)
	bad := bytes.Clone(sp)
	bad[len(bad)-1] ^= 1
	carrier.media.WriteToUDPAddrPort(bad, outPort)
	carrier.media.WriteToUDPAddrPort(sp, outPort)
	// Both counted: the tampered packet was refused, not taken for the
	// one packet accepted (the relay reads them in order).
	waitFor(t, "the carrier's packet accepted, the tampered one refused", func() bool {
		return relay.Stats(media.LegOutside).Packets == 1 && mediaDrops(reg, media.DropSRTPAuth) == 1
	})
	if n := relay.Stats(media.LegOutside).Packets; n != 1 {
		t.Fatalf("%d packets of the carrier accepted, want 1", n)
	}
	if err := e.b.Hangup(id, testOperator); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "teardown", func() bool { return e.callsLeft() == 0 })
	// The audit says the outside leg's media was protected.
	if ended := e.audit.find("call.ended", ""); len(ended) != 1 || ended[0].details["outside_srtp"] != true {
		t.Fatalf("call.ended audit %+v: want outside_srtp true", ended)
	}
}

// withMediaMetrics counts the relays' media on reg.
func withMediaMetrics(reg *prometheus.Registry) envOpt {
	return func(co *CallOptions) { co.MediaMetrics = media.NewMetrics(reg) }
}

// mediaDrops is plateau_rtp_dropped_packets_total{reason} on reg.
func mediaDrops(reg *prometheus.Registry, reason string) float64 {
	return counterValue(reg, "plateau_rtp_dropped_packets_total", "reason", reason)
}

// optional: a carrier that refuses RTP/SAVP with 488 gets the call again
// in plain RTP, and the downgrade is audited; required never falls back.
func TestSRTPOptionalFallsBackRequiredDoesNot(t *testing.T) {
	t.Run("optional", func(t *testing.T) {
		carrier := newSDESCarrier(t, "refuse_savp")
		e := newCallEnv(t, withSDESTrunk(carrier, media.SRTPOptional))
		id, o := clickToCall(t, e)
		if !o.Answered {
			t.Fatalf("outcome %+v", o)
		}
		offers := carrier.offersGot()
		if len(offers) != 2 || !strings.Contains(offers[0], "RTP/SAVP") || strings.Contains(offers[1], "RTP/SAVP") || strings.Contains(offers[1], "a=crypto") {
			t.Fatalf("want an RTP/SAVP offer then a plain one, got %d offers:\n%s", len(offers), offers)
		}
		if e.relayOf(t).SRTP(media.LegOutside) != nil {
			t.Fatal("the fallback call runs SRTP")
		}
		if len(e.audit.find("call.srtp_fallback", "SRTP_REFUSED_BY_CARRIER")) != 1 {
			t.Fatal("the downgrade to plain RTP is not audited")
		}
		e.b.Hangup(id, testOperator)
		waitFor(t, "teardown", func() bool { return e.callsLeft() == 0 })
	})
	t.Run("required", func(t *testing.T) {
		carrier := newSDESCarrier(t, "refuse_savp")
		e := newCallEnv(t, withSDESTrunk(carrier, media.SRTPRequired))
		_, o := clickToCall(t, e)
		if o.Answered || o.Status != 488 {
			t.Fatalf("outcome %+v, want 488 unanswered", o)
		}
		if n := len(carrier.offersGot()); n != 1 {
			t.Fatalf("%d INVITEs, want 1 (no plain retry)", n)
		}
		waitFor(t, "teardown", func() bool { return e.callsLeft() == 0 })
	})
}

// A carrier answering plain RTP to an RTP/SAVP offer is hung up, not
// bridged in clear (audited).
func TestSRTPAnswerWithoutSRTPHungUp(t *testing.T) {
	carrier := newSDESCarrier(t, "plain")
	e := newCallEnv(t, withSDESTrunk(carrier, media.SRTPOptional))
	_, o := clickToCall(t, e)
	if o.Answered {
		t.Fatalf("outcome %+v: a plain answer to an SRTP offer was bridged", o)
	}
	if len(e.audit.find("call.srtp_refused", "SRTP_ANSWER_MISMATCH")) != 1 {
		t.Fatal("the refused answer is not audited")
	}
	if n := len(carrier.offersGot()); n != 1 {
		t.Fatalf("%d INVITEs: an answered call must not be placed again", n)
	}
	waitFor(t, "teardown", func() bool { return e.callsLeft() == 0 })
}

// An answer must accept what was offered (RFC 4568 7.1.2, 7.1.3): a key
// under a tag Plateau did not offer, or RTP/SAVP answering a plain RTP/AVP
// offer, is hung up, never bridged (audited).
func TestSRTPAnswerNotMatchingTheOfferHungUp(t *testing.T) {
	for _, tc := range []struct {
		how    string
		secure bool // whether Plateau's offer is SRTP (keys allowed over UDP)
	}{
		{"wrong_tag", true},
		{"savp_always", false},
	} {
		t.Run(tc.how, func(t *testing.T) {
			carrier := newSDESCarrier(t, tc.how)
			e := newCallEnv(t, withSDESTrunk(carrier, media.SRTPOptional), func(co *CallOptions) { co.SDESWithoutTLS = tc.secure })
			_, o := clickToCall(t, e)
			if o.Answered {
				t.Fatalf("outcome %+v: an answer that does not match the offer was bridged", o)
			}
			offers := carrier.offersGot()
			if len(offers) != 1 || strings.Contains(offers[0], "RTP/SAVP") != tc.secure {
				t.Fatalf("want one offer, SRTP %v; got %d:\n%s", tc.secure, len(offers), offers)
			}
			if len(e.audit.find("call.srtp_refused", "SRTP_ANSWER_MISMATCH")) != 1 {
				t.Fatal("the refused answer is not audited")
			}
			waitFor(t, "teardown", func() bool { return e.callsLeft() == 0 })
		})
	}
}

// Without TLS, and without the test override, no key is offered: required
// refuses to use the trunk, optional offers plain RTP.
func TestSRTPNeverOffersKeysWithoutTLS(t *testing.T) {
	for _, mode := range []media.SRTPMode{media.SRTPRequired, media.SRTPOptional} {
		t.Run(mode.String(), func(t *testing.T) {
			carrier := newSDESCarrier(t, "answer")
			e := newCallEnv(t, withSDESTrunk(carrier, mode), func(co *CallOptions) { co.SDESWithoutTLS = false })
			id, o := clickToCall(t, e)
			for _, off := range carrier.offersGot() {
				if strings.Contains(off, "a=crypto") {
					t.Fatalf("SDES keys offered over UDP:\n%s", off)
				}
			}
			if mode == media.SRTPRequired {
				if o.Answered || len(carrier.offersGot()) != 0 {
					t.Fatalf("required over UDP: outcome %+v, %d INVITEs", o, len(carrier.offersGot()))
				}
			} else {
				if !o.Answered {
					t.Fatalf("optional over UDP: outcome %+v", o)
				}
				e.b.Hangup(id, testOperator)
			}
			waitFor(t, "teardown", func() bool { return e.callsLeft() == 0 })
		})
	}
}

// inboundSDES has the trunk source call in with sdp (RTP/SAVP with crypto,
// or plain) and returns the final response.
func (e *callEnv) inboundSDES(t *testing.T, crypto string) (*inboundDialog, string) {
	t.Helper()
	d := &inboundDialog{callID: fmt.Sprintf("in-%d@carrier", time.Now().UnixNano()), fromTag: fmt.Sprintf("c%d", time.Now().UnixNano())}
	ap := e.trunkSrc.addr()
	sdp := sdesSDP(netip.AddrPortFrom(ap.Addr(), ap.Port()+1), crypto)
	e.trunkSrc.send(e.addr, e.request(e.trunkSrc, "INVITE", d, "0240123456", "", "application/sdp", sdp))
	r := e.trunkSrc.final("INVITE", 10*time.Second)
	d.toTag = tagOf(header(r, toRE))
	d.ackFailure = !strings.HasPrefix(r, "SIP/2.0 200")
	e.trunkSrc.send(e.addr, e.request(e.trunkSrc, "ACK", d, "0240123456", "", "", ""))
	return d, r
}

func withSDESInbound(mode media.SRTPMode) envOpt {
	return func(co *CallOptions) { co.Trunks[0].SRTP, co.SDESWithoutTLS = mode, true }
}

// A carrier's SRTP offer is answered with SRTP under Plateau's own fresh
// key and the tag the carrier offered; a plain offer on a required trunk
// is refused 488 SRTP_REQUIRED, audited; on an off trunk an SRTP offer is
// refused as before.
func TestSRTPInbound(t *testing.T) {
	theirs, _ := srtp.NewCrypto(7, srtp.AES_CM_128_HMAC_SHA1_80)
	t.Run("required answers SRTP", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		e := newCallEnv(t, withSDESInbound(media.SRTPRequired), withMediaMetrics(reg))
		d, r := e.inboundSDES(t, "3 F8_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\na=crypto:"+theirs.String())
		if !strings.HasPrefix(r, "SIP/2.0 200") {
			t.Fatalf("SRTP offer: %q", statusOf(r))
		}
		_, body, _ := strings.Cut(r, "\r\n\r\n")
		remote, err := media.ParseSDPSRTP([]byte(body))
		if err != nil || !remote.Secure || len(remote.Crypto) != 1 {
			t.Fatalf("answer is not SDES SRTP (%v):\n%s", err, body)
		}
		ours, err := srtp.ParseCrypto(remote.Crypto[0])
		if err != nil || ours.Tag != 7 || ours.Suite != theirs.Suite || ours.Equal(theirs) {
			t.Fatalf("answer crypto %q: want tag 7, same suite, Plateau's own key (%v)", remote.Crypto[0], err)
		}
		waitFor(t, "the call connected", func() bool { return e.b.findCall(testOperator) != nil })
		relay := e.relayOf(t)
		if relay.SRTP(media.LegOutside) == nil {
			t.Fatal("the outside leg runs plain RTP")
		}
		// The relay receives under the carrier's key: a packet under
		// Plateau's own key (what a session keyed the wrong way round
		// would take) is refused, the carrier's is accepted.
		to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(relay.LocalPort(media.LegOutside)))
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		send := func(k srtp.Crypto, seq uint16) {
			sender, _ := srtp.NewSession(k, k)
			pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SequenceNumber: seq, Timestamp: 160 * uint32(seq), SSRC: 5}, Payload: make([]byte, 160)}
			b, _ := pkt.Marshal()
			p, _ := sender.ProtectRTP(nil, b)
			conn.WriteToUDPAddrPort(p, to)
		}
		send(ours, 10)
		waitFor(t, "a packet under Plateau's own key refused", func() bool { return mediaDrops(reg, media.DropSRTPAuth) == 1 })
		if n := relay.Stats(media.LegOutside).Packets; n != 0 {
			t.Fatalf("a packet under Plateau's own key was accepted (%d)", n)
		}
		send(theirs, 11)
		waitFor(t, "the carrier's packet accepted", func() bool { return relay.Stats(media.LegOutside).Packets == 1 })
		e.trunkSrc.send(e.addr, e.request(e.trunkSrc, "BYE", d, "0240123456", "", "", ""))
		waitFor(t, "teardown", func() bool { return e.callsLeft() == 0 })
	})
	t.Run("required refuses plain", func(t *testing.T) {
		e := newCallEnv(t, withSDESInbound(media.SRTPRequired))
		_, r := e.inboundSDES(t, "")
		if !strings.HasPrefix(r, "SIP/2.0 488") || !strings.Contains(r, ReasonSRTPRequired) {
			t.Fatalf("plain offer on a required trunk: %q", r)
		}
		if len(e.audit.find("policy.decision", ReasonSRTPRequired)) != 1 {
			t.Fatal("the refusal is not audited")
		}
	})
	t.Run("no usable crypto", func(t *testing.T) {
		e := newCallEnv(t, withSDESInbound(media.SRTPOptional))
		_, r := e.inboundSDES(t, "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR UNENCRYPTED_SRTP")
		if !strings.HasPrefix(r, "SIP/2.0 488") || !strings.Contains(r, ReasonSRTPCrypto) {
			t.Fatalf("weakened SRTP offer: %q", r)
		}
	})
	t.Run("keys over UDP refused", func(t *testing.T) {
		e := newCallEnv(t, func(co *CallOptions) { co.Trunks[0].SRTP = media.SRTPOptional })
		_, r := e.inboundSDES(t, theirs.String())
		if !strings.HasPrefix(r, "SIP/2.0 488") || !strings.Contains(r, ReasonSRTPNeedsTLS) {
			t.Fatalf("SDES over UDP: %q", r)
		}
	})
	t.Run("off refuses SRTP", func(t *testing.T) {
		e := newCallEnv(t)
		_, r := e.inboundSDES(t, theirs.String())
		if !strings.HasPrefix(r, "SIP/2.0 488") {
			t.Fatalf("SRTP offer on an off trunk: %q", r)
		}
	})
}

// A carrier's re-INVITE keeps the session when it repeats its key, and
// re-keys what Plateau receives when it sends a new one; Plateau's answer
// repeats its own key.
func TestSRTPReinviteFromCarrier(t *testing.T) {
	e := newCallEnv(t, withSDESInbound(media.SRTPRequired))
	theirs, _ := srtp.NewCrypto(1, srtp.AES_CM_128_HMAC_SHA1_80)
	d, r := e.inboundSDES(t, theirs.String())
	if !strings.HasPrefix(r, "SIP/2.0 200") {
		t.Fatalf("%q", statusOf(r))
	}
	waitFor(t, "the call connected", func() bool { return e.b.findCall(testOperator) != nil })
	relay := e.relayOf(t)
	s1 := relay.SRTP(media.LegOutside)
	_, body, _ := strings.Cut(r, "\r\n\r\n")
	ans, _ := media.ParseSDPSRTP([]byte(body))
	ours := ans.Crypto[0]

	ap := e.trunkSrc.addr()
	reinvite := func(crypto string) string {
		e.trunkSrc.send(e.addr, e.request(e.trunkSrc, "INVITE", d, "0240123456", "", "application/sdp", sdesSDP(netip.AddrPortFrom(ap.Addr(), ap.Port()+1), crypto)))
		r := e.trunkSrc.final("INVITE", 10*time.Second)
		e.trunkSrc.send(e.addr, e.request(e.trunkSrc, "ACK", d, "0240123456", "", "", ""))
		return r
	}
	r = reinvite(theirs.String())
	if !strings.HasPrefix(r, "SIP/2.0 200") || !strings.Contains(r, "a=crypto:"+ours) {
		t.Fatalf("re-INVITE with the same key: %q, want our same key back", r)
	}
	if relay.SRTP(media.LegOutside) != s1 {
		t.Fatal("a re-INVITE repeating the key replaced the session (replay state lost)")
	}
	newKey, _ := srtp.NewCrypto(1, srtp.AES_CM_128_HMAC_SHA1_80)
	r = reinvite(newKey.String())
	if !strings.HasPrefix(r, "SIP/2.0 200") || !strings.Contains(r, "a=crypto:"+ours) {
		t.Fatalf("re-INVITE with a new key: %q", r)
	}
	// What the carrier now sends under its new key is accepted.
	sender, _ := srtp.NewSession(newKey, newKey)
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SequenceNumber: 1, Timestamp: 160, SSRC: 5}, Payload: make([]byte, 160)}
	b, _ := pkt.Marshal()
	p, _ := sender.ProtectRTP(nil, b)
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.WriteToUDPAddrPort(p, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(relay.LocalPort(media.LegOutside))))
	waitFor(t, "the re-keyed packet accepted", func() bool { return relay.Stats(media.LegOutside).Packets == 1 })
	// A plain re-INVITE on a required trunk is refused; SRTP goes on.
	if r = reinvite(""); !strings.HasPrefix(r, "SIP/2.0 488") {
		t.Fatalf("plain re-INVITE on a required trunk: %q", statusOf(r))
	}
	if relay.SRTP(media.LegOutside) == nil {
		t.Fatal("a refused plain re-INVITE turned SRTP off")
	}
	e.trunkSrc.send(e.addr, e.request(e.trunkSrc, "BYE", d, "0240123456", "", "", ""))
	waitFor(t, "teardown", func() bool { return e.callsLeft() == 0 })
}
