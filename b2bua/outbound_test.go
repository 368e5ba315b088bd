package b2bua

import (
	"log/slog"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	psip "plateau/sip"
)

func TestFromOurDomain(t *testing.T) {
	s, err := psip.NewServer(psip.Options{Listen: "127.0.0.1:0", Realm: "plateau.atelier", ExternalAddress: "192.0.2.10"},
		fakeUsers{}, fixedBindings{}, &auditLog{}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b := &B2BUA{s: s}
	tests := []struct {
		name     string
		from, to string // From and Request-URI hosts
		want     bool
	}{
		{"phone's account domain is the server address", "192.0.2.10", "192.0.2.10", true},
		{"same domain in From and Request-URI", "pbx.lan", "pbx.lan", true},
		{"realm in From, server address dialled", "plateau.atelier", "192.0.2.10", true},
		{"case does not matter", "PLATEAU.Atelier", "192.0.2.10", true},
		{"announced address", "192.0.2.10", "10.0.0.1", true},
		{"carrier's own host", "carrier.example", "192.0.2.10", false},
		{"carrier's address", "198.51.100.7", "192.0.2.10", false},
		{"empty From host", "", "192.0.2.10", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := sip.NewRequest(sip.INVITE, sip.Uri{User: "0240000000", Host: tt.to})
			req.AppendHeader(&sip.FromHeader{Address: sip.Uri{User: "caller", Host: tt.from}, Params: sip.HeaderParams{}})
			if got := b.fromOurDomain(req); got != tt.want {
				t.Errorf("From @%s, Request-URI @%s: %v, want %v", tt.from, tt.to, got, tt.want)
			}
		})
	}
	if b.fromOurDomain(sip.NewRequest(sip.INVITE, sip.Uri{Host: "192.0.2.10"})) {
		t.Error("an INVITE without From counts as ours")
	}
}
