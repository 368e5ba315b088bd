package srtp

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// MaxAttrLen bounds an a=crypto value: the longest Plateau accepts (AES-256
// key, lifetime, 4-byte MKI, a few session parameters) is well under it.
const MaxAttrLen = 512

// maxLifetime is RFC 3711's limit for an SRTP master key: 2^48 packets.
const maxLifetime = 1 << 48

// Crypto is one SDES a=crypto attribute (RFC 4568 section 9.1) with a
// single inline master key. The zero value is not valid; build one with
// ParseCrypto or NewCrypto.
type Crypto struct {
	// Tag identifies the attribute in its media description (1-9 digits).
	// An answer repeats the tag of the offer's attribute it accepts.
	Tag uint32
	// Suite is the crypto-suite.
	Suite Suite
	// Key and Salt are the master key and master salt, of Suite's lengths.
	Key, Salt []byte
	// Lifetime is the number of packets the master key may protect; 0
	// means the RFC 3711 maximum.
	Lifetime uint64
	// MKI is the master key identifier carried in every packet, nil when
	// the attribute has none.
	MKI []byte
	// WSH is the window size hint (RFC 4568 6.3.6), 0 when absent.
	WSH uint32
}

// NewCrypto returns a fresh master key and salt for suite from
// crypto/rand, with the given tag, no lifetime and no MKI.
func NewCrypto(tag uint32, suite Suite) (Crypto, error) {
	if !suite.valid() {
		return Crypto{}, fmt.Errorf("%w: %v", ErrUnsupportedSuite, suite)
	}
	if tag > 999999999 {
		return Crypto{}, fmt.Errorf("%w: tag %d longer than 9 digits", ErrCrypto, tag)
	}
	buf := make([]byte, suite.KeyLen()+suite.SaltLen())
	if _, err := rand.Read(buf); err != nil {
		return Crypto{}, fmt.Errorf("srtp: key generation: %w", err)
	}
	return Crypto{Tag: tag, Suite: suite, Key: buf[:suite.KeyLen():suite.KeyLen()], Salt: buf[suite.KeyLen():]}, nil
}

// ParseCrypto parses an a=crypto attribute value (the text after
// "a=crypto:"; a leading "a=crypto:" or "crypto:" is accepted too).
// Anything Plateau does not implement is refused with an error naming it,
// so an answerer can try the offer's next attribute:
//
//   - a suite outside Suites (ErrUnsupportedSuite);
//   - several master keys, a key method other than inline, a key or salt
//     of the wrong length, a lifetime above 2^48 (ErrCrypto or
//     ErrUnsupportedParam);
//   - the session parameters KDR (non-zero), UNENCRYPTED_SRTP,
//     UNENCRYPTED_SRTCP, UNAUTHENTICATED_SRTP, FEC_ORDER, FEC_KEY and any
//     unknown mandatory one (ErrUnsupportedParam). Unknown parameters
//     starting with "-" are optional and ignored (RFC 4568 6.3.7).
func ParseCrypto(value string) (Crypto, error) {
	if len(value) > MaxAttrLen {
		return Crypto{}, fmt.Errorf("%w: %d bytes, more than %d", ErrCrypto, len(value), MaxAttrLen)
	}
	value = strings.TrimPrefix(strings.TrimPrefix(value, "a="), "crypto:")
	fields := strings.Fields(value)
	if len(fields) < 3 {
		return Crypto{}, fmt.Errorf("%w: want \"tag suite inline:key\", got %q", ErrCrypto, truncate(value))
	}
	var c Crypto
	tag, err := parseDigits(fields[0], 9)
	if err != nil {
		return Crypto{}, fmt.Errorf("%w: tag %q: %v", ErrCrypto, truncate(fields[0]), err)
	}
	c.Tag = uint32(tag)
	if c.Suite, err = ParseSuite(fields[1]); err != nil {
		return Crypto{}, err
	}
	if err := c.parseKeyParams(fields[2]); err != nil {
		return Crypto{}, err
	}
	for _, p := range fields[3:] {
		if err := c.parseSessionParam(p); err != nil {
			return Crypto{}, err
		}
	}
	return c, nil
}

// parseKeyParams reads "inline:<key||salt>[|lifetime][|mki:len]".
func (c *Crypto) parseKeyParams(s string) error {
	if strings.Contains(s, ";") {
		return fmt.Errorf("%w: several master keys in one attribute", ErrUnsupportedParam)
	}
	method, info, ok := strings.Cut(s, ":")
	if !ok || method != "inline" {
		return fmt.Errorf("%w: key method %q (only inline)", ErrUnsupportedParam, truncate(method))
	}
	parts := strings.Split(info, "|")
	if len(parts) > 3 {
		return fmt.Errorf("%w: key parameters %q: too many \"|\" fields", ErrCrypto, truncate(info))
	}
	raw, err := decodeKey(parts[0])
	if err != nil {
		return fmt.Errorf("%w: inline key: %v", ErrCrypto, err)
	}
	kl, sl := c.Suite.KeyLen(), c.Suite.SaltLen()
	if len(raw) != kl+sl {
		return fmt.Errorf("%w: inline key is %d bytes, %s needs %d (key %d + salt %d)",
			ErrCrypto, len(raw), c.Suite, kl+sl, kl, sl)
	}
	c.Key, c.Salt = raw[:kl:kl], raw[kl:]
	for _, p := range parts[1:] {
		if strings.Contains(p, ":") {
			if c.MKI != nil {
				return fmt.Errorf("%w: two MKI fields", ErrCrypto)
			}
			if c.MKI, err = parseMKI(p); err != nil {
				return err
			}
			continue
		}
		if c.MKI != nil || c.Lifetime != 0 {
			return fmt.Errorf("%w: lifetime %q must come once, before the MKI", ErrCrypto, truncate(p))
		}
		if c.Lifetime, err = parseLifetime(p); err != nil {
			return err
		}
	}
	return nil
}

// decodeKey accepts standard base64 with or without padding: RFC 4568
// pads, some implementations do not.
func decodeKey(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("empty")
	}
	if b, err := base64.StdEncoding.Strict().DecodeString(s); err == nil {
		return b, nil
	}
	b, err := base64.RawStdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, errors.New("not base64")
	}
	return b, nil
}

func parseLifetime(s string) (uint64, error) {
	var n uint64
	if exp, ok := strings.CutPrefix(s, "2^"); ok {
		e, err := parseDigits(exp, 2)
		if err != nil || e > 48 {
			return 0, fmt.Errorf("%w: lifetime %q: exponent must be 0..48", ErrCrypto, truncate(s))
		}
		n = 1 << e
	} else {
		v, err := parseDigits(s, 15)
		if err != nil {
			return 0, fmt.Errorf("%w: lifetime %q: %v", ErrCrypto, truncate(s), err)
		}
		n = v
	}
	if n == 0 || n > maxLifetime {
		return 0, fmt.Errorf("%w: lifetime %q: must be 1..2^48 packets", ErrCrypto, truncate(s))
	}
	return n, nil
}

// parseMKI reads "value:length": a decimal value carried big-endian in
// length bytes (1..128).
func parseMKI(s string) ([]byte, error) {
	vs, ls, _ := strings.Cut(s, ":")
	l, err := parseDigits(ls, 3)
	if err != nil || l < 1 || l > 128 || len(vs) == 0 || len(vs) > 309 || strings.Trim(vs, "0123456789") != "" {
		return nil, fmt.Errorf("%w: MKI %q: want value:length with length 1..128", ErrCrypto, truncate(s))
	}
	v, _ := new(big.Int).SetString(vs, 10)
	if v.BitLen() > int(8*l) {
		return nil, fmt.Errorf("%w: MKI %q: value does not fit in %d bytes", ErrCrypto, truncate(s), l)
	}
	return v.FillBytes(make([]byte, l)), nil
}

func (c *Crypto) parseSessionParam(p string) error {
	name, val, hasVal := strings.Cut(p, "=")
	switch name {
	case "KDR":
		v, err := parseDigits(val, 2)
		if !hasVal || err != nil || v > 24 {
			return fmt.Errorf("%w: session parameter %q", ErrCrypto, truncate(p))
		}
		if v != 0 {
			return fmt.Errorf("%w: KDR=%d (key derivation rate; only 0)", ErrUnsupportedParam, v)
		}
	case "WSH":
		v, err := parseDigits(val, 9)
		if !hasVal || err != nil || v < 64 {
			return fmt.Errorf("%w: session parameter %q (WSH must be >= 64)", ErrCrypto, truncate(p))
		}
		c.WSH = uint32(v)
	case "UNENCRYPTED_SRTP", "UNENCRYPTED_SRTCP", "UNAUTHENTICATED_SRTP", "FEC_ORDER", "FEC_KEY":
		// Plateau never weakens SRTP nor runs FEC.
		return fmt.Errorf("%w: %s", ErrUnsupportedParam, name)
	default:
		if strings.HasPrefix(p, "-") {
			return nil // optional extension (RFC 4568 6.3.7)
		}
		return fmt.Errorf("%w: unknown session parameter %q", ErrUnsupportedParam, truncate(p))
	}
	return nil
}

// parseDigits parses 1..max ASCII digits (no sign, no spaces).
func parseDigits(s string, max int) (uint64, error) {
	if len(s) == 0 || len(s) > max {
		return 0, fmt.Errorf("want 1 to %d digits", max)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("not a decimal number")
		}
	}
	return strconv.ParseUint(s, 10, 64)
}

// String writes the attribute value, e.g.
// "1 AES_CM_128_HMAC_SHA1_80 inline:<base64>" (what follows "a=crypto:").
func (c Crypto) String() string {
	var b strings.Builder
	b.WriteString(strconv.FormatUint(uint64(c.Tag), 10))
	b.WriteByte(' ')
	b.WriteString(c.Suite.String())
	b.WriteString(" inline:")
	b.WriteString(base64.StdEncoding.EncodeToString(append(append([]byte(nil), c.Key...), c.Salt...)))
	if c.Lifetime != 0 {
		b.WriteByte('|')
		if c.Lifetime&(c.Lifetime-1) == 0 {
			b.WriteString("2^")
			b.WriteString(strconv.Itoa(bitLen(c.Lifetime) - 1))
		} else {
			b.WriteString(strconv.FormatUint(c.Lifetime, 10))
		}
	}
	if len(c.MKI) > 0 {
		fmt.Fprintf(&b, "|%s:%d", new(big.Int).SetBytes(c.MKI).String(), len(c.MKI))
	}
	if c.WSH != 0 {
		fmt.Fprintf(&b, " WSH=%d", c.WSH)
	}
	return b.String()
}

func bitLen(x uint64) int {
	n := 0
	for ; x != 0; x >>= 1 {
		n++
	}
	return n
}

// Validate checks a Crypto built by hand: known suite, key and salt of its
// lengths, lifetime within RFC 3711, MKI of at most 128 bytes.
func (c Crypto) Validate() error {
	switch {
	case !c.Suite.valid():
		return fmt.Errorf("%w: %v", ErrUnsupportedSuite, c.Suite)
	case c.Tag > 999999999:
		return fmt.Errorf("%w: tag %d longer than 9 digits", ErrCrypto, c.Tag)
	case len(c.Key) != c.Suite.KeyLen() || len(c.Salt) != c.Suite.SaltLen():
		return fmt.Errorf("%w: %s needs a %d-byte key and %d-byte salt, got %d and %d",
			ErrCrypto, c.Suite, c.Suite.KeyLen(), c.Suite.SaltLen(), len(c.Key), len(c.Salt))
	case c.Lifetime > maxLifetime:
		return fmt.Errorf("%w: lifetime %d above 2^48", ErrCrypto, c.Lifetime)
	case len(c.MKI) > 128:
		return fmt.Errorf("%w: MKI of %d bytes (at most 128)", ErrCrypto, len(c.MKI))
	}
	return nil
}

// Equal reports whether two attributes carry the same keying (suite, key,
// salt, MKI): a re-offer that repeats the key keeps the running session.
func (c Crypto) Equal(o Crypto) bool {
	return c.Suite == o.Suite && bytes.Equal(c.Key, o.Key) && bytes.Equal(c.Salt, o.Salt) && bytes.Equal(c.MKI, o.MKI)
}

// Select returns the first attribute of an offer (values of its a=crypto
// lines, in the offer's order of preference) that Plateau supports. When
// none is usable the error wraps ErrNoCrypto and names why each was
// refused.
func Select(values []string) (Crypto, error) {
	var why []string
	for _, v := range values {
		c, err := ParseCrypto(v)
		if err == nil {
			return c, nil
		}
		if len(why) < 4 {
			why = append(why, err.Error())
		}
	}
	if len(values) == 0 {
		return Crypto{}, fmt.Errorf("%w: the offer has no a=crypto line", ErrNoCrypto)
	}
	return Crypto{}, fmt.Errorf("%w: %s", ErrNoCrypto, strings.Join(why, "; "))
}

// Answer returns Plateau's own attribute for an accepted remote one: the
// same tag and suite (RFC 4568 7.1.2), a fresh key and salt, no MKI.
func Answer(remote Crypto) (Crypto, error) {
	return NewCrypto(remote.Tag, remote.Suite)
}
