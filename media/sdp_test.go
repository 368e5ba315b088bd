package media

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

const sdpHead = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n"

func TestParseSDP(t *testing.T) {
	pcmu, pcma := PCMU.Codec(), PCMA.Codec()
	tests := []struct {
		name    string
		body    string
		want    Remote
		wantErr error
	}{
		{
			name: "typical softphone offer",
			body: sdpHead + "c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n",
			want: Remote{Addr: netip.MustParseAddrPort("192.0.2.10:4000"), Codecs: []Codec{pcma, pcmu}, DTMFPT: 101, Direction: SendRecv, Ptime: 20 * time.Millisecond},
		},
		{
			name: "static types without rtpmap, unknown codecs skipped, media-level c= wins",
			body: sdpHead + "c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 5000 RTP/AVP 18 0 8\r\nc=IN IP4 198.51.100.7\r\na=rtpmap:18 G729/8000\r\n",
			want: Remote{Addr: netip.MustParseAddrPort("198.51.100.7:5000"), Codecs: []Codec{pcmu, pcma}, Direction: SendRecv},
		},
		{
			name: "PCMU on a dynamic payload type",
			body: sdpHead + "c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 5000 RTP/AVP 97\r\na=rtpmap:97 pcmu/8000/1\r\n",
			want: Remote{Addr: netip.MustParseAddrPort("192.0.2.10:5000"), Codecs: []Codec{{Encoding: PCMU, PayloadType: 97}}, Direction: SendRecv},
		},
		{
			name: "hold with sendonly at session level",
			body: sdpHead + "c=IN IP4 192.0.2.10\r\nt=0 0\r\na=sendonly\r\nm=audio 4000 RTP/AVP 0\r\n",
			want: Remote{Addr: netip.MustParseAddrPort("192.0.2.10:4000"), Codecs: []Codec{pcmu}, Direction: SendOnly},
		},
		{
			name: "media-level direction overrides session-level",
			body: sdpHead + "c=IN IP4 192.0.2.10\r\nt=0 0\r\na=sendonly\r\nm=audio 4000 RTP/AVP 0\r\na=inactive\r\n",
			want: Remote{Addr: netip.MustParseAddrPort("192.0.2.10:4000"), Codecs: []Codec{pcmu}, Direction: Inactive},
		},
		{
			name: "RFC 2543 hold c=0.0.0.0",
			body: sdpHead + "c=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
			want: Remote{Addr: netip.MustParseAddrPort("0.0.0.0:4000"), Codecs: []Codec{pcmu}, Direction: SendOnly},
		},
		{
			name: "IPv6",
			body: sdpHead + "c=IN IP6 2001:db8::1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
			want: Remote{Addr: netip.MustParseAddrPort("[2001:db8::1]:4000"), Codecs: []Codec{pcmu}, Direction: SendRecv},
		},
		{
			name: "video first, rejected audio then active audio",
			body: sdpHead + "c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=video 6000 RTP/AVP 96\r\nm=audio 0 RTP/AVP 0\r\nm=audio 4002 RTP/AVP 8\r\n",
			want: Remote{Addr: netip.MustParseAddrPort("192.0.2.10:4002"), Codecs: []Codec{pcma}, Direction: SendRecv},
		},
		{
			name: "no G.711 is not a parse error (Negotiate says 488)",
			body: sdpHead + "c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18\r\n",
			want: Remote{Addr: netip.MustParseAddrPort("192.0.2.10:4000"), Direction: SendRecv},
		},
		{name: "garbage", body: "hello", wantErr: ErrInvalidSDP},
		{name: "empty", body: "", wantErr: ErrInvalidSDP},
		{name: "no audio", body: sdpHead + "c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=video 6000 RTP/AVP 96\r\n", wantErr: ErrNoAudio},
		{name: "audio port 0", body: sdpHead + "c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n", wantErr: ErrAudioRejected},
		{name: "no c= line", body: sdpHead + "t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n", wantErr: ErrNoConnection},
		{name: "hostname in c=", body: sdpHead + "c=IN IP4 pbx.example.com\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n", wantErr: ErrNoConnection},
		{name: "address type mismatch", body: sdpHead + "c=IN IP6 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n", wantErr: ErrNoConnection},
		{name: "multicast", body: sdpHead + "c=IN IP4 224.2.1.1/127\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n", wantErr: ErrNoConnection},
		{name: "SRTP", body: sdpHead + "c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\n", wantErr: ErrUnsupportedTransport},
		{name: "bad format", body: sdpHead + "c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP abc\r\n", wantErr: ErrInvalidSDP},
		{name: "payload type over 127", body: sdpHead + "c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 200\r\n", wantErr: ErrInvalidSDP},
		{name: "bad ptime", body: sdpHead + "c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=ptime:soon\r\n", wantErr: ErrInvalidSDP},
		{name: "bad rtpmap", body: sdpHead + "c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:x\r\n", wantErr: ErrInvalidSDP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSDP([]byte(tt.body))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Addr != tt.want.Addr || got.DTMFPT != tt.want.DTMFPT || got.Direction != tt.want.Direction || got.Ptime != tt.want.Ptime || !equalCodecs(got.Codecs, tt.want.Codecs) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func equalCodecs(a, b []Codec) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestOnHold(t *testing.T) {
	for _, tt := range []struct {
		body string
		hold bool
	}{
		{sdpHead + "c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n", false},
		{sdpHead + "c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=recvonly\r\n", false},
		{sdpHead + "c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly\r\n", true},
		{sdpHead + "c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=inactive\r\n", true},
		{sdpHead + "c=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n", true},
	} {
		r, err := ParseSDP([]byte(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		if r.OnHold() != tt.hold {
			t.Errorf("OnHold = %v, want %v for\n%s", r.OnHold(), tt.hold, tt.body)
		}
	}
}

func TestBuildSDPRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		local Local
	}{
		{"pcmu pcma dtmf", Local{Addr: netip.MustParseAddr("203.0.113.5"), Port: 20000, Codecs: DefaultCodecs(), DTMFPT: 101, SessionID: 42, Version: 1}},
		{"pcma only hold", Local{Addr: netip.MustParseAddr("203.0.113.5"), Port: 20002, Codecs: []Codec{PCMA.Codec()}, Direction: SendOnly, SessionID: 42, Version: 2}},
		{"ipv6 inactive", Local{Addr: netip.MustParseAddr("2001:db8::5"), Port: 20004, Codecs: []Codec{PCMU.Codec()}, Direction: Inactive}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := BuildSDP(tt.local)
			if err != nil {
				t.Fatal(err)
			}
			r, err := ParseSDP(body)
			if err != nil {
				t.Fatalf("our own SDP does not parse: %v\n%s", err, body)
			}
			if r.Addr != netip.AddrPortFrom(tt.local.Addr, uint16(tt.local.Port)) || !equalCodecs(r.Codecs, tt.local.Codecs) ||
				r.DTMFPT != tt.local.DTMFPT || r.Direction != tt.local.Direction || r.Ptime != 20*time.Millisecond {
				t.Fatalf("round trip: %+v from\n%s", r, body)
			}
		})
	}
}

func TestBuildSDPRejects(t *testing.T) {
	ok := Local{Addr: netip.MustParseAddr("203.0.113.5"), Port: 20000, Codecs: DefaultCodecs()}
	mod := func(f func(*Local)) Local { l := ok; f(&l); return l }
	for name, l := range map[string]Local{
		"no address":    mod(func(l *Local) { l.Addr = netip.Addr{} }),
		"port 0":        mod(func(l *Local) { l.Port = 0 }),
		"no codec":      mod(func(l *Local) { l.Codecs = nil }),
		"other codec":   mod(func(l *Local) { l.Codecs = []Codec{{Encoding: 9, PayloadType: 18}} }),
		"static dtmf":   mod(func(l *Local) { l.DTMFPT = 8 }),
		"duplicate pt":  mod(func(l *Local) { l.Codecs = []Codec{PCMU.Codec(), {Encoding: PCMA, PayloadType: 0}} }),
		"dtmf clash pt": mod(func(l *Local) { l.DTMFPT = 97; l.Codecs = []Codec{{Encoding: PCMU, PayloadType: 97}} }),
	} {
		if _, err := BuildSDP(l); !errors.Is(err, ErrBadLocal) {
			t.Errorf("%s: err = %v, want ErrBadLocal", name, err)
		}
	}
}

func TestNegotiate(t *testing.T) {
	dyn := Codec{Encoding: PCMU, PayloadType: 97}
	tests := []struct {
		name      string
		offer     []Codec
		supported []Codec
		want      Codec
		wantErr   error
	}{
		{"remote order wins", []Codec{PCMA.Codec(), PCMU.Codec()}, DefaultCodecs(), PCMA.Codec(), nil},
		{"only pcmu supported", []Codec{PCMA.Codec(), PCMU.Codec()}, []Codec{PCMU.Codec()}, PCMU.Codec(), nil},
		{"keeps remote payload type", []Codec{dyn}, DefaultCodecs(), dyn, nil},
		{"nothing common", []Codec{PCMA.Codec()}, []Codec{PCMU.Codec()}, Codec{}, ErrNoCommonCodec},
		{"empty offer", nil, DefaultCodecs(), Codec{}, ErrNoCommonCodec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Negotiate(Remote{Codecs: tt.offer}, tt.supported)
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Fatalf("got %v, %v; want %v, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// FuzzParseSDP: SDP comes from outside (trunk, softphones). It must never
// panic, and whatever it accepts must be something we can answer.
func FuzzParseSDP(f *testing.F) {
	f.Add([]byte(sdpHead + "c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n"))
	f.Add([]byte(sdpHead + "c=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly\r\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseSDP(body)
		if err != nil {
			return
		}
		if r.Addr.Port() == 0 || !r.Addr.Addr().IsValid() {
			t.Fatalf("accepted SDP with unusable address %v", r.Addr)
		}
		for _, c := range r.Codecs {
			if c.Encoding != PCMU && c.Encoding != PCMA || c.PayloadType > 127 {
				t.Fatalf("bad codec %v", c)
			}
		}
		if r.DTMFPT > 127 {
			t.Fatalf("bad dtmf pt %d", r.DTMFPT)
		}
		if c, err := Negotiate(r, DefaultCodecs()); err == nil {
			if _, err := BuildSDP(Local{Addr: r.Addr.Addr(), Port: int(r.Addr.Port()), Codecs: []Codec{c.Encoding.Codec()}}); err != nil {
				t.Fatalf("cannot answer accepted offer: %v", err)
			}
		}
	})
}

func TestParseSDPSRTP(t *testing.T) {
	savp := sdpHead + "c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n" +
		"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n" +
		"a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20\r\n"
	// A leg not configured for SRTP refuses it, as before.
	if _, err := ParseSDP([]byte(savp)); !errors.Is(err, ErrUnsupportedTransport) {
		t.Fatalf("ParseSDP(RTP/SAVP) error = %v, want ErrUnsupportedTransport", err)
	}
	r, err := ParseSDPSRTP([]byte(savp))
	if err != nil {
		t.Fatal(err)
	}
	if !r.Secure || len(r.Crypto) != 2 || r.Crypto[0] != "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR" || r.DTMFPT != 101 {
		t.Fatalf("ParseSDPSRTP = %+v", r)
	}
	// Plain RTP on an SRTP-capable leg: not secure, crypto lines ignored.
	avp := sdpHead + "c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n"
	r, err = ParseSDPSRTP([]byte(avp))
	if err != nil || r.Secure || r.Crypto != nil {
		t.Fatalf("ParseSDPSRTP(RTP/AVP with crypto) = %+v, %v; want plain", r, err)
	}
	// DTLS-SRTP is not SDES.
	dtls := sdpHead + "c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 UDP/TLS/RTP/SAVP 0\r\n"
	if _, err := ParseSDPSRTP([]byte(dtls)); !errors.Is(err, ErrUnsupportedTransport) {
		t.Fatalf("ParseSDPSRTP(UDP/TLS/RTP/SAVP) error = %v", err)
	}
	many := sdpHead + "c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\n"
	for i := 0; i <= maxCryptoLines; i++ {
		many += "a=crypto:1 X inline:x\r\n"
	}
	if _, err := ParseSDPSRTP([]byte(many)); !errors.Is(err, ErrInvalidSDP) {
		t.Fatalf("ParseSDPSRTP(17 crypto lines) error = %v", err)
	}
}

func TestBuildSDPSRTP(t *testing.T) {
	c := "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
	body, err := BuildSDP(Local{Addr: netip.MustParseAddr("192.0.2.1"), Port: 4000, Codecs: DefaultCodecs(), DTMFPT: 101, Crypto: []string{c}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseSDPSRTP(body)
	if err != nil || !r.Secure || len(r.Crypto) != 1 || r.Crypto[0] != c {
		t.Fatalf("round trip: %+v, %v\n%s", r, err, body)
	}
	if _, err := BuildSDP(Local{Addr: netip.MustParseAddr("192.0.2.1"), Port: 4000, Codecs: DefaultCodecs(), Crypto: []string{c + "\r\na=evil"}}); !errors.Is(err, ErrBadLocal) {
		t.Fatalf("crypto with CRLF: %v", err)
	}
	plain, _ := BuildSDP(Local{Addr: netip.MustParseAddr("192.0.2.1"), Port: 4000, Codecs: DefaultCodecs()})
	if r, err := ParseSDPSRTP(plain); err != nil || r.Secure {
		t.Fatalf("plain local SDP parsed as %+v, %v", r, err)
	}
}
