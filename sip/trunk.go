package sip

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// TrunkConfig describes one carrier trunk.
type TrunkConfig struct {
	Name            string
	Address         string // host:port
	Transport       string // udp or tcp
	Username        string
	Password        string
	CallerID        string // E.164, sent as From user
	AllowedSources  []netip.Prefix
	OptionsInterval time.Duration
	NumberFormat    string             // e164, national, international
	CountryCode     string             // e.g. "33", for national/international formats
	RingTimeout     time.Duration      // unanswered this long: CANCEL; 0 means the call options' RingTimeout
	Register        *TrunkRegistration // a registration trunk (trunkreg.go)
}

// Trunk is a carrier connection with its health state.
type Trunk struct {
	TrunkConfig
	up         atomic.Bool
	registered atomic.Bool // registration trunks only (trunkreg.go)
}

func newTrunk(c TrunkConfig) *Trunk {
	t := &Trunk{TrunkConfig: c}
	t.up.Store(true) // optimistic until the first OPTIONS says otherwise
	return t
}

// Up reports the trunk's last known health.
func (t *Trunk) Up() bool { return t.up.Load() && t.registrationUp() }

// allows reports whether src may send us calls over this trunk.
func (t *Trunk) allows(src netip.Addr) bool {
	for _, p := range t.AllowedSources {
		if p.Contains(src) {
			return true
		}
	}
	return false
}

// uri builds the Request-URI for an E.164 number in the trunk's format.
func (t *Trunk) uri(e164 string) sip.Uri {
	user := e164
	switch t.NumberFormat {
	case "national":
		if cc := "+" + t.CountryCode; t.CountryCode != "" && strings.HasPrefix(e164, cc) {
			user = "0" + strings.TrimPrefix(e164, cc)
		}
	case "international":
		user = "00" + strings.TrimPrefix(e164, "+")
	}
	var u sip.Uri
	sip.ParseUri("sip:"+user+"@"+t.Address, &u)
	if t.Transport == "tcp" {
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", "tcp")
	}
	return u
}

// keepalive sends OPTIONS every interval and marks the trunk up or down.
func (t *Trunk) keepalive(ctx context.Context, c *sipgo.Client, s *Server) {
	if t.OptionsInterval <= 0 {
		return
	}
	tick := time.NewTicker(t.OptionsInterval)
	defer tick.Stop()
	for {
		up := t.ping(ctx, c) == nil
		if was := t.up.Swap(up); was != up {
			s.log.Warn("trunk state changed", "trunk", t.Name, "up", up)
			s.audit.Audit(ctx, "trunk.state", "", t.Name, map[bool]string{true: "up", false: "down"}[up], "", "", nil)
		}
		s.metrics.trunkUp.WithLabelValues(t.Name).Set(map[bool]float64{true: 1, false: 0}[up])
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (t *Trunk) ping(ctx context.Context, c *sipgo.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 4*time.Second)
	defer cancel()
	var u sip.Uri
	sip.ParseUri("sip:"+t.Address, &u)
	req := sip.NewRequest(sip.OPTIONS, u)
	if t.Transport == "tcp" {
		req.SetTransport("TCP")
	}
	res, err := c.Do(ctx, req)
	if err != nil {
		return err
	}
	// Any answer but a server failure means the carrier is there.
	if res.StatusCode >= 500 {
		return fmt.Errorf("trunk %s: OPTIONS answered %d", t.Name, res.StatusCode)
	}
	return nil
}
