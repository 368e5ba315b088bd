package sip

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"plateau/media"
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
	// SRTP is the trunk leg's media protection (trunks[].srtp, SDES).
	SRTP media.SRTPMode
	// MediaLatch is which sources the trunk's RTP is accepted from
	// (trunks[].media_latch): its SDP's host, or any first source for a
	// carrier behind NAT.
	MediaLatch media.LatchMode
	// TLS verifies the carrier of a TLS trunk (trunks[].tls, built with
	// certs.ClientConfig: its roots, server name and client certificate);
	// nil for UDP and TCP trunks.
	TLS *tls.Config
}

// Trunk is a carrier connection with its health state.
type Trunk struct {
	TrunkConfig
	up         atomic.Bool // what calls go by
	registered atomic.Bool // registration trunks only (trunkreg.go)

	// sleep waits d between probes (false: ctx ended); tests replace it.
	sleep func(ctx context.Context, d time.Duration) bool

	mu     sync.Mutex
	status TrunkStatus
}

// Trunk states, as /readyz shows them.
const (
	TrunkStarting    = "starting"    // no OPTIONS answered yet; calls are tried
	TrunkUp          = "up"          // the last OPTIONS was answered
	TrunkDown        = "down"        // the last OPTIONS failed; calls skip it
	TrunkUnmonitored = "unmonitored" // options_interval 0s: assumed up
)

// TrunkStatus is a trunk's health as last probed.
type TrunkStatus struct {
	Name    string
	State   string
	Since   time.Time // when State began (zero while starting)
	LastErr string    // why the last probe failed, "" after a success
}

func newTrunk(c TrunkConfig) *Trunk {
	t := &Trunk{TrunkConfig: c, sleep: sleepCtx}
	t.up.Store(true) // optimistic until the first OPTIONS says otherwise
	t.status = TrunkStatus{Name: c.Name, State: TrunkStarting}
	if c.OptionsInterval <= 0 {
		t.status.State = TrunkUnmonitored
	}
	return t
}

// Up reports the trunk's last known health.
func (t *Trunk) Up() bool { return t.up.Load() && t.registrationUp() }

// Status reports the trunk's state for /readyz.
func (t *Trunk) Status() TrunkStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.status
}

// String is the status as /readyz shows it, e.g. "trunk carrier1: down
// since 2026-12-05T08:00:00Z (OPTIONS answered 503)".
func (st TrunkStatus) String() string {
	s := "trunk " + st.Name + ": " + st.State
	if !st.Since.IsZero() {
		s += " since " + st.Since.UTC().Format(time.RFC3339)
	}
	if st.LastErr != "" {
		s += " (" + st.LastErr + ")"
	}
	return s
}

// TrunkStatus reports every trunk's state, in configuration order (none
// before EnableCalls).
func (s *Server) TrunkStatus() []TrunkStatus {
	if s.calls == nil {
		return nil
	}
	out := make([]TrunkStatus, len(s.trunks))
	for i, t := range s.trunks {
		out[i] = t.Status()
	}
	return out
}

// Allows reports whether src may send us calls over this trunk.
func (t *Trunk) Allows(src netip.Addr) bool {
	for _, p := range t.AllowedSources {
		if p.Contains(src) {
			return true
		}
	}
	return false
}

// URI builds the Request-URI for an E.164 number in the trunk's format.
func (t *Trunk) URI(e164 string) sip.Uri {
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
	if t.Transport == "tcp" || t.Transport == "tls" {
		// RFC 3261 §26.2.2: a sip: URI with transport=tls, not sips:, which
		// would demand TLS on every hop beyond the carrier too.
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", t.Transport)
	}
	return u
}

// keepalive sends OPTIONS and marks the trunk up or down: every interval
// while it answers, and after a failure again soon, backing off (0.5 s,
// 1 s, 2 s … up to the interval), so that a probe lost at start or a short
// outage does not keep calls off the trunk for a whole interval. It sends
// nothing before the UDP transports are served (see servingGate).
func (t *Trunk) keepalive(ctx context.Context, c *sipgo.Client, s *Server) {
	if t.OptionsInterval <= 0 {
		return
	}
	if s.serving.wait(ctx) != nil {
		return
	}
	failures := 0
	for {
		err := t.ping(ctx, c)
		if ctx.Err() != nil {
			return // shutting down: says nothing about the carrier
		}
		t.record(ctx, s, err)
		wait := t.OptionsInterval
		if err != nil {
			wait = retryDelay(failures, t.OptionsInterval)
			failures++
			s.log.Debug("trunk probe failed", "trunk", t.Name, "failures", failures, "retry_in", wait, "err", err)
		} else {
			failures = 0
		}
		if !t.sleep(ctx, wait) {
			return
		}
	}
}

// First retry delay after a failed probe; it doubles up to the interval.
const firstRetry = 500 * time.Millisecond

// retryDelay is the wait after the (failures+1)th failed probe in a row.
func retryDelay(failures int, interval time.Duration) time.Duration {
	d := firstRetry
	for range failures {
		if d >= interval {
			break
		}
		d *= 2
	}
	return min(d, interval)
}

// record applies a probe's outcome: the state calls go by, the status,
// the metric, and a log line and an audit entry when the state changes.
func (t *Trunk) record(ctx context.Context, s *Server, err error) {
	up := err == nil
	state, reason := TrunkUp, ""
	if !up {
		state, reason = TrunkDown, err.Error()
	}
	t.up.Store(up)
	t.mu.Lock()
	was := t.status.State
	if was != state {
		t.status.State, t.status.Since = state, s.now()
	}
	t.status.LastErr = reason
	t.mu.Unlock()
	s.metrics.trunkUp.WithLabelValues(t.Name).Set(map[bool]float64{true: 1, false: 0}[up])
	if was == state {
		return
	}
	if up {
		s.log.Info("trunk state changed", "trunk", t.Name, "state", state, "was", was)
	} else {
		s.log.Warn("trunk state changed", "trunk", t.Name, "state", state, "was", was, "err", err)
	}
	// The first answer at start is no change for the audit: calls were
	// already going to the trunk.
	if was != TrunkStarting || !up {
		s.audit.Audit(ctx, "trunk.state", "", t.Name, state, reason, "", nil)
	}
}

// sipTransport is the trunk's transport as sipgo names it.
func (t *Trunk) sipTransport() string {
	switch t.Transport {
	case "tcp":
		return "TCP"
	case "tls":
		return "TLS"
	}
	return "UDP"
}

// SignallingTLS reports whether the trunk's signalling goes over TLS
// (what SDES-SRTP needs for its keys to stay secret).
func (t *Trunk) SignallingTLS() bool { return t.Transport == "tls" && t.TLS != nil }

func sleepCtx(ctx context.Context, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

func (t *Trunk) ping(ctx context.Context, c *sipgo.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 4*time.Second)
	defer cancel()
	var u sip.Uri
	sip.ParseUri("sip:"+t.Address, &u)
	req := sip.NewRequest(sip.OPTIONS, u)
	if tp := t.sipTransport(); tp != "UDP" {
		req.SetTransport(tp)
	}
	res, err := c.Do(ctx, req)
	if err != nil {
		return err
	}
	// Any answer but a server failure means the carrier is there.
	if res.StatusCode >= 500 {
		return fmt.Errorf("OPTIONS answered %d", res.StatusCode)
	}
	return nil
}
