package policy

import (
	"fmt"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// maxRawNumber bounds what we hand to the parser: nobody types 40 characters
// for a phone number, and it keeps fuzzed or hostile input cheap.
const maxRawNumber = 40

// Normalize turns a number as typed ("02 40 12 34 56", "+33 2 40 12 34 56",
// "0033240123456") into E.164 ("+33240123456"), reading national numbers in
// region (e.g. "FR"). It refuses anything libphonenumber does not hold for a
// valid number: the allowlist is matched on exact E.164 strings, so a number
// that merely looks possible must not slip through in another spelling.
func Normalize(raw, region string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidNumber)
	}
	if len(s) > maxRawNumber {
		return "", fmt.Errorf("%w: longer than %d characters", ErrInvalidNumber, maxRawNumber)
	}
	// Only digits and the usual separators: libphonenumber would otherwise
	// accept vanity letters (1-800-FLOWERS) and extensions ("ext. 12"),
	// which change what is dialled behind the approved number.
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9', r == ' ', r == '.', r == '-', r == '(', r == ')', r == '/':
		case r == '+' && i == 0:
		default:
			return "", fmt.Errorf("%w: %q has a character %q that is not a digit or separator", ErrInvalidNumber, raw, r)
		}
	}
	n, err := phonenumbers.Parse(s, region)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrInvalidNumber, raw, err)
	}
	if n.GetExtension() != "" || !phonenumbers.IsValidNumber(n) {
		return "", fmt.Errorf("%w: %q is not a valid number in region %s", ErrInvalidNumber, raw, region)
	}
	e164 := phonenumbers.Format(n, phonenumbers.E164)
	if len(e164) > 16 {
		// libphonenumber's metadata accepts some national numbers (DE) that
		// make more than E.164's 15 digits: no carrier routes them.
		return "", fmt.Errorf("%w: %q has more than 15 digits with its country code", ErrInvalidNumber, raw)
	}
	return e164, nil
}
