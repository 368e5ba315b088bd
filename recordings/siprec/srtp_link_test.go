package siprec

import (
	"context"
	"crypto/x509"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"

	"plateau/certs"
	"plateau/media"
	"plateau/recordings"
	"plateau/srtp"
)

// tlsPair is a recorder on TLS and a client with the right certificate.
func tlsPair(t *testing.T) (*tlsRecorder, *Client) {
	t.Helper()
	plateauCA := newTestCA(t, "plateau CA")
	rec := startTLSRecorder(t, plateauCA)
	client := plateauCA.issue(t, "plateau-node1", nil, x509.ExtKeyUsageClientAuth, time.Now().Add(24*time.Hour))
	return rec, newTLSClient(t, rec.srv.Addr().String(), certs.ClientConfig("recorder.test", rec.ca.pool(), client))
}

// TestSRTPLink: over TLS both streams are SRTP; what reaches the
// recorder's ports in clear, tampered or replayed is dropped before the
// WAV and counted by reason, and the real audio is recorded.
func TestSRTPLink(t *testing.T) {
	rec, c := tlsPair(t)
	s, err := c.Start(context.Background(), recordings.Info{ID: "srtp-link", Operator: "101", Number: "+33123456789", Start: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range s.streams {
		if s.streams[i].srtp == nil {
			t.Fatalf("stream %d is not SRTP on a TLS link", i)
		}
	}
	waitFor(t, "the session on the recorder", func() bool { return rec.srv.Open() == 1 })
	dest := s.streams[media.LegOperator].dest
	inject, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(dest))
	if err != nil {
		t.Fatal(err)
	}
	defer inject.Close()

	// The operator speaks 440 Hz through the tap; an attacker on the LAN
	// sends a 1 kHz tone in clear to the same port, replays a genuine
	// packet and flips a bit of another.
	op := tonePackets(ptPCMU, 440, 50, 0x1111)
	fake := tonePackets(ptPCMU, 1000, 50, 0x1111)
	var genuine []byte
	tick := time.NewTicker(20 * time.Millisecond)
	for i := range op {
		<-tick.C
		if err := s.TapRTP(media.LegOperator, &op[i], time.Now()); err != nil {
			t.Fatalf("TapRTP: %v", err)
		}
		raw, _ := fake[i].Marshal()
		inject.Write(raw) // clear RTP: fails authentication
		if i == 10 {
			// A packet as the client protects it (with the stream's key,
			// another SSRC so the tap's own numbering is untouched),
			// captured and sent again.
			o := &s.streams[media.LegOperator]
			o.mu.Lock()
			hdr := rtp.Header{Version: 2, PayloadType: ptPCMU, SequenceNumber: 7, Timestamp: 1234, SSRC: 0xdeadbeef}
			plain, _ := (&rtp.Packet{Header: hdr, Payload: fake[i].Payload}).Marshal()
			genuine, err = o.srtp.ProtectRTP(nil, plain)
			hdr.SequenceNumber++
			plain, _ = (&rtp.Packet{Header: hdr, Payload: fake[i].Payload}).Marshal()
			tampered, err2 := o.srtp.ProtectRTP(nil, plain)
			o.mu.Unlock()
			if err != nil || err2 != nil {
				t.Fatal(err, err2)
			}
			inject.Write(genuine)
			inject.Write(genuine) // replay
			tampered[20] ^= 0x01  // a bit of the payload flipped
			inject.Write(tampered)
		}
	}
	tick.Stop()
	waitFor(t, "the drops counted", func() bool {
		return counterValue(rec.metrics.srtpDrops["auth"]) >= 40 && counterValue(rec.metrics.srtpDrops["replay"]) >= 1
	})
	if err := s.Close(time.Now()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	left, _ := readStereo(t, strings.TrimSuffix(findFile(t, rec.dir, ".json"), ".json")+".wav")
	l440, l1k := goertzel(left, 440), goertzel(left, 1000)
	t.Logf("left channel: 440 Hz %.3g, 1 kHz %.3g; drops auth %v replay %v", l440, l1k,
		counterValue(rec.metrics.srtpDrops["auth"]), counterValue(rec.metrics.srtpDrops["replay"]))
	if l440 == 0 {
		t.Errorf("the operator's audio is not in the recording")
	}
	// One genuine 1 kHz packet (the first copy of the replayed one) is
	// legitimately in; the 50 clear ones and the replay must not be.
	if l1k > l440/10 {
		t.Errorf("injected audio reached the recording: 1 kHz %.3g against the operator's 440 Hz %.3g", l1k, l440)
	}
}

// TestSRTPOnlyOverTLS: the recorder answers 488 to plain RTP on its TLS
// link and to SRTP (keys in a clear SDP) on a plain one.
func TestSRTPOnlyOverTLS(t *testing.T) {
	offer := func(t *testing.T, c *Client, secure bool) *sip.Response {
		t.Helper()
		var cryptos []string
		if secure {
			for range 2 {
				cr, _ := srtp.NewCrypto(1, srtp.AES_CM_128_HMAC_SHA1_80)
				cryptos = append(cryptos, cr.String())
			}
		}
		sdpBody, err := buildOffer(c.localIP, 1, []string{LabelOperator, LabelOutside}, []int{41000, 41002}, cryptos)
		if err != nil {
			t.Fatal(err)
		}
		md, _ := NewMetadata(recordings.Info{ID: "mode", Operator: "101", Number: "+33123456789", Start: time.Now()}, "").Marshal()
		body, ct, _ := BuildBody(sdpBody, md)
		contact := c.contact
		if c.opts.Transport == "tls" {
			if contact, err = c.tlsContact(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		req := sip.NewRequest(sip.INVITE, c.recipient)
		req.SetBody(body)
		cth := sip.ContentTypeHeader(ct)
		req.AppendHeader(&cth)
		req.AppendHeader(sip.NewHeader("Require", "siprec"))
		req.AppendHeader(&contact)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		res, err := c.cl.Do(ctx, req)
		if err != nil {
			t.Fatalf("INVITE: %v", err)
		}
		return res
	}
	t.Run("plain RTP over TLS", func(t *testing.T) {
		rec, c := tlsPair(t)
		if res := offer(t, c, false); res.StatusCode != sip.StatusNotAcceptableHere {
			t.Errorf("plain offer over TLS: %d %s, want 488", res.StatusCode, res.Reason)
		}
		if rec.srv.Open() != 0 {
			t.Errorf("a session opened")
		}
	})
	t.Run("SRTP over plain TCP", func(t *testing.T) {
		rec := startRecorder(t, 0)
		c := newTestClient(t, rec.srv.Addr().String(), "tcp")
		if res := offer(t, c, true); res.StatusCode != sip.StatusNotAcceptableHere {
			t.Errorf("SRTP offer in clear: %d %s, want 488", res.StatusCode, res.Reason)
		}
		if rec.srv.Open() != 0 {
			t.Errorf("a session opened")
		}
	})
}

// TestConnectRefusesDowngrade: the client never sends audio in clear on a
// TLS link, nor takes an SRTP answer on a plain one, nor a key of another
// tag or suite.
func TestConnectRefusesDowngrade(t *testing.T) {
	ip := netip.MustParseAddr("127.0.0.1")
	var local []srtp.Crypto
	for range 2 {
		cr, _ := srtp.NewCrypto(1, srtp.AES_CM_128_HMAC_SHA1_80)
		local = append(local, cr)
	}
	streams := []mediaStream{
		{Media: "audio", Proto: "RTP/SAVP", Formats: []string{"0"}, Label: "1", Addr: netip.MustParseAddrPort("127.0.0.1:9")},
		{Media: "audio", Proto: "RTP/SAVP", Formats: []string{"0"}, Label: "2", Addr: netip.MustParseAddrPort("127.0.0.1:9")},
	}
	answerWith := func(cryptos []string) []byte {
		b, err := buildAnswer(ip, 1, streams, []int{42000, 42002}, cryptos)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	other32, _ := srtp.NewCrypto(1, srtp.AES_CM_128_HMAC_SHA1_32)
	tag2, _ := srtp.NewCrypto(2, srtp.AES_CM_128_HMAC_SHA1_80)
	good1, _ := srtp.Answer(local[0])
	good2, _ := srtp.Answer(local[1])
	for _, tc := range []struct {
		name   string
		answer []byte
		local  []srtp.Crypto
		ok     bool
	}{
		{"SRTP answer to an SRTP offer", answerWith([]string{good1.String(), good2.String()}), local, true},
		{"plain answer over TLS", answerWith(nil), local, false},
		{"SRTP answer on a plain link", answerWith([]string{good1.String(), good2.String()}), nil, false},
		{"another suite", answerWith([]string{other32.String(), good2.String()}), local, false},
		{"another tag", answerWith([]string{good1.String(), tag2.String()}), local, false},
		{"no usable key", answerWith([]string{"1 AES_CM_128_HMAC_SHA1_80 inline:short", good2.String()}), local, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Session{}
			ports := []int{0, 0}
			for i := range s.streams {
				conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
				if err != nil {
					t.Fatal(err)
				}
				s.streams[i].conn = conn
				ports[i] = conn.LocalAddr().(*net.UDPAddr).Port
			}
			s.c = &Client{localIP: ip}
			defer s.closeConns()
			err := s.connect(tc.answer, ports, tc.local)
			if tc.ok && err != nil {
				t.Fatalf("connect: %v", err)
			}
			if !tc.ok && err == nil {
				t.Fatalf("connect accepted it")
			}
		})
	}
}

func TestTapRTPAllocsSRTP(t *testing.T) {
	plateauCA := newTestCA(t, "plateau CA")
	rec := startTLSRecorder(t, plateauCA)
	client := plateauCA.issue(t, "plateau-node1", nil, x509.ExtKeyUsageClientAuth, time.Now().Add(24*time.Hour))
	// AllocsPerRun counts every goroutine's allocations: no readiness
	// probe (OPTIONS) may run during the measurement.
	c, err := NewClient(ClientOptions{Address: rec.srv.Addr().String(), Transport: "tls", Timeout: 2 * time.Second, Log: testLog(t),
		TLS: certs.ClientConfig("recorder.test", rec.ca.pool(), client), ProbeInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := c.Start(context.Background(), recordings.Info{ID: "allocs-srtp", Operator: "101", Number: "+33123456789", Start: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(time.Now())
	pkts := tonePackets(ptPCMU, 440, 1, 7)
	now := time.Now()
	// The least of a few measurements: what the recorder's goroutines or
	// the runtime allocate meanwhile on a loaded machine is noise; an
	// allocation in TapRTP shows in every one.
	allocs := -1.0
	for range 5 {
		a := testing.AllocsPerRun(200, func() {
			pkts[0].SequenceNumber++
			pkts[0].Timestamp += 160
			now = now.Add(20 * time.Millisecond)
			if err := s.TapRTP(media.LegOutside, &pkts[0], now); err != nil {
				t.Fatal(err)
			}
		})
		if allocs < 0 || a < allocs {
			allocs = a
		}
	}
	if allocs != 0 {
		t.Errorf("TapRTP over SRTP allocates %.1f times per packet, want 0", allocs)
	}
}
