package sip

import (
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

func TestGrantedExpiry(t *testing.T) {
	ours := sip.Uri{Scheme: "sip", User: "atelier", Host: "192.0.2.10", Port: 5060}
	tests := []struct {
		name string
		hdrs [][2]string
		want time.Duration
	}{
		{"our contact's expires", [][2]string{{"Contact", "<sip:atelier@192.0.2.10:5060>;expires=120"}}, 120 * time.Second},
		{"another PBX's contact is not ours", [][2]string{{"Contact", "<sip:other@198.51.100.1:5060>;expires=30"}, {"Expires", "600"}}, 600 * time.Second},
		{"ours among others", [][2]string{{"Contact", "<sip:other@198.51.100.1:5060>;expires=30, <sip:atelier@192.0.2.10:5060>;expires=90"}}, 90 * time.Second},
		{"Expires header only", [][2]string{{"Expires", "300"}}, 300 * time.Second},
		{"nothing: what we asked", nil, time.Hour},
		{"overflowing values: what we asked", [][2]string{{"Contact", "<sip:atelier@192.0.2.10:5060>;expires=10000000000"}, {"Expires", "9223372036"}}, time.Hour},
		{"longer than a day: the Expires header", [][2]string{{"Contact", "<sip:atelier@192.0.2.10:5060>;expires=86401"}, {"Expires", "86400"}}, 24 * time.Hour},
		{"nonsense values: what we asked", [][2]string{{"Contact", "<sip:atelier@192.0.2.10:5060>;expires=soon"}, {"Expires", "-1"}}, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := sip.NewRequest(sip.REGISTER, sip.Uri{Host: "carrier.example"})
			res := sip.NewResponseFromRequest(req, 200, "OK", nil)
			for _, h := range tt.hdrs {
				res.AppendHeader(sip.NewHeader(h[0], h[1]))
			}
			if got := grantedExpiry(res, ours, time.Hour); got != tt.want {
				t.Errorf("granted %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDigestAnswer(t *testing.T) {
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Host: "carrier.example"})
	res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
	if _, err := digestAnswer(res, sip.REGISTER, "sip:carrier.example", "u", "p"); err == nil {
		t.Error("a 401 without WWW-Authenticate was answered")
	}
	res.AppendHeader(sip.NewHeader("WWW-Authenticate", `Digest realm="carrier", nonce="n1", algorithm=md5, qop="auth"`))
	h, err := digestAnswer(res, sip.REGISTER, "sip:carrier.example", "u", "p")
	if err != nil || h.Name() != "Authorization" {
		t.Fatalf("answer %v, %v", h, err)
	}
	res407 := sip.NewResponseFromRequest(req, 407, "Proxy Authentication Required", nil)
	res407.AppendHeader(sip.NewHeader("Proxy-Authenticate", `Digest realm="carrier", nonce="n2"`))
	if h, err := digestAnswer(res407, sip.INVITE, "sip:x@carrier.example", "u", "p"); err != nil || h.Name() != "Proxy-Authorization" {
		t.Fatalf("407 answer %v, %v", h, err)
	}
}
