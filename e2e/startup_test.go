package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// optionsCarrier answers OPTIONS on 127.0.0.1 with 503 to the first
// `failing` requests, then 200.
type optionsCarrier struct {
	conn *net.UDPConn
	got  atomic.Int32
}

func newOptionsCarrier(t *testing.T, failing int32) *optionsCarrier {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	c := &optionsCarrier{conn: conn}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			msg, err := sip.ParseMessage(buf[:n])
			req, ok := msg.(*sip.Request)
			if err != nil || !ok || req.Method != sip.OPTIONS {
				continue
			}
			status, reason := 200, "OK"
			if c.got.Add(1) <= failing {
				status, reason = 503, "Service Unavailable"
			}
			conn.WriteToUDP([]byte(sip.NewResponseFromRequest(req, status, reason, nil).String()), from)
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return c
}

func (p *plateau) readyz() (int, string) {
	p.t.Helper()
	res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", p.httpPort))
	if err != nil {
		p.t.Fatalf("GET /readyz: %v", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// The carrier refuses the first OPTIONS (503): the trunk is down and
// /readyz says so while staying ready, and a quick retry brings it up
// long before the 30 s options_interval (the old keepalive waited for it,
// refusing every call meanwhile).
func TestStartupTrunkRetriedQuickly(t *testing.T) {
	carrier := newOptionsCarrier(t, 1)
	p := startPlateau(t, serverOpts{extraYAML: fmt.Sprintf(
		"trunks:\n  - {name: carrier1, address: %q, transport: udp, caller_id: %q, allowed_sources: [%q], options_interval: 30s}\n",
		carrier.conn.LocalAddr().String(), callerID, trunkSources)})
	start := time.Now()
	sawDown := false
	eventually(t, "trunk up on /readyz", func() (bool, string) {
		status, body := p.readyz()
		if status != 200 {
			t.Fatalf("/readyz %d with a trunk %s, want 200 (trunks do not decide readiness)", status, body)
		}
		sawDown = sawDown || strings.Contains(body, "trunk carrier1: down")
		return strings.Contains(body, "trunk carrier1: up since "), body
	})
	took := time.Since(start)
	if v := p.metric(`plateau_trunk_up{trunk="carrier1"}`); v != 1 {
		t.Errorf("plateau_trunk_up = %v, want 1", v)
	}
	if n := carrier.got.Load(); n < 2 {
		t.Errorf("%d OPTIONS, want the refused one and its retry", n)
	}
	auditHas(t, p, "trunk.state", "carrier1", "down")
	t.Logf("trunk up %v after ready (saw down on /readyz: %v), %d OPTIONS", took, sawDown, carrier.got.Load())
	if took > 10*time.Second {
		t.Errorf("trunk up after %v, want a quick retry (< 10 s), not the 30 s interval", took)
	}
}
