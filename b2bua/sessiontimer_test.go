package b2bua

import (
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

func TestParseSessionExpires(t *testing.T) {
	tests := []struct {
		in      string
		want    sessionExpires
		wantErr bool
	}{
		{"1800", sessionExpires{Interval: 1800 * time.Second}, false},
		{"90;refresher=uac", sessionExpires{Interval: 90 * time.Second, Refresher: "uac"}, false},
		{" 90 ; Refresher = UAS ", sessionExpires{Interval: 90 * time.Second, Refresher: "uas"}, false},
		{"90;foo=bar", sessionExpires{Interval: 90 * time.Second}, false},
		{"0", sessionExpires{}, true},
		{"-5", sessionExpires{}, true},
		{"86401", sessionExpires{}, true},
		{"99999999999999999999", sessionExpires{}, true},
		{"abc", sessionExpires{}, true},
		{"90;refresher=proxy", sessionExpires{}, true},
		{"", sessionExpires{}, true},
	}
	for _, tt := range tests {
		got, err := parseSessionExpires(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseSessionExpires(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestUASSessionTimer(t *testing.T) {
	tests := []struct {
		name        string
		hdrs        map[string]string
		wantOK      bool
		wantSE      string
		wantRequire bool
	}{
		{"no timer asked", map[string]string{"Supported": "timer"}, false, "", false},
		{"UAC supports timers: it refreshes", map[string]string{"Session-Expires": "1800", "Supported": "100rel, timer"}, true, "1800;refresher=uac", true},
		{"UAC asks us to refresh", map[string]string{"Session-Expires": "600;refresher=uas", "Supported": "timer"}, true, "600;refresher=uas", true},
		{"proxy-inserted, UAC without timer: we refresh", map[string]string{"Session-Expires": "900"}, true, "900;refresher=uas", false},
		{"compact forms", map[string]string{"x": "120", "k": "timer"}, true, "120;refresher=uac", true},
		{"bad value ignored", map[string]string{"Session-Expires": "soon", "Supported": "timer"}, false, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := sip.NewRequest(sip.INVITE, sip.Uri{Host: "127.0.0.1"})
			for k, v := range tt.hdrs {
				req.AppendHeader(sip.NewHeader(k, v))
			}
			se, hdrs, ok := uasSessionTimer(req)
			if ok != tt.wantOK {
				t.Fatalf("ok %v, want %v", ok, tt.wantOK)
			}
			if !ok {
				return
			}
			if se.String() != tt.wantSE || hdrs[0].Value() != tt.wantSE {
				t.Errorf("Session-Expires %q (header %q), want %q", se.String(), hdrs[0].Value(), tt.wantSE)
			}
			if gotRequire := len(hdrs) == 2 && hdrs[1].Value() == "timer"; gotRequire != tt.wantRequire {
				t.Errorf("Require: timer %v, want %v", gotRequire, tt.wantRequire)
			}
		})
	}
}

func FuzzParseSessionExpires(f *testing.F) {
	for _, s := range []string{"1800", "90;refresher=uac", " 90 ; Refresher = UAS ", "0", "86401", "90;refresher=", ";;", "1;refresher=uac;refresher=uas"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		se, err := parseSessionExpires(s)
		if err != nil {
			return
		}
		if se.Interval < time.Second || se.Interval > maxSessionExpires {
			t.Fatalf("%q: interval %v out of bounds", s, se.Interval)
		}
		// What Plateau writes back parses to the same.
		again, err := parseSessionExpires(se.String())
		if err != nil || again != se {
			t.Fatalf("%q -> %q -> %+v, %v", s, se.String(), again, err)
		}
	})
}

func TestUnsupportedRequire(t *testing.T) {
	tests := []struct {
		require []string
		want    string
	}{
		{nil, ""},
		{[]string{"timer"}, ""},
		{[]string{"100rel"}, "100rel"},
		{[]string{"timer, precondition", "100rel"}, "precondition,100rel"},
	}
	for _, tt := range tests {
		req := sip.NewRequest(sip.INVITE, sip.Uri{Host: "127.0.0.1"})
		for _, v := range tt.require {
			req.AppendHeader(sip.NewHeader("Require", v))
		}
		req.AppendHeader(sip.NewHeader("Proxy-Require", "sec-agree")) // not ours to honour
		if got := strings.Join(unsupportedRequire(req), ","); got != tt.want {
			t.Errorf("Require %q: unsupported %q, want %q", tt.require, got, tt.want)
		}
	}
}
