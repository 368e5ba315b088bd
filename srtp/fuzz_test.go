package srtp

import (
	"testing"
)

// FuzzParseCrypto: whatever a peer writes in a=crypto, no panic; what
// parses is valid, and writes back to an attribute that parses to the
// same keying.
func FuzzParseCrypto(f *testing.F) {
	for _, s := range []string{
		"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32",
		"1 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:32 KDR=0 WSH=64",
		"1 AEAD_AES_128_GCM inline:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBw==",
		"1 AES_CM_128_HMAC_SHA1_80 inline:a|b|c;inline:d -FOO UNENCRYPTED_SRTP",
		"999999999 AES_256_CM_HMAC_SHA1_80 inline:CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQ==|1000|340282366920938463463374607431768211455:16",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCrypto(s)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("ParseCrypto(%q) gave an invalid Crypto: %v", s, err)
		}
		back, err := ParseCrypto(c.String())
		if err != nil || !back.Equal(c) || back.Tag != c.Tag || back.Lifetime != c.Lifetime || back.WSH != c.WSH {
			t.Fatalf("%q -> %q -> %+v, %v", s, c.String(), back, err)
		}
	})
}

// FuzzUnprotect: arbitrary datagrams on an SRTP port never crash and never
// pass as authentic (an 80-bit tag is not forged by chance).
func FuzzUnprotect(f *testing.F) {
	_, b := pair(f, AES_CM_128_HMAC_SHA1_80)
	a2, b2 := pair(f, AES_CM_128_HMAC_SHA1_80)
	genuine, _ := a2.ProtectRTP(nil, rtpPacket(f, 7, []byte("payload")))
	f.Add(genuine)
	f.Add([]byte{0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{0x81, 0xc8, 0, 1, 0, 0, 0, 1, 0x80, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	f.Add([]byte{0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xbe, 0xde, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		if _, err := b.UnprotectRTP(nil, pkt); err == nil {
			t.Fatalf("random datagram %x passed SRTP authentication", pkt)
		}
		if _, err := b.UnprotectRTCP(nil, pkt); err == nil {
			t.Fatalf("random datagram %x passed SRTCP authentication", pkt)
		}
		_, _ = b2.UnprotectRTP(nil, pkt) // the genuine seed may pass here; only no panic
	})
}
