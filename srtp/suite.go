package srtp

import (
	"fmt"

	pion "github.com/pion/srtp/v3"
)

// Suite is an SDES crypto-suite (RFC 4568 section 6.2, RFC 6188, RFC 7714).
// The zero value is no suite.
type Suite uint8

// The suites Plateau implements. Suites lists them in Plateau's order of
// preference for an offer.
const (
	SuiteNone Suite = iota
	AES_CM_128_HMAC_SHA1_80
	AES_CM_128_HMAC_SHA1_32
	AES_256_CM_HMAC_SHA1_80
	AES_256_CM_HMAC_SHA1_32
	AEAD_AES_128_GCM
	AEAD_AES_256_GCM
)

type suiteInfo struct {
	name    string
	profile pion.ProtectionProfile
	keyLen  int
	saltLen int
}

// suites is the one table of supported suites; lengths from RFC 4568 6.2.1,
// RFC 6188 section 7.2 and RFC 7714 section 12.
var suites = [...]suiteInfo{
	AES_CM_128_HMAC_SHA1_80: {"AES_CM_128_HMAC_SHA1_80", pion.ProtectionProfileAes128CmHmacSha1_80, 16, 14},
	AES_CM_128_HMAC_SHA1_32: {"AES_CM_128_HMAC_SHA1_32", pion.ProtectionProfileAes128CmHmacSha1_32, 16, 14},
	AES_256_CM_HMAC_SHA1_80: {"AES_256_CM_HMAC_SHA1_80", pion.ProtectionProfileAes256CmHmacSha1_80, 32, 14},
	AES_256_CM_HMAC_SHA1_32: {"AES_256_CM_HMAC_SHA1_32", pion.ProtectionProfileAes256CmHmacSha1_32, 32, 14},
	AEAD_AES_128_GCM:        {"AEAD_AES_128_GCM", pion.ProtectionProfileAeadAes128Gcm, 16, 12},
	AEAD_AES_256_GCM:        {"AEAD_AES_256_GCM", pion.ProtectionProfileAeadAes256Gcm, 32, 12},
}

// Suites returns the supported suites, most preferred first: the 80-bit
// tag suite every carrier implements, then the others.
func Suites() []Suite {
	return []Suite{
		AES_CM_128_HMAC_SHA1_80, AEAD_AES_128_GCM, AES_256_CM_HMAC_SHA1_80,
		AEAD_AES_256_GCM, AES_CM_128_HMAC_SHA1_32, AES_256_CM_HMAC_SHA1_32,
	}
}

// ParseSuite maps an SDES crypto-suite name (case-sensitive, as RFC 4568
// registers them) to a Suite.
func ParseSuite(name string) (Suite, error) {
	for s := AES_CM_128_HMAC_SHA1_80; s <= AEAD_AES_256_GCM; s++ {
		if suites[s].name == name {
			return s, nil
		}
	}
	return SuiteNone, fmt.Errorf("%w %q", ErrUnsupportedSuite, truncate(name))
}

func (s Suite) valid() bool { return s > SuiteNone && int(s) < len(suites) }

// String is the SDES name of the suite.
func (s Suite) String() string {
	if !s.valid() {
		return fmt.Sprintf("Suite(%d)", uint8(s))
	}
	return suites[s].name
}

// KeyLen is the master key length in bytes.
func (s Suite) KeyLen() int {
	if !s.valid() {
		return 0
	}
	return suites[s].keyLen
}

// SaltLen is the master salt length in bytes.
func (s Suite) SaltLen() int {
	if !s.valid() {
		return 0
	}
	return suites[s].saltLen
}

// truncate bounds outside text quoted in error messages (logs, SIP
// Warning headers) so a hostile peer cannot inflate them.
func truncate(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
