package web

import (
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// displayNumber shows an E.164 number the way people of the site's region
// write it: "+33240123456" reads "02 40 12 34 56" in France. Numbers of
// other countries keep the international form, spaced ("+32 2 123 45 67");
// anything that does not parse is shown as stored. E.164 stays the stored
// and the dialled form; this is for the eyes only (operator.js mirrors the
// French rule for the numbers it shows).
func displayNumber(e164, region string) string {
	if !strings.HasPrefix(e164, "+") || len(e164) > 20 {
		return e164
	}
	n, err := phonenumbers.Parse(e164, region)
	if err != nil {
		return e164
	}
	if phonenumbers.GetRegionCodeForNumber(n) == strings.ToUpper(region) {
		return phonenumbers.Format(n, phonenumbers.NATIONAL)
	}
	return phonenumbers.Format(n, phonenumbers.INTERNATIONAL)
}
