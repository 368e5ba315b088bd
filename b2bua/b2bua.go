package b2bua

import (
	"context"
	"errors"

	"net/netip"

	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"plateau/media"
	"plateau/policy"
	psip "plateau/sip"
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
	Trunks          []psip.TrunkConfig
	Region          string // default region of national numbers
	// MinSessionExpires is the shortest session timer interval Plateau
	// runs on any leg (sip.min_session_expires); 0: 90 s (RFC 4028).
	MinSessionExpires time.Duration
	// NewTimer makes the timers that end a call (max duration, window
	// warning and close); nil: time.NewTimer. Tests inject a fake clock's.
	NewTimer func(d time.Duration) Timer
	// SDESWithoutTLS lets SDES keys travel over a trunk's UDP or TCP
	// signalling. Tests only: check-config never allows it, and without it
	// Plateau neither offers nor answers keys outside TLS (srtp.go).
	SDESWithoutTLS bool
}

// B2BUA is the call layer: the one call pipeline, the egress gate, legs,
// in-dialog requests, transfers and live monitoring. It runs on the
// signalling layer (package sip), which keeps every request it handles
// behind the server's guard.
type B2BUA struct {
	s       *psip.Server
	opts    CallOptions
	policy  Decider
	windows WindowClock
	rec     Recorder
	active  *ActiveCalls
	metrics *metrics
	client  *sipgo.Client
	dialogs *sipgo.DialogUA
	trunks  []*psip.Trunk

	region string // for normalising inbound callers

	mu           sync.Mutex
	calls        map[string]*call  // by the Call-ID of either leg
	lastOperator map[string]string // E.164 -> operator who last reached it

	wg sync.WaitGroup // call goroutines

	monitors monitorTable // supervisors' monitor sessions (monitor.go)
}

// New turns on call control on s (without it INVITEs get 503); its
// metrics go to promReg.
func New(s *psip.Server, opts CallOptions, decider Decider, windows WindowClock, rec Recorder, active *ActiveCalls, promReg prometheus.Registerer) (*B2BUA, error) {
	if opts.Ports == nil || !opts.MediaIP.IsValid() {
		return nil, errors.New("b2bua: calls need a media port pool and IP")
	}
	if decider == nil || rec == nil || active == nil {
		return nil, errors.New("b2bua: calls need a policy, a recorder and the active call table")
	}
	if opts.RingTimeout == 0 {
		opts.RingTimeout = 90 * time.Second
	}
	if opts.TrunkTimeout == 0 {
		opts.TrunkTimeout = 5 * time.Second
	}
	if opts.MinSessionExpires <= 0 {
		opts.MinSessionExpires = minSE
	}
	b := &B2BUA{
		s: s, opts: opts, policy: decider, windows: windows, rec: rec, active: active,
		metrics: newMetrics(promReg),
		calls:   map[string]*call{}, lastOperator: map[string]string{}, region: opts.Region,
	}
	if err := s.EnableCalls(b, opts.Trunks); err != nil {
		return nil, err
	}
	b.client, b.dialogs, b.trunks = s.Client(), s.DialogUA(), s.Trunks()
	s.Handle(sip.INVITE, b.handleInvite)
	s.Handle(sip.ACK, b.handleAck)
	s.Handle(sip.BYE, b.handleBye)
	s.Handle(sip.CANCEL, b.handleStrayCancel)
	s.Handle(sip.UPDATE, b.handleUpdate)
	s.Handle(sip.REFER, b.handleRefer)
	s.Handle(sip.INFO, b.handleInfo)
	return b, nil
}

// Run ends suspended users' calls until ctx ends (suspend.go).
func (b *B2BUA) Run(ctx context.Context) { b.watchSuspensions(ctx) }

// MediaIP is the address calls' RTP is anchored on.
func (b *B2BUA) MediaIP() netip.Addr { return b.opts.MediaIP }

// ActiveCalls returns the number of calls in progress.
func (b *B2BUA) ActiveCalls() int { return b.active.Site() }

// Shutdown hangs up every call (BYE on both legs, recordings closed) while
// the transports are still open, and waits for the calls' goroutines; the
// server calls it when Serve ends.
func (b *B2BUA) Shutdown() {
	b.endMonitors("shutdown")
	b.hangupAll("shutdown")
	b.wg.Wait()
}

// addrsOf returns a trunk's resolved addresses.
func (b *B2BUA) addrsOf(t *psip.Trunk) []netip.Addr { return b.s.TrunkAddrs(t) }

// isTrunkAddr reports whether a phone destination a:port is a trunk's.
func (b *B2BUA) isTrunkAddr(a netip.Addr, port uint16) bool { return b.s.IsTrunkAddr(a, port) }

// trunkFor returns the trunk whose allowed sources contain src.
func (b *B2BUA) trunkFor(src netip.Addr) *psip.Trunk { return b.s.TrunkFor(src) }

// trunkForRequest picks the trunk of an out-of-dialog INVITE from src.
func (b *B2BUA) trunkForRequest(req *sip.Request, src netip.Addr) *psip.Trunk {
	return b.s.TrunkForRequest(req, src)
}

func (b *B2BUA) register(c *call, callIDs ...string) {
	b.mu.Lock()
	for _, id := range callIDs {
		b.calls[id] = c
	}
	b.mu.Unlock()
}

func (b *B2BUA) unregister(callIDs ...string) {
	b.mu.Lock()
	for _, id := range callIDs {
		delete(b.calls, id)
	}
	b.mu.Unlock()
}

func (b *B2BUA) lookup(req *sip.Request) *call {
	if req.CallID() == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls[req.CallID().Value()]
}

func (b *B2BUA) hangupAll(reason string) {
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
