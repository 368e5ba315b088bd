package sip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
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
	WindowWarning     time.Duration      // warning tone this long before a window closes
	WindowGrace       time.Duration      // calls end this long after it closes
	Notice            []int16            // recording notice, 8 kHz PCM, played to the outside party
	CampaignNotices   map[string][]int16 // a campaign's own notice, in place of Notice
	RingTimeout       time.Duration      // no answer: give up
	TrunkTimeout      time.Duration      // no provisional from a trunk: fail over
	Trunks            []TrunkConfig
	Region            string // default region of national numbers
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
	_, port, _ := splitHostPort(s.opts.Listen)
	b := &b2bua{
		s: s, opts: opts, policy: decider, windows: windows, rec: rec, active: active,
		client: client,
		dialogs: &sipgo.DialogUA{Client: client, ContactHDR: sip.ContactHeader{
			Address: sip.Uri{Scheme: "sip", User: "plateau", Host: s.opts.ExternalAddress, Port: port},
		}},
		calls: map[string]*call{}, lastOperator: map[string]string{}, region: opts.Region,
	}
	for _, tc := range opts.Trunks {
		b.trunks = append(b.trunks, newTrunk(tc))
	}
	s.calls = b
	s.srv.OnInvite(s.guard(b.handleInvite))
	s.srv.OnAck(b.handleAck)
	s.srv.OnBye(s.guard(b.handleBye))
	s.srv.OnCancel(s.guard(b.handleStrayCancel))
	s.srv.OnUpdate(s.guard(b.handleUpdate))
	s.srv.OnRefer(s.guard(b.handleRefer))
	s.srv.OnInfo(s.guard(b.handleInfo))
	return nil
}

// run keeps the trunks' health until ctx ends.
func (b *b2bua) run(ctx context.Context) {
	var wg sync.WaitGroup
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

// admit reserves the operator's slot, then asks the policy with the
// reservation counted: simultaneous requests cannot all pass a limit (at
// worst both are refused), and no lock is held across the policy's
// lookups. A refusal releases the slot.
func (b *b2bua) admit(r policy.Request) policy.Decision {
	b.active.add(r.Operator)
	r.Reserved = true
	d := b.policy.Decide(b.s.ctx, r)
	if !d.Allow {
		b.active.remove(r.Operator)
	}
	return d
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
