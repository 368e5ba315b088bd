package srtp

import "errors"

// Sentinel errors. Parse errors wrap ErrCrypto (or a more precise sentinel
// below) with the offending text; packet errors wrap ErrAuth, ErrReplay or
// ErrMalformed.
var (
	// ErrCrypto: an a=crypto attribute that does not follow RFC 4568.
	ErrCrypto = errors.New("srtp: invalid a=crypto attribute")
	// ErrUnsupportedSuite: a well-formed crypto-suite Plateau does not
	// implement (e.g. F8_128_HMAC_SHA1_80, AES_192_CM_HMAC_SHA1_80).
	ErrUnsupportedSuite = errors.New("srtp: unsupported crypto-suite")
	// ErrUnsupportedParam: a key or session parameter Plateau does not
	// implement (several master keys, KDR, UNENCRYPTED_*, FEC_*, ...).
	ErrUnsupportedParam = errors.New("srtp: unsupported SDES parameter")
	// ErrNoCrypto: an offer with no a=crypto attribute Plateau can use.
	ErrNoCrypto = errors.New("srtp: no usable a=crypto attribute")
	// ErrSuiteMismatch: the two keys of a Session are of different suites.
	ErrSuiteMismatch = errors.New("srtp: local and remote crypto-suites differ")

	// ErrAuth: a received packet failed authentication (wrong key, tampered,
	// forged). Drop it.
	ErrAuth = errors.New("srtp: authentication failed")
	// ErrReplay: a received packet's index was already seen or is too old
	// for the replay window. Drop it.
	ErrReplay = errors.New("srtp: replayed packet")
	// ErrMalformed: a received packet too short or not RTP/RTCP at all.
	ErrMalformed = errors.New("srtp: malformed packet")
	// ErrKeyExhausted: the master key's lifetime (packets) is used up; the
	// stream must be re-keyed or ended (RFC 3711 section 9.2).
	ErrKeyExhausted = errors.New("srtp: master key lifetime exhausted")
)
