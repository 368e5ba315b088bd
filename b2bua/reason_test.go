package b2bua

import "testing"

func TestParseHangupReason(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   string // "" when nothing is kept
	}{
		{"Q.850 normal clearing", []string{`Q.850;cause=16;text="Normal call clearing"`}, `Q.850;cause=16;text="Normal call clearing"`},
		{"case and spaces", []string{` q.850 ; CAUSE = 17 `}, `Q.850;cause=17`},
		{"SIP cause", []string{`SIP;cause=486;text="Busy Here"`}, `SIP;cause=486;text="Busy Here"`},
		{"first usable of several", []string{`X-Vendor;cause=1`, `Q.850;cause=31`}, `Q.850;cause=31`},
		{"Q.850 cause out of range", []string{`Q.850;cause=300`}, ""},
		{"cause not a number", []string{`Q.850;cause=16abc`}, ""},
		{"no cause", []string{`Q.850;text="x"`}, ""},
		{"negative cause", []string{`SIP;cause=-1`}, ""},
		{"unknown protocol", []string{`H.248;cause=16`}, ""},
		{"quotes and backslashes dropped from text", []string{`Q.850;cause=16;text="a\"b\\c"`}, `Q.850;cause=16;text="abc"`},
		{"control characters dropped", []string{"Q.850;cause=16;text=\"a\x01b\x7fc\""}, `Q.850;cause=16;text="abc"`},
		{"long text cut", []string{`Q.850;cause=16;text="` + string(make([]byte, 0)) + "0123456789012345678901234567890123456789012345678901234567890123456789" + `"`},
			`Q.850;cause=16;text="0123456789012345678901234567890123456789012345678901234567890123"`},
		{"nothing", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := parseHangupReason(tt.values)
			got := ""
			if ok {
				got = r.String()
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzParseHangupReason(f *testing.F) {
	for _, s := range []string{`Q.850;cause=16;text="Normal call clearing"`, `SIP;cause=486`, `q.850;cause=;text=`, `;;;`, "Q.850;cause=16;text=\"\x00\""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, ok := parseHangupReason([]string{s})
		if !ok {
			return
		}
		// What is relayed parses back to itself: nothing else passes.
		again, ok := parseHangupReason([]string{r.String()})
		if !ok || again != r {
			t.Fatalf("%q -> %q -> %q", s, r.String(), again.String())
		}
		if len(r.Text) > maxReasonText {
			t.Fatalf("text of %d bytes", len(r.Text))
		}
	})
}
