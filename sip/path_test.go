package sip

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestPathOf(t *testing.T) {
	tests := []struct {
		name  string
		hdrs  []string
		want  []string
		wantK bool
	}{
		{"none", nil, nil, true},
		{"one proxy", []string{"<sip:127.0.0.3:5090;lr>"}, []string{"<sip:127.0.0.3:5090;lr>"}, true},
		{"two in one header, order kept", []string{"<sip:edge.example;lr>, <sip:10.0.0.2;lr>"}, []string{"<sip:edge.example;lr>", "<sip:10.0.0.2;lr>"}, true},
		{"two headers", []string{"<sip:a.example;lr>", "<sip:b.example;lr>"}, []string{"<sip:a.example;lr>", "<sip:b.example;lr>"}, true},
		{"comma inside a URI parameter is not a separator", []string{`"x,y" <sip:a.example;lr>`}, []string{"<sip:a.example;lr>"}, true},
		{"not a SIP URI", []string{"<http://evil.example/>"}, nil, false},
		{"garbage", []string{"<<<"}, nil, false},
		{"too many", []string{strings.Repeat("<sip:p.example;lr>,", 6)}, nil, false},
		{"too long", []string{"<sip:" + strings.Repeat("a", 300) + ".example;lr>"}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := sip.NewRequest(sip.REGISTER, sip.Uri{Host: "127.0.0.1"})
			for _, h := range tt.hdrs {
				req.AppendHeader(sip.NewHeader("Path", h))
			}
			got, ok := pathOf(req)
			if ok != tt.wantK || strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("pathOf = %q, %v; want %q, %v", got, ok, tt.want, tt.wantK)
			}
		})
	}
}

func TestRouteViaPathAndEcho(t *testing.T) {
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "101", Host: "192.0.2.7", Port: 5060})
	routeViaPath(req, Binding{Path: []string{"<sip:127.0.0.3:5090;lr>", "<sip:10.0.0.2;lr>"}})
	if d := req.Destination(); d != "127.0.0.3:5090" {
		t.Errorf("INVITE goes to %s, want the first proxy 127.0.0.3:5090", d)
	}
	if rs := req.GetHeaders("Route"); len(rs) != 2 || rs[1].Value() != "<sip:10.0.0.2;lr>" {
		t.Errorf("Route headers %v", rs)
	}

	reg := sip.NewRequest(sip.REGISTER, sip.Uri{Host: "127.0.0.1"})
	res := sip.NewResponseFromRequest(reg, 200, "OK", nil)
	echoPath(reg, res, []string{"<sip:p;lr>"})
	if res.GetHeader("Path") != nil {
		t.Error("Path echoed to a phone that did not say Supported: path")
	}
	reg.AppendHeader(sip.NewHeader("Supported", "outbound, path"))
	echoPath(reg, res, []string{"<sip:p;lr>"})
	if h := res.GetHeader("Path"); h == nil || h.Value() != "<sip:p;lr>" {
		t.Errorf("Path in the 200 = %v", h)
	}
}

func FuzzPathOf(f *testing.F) {
	for _, s := range []string{"<sip:127.0.0.3:5090;lr>", "<sip:a;lr>, <sip:b;lr>", `"x,y" <sip:a;lr>`, "<http://x/>", "<<<", "sip:bare.example;lr"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		req := sip.NewRequest(sip.REGISTER, sip.Uri{Host: "127.0.0.1"})
		req.AppendHeader(sip.NewHeader("Path", s))
		path, ok := pathOf(req)
		if !ok {
			return
		}
		if len(path) > maxPathEntries {
			t.Fatalf("%d entries", len(path))
		}
		// Each stored entry is a rebuilt SIP URI that reads back the same.
		for _, p := range path {
			again := sip.NewRequest(sip.REGISTER, sip.Uri{Host: "127.0.0.1"})
			again.AppendHeader(sip.NewHeader("Path", p))
			got, ok := pathOf(again)
			if !ok || len(got) != 1 || got[0] != p {
				t.Fatalf("%q: entry %q reads back as %q, %v", s, p, got, ok)
			}
		}
	})
}
