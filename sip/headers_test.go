package sip

import (
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// getHeader and getHeaders answer what sipgo's GetHeader and GetHeaders do,
// for any case of the name, and do not allocate for a single header.
func TestGetHeaderMatchesSipgo(t *testing.T) {
	raw := "REGISTER sip:plateau SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n" +
		"f: <sip:101@plateau>;tag=1\r\n" +
		"To: <sip:101@plateau>\r\n" +
		"Call-ID: c1\r\n" +
		"CSeq: 2 REGISTER\r\n" +
		"m: <sip:101@127.0.0.1:5070>;expires=60\r\n" +
		"CONTACT: <sip:101@127.0.0.2:5070>\r\n" +
		"User-Agent: softphone\r\n" +
		"X-K\u212aey: unicode-folded name\r\n" +
		"AUTHORIZATION: Digest username=\"101\"\r\n" +
		"authorization: Digest username=\"second\"\r\n" +
		"eXpires: 300\r\n" +
		"Content-Length: 0\r\n\r\n"
	msg, err := sip.NewParser().ParseSIP([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	req := msg.(*sip.Request)
	names := []string{"authorization", "Authorization", "AUTHORIZATION", "expires", "Expires", "Contact", "contact",
		"User-Agent", "user-agent", "From", "to", "call-id", "X-Kkey", "X-K\u212aey", "Proxy-Authorization", "", "Via"}
	for _, n := range names {
		want, got := req.GetHeader(n), getHeader(req, n)
		if want != got {
			t.Errorf("getHeader(%q) = %v, sipgo %v", n, got, want)
		}
		ws, gs := req.GetHeaders(n), getHeaders(req, n)
		if len(ws) != len(gs) {
			t.Errorf("getHeaders(%q): %d headers, sipgo %d", n, len(gs), len(ws))
			continue
		}
		for i := range ws {
			if ws[i] != gs[i] {
				t.Errorf("getHeaders(%q)[%d] = %v, sipgo %v", n, i, gs[i], ws[i])
			}
		}
	}
	if a := testing.AllocsPerRun(100, func() { getHeader(req, "authorization") }); a != 0 {
		t.Errorf("getHeader allocates %v times", a)
	}
}

func TestParseSeconds(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration // 0: an error
	}{
		{"1", time.Second},
		{" 3600 ", time.Hour},
		{"86400", 24 * time.Hour},
		{"86401", 0},
		{"0", 0},
		{"-1", 0},
		{"+60", 0},         // delta-seconds = 1*DIGIT
		{"10000000000", 0}, // × 1e9 ns overflows int64
		{"9223372036854775807", 0},
		{"99999999999999999999", 0},
		{"1e3", 0},
		{"", 0},
	}
	for _, tt := range tests {
		got, err := ParseSeconds(tt.in, 24*time.Hour)
		if got != tt.want || (err == nil) != (tt.want != 0) {
			t.Errorf("ParseSeconds(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}
