package policy

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		raw, region, want string
	}{
		{"02 40 12 34 56", "FR", "+33240123456"},
		{"+33 2 40 12 34 56", "FR", "+33240123456"},
		{"0033240123456", "FR", "+33240123456"},
		{"+33240123456", "FR", "+33240123456"},
		{"  02.40.12.34.56 ", "FR", "+33240123456"},
		{"02-40-12-34-56", "FR", "+33240123456"},
		{"(0)2 40 12 34 56", "FR", "+33240123456"},
		{"06 12 34 56 78", "FR", "+33612345678"},
		{"+1 650 253 0000", "FR", "+16502530000"},
		{"+33240123456", "US", "+33240123456"},   // international form ignores the region
		{"(650) 253-0000", "US", "+16502530000"}, // region matters for national form
		// refused
		{"", "FR", ""},
		{"   ", "FR", ""},
		{"abc", "FR", ""},
		{"garbage 02 40", "FR", ""},
		{"12", "FR", ""},
		{"0240", "FR", ""},
		{"024012345", "FR", ""},        // one digit short
		{"02401234567", "FR", ""},      // one digit long
		{"0240123456789012", "FR", ""}, // far too long
		{"1-800-FLOWERS", "FR", ""},    // vanity letters
		{"0240123456 ext 12", "FR", ""},
		{"0240123456;ext=12", "FR", ""},
		{"02 40 12 34 56#", "FR", ""},
		{"*31#0240123456", "FR", ""},
		{"++33240123456", "FR", ""},
		{"+4920100000000000", "FR", ""}, // valid for libphonenumber, 16 digits for E.164
		{"+492010000000000", "FR", "+492010000000000"},
		{"33+240123456", "FR", ""},
		{"02 40 12 34 56", "", ""},   // no region: national numbers cannot be read
		{"02 40 12 34 56", "ZZ", ""}, // unknown region
		{strings.Repeat("0", 100), "FR", ""},
		{"0800 123 456", "FR", "+33800123456"},
	}
	for _, tt := range tests {
		got, err := Normalize(tt.raw, tt.region)
		if tt.want == "" {
			if err == nil || !errors.Is(err, ErrInvalidNumber) {
				t.Errorf("Normalize(%q, %q) = %q, %v; want ErrInvalidNumber", tt.raw, tt.region, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Normalize(%q, %q) = %q, %v; want %q", tt.raw, tt.region, got, err, tt.want)
		}
	}
}

// FuzzNormalize checks that no input panics, and that whatever is accepted
// is canonical: E.164 shaped and a fixed point of Normalize, so that the
// allowlist's exact match cannot be dodged by spelling a number differently.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"02 40 12 34 56", "+33 2 40 12 34 56", "0033240123456", "+33240123456", "abc", "12", "+", "00", "0240123456 ext 12", "1-800-FLOWERS"} {
		f.Add(s, "FR")
	}
	f.Add("(650) 253-0000", "US")
	f.Fuzz(func(t *testing.T, raw, region string) {
		got, err := Normalize(raw, region)
		if err != nil {
			if !errors.Is(err, ErrInvalidNumber) {
				t.Fatalf("Normalize(%q, %q): error %v does not wrap ErrInvalidNumber", raw, region, err)
			}
			return
		}
		if len(got) < 3 || len(got) > 16 || got[0] != '+' || got[1] == '0' || strings.Trim(got[1:], "0123456789") != "" {
			t.Fatalf("Normalize(%q, %q) = %q: not E.164", raw, region, got)
		}
		again, err := Normalize(got, region)
		if err != nil || again != got {
			t.Fatalf("Normalize(%q) = %q, %v: not a fixed point", got, again, err)
		}
	})
}
