// Package srtp keys and runs SRTP (RFC 3711) for one media stream whose keys
// were exchanged with SDES (RFC 4568, the SDP a=crypto attribute).
//
// It has three parts, independent of any SIP leg, so the trunk leg and the
// SIPREC recorder link both use it:
//
//   - Crypto: one a=crypto attribute (tag, suite, master key and salt,
//     lifetime, MKI). ParseCrypto reads the attribute value and refuses,
//     with an error naming it, anything Plateau does not implement (a
//     suite, several master keys, a non-zero KDR, UNENCRYPTED_* or FEC
//     session parameters, a key of the wrong length). NewCrypto makes a
//     fresh master key and salt from crypto/rand; String writes the value
//     back. Select picks the first supported attribute of an offer.
//   - Suite: the SDES crypto-suite names Plateau speaks:
//     AES_CM_128_HMAC_SHA1_80 (the one every carrier speaks, and what
//     Plateau offers first), AES_CM_128_HMAC_SHA1_32, AES_256_CM_HMAC_SHA1_80
//     and _32 (RFC 6188), AEAD_AES_128_GCM and AEAD_AES_256_GCM (RFC 7714).
//   - Session: one direction's key to protect what Plateau sends, the other
//     side's key to unprotect what it receives, for RTP and RTCP, on top of
//     github.com/pion/srtp/v3. Replay protection is always on. Unprotect
//     errors say why a packet was refused (ErrAuth, ErrReplay,
//     ErrMalformed) so callers count drops by reason; a refused packet
//     must be dropped, never used.
//
// SDES carries the keys in the SDP body: they are secret only if the
// signalling is encrypted (SIP over TLS). That rule belongs to the caller's
// configuration (check-config refuses SRTP on a trunk without TLS), not to
// this package.
package srtp
