package srtp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/pion/rtp"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Known-answer vectors: the RFC 3711 appendix B.3 master key and salt,
// SSRC 0xcafebabe, SEQ 0x1234, 16 bytes of 0xab, as libsrtp's own test
// driver (srtp_driver.c) uses them; GCM per RFC 7714 with libsrtp's GCM
// test key. An independent implementation producing the same bytes is
// the point: a carrier's libsrtp must read what Plateau sends.
func TestKnownVectors(t *testing.T) {
	rtpPlain := unhex(t, "800f1234decafbadcafebabe abababababababababababababababab")
	rtcpPlain := unhex(t, "81c8000bcafebabe abababababababababababababababab")
	cmKey := unhex(t, "e1f97a0d3e018be0d64fa32c06de4139")
	cmSalt := unhex(t, "0ec675ad498afeebb6960b3aabe6")
	gcmKey := unhex(t, "000102030405060708090a0b0c0d0e0f")
	gcmSalt := unhex(t, "a0a1a2a3a4a5a6a7a8a9aaab")
	tests := []struct {
		suite     Suite
		key, salt []byte
		srtp      string
		srtcp     string
	}{
		{AES_CM_128_HMAC_SHA1_80, cmKey, cmSalt,
			"800f1234decafbadcafebabe 4e55dc4ce79978d88ca4d215949d2402 b78d6acc99ea179b8dbb",
			"81c8000bcafebabe 7128035be487b9bdbef89041f977a5a8 80000001 993e08cd54d6c1230798"},
		{AES_CM_128_HMAC_SHA1_32, cmKey, cmSalt,
			"800f1234decafbadcafebabe 4e55dc4ce79978d88ca4d215949d2402 b78d6acc",
			// SRTCP keeps the 80-bit tag with the _32 suite (RFC 4568 6.2.1).
			"81c8000bcafebabe 7128035be487b9bdbef89041f977a5a8 80000001 993e08cd54d6c1230798"},
		{AEAD_AES_128_GCM, gcmKey, gcmSalt,
			"800f1234decafbadcafebabe c5002ede04cfdd2eb91159e0880aa06e d2976826f796b201df3131a127e8a392",
			"81c8000bcafebabe c98b8b5df0392a55852b6c21ac8e7025 c52c6fbea2b3b446ea31123ba88ce61e 80000001"},
	}
	for _, tt := range tests {
		t.Run(tt.suite.String(), func(t *testing.T) {
			c := Crypto{Tag: 1, Suite: tt.suite, Key: tt.key, Salt: tt.salt}
			s, err := NewSession(c, c)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.ProtectRTP(nil, rtpPlain)
			if err != nil {
				t.Fatal(err)
			}
			if want := unhex(t, tt.srtp); !bytes.Equal(got, want) {
				t.Fatalf("SRTP\n got %x\nwant %x", got, want)
			}
			back, err := s.UnprotectRTP(nil, got)
			if err != nil || !bytes.Equal(back, rtpPlain) {
				t.Fatalf("unprotect: %x, %v", back, err)
			}
			gotc, err := s.ProtectRTCP(nil, rtcpPlain)
			if err != nil {
				t.Fatal(err)
			}
			if want := unhex(t, tt.srtcp); !bytes.Equal(gotc, want) {
				t.Fatalf("SRTCP\n got %x\nwant %x", gotc, want)
			}
			backc, err := s.UnprotectRTCP(nil, gotc)
			if err != nil || !bytes.Equal(backc, rtcpPlain) {
				t.Fatalf("unprotect rtcp: %x, %v", backc, err)
			}
		})
	}
}

func pair(t testing.TB, suite Suite) (a, b *Session) {
	t.Helper()
	ka, err := NewCrypto(1, suite)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := Answer(ka)
	if err != nil {
		t.Fatal(err)
	}
	if a, err = NewSession(ka, kb); err != nil {
		t.Fatal(err)
	}
	if b, err = NewSession(kb, ka); err != nil {
		t.Fatal(err)
	}
	return a, b
}

func rtpPacket(t testing.TB, seq uint16, payload []byte) []byte {
	t.Helper()
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq, Timestamp: uint32(seq) * 160, SSRC: 0x1234}, Payload: payload}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Every packet that is not exactly what the peer protected is refused,
// and refused for the right reason: the drop metric depends on it.
func TestUnprotectRefuses(t *testing.T) {
	for _, suite := range Suites() {
		t.Run(suite.String(), func(t *testing.T) {
			a, b := pair(t, suite)
			plain := rtpPacket(t, 100, bytes.Repeat([]byte("secret"), 20))
			p1, err := a.ProtectRTP(nil, plain)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(p1, []byte("secret")) {
				t.Fatal("plaintext visible in SRTP packet")
			}
			// Tampering anywhere (header, payload, tag) fails authentication.
			for _, i := range []int{1, 4, 12, len(p1) / 2, len(p1) - 1} {
				bad := append([]byte(nil), p1...)
				bad[i] ^= 0x01
				if _, err := b.UnprotectRTP(nil, bad); !errors.Is(err, ErrAuth) {
					t.Fatalf("byte %d flipped: err = %v, want ErrAuth", i, err)
				}
			}
			// A forged packet under another key fails authentication.
			x, _ := pair(t, suite)
			forged, _ := x.ProtectRTP(nil, plain)
			if _, err := b.UnprotectRTP(nil, forged); !errors.Is(err, ErrAuth) || Reason(err) != "auth" {
				t.Fatalf("forged: err = %v", err)
			}
			// Plain RTP toward an SRTP leg is refused too.
			if _, err := b.UnprotectRTP(nil, plain); err == nil {
				t.Fatal("plain RTP accepted")
			}
			// The genuine packet passes once, then is a replay.
			got, err := b.UnprotectRTP(nil, p1)
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("genuine: %v", err)
			}
			if _, err := b.UnprotectRTP(nil, p1); !errors.Is(err, ErrReplay) || Reason(err) != "replay" {
				t.Fatalf("replayed: err = %v, want ErrReplay", err)
			}
			// A replay says nothing of the next packet: a forgery right
			// after one is a forgery (under a fresh index, so that only its
			// tag refuses it).
			forged2, _ := x.ProtectRTP(nil, rtpPacket(t, 5000, []byte("forged")))
			if _, err := b.UnprotectRTP(nil, forged2); !errors.Is(err, ErrAuth) {
				t.Fatalf("forged after a replay: err = %v, want ErrAuth", err)
			}
			// Reordering inside the window is fine; far behind it is a replay.
			var late [][]byte
			for seq := uint16(101); seq < 101+DefaultReplayWindow+10; seq++ {
				p, _ := a.ProtectRTP(nil, rtpPacket(t, seq, []byte{1, 2, 3}))
				if seq < 105 {
					late = append(late, p)
					continue
				}
				if _, err := b.UnprotectRTP(nil, p); err != nil {
					t.Fatalf("seq %d: %v", seq, err)
				}
				if seq == 104+DefaultReplayWindow-10 {
					// 10 inside the window's far edge: still accepted.
					if _, err := b.UnprotectRTP(nil, late[3]); err != nil {
						t.Fatalf("a packet %d behind, inside the window: %v", DefaultReplayWindow-10, err)
					}
				}
			}
			if _, err := b.UnprotectRTP(nil, late[0]); !errors.Is(err, ErrReplay) {
				t.Fatalf("packet older than the window: err = %v, want ErrReplay", err)
			}
			// Garbage is malformed, not a crash.
			for _, g := range [][]byte{nil, {0x80}, {0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}} {
				if _, err := b.UnprotectRTP(nil, g); err == nil {
					t.Fatalf("garbage %x accepted", g)
				}
				if _, err := b.UnprotectRTCP(nil, g); err == nil {
					t.Fatalf("garbage RTCP %x accepted", g)
				}
			}
		})
	}
}

// The relay decrypts in place, into the buffer it read the packet into:
// every suite must give the same plaintext that way, RTP and RTCP.
func TestUnprotectInPlace(t *testing.T) {
	for _, suite := range Suites() {
		a, b := pair(t, suite)
		plain := rtpPacket(t, 7, bytes.Repeat([]byte("in place"), 20))
		p, err := a.ProtectRTP(nil, plain)
		if err != nil {
			t.Fatal(err)
		}
		got, err := b.UnprotectRTP(p[:0], p)
		if err != nil || !bytes.Equal(got, plain) || &got[0] != &p[0] {
			t.Fatalf("%s: in place: %x, %v; want the plaintext in the packet's own buffer", suite, got, err)
		}
		rr := unhex(t, "81c90007 00001234 00005678 00000000 00000000 00000000 00000000 00000000")
		pr, err := a.ProtectRTCP(nil, rr)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := b.UnprotectRTCP(pr[:0], pr); err != nil || !bytes.Equal(got, rr) {
			t.Fatalf("%s: SRTCP in place: %x, %v", suite, got, err)
		}
	}
}

func TestSRTCPRefuses(t *testing.T) {
	a, b := pair(t, AES_CM_128_HMAC_SHA1_80)
	rr := unhex(t, "81c90007 00001234 00005678 00000000 00000000 00000000 00000000 00000000")
	p, err := a.ProtectRTCP(nil, rr)
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), p...)
	bad[10] ^= 0x80
	if _, err := b.UnprotectRTCP(nil, bad); !errors.Is(err, ErrAuth) {
		t.Fatalf("tampered SRTCP: %v", err)
	}
	if got, err := b.UnprotectRTCP(nil, p); err != nil || !bytes.Equal(got, rr) {
		t.Fatalf("genuine SRTCP: %x %v", got, err)
	}
	if _, err := b.UnprotectRTCP(nil, p); !errors.Is(err, ErrReplay) {
		t.Fatalf("replayed SRTCP: %v", err)
	}
}

func TestMKISession(t *testing.T) {
	ka, _ := NewCrypto(1, AES_CM_128_HMAC_SHA1_80)
	ka.MKI = []byte{0, 0, 0, 7}
	kb, _ := Answer(ka)
	a, err := NewSession(ka, kb)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewSession(kb, ka)
	if err != nil {
		t.Fatal(err)
	}
	plain := rtpPacket(t, 1, []byte("hello"))
	p, _ := a.ProtectRTP(nil, plain)
	if len(p) != len(plain)+4+10 || !bytes.Equal(p[len(p)-14:len(p)-10], ka.MKI) {
		t.Fatalf("MKI not carried: %x", p)
	}
	if got, err := b.UnprotectRTP(nil, p); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("unprotect with MKI: %v", err)
	}
}

// A key's lifetime (RFC 4568 a=crypto |2^n|, RFC 3711 9.2) counts every
// packet it protects or unprotects, SRTP and SRTCP alike; past it the key
// is refused both ways, and a re-key starts the count afresh.
func TestLifetime(t *testing.T) {
	ka, _ := NewCrypto(1, AES_CM_128_HMAC_SHA1_80)
	ka.Lifetime = 5
	kb, _ := Answer(ka)
	kb.Lifetime = 2
	a, _ := NewSession(ka, kb)
	// b knows a's key with a shorter lifetime than a gives it: b's receive
	// side runs out first.
	short := ka
	short.Lifetime = 3
	b, _ := NewSession(kb, short)
	rr := unhex(t, "81c90001 00001234")
	var sent, reports [][]byte
	for i := range 3 {
		p, err := a.ProtectRTP(nil, rtpPacket(t, uint16(i), []byte{1}))
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		sent = append(sent, p)
	}
	for i := range 2 { // the 4th and 5th packets under ka
		p, err := a.ProtectRTCP(nil, rr)
		if err != nil {
			t.Fatalf("RTCP %d: %v", i, err)
		}
		reports = append(reports, p)
	}
	if _, err := a.ProtectRTP(nil, rtpPacket(t, 3, []byte{1})); !errors.Is(err, ErrKeyExhausted) {
		t.Fatalf("6th packet (RTP) under a 5-packet key: %v", err)
	}
	if _, err := a.ProtectRTCP(nil, rr); !errors.Is(err, ErrKeyExhausted) {
		t.Fatalf("6th packet (RTCP) under a 5-packet key: %v", err)
	}
	// b receives under ka as a 3-packet key: two RTP and one RTCP pass,
	// then neither the third RTP nor the second RTCP (both fresh indexes).
	for i, p := range sent[:2] {
		if _, err := b.UnprotectRTP(nil, p); err != nil {
			t.Fatalf("receive %d: %v", i, err)
		}
	}
	if _, err := b.UnprotectRTCP(nil, reports[0]); err != nil {
		t.Fatalf("receive RTCP: %v", err)
	}
	if _, err := b.UnprotectRTP(nil, sent[2]); !errors.Is(err, ErrKeyExhausted) {
		t.Fatalf("4th packet received under a 3-packet key: %v", err)
	}
	if _, err := b.UnprotectRTCP(nil, reports[1]); !errors.Is(err, ErrKeyExhausted) {
		t.Fatalf("RTCP received past the key's lifetime: %v", err)
	}
	// kb's 2 packets: b's send side too.
	for i := range 2 {
		if _, err := b.ProtectRTP(nil, rtpPacket(t, uint16(i), []byte{1})); err != nil {
			t.Fatalf("b packet %d: %v", i, err)
		}
	}
	if _, err := b.ProtectRTP(nil, rtpPacket(t, 2, []byte{1})); !errors.Is(err, ErrKeyExhausted) {
		t.Fatalf("3rd packet under a 2-packet key: %v", err)
	}
	// The peer re-keys: the new key's lifetime starts from zero.
	nk, _ := NewCrypto(1, AES_CM_128_HMAC_SHA1_80)
	nk.Lifetime = 1
	if err := b.SetRemote(nk); err != nil {
		t.Fatal(err)
	}
	sender, _ := NewSession(nk, nk)
	p, _ := sender.ProtectRTP(nil, rtpPacket(t, 9, []byte{1}))
	if _, err := b.UnprotectRTP(nil, p); err != nil {
		t.Fatalf("first packet under the new key: %v", err)
	}
}

func TestNewSessionRefuses(t *testing.T) {
	a, _ := NewCrypto(1, AES_CM_128_HMAC_SHA1_80)
	g, _ := NewCrypto(1, AEAD_AES_128_GCM)
	if _, err := NewSession(a, g); !errors.Is(err, ErrSuiteMismatch) {
		t.Fatalf("mixed suites: %v", err)
	}
	short := a
	short.Key = short.Key[:8]
	if _, err := NewSession(short, a); !errors.Is(err, ErrCrypto) {
		t.Fatalf("short key: %v", err)
	}
	if _, err := NewSession(Crypto{}, a); !errors.Is(err, ErrUnsupportedSuite) {
		t.Fatalf("zero Crypto: %v", err)
	}
}

// The per-packet path allocates nothing once the caller gives buffers.
func TestProtectAllocs(t *testing.T) {
	if raceEnabled {
		// Under -race sync.Pool drops items at random (pion pools
		// buffers): counts vary run to run there.
		t.Skip("the race detector allocates")
	}
	a, b := pair(t, AES_CM_128_HMAC_SHA1_80)
	plain := rtpPacket(t, 1, make([]byte, 160))
	enc := make([]byte, 0, 256)
	dec := make([]byte, 0, 256)
	seq := uint16(1)
	allocs := testing.AllocsPerRun(200, func() {
		seq++
		plain[2], plain[3] = byte(seq>>8), byte(seq)
		p, err := a.ProtectRTP(enc, plain)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.UnprotectRTP(dec, p); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Fatalf("%.1f allocations per protect+unprotect, want 0", allocs)
	}
	// Refusals are the attacker's path: a flood of forged packets
	// allocates nothing, and a replay only pion's own error (the
	// detector's refusal is reported by pion as a fresh error value).
	x, _ := pair(t, AES_CM_128_HMAC_SHA1_80)
	forged, _ := x.ProtectRTP(nil, rtpPacket(t, 9000, make([]byte, 160)))
	seen := append([]byte(nil), a.lastProtected(t, enc, plain)...)
	if _, err := b.UnprotectRTP(dec, seen); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		pkt  []byte
		want error
		max  float64
	}{
		{"forged", forged, ErrAuth, 0},
		{"replayed", seen, ErrReplay, 1},
	} {
		allocs := testing.AllocsPerRun(200, func() {
			if _, err := b.UnprotectRTP(dec, tc.pkt); !errors.Is(err, tc.want) {
				t.Fatalf("%s: %v, want %v", tc.name, err, tc.want)
			}
		})
		if allocs > tc.max {
			t.Errorf("%s: %.1f allocations per refused packet, want at most %v", tc.name, allocs, tc.max)
		}
	}
}

// lastProtected protects plain once more under the next sequence number.
func (s *Session) lastProtected(t *testing.T, dst, plain []byte) []byte {
	t.Helper()
	seq := uint16(plain[2])<<8 | uint16(plain[3]) + 1
	plain[2], plain[3] = byte(seq>>8), byte(seq)
	p, err := s.ProtectRTP(dst, plain)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func BenchmarkSessionProtectUnprotectRTP(b *testing.B) {
	x, y := pair(b, AES_CM_128_HMAC_SHA1_80)
	plain := rtpPacket(b, 1, make([]byte, 160))
	enc := make([]byte, 0, 256)
	dec := make([]byte, 0, 256)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		plain[2], plain[3] = byte(i>>8), byte(i)
		p, err := x.ProtectRTP(enc, plain)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := y.UnprotectRTP(dec, p); err != nil && i < 65536 {
			b.Fatal(err)
		}
	}
}

func TestSessionSetRemote(t *testing.T) {
	a, b := pair(t, AES_CM_128_HMAC_SHA1_80)
	old, _ := a.ProtectRTP(nil, rtpPacket(t, 1, []byte("before")))
	if _, err := b.UnprotectRTP(nil, old); err != nil {
		t.Fatal(err)
	}
	// a's peer re-keys: a new key for what b receives.
	nk, _ := NewCrypto(1, AES_CM_128_HMAC_SHA1_80)
	peerKey := nk // what b now receives under
	if err := b.SetRemote(peerKey); err != nil {
		t.Fatal(err)
	}
	stale, _ := a.ProtectRTP(nil, rtpPacket(t, 2, []byte("stale")))
	if _, err := b.UnprotectRTP(nil, stale); !errors.Is(err, ErrAuth) {
		t.Fatalf("a packet under the old key after re-key: %v, want ErrAuth", err)
	}
	sender, _ := NewSession(peerKey, peerKey)
	fresh, _ := sender.ProtectRTP(nil, rtpPacket(t, 3, []byte("fresh")))
	if got, err := b.UnprotectRTP(nil, fresh); err != nil || !bytes.HasSuffix(got, []byte("fresh")) {
		t.Fatalf("new key: %v", err)
	}
	g, _ := NewCrypto(1, AEAD_AES_128_GCM)
	if err := b.SetRemote(g); !errors.Is(err, ErrSuiteMismatch) {
		t.Fatalf("suite change: %v", err)
	}
}
