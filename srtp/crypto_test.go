package srtp

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// RFC 4568 section 4 / 8.1 examples and real-world shapes.
func TestParseCrypto(t *testing.T) {
	key40 := "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR" // RFC 4568 example, 30 bytes
	raw40, _ := base64.StdEncoding.DecodeString(key40)
	gcm := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 28))       // padded "=="-less? 28 bytes -> 40 chars with "="
	gcmRaw := base64.RawStdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 28)) // no padding
	k256 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 46))
	tests := []struct {
		name  string
		in    string
		want  Crypto
		err   error
		inErr string // text the error must name
	}{
		{name: "rfc4568 example with lifetime and 32-byte MKI", in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key40 + "|2^20|1:32",
			want: Crypto{Tag: 1, Suite: AES_CM_128_HMAC_SHA1_80, Key: raw40[:16], Salt: raw40[16:], Lifetime: 1 << 20, MKI: append(make([]byte, 31), 1)}},
		{name: "plain, as carriers send it", in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key40,
			want: Crypto{Tag: 1, Suite: AES_CM_128_HMAC_SHA1_80, Key: raw40[:16], Salt: raw40[16:]}},
		{name: "a= prefix tolerated", in: "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:" + key40 + "|1:4",
			want: Crypto{Tag: 2, Suite: AES_CM_128_HMAC_SHA1_32, Key: raw40[:16], Salt: raw40[16:], MKI: []byte{0, 0, 0, 1}}},
		{name: "decimal lifetime", in: "3 AES_CM_128_HMAC_SHA1_80 inline:" + key40 + "|1048576",
			want: Crypto{Tag: 3, Suite: AES_CM_128_HMAC_SHA1_80, Key: raw40[:16], Salt: raw40[16:], Lifetime: 1048576}},
		{name: "GCM padded", in: "4 AEAD_AES_128_GCM inline:" + gcm,
			want: Crypto{Tag: 4, Suite: AEAD_AES_128_GCM, Key: bytes.Repeat([]byte{7}, 16), Salt: bytes.Repeat([]byte{7}, 12)}},
		{name: "GCM unpadded", in: "4 AEAD_AES_128_GCM inline:" + gcmRaw,
			want: Crypto{Tag: 4, Suite: AEAD_AES_128_GCM, Key: bytes.Repeat([]byte{7}, 16), Salt: bytes.Repeat([]byte{7}, 12)}},
		{name: "AES-256", in: "5 AES_256_CM_HMAC_SHA1_80 inline:" + k256,
			want: Crypto{Tag: 5, Suite: AES_256_CM_HMAC_SHA1_80, Key: bytes.Repeat([]byte{9}, 32), Salt: bytes.Repeat([]byte{9}, 14)}},
		{name: "KDR=0, WSH and optional extension", in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key40 + " KDR=0 WSH=128 -X_FOO=1",
			want: Crypto{Tag: 1, Suite: AES_CM_128_HMAC_SHA1_80, Key: raw40[:16], Salt: raw40[16:], WSH: 128}},
		{name: "extra spaces", in: "  1   AES_CM_128_HMAC_SHA1_80  inline:" + key40 + "  ",
			want: Crypto{Tag: 1, Suite: AES_CM_128_HMAC_SHA1_80, Key: raw40[:16], Salt: raw40[16:]}},

		{name: "F8 suite", in: "1 F8_128_HMAC_SHA1_80 inline:" + key40, err: ErrUnsupportedSuite, inErr: "F8_128_HMAC_SHA1_80"},
		{name: "AES-192 suite", in: "1 AES_192_CM_HMAC_SHA1_80 inline:" + key40, err: ErrUnsupportedSuite, inErr: "AES_192_CM_HMAC_SHA1_80"},
		{name: "suite case matters", in: "1 aes_cm_128_hmac_sha1_80 inline:" + key40, err: ErrUnsupportedSuite},
		{name: "two master keys", in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key40 + "|2^20|1:4;inline:" + key40 + "|2^20|2:4", err: ErrUnsupportedParam, inErr: "several master keys"},
		{name: "other key method", in: "1 AES_CM_128_HMAC_SHA1_80 uri:https://x/" + key40, err: ErrUnsupportedParam, inErr: "uri"},
		{name: "KDR", in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key40 + " KDR=10", err: ErrUnsupportedParam, inErr: "KDR"},
		{name: "unencrypted srtp", in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key40 + " UNENCRYPTED_SRTP", err: ErrUnsupportedParam, inErr: "UNENCRYPTED_SRTP"},
		{name: "unencrypted srtcp", in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key40 + " UNENCRYPTED_SRTCP", err: ErrUnsupportedParam, inErr: "UNENCRYPTED_SRTCP"},
		{name: "unauthenticated", in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key40 + " UNAUTHENTICATED_SRTP", err: ErrUnsupportedParam, inErr: "UNAUTHENTICATED_SRTP"},
		{name: "fec", in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key40 + " FEC_ORDER=FEC_SRTP", err: ErrUnsupportedParam, inErr: "FEC_ORDER"},
		{name: "unknown mandatory param", in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key40 + " FOO=1", err: ErrUnsupportedParam, inErr: "FOO"},
		{name: "short key", in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key40[:36], err: ErrCrypto, inErr: "27 bytes"},
		{name: "GCM key on CM suite", in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + gcm, err: ErrCrypto, inErr: "needs 30"},
		{name: "key longer than the suite's", in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + k256, err: ErrCrypto, inErr: "46 bytes"},
		{name: "not base64", in: "1 AES_CM_128_HMAC_SHA1_80 inline:!!!!" + key40[4:], err: ErrCrypto, inErr: "base64"},
		{name: "empty key", in: "1 AES_CM_128_HMAC_SHA1_80 inline:", err: ErrCrypto},
		{name: "missing key", in: "1 AES_CM_128_HMAC_SHA1_80", err: ErrCrypto},
		{name: "tag too long", in: "1234567890 AES_CM_128_HMAC_SHA1_80 inline:" + key40, err: ErrCrypto, inErr: "tag"},
		{name: "negative tag", in: "-1 AES_CM_128_HMAC_SHA1_80 inline:" + key40, err: ErrCrypto, inErr: "tag"},
		{name: "lifetime zero", in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key40 + "|0", err: ErrCrypto, inErr: "lifetime"},
		{name: "lifetime above 2^48", in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key40 + "|2^49", err: ErrCrypto, inErr: "lifetime"},
		{name: "decimal lifetime above 2^48", in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key40 + "|281474976710657", err: ErrCrypto, inErr: "lifetime"},
		{name: "lifetime after MKI", in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key40 + "|1:4|2^20", err: ErrCrypto, inErr: "before the MKI"},
		{name: "two lifetimes", in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key40 + "|2^20|2^20", err: ErrCrypto},
		{name: "MKI length 0", in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key40 + "|1:0", err: ErrCrypto, inErr: "MKI"},
		{name: "MKI length 129", in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key40 + "|1:129", err: ErrCrypto, inErr: "MKI"},
		{name: "MKI value too big", in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key40 + "|256:1", err: ErrCrypto, inErr: "fit"},
		{name: "too many fields", in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key40 + "|2^20|1:4|x", err: ErrCrypto},
		{name: "WSH below 64", in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key40 + " WSH=8", err: ErrCrypto, inErr: "WSH"},
		{name: "oversized", in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key40 + " -" + strings.Repeat("x", MaxAttrLen), err: ErrCrypto, inErr: "bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCrypto(tt.in)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("ParseCrypto(%q) error = %v, want %v", tt.in, err, tt.err)
				}
				if tt.inErr != "" && !strings.Contains(err.Error(), tt.inErr) {
					t.Fatalf("error %q does not name %q", err, tt.inErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseCrypto(%q): %v", tt.in, err)
			}
			if got.Tag != tt.want.Tag || got.Suite != tt.want.Suite || !got.Equal(tt.want) ||
				got.Lifetime != tt.want.Lifetime || got.WSH != tt.want.WSH {
				t.Fatalf("ParseCrypto(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			// What we write, we read back identically.
			again, err := ParseCrypto(got.String())
			if err != nil || !again.Equal(got) || again.Tag != got.Tag || again.Lifetime != got.Lifetime || again.WSH != got.WSH {
				t.Fatalf("round trip of %q via %q: %+v, %v", tt.in, got.String(), again, err)
			}
		})
	}
}

func TestCryptoString(t *testing.T) {
	c := Crypto{Tag: 1, Suite: AES_CM_128_HMAC_SHA1_80, Key: make([]byte, 16), Salt: make([]byte, 14), Lifetime: 1 << 31, MKI: []byte{0, 1}}
	want := "1 AES_CM_128_HMAC_SHA1_80 inline:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA|2^31|1:2"
	if got := c.String(); got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	c.Lifetime = 1000
	c.MKI = nil
	if got := c.String(); !strings.HasSuffix(got, "|1000") {
		t.Fatalf("String() = %q, want a decimal lifetime", got)
	}
}

func TestNewCryptoIsFreshAndValid(t *testing.T) {
	for _, s := range Suites() {
		a, err := NewCrypto(1, s)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := NewCrypto(1, s)
		if err := a.Validate(); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if a.Equal(b) || bytes.Equal(a.Key, b.Key) {
			t.Fatalf("%s: two NewCrypto calls gave the same key", s)
		}
		if bytes.Equal(a.Key, make([]byte, len(a.Key))) {
			t.Fatalf("%s: all-zero key", s)
		}
		back, err := ParseCrypto(a.String())
		if err != nil || !back.Equal(a) {
			t.Fatalf("%s: %q does not parse back: %v", s, a.String(), err)
		}
		// Appending to Key must not overwrite Salt (they share a buffer).
		salt := append([]byte(nil), a.Salt...)
		_ = append(a.Key, 0xff)
		if !bytes.Equal(a.Salt, salt) {
			t.Fatalf("%s: Key and Salt alias", s)
		}
	}
	if _, err := NewCrypto(1, SuiteNone); !errors.Is(err, ErrUnsupportedSuite) {
		t.Fatalf("NewCrypto(SuiteNone) error = %v", err)
	}
	if _, err := NewCrypto(1e9, AES_CM_128_HMAC_SHA1_80); !errors.Is(err, ErrCrypto) {
		t.Fatalf("NewCrypto(tag 1e9) error = %v", err)
	}
}

func TestSelect(t *testing.T) {
	good := "2 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
	c, err := Select([]string{"1 F8_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR", good})
	if err != nil || c.Tag != 2 {
		t.Fatalf("Select = %+v, %v; want tag 2", c, err)
	}
	_, err = Select([]string{"1 F8_128_HMAC_SHA1_80 inline:x", "2 AES_CM_128_HMAC_SHA1_80 inline:x UNENCRYPTED_SRTP"})
	if !errors.Is(err, ErrNoCrypto) || !strings.Contains(err.Error(), "F8_128") {
		t.Fatalf("Select error = %v, want ErrNoCrypto naming the refused suite", err)
	}
	// Two usable attributes: the offer's order is its preference.
	gcm := "3 AEAD_AES_128_GCM inline:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 28))
	if c, err := Select([]string{gcm, good}); err != nil || c.Tag != 3 || c.Suite != AEAD_AES_128_GCM {
		t.Fatalf("Select = %+v, %v; want the first usable (tag 3)", c, err)
	}
	if _, err := Select(nil); !errors.Is(err, ErrNoCrypto) {
		t.Fatalf("Select(nil) error = %v", err)
	}
	ans, err := Answer(c)
	if err != nil || ans.Tag != c.Tag || ans.Suite != c.Suite || ans.Equal(c) {
		t.Fatalf("Answer = %+v, %v: want same tag and suite, fresh key", ans, err)
	}
}

// Equal is "the same keying": a re-offer that is Equal keeps the running
// session, so every field that changes the packets on the wire counts,
// and only those.
func TestCryptoEqual(t *testing.T) {
	base, _ := NewCrypto(1, AES_CM_128_HMAC_SHA1_80)
	base.MKI = []byte{0, 1}
	other, _ := NewCrypto(1, AES_CM_128_HMAC_SHA1_80)
	for _, tt := range []struct {
		name   string
		change func(c *Crypto)
		equal  bool
	}{
		{"same", func(c *Crypto) {}, true},
		{"other tag", func(c *Crypto) { c.Tag = 2 }, true},
		{"other lifetime", func(c *Crypto) { c.Lifetime = 1 << 20 }, true},
		{"other WSH", func(c *Crypto) { c.WSH = 128 }, true},
		{"other suite", func(c *Crypto) { c.Suite = AES_CM_128_HMAC_SHA1_32 }, false},
		{"other key", func(c *Crypto) { c.Key = other.Key }, false},
		{"other salt", func(c *Crypto) { c.Salt = other.Salt }, false},
		{"other MKI", func(c *Crypto) { c.MKI = []byte{0, 2} }, false},
		{"no MKI", func(c *Crypto) { c.MKI = nil }, false},
	} {
		c := base
		tt.change(&c)
		if got := base.Equal(c); got != tt.equal {
			t.Errorf("%s: Equal = %v, want %v", tt.name, got, tt.equal)
		}
	}
}

func TestParseSuite(t *testing.T) {
	for _, s := range Suites() {
		got, err := ParseSuite(s.String())
		if err != nil || got != s {
			t.Fatalf("ParseSuite(%q) = %v, %v", s.String(), got, err)
		}
	}
	if SuiteNone.String() != "Suite(0)" || SuiteNone.KeyLen() != 0 {
		t.Fatal("SuiteNone must not look like a suite")
	}
}
