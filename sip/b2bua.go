package sip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"plateau/media"
	"plateau/policy"
)

// Decider is the policy engine as the B2BUA sees it.
type Decider interface {
	Decide(ctx context.Context, r policy.Request) policy.Decision
}

// WindowClock tells when the time window containing t closes.
type WindowClock interface {
	NextClose(t time.Time) (time.Time, bool)
}

// Recorder starts the mandatory recording of a call.
type Recorder interface {
	Ready() error
	Start(ctx context.Context, info RecordingInfo) (Recording, error)
}

// RecordingInfo identifies a recording.
type RecordingInfo struct {
	CallID     string // Plateau's call id
	LegCallIDs []string
	Operator   string
	Number     string // E.164
	Campaign   string
	Start      time.Time
}

// Recording receives a call's audio; Close finalises it (hash, index, audit).
type Recording interface {
	media.Tap
	Close(end time.Time) error
}

// CallOptions configure call control.
type CallOptions struct {
	MediaIP           netip.Addr
	Ports             *media.PortPool
	MediaMetrics      *media.Metrics
	InactivityTimeout time.Duration
	MaxCallDuration   time.Duration
	WindowWarning     time.Duration // warning tone this long before a window closes
	WindowGrace       time.Duration // calls end this long after it closes
	Notice            []int16       // recording notice, 8 kHz PCM, played to the outside party
	// Detention closes the relay's notice gate (media.WithDetention): no
	// operator audio reaches an outside party before the notice has been
	// played to that party (config site.detention_mode; a notice is then
	// required).
	Detention       bool
	CampaignNotices map[string][]int16 // a campaign's own notice, in place of Notice
	RingTimeout     time.Duration      // no answer: give up
	TrunkTimeout    time.Duration      // no provisional from a trunk: fail over
	Trunks          []TrunkConfig
	Region          string // default region of national numbers
	// NewTimer makes the timers that end a call (max duration, window
	// warning and close); nil: time.NewTimer. Tests inject a fake clock's.
	NewTimer func(d time.Duration) Timer
}

// b2bua holds the call control state; the Server owns it.
type b2bua struct {
	s       *Server
	opts    CallOptions
	policy  Decider
	windows WindowClock
	rec     Recorder
	active  *ActiveCalls
	client  *sipgo.Client
	dialogs *sipgo.DialogUA
	trunks  []*Trunk
	// trunkAddrs are the trunks' addresses, resolved once: the egress gate
	// never sends a phone's INVITE there, the registrar never binds them.
	trunkAddrs   []netip.AddrPort
	trunkAddrsOf map[*Trunk][]netip.AddrPort

	region string // for normalising inbound callers

	mu           sync.Mutex
	calls        map[string]*call  // by the Call-ID of either leg
	lastOperator map[string]string // E.164 -> operator who last reached it

	wg sync.WaitGroup // call goroutines

	monitors monitorTable // supervisors' monitor sessions (monitor.go)
}

// EnableCalls turns on call control; without it INVITEs get 503.
func (s *Server) EnableCalls(opts CallOptions, decider Decider, windows WindowClock, rec Recorder, active *ActiveCalls) error {
	if opts.Ports == nil || !opts.MediaIP.IsValid() {
		return errors.New("sip: calls need a media port pool and IP")
	}
	if decider == nil || rec == nil || active == nil {
		return errors.New("sip: calls need a policy, a recorder and the active call table")
	}
	if opts.RingTimeout == 0 {
		opts.RingTimeout = 90 * time.Second
	}
	if opts.TrunkTimeout == 0 {
		opts.TrunkTimeout = 5 * time.Second
	}
	// Send from the listening socket, so the trunk sees the port it knows
	// and in-dialog requests come back where the dialog lives.
	client, err := sipgo.NewClient(s.ua, sipgo.WithClientHostname(s.opts.ExternalAddress), sipgo.WithClientConnectionAddr(s.opts.Listen))
	if err != nil {
		return fmt.Errorf("sip client: %w", err)
	}
	client.TxRequester = clientBinding{s.ua} // but not for TCP (transport_client.go)
	_, port, _ := splitHostPort(s.opts.Listen)
	b := &b2bua{
		s: s, opts: opts, policy: decider, windows: windows, rec: rec, active: active,
		client: client,
		dialogs: &sipgo.DialogUA{Client: client, ContactHDR: sip.ContactHeader{
			Address: sip.Uri{Scheme: "sip", User: "plateau", Host: s.opts.ExternalAddress, Port: port},
		}},
		calls: map[string]*call{}, lastOperator: map[string]string{}, region: opts.Region,
	}
	b.trunkAddrsOf = map[*Trunk][]netip.AddrPort{}
	for _, tc := range opts.Trunks {
		t := newTrunk(tc)
		b.trunks = append(b.trunks, t)
		addrs := resolveTrunk(t.Address)
		b.trunkAddrsOf[t] = addrs
		b.trunkAddrs = append(b.trunkAddrs, addrs...)
	}
	s.calls = b
	s.srv.OnInvite(s.guard(b.handleInvite))
	s.srv.OnAck(s.guard(b.handleAck)) // guard: panics recovered, malformed ACKs dropped
	s.srv.OnBye(s.guard(b.handleBye))
	s.srv.OnCancel(s.guard(b.handleStrayCancel))
	s.srv.OnUpdate(s.guard(b.handleUpdate))
	s.srv.OnRefer(s.guard(b.handleRefer))
	s.srv.OnInfo(s.guard(b.handleInfo))
	return nil
}

// resolveTrunk returns the addresses of a trunk's host:port (a literal
// address, or the host's addresses now; a name that does not resolve adds
// none: the trunk's allowed_sources still count as trunk addresses).
func resolveTrunk(hostport string) []netip.AddrPort {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		host, p = hostport, "5060"
	}
	port, _ := strconv.Atoi(p)
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return []netip.AddrPort{netip.AddrPortFrom(a.Unmap(), uint16(port))}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	out := make([]netip.AddrPort, 0, len(ips))
	for _, a := range ips {
		out = append(out, netip.AddrPortFrom(a.Unmap(), uint16(port)))
	}
	return out
}

// addrsOf returns a trunk's resolved addresses.
func (b *b2bua) addrsOf(t *Trunk) []netip.Addr {
	var out []netip.Addr
	for _, ap := range b.trunkAddrsOf[t] {
		out = append(out, ap.Addr())
	}
	return out
}

// run keeps the trunks' health, and ends suspended users' calls, until ctx ends.
func (b *b2bua) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); b.watchSuspensions(ctx) }() // suspend.go
	for _, t := range b.trunks {
		wg.Add(1)
		go func() { defer wg.Done(); t.keepalive(ctx, b.client, b.s) }()
		if t.Register != nil {
			wg.Add(1)
			go func() { defer wg.Done(); b.registerTrunk(ctx, t) }()
		}
	}
	wg.Wait()
}

// shutdown hangs up every call (BYE on both legs, recordings closed) while
// the transports are still open, and waits for the calls' goroutines.
func (b *b2bua) shutdown() {
	b.endMonitors("shutdown")
	b.hangupAll("shutdown")
	b.wg.Wait()
}

func (b *b2bua) register(c *call, callIDs ...string) {
	b.mu.Lock()
	for _, id := range callIDs {
		b.calls[id] = c
	}
	b.mu.Unlock()
}

func (b *b2bua) unregister(callIDs ...string) {
	b.mu.Lock()
	for _, id := range callIDs {
		delete(b.calls, id)
	}
	b.mu.Unlock()
}

func (b *b2bua) lookup(req *sip.Request) *call {
	if req.CallID() == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls[req.CallID().Value()]
}

func (b *b2bua) hangupAll(reason string) {
	b.mu.Lock()
	cs := make([]*call, 0, len(b.calls))
	for _, c := range b.calls {
		cs = append(cs, c)
	}
	b.mu.Unlock()
	for _, c := range cs {
		c.end(reason)
	}
}

// trunkFor returns the trunk whose allowed sources contain src.
func (b *b2bua) trunkFor(src netip.Addr) *Trunk {
	for _, t := range b.trunks {
		if t.allows(src) {
			return t
		}
	}
	return nil
}
