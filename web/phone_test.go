package web

import "testing"

func TestDisplayNumber(t *testing.T) {
	for _, tt := range []struct{ in, region, want string }{
		{"+33240123456", "FR", "02 40 12 34 56"},
		{"+33612345678", "FR", "06 12 34 56 78"},
		{"+33912345678", "FR", "09 12 34 56 78"},
		{"+3222345678", "FR", "+32 2 234 56 78"},
		{"+33240123456", "BE", "+33 2 40 12 34 56"},
		{"+33240123456", "fr", "02 40 12 34 56"},
		{"", "FR", ""},
		{"0240123456", "FR", "0240123456"}, // not E.164: as stored
		{"+99", "FR", "+99"},               // no such country
		{"+3324012345678901234567", "FR", "+3324012345678901234567"},
	} {
		if got := displayNumber(tt.in, tt.region); got != tt.want {
			t.Errorf("displayNumber(%q, %q) = %q, want %q", tt.in, tt.region, got, tt.want)
		}
	}
}
