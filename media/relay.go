package media

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"plateau/srtp"
)

// Tap receives the call's audio for the recorder: every frame the relay
// sends toward a party, as sent (see the package comment). leg names the
// recording channel: LegOperator (left) is what was sent toward the
// outside party, LegOutside (right) what was sent toward the operator.
// pkt carries the static payload type of its encoding (0 PCMU, 8 PCMA),
// the sequence number, timestamp and SSRC of the stream toward that party,
// and exactly the payload bytes sent. pkt is only valid during the call:
// implementations must copy what they keep. Calls come from several
// goroutines (the legs' readers, Play, a monitor's clock) concurrently.
type Tap interface {
	TapRTP(leg Leg, pkt *rtp.Packet, arrival time.Time) error
}

// Option configures a Relay.
type Option func(*relayConfig)

type relayConfig struct {
	tap         Tap
	metrics     *Metrics
	log         *slog.Logger
	inactivity  time.Duration
	now         func() time.Time
	latchWindow int
	onDTMF      func(l Leg, digit byte)
	detention   bool
	latch       [2]LatchMode
	rtcpEvery   time.Duration
}

// WithTap sends every frame sent toward a party to t (see Tap). A tap
// error ends the relay with an error wrapping ErrTapFailed, and the frame
// it refused is not sent.
func WithTap(t Tap) Option { return func(c *relayConfig) { c.tap = t } }

// WithMetrics reports on m (see NewMetrics); without it nothing is exported.
func WithMetrics(m *Metrics) Option { return func(c *relayConfig) { c.metrics = m } }

// WithLogger logs lifecycle events (never per packet) on log.
func WithLogger(log *slog.Logger) Option { return func(c *relayConfig) { c.log = log } }

// WithInactivityTimeout ends the relay with ErrInactive when no RTP arrives
// from either leg for d. Zero (the default) disables it.
func WithInactivityTimeout(d time.Duration) Option {
	return func(c *relayConfig) { c.inactivity = d }
}

// WithClock injects the clock used for arrival times and inactivity.
func WithClock(now func() time.Time) Option { return func(c *relayConfig) { c.now = now } }

// WithLatchWindow sets how many packets after SetRemote a LatchAny leg
// accepts a first source from (default 16). A LatchHost leg latches the
// first packet from its signalled host whenever it comes.
func WithLatchWindow(n int) Option { return func(c *relayConfig) { c.latchWindow = n } }

// WithDigits calls fn once for each RFC 4733 key a leg's peer sends, from
// the relay's reader goroutine (fn must not block), whether or not the
// event may be forwarded: this is for the audit.
func WithDigits(fn func(l Leg, digit byte)) Option { return func(c *relayConfig) { c.onDTMF = fn } }

// WithDetention closes the notice gate at start: nothing is sent toward the
// outside party (operator audio, tones, a barging supervisor) until
// PlayNotice has played the recording notice to it in full. Forgetting to
// call PlayNotice therefore fails closed: the outside party hears nothing.
func WithDetention() Option { return func(c *relayConfig) { c.detention = true } }

// WithLatch sets how leg l accepts its peer's source (default LatchHost);
// SetLatch changes it later (e.g. per trunk on failover).
func WithLatch(l Leg, m LatchMode) Option { return func(c *relayConfig) { c.latch[l&1] = m } }

// WithRTCPInterval sets the period of Plateau's own RTCP reports to each
// leg (default 5 s, RFC 3550's minimum); zero or less disables them.
func WithRTCPInterval(d time.Duration) Option { return func(c *relayConfig) { c.rtcpEvery = d } }

// LatchMode says which sources a leg's RTP is accepted from.
type LatchMode uint8

const (
	// LatchHost accepts only the host signalled in the leg's SDP (c=); the
	// port may differ (a phone's NAT or firewall), and the first packet
	// from that host latches its exact address.
	LatchHost LatchMode = iota
	// LatchAny accepts a first source from any host within the latch
	// window: a carrier behind NAT whose SDP carries a private address.
	LatchAny
)

// ParseLatchMode reads "host" or "any" (the config's trunks[].media_latch).
func ParseLatchMode(s string) (LatchMode, error) {
	switch s {
	case "", "host":
		return LatchHost, nil
	case "any":
		return LatchAny, nil
	}
	return 0, fmt.Errorf("media latch %q is not host or any", s)
}

func (m LatchMode) String() string {
	if m == LatchAny {
		return "any"
	}
	return "host"
}

// Relay anchors the media of one two-leg call: each leg has its own RTP/RTCP
// port pair, and packets from one leg's peer are sent to the other's from
// that other leg's port (symmetric RTP).
type Relay struct {
	cfg   relayConfig
	start time.Time
	legs  [2]*leg

	mu sync.Mutex // guards the per-leg signalling and stream state, and the gate
	// noticePending: detention mode and the current outside party has not
	// heard the whole notice. early: before answer (one-way media).
	noticePending bool
	early         bool
	outsideGen    uint64 // bumped by NewOutsideParty

	done      chan struct{}
	endOnce   sync.Once
	err       error
	closeOnce sync.Once
	wg        sync.WaitGroup
	lastRx    atomic.Int64 // ns since start of the last accepted packet

	mon atomic.Pointer[Monitor] // a supervisor's monitor (monitor_relay.go)
}

// maxAudioBytes bounds an accepted G.711 payload (120 ms): longer packets
// are not what a phone or carrier sends, and would not fit the buffers.
const maxAudioBytes = 960

// leg is one side. Fields after "reader-owned" are only touched by that
// leg's reader goroutine, which is how the packet path avoids allocation.
type leg struct {
	id    Leg
	ports *PortPair

	// guarded by Relay.mu
	hasRemote bool
	sdpAddr   netip.AddrPort
	srcHost   netip.Addr // the host RTP is accepted from (LatchHost)
	codec     Codec      // what we send toward this leg
	rxEnc     [128]Encoding
	dtmfPT    uint8
	dir       Direction
	latch     LatchMode
	latched   bool
	peer      netip.AddrPort
	seen      int
	rtcpPeer  netip.AddrPort
	out       outStream // the stream we send toward this leg
	rx        recvStats // the stream this leg's peer sends us
	rtcp      rtcpState
	muted     int // Plays toward this leg that mute forwarding
	mix       [FrameSamples]int16
	mixReady  bool

	// The leg's SRTP session, nil for plain RTP (srtp.go). Written under
	// Relay.mu with the address (the gate reads both there, so a frame is
	// protected as the peer it goes to expects); the readers load it
	// without the lock, to unprotect before anything else.
	srtp atomic.Pointer[srtp.Session]
	enc  srtpOut // protected packets toward this leg

	// reader-owned
	buf     [1500]byte
	pkt     rtp.Packet
	pcm     [maxAudioBytes]int16
	obuf    [12 + maxAudioBytes]byte
	tapPkt  rtp.Packet
	rtcpBuf [1500]byte
	events  eventTracker // DTMF digits reported (WithDigits)
}

// NewRelay allocates a port pair per leg from pool, bound on ip, and starts
// relaying. Packets are dropped until SetRemote names the leg.
func NewRelay(pool *PortPool, ip netip.Addr, opts ...Option) (*Relay, error) {
	cfg := relayConfig{now: time.Now, latchWindow: 16, rtcpEvery: 5 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.metrics == nil {
		cfg.metrics = NewMetrics(nil)
	}
	if cfg.log == nil {
		cfg.log = slog.New(slog.DiscardHandler)
	}
	r := &Relay{cfg: cfg, start: cfg.now(), done: make(chan struct{}), noticePending: cfg.detention}
	for i := range r.legs {
		pp, err := pool.Allocate(ip)
		if err != nil {
			for _, l := range r.legs[:i] {
				l.ports.Close()
			}
			return nil, fmt.Errorf("relay %s leg: %w", Leg(i), err)
		}
		r.legs[i] = &leg{id: Leg(i), ports: pp, latch: cfg.latch[i], out: outStream{ssrc: rand.Uint32()}}
	}
	cfg.metrics.sessions.Inc()
	r.wg.Add(4)
	for _, l := range r.legs {
		go r.readRTP(l)
		go r.readRTCP(l)
	}
	if cfg.inactivity > 0 || cfg.rtcpEvery > 0 {
		r.wg.Add(1)
		go r.housekeeping()
	}
	return r, nil
}

// LocalPort is the RTP port to put in the SDP we send to leg's peer.
func (r *Relay) LocalPort(l Leg) int { return r.legs[l&1].ports.Port }

// SetRemote applies the address and codec negotiated with leg's peer: codec
// is what we send it and the only audio accepted from it (SetRemoteSDP
// accepts every G.711 codec the peer listed). Call it again on every
// re-INVITE: the new address takes effect at once and latching starts
// over, because a peer that moves its media (transfer, failover, resume
// from hold) sends from a new source. It resets the direction to sendrecv;
// an unspecified address (c=0.0.0.0) means hold, and keeps accepting the
// host already known.
func (r *Relay) SetRemote(l Leg, addr netip.AddrPort, codec Codec, dtmfPT uint8) error {
	return r.setRemoteSec(l, addr, []Codec{codec}, codec, dtmfPT, nil, false)
}

// setRemoteSec applies a peer's address and codecs and, with setSec, its
// SRTP session, under one lock (srtp.go).
func (r *Relay) setRemoteSec(l Leg, addr netip.AddrPort, rx []Codec, codec Codec, dtmfPT uint8, sec *srtp.Session, setSec bool) error {
	if l > LegOutside {
		return fmt.Errorf("media: invalid leg %d", l)
	}
	if codec.Encoding != PCMU && codec.Encoding != PCMA || codec.PayloadType > 127 {
		return fmt.Errorf("%w: codec %v", ErrNoCommonCodec, codec)
	}
	if dtmfPT > 127 || dtmfPT != 0 && dtmfPT == codec.PayloadType {
		return fmt.Errorf("%w: telephone-event payload type %d", ErrInvalidSDP, dtmfPT)
	}
	lg := r.legs[l]
	r.mu.Lock()
	defer r.mu.Unlock()
	if setSec {
		lg.srtp.Store(sec)
	}
	lg.hasRemote = true
	lg.sdpAddr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	if a := lg.sdpAddr.Addr(); a.IsValid() && !a.IsUnspecified() {
		lg.srcHost = a
	}
	lg.codec = codec
	clear(lg.rxEnc[:])
	for _, c := range rx {
		if c.PayloadType < 128 && (c.Encoding == PCMU || c.Encoding == PCMA) && (dtmfPT == 0 || c.PayloadType != dtmfPT) {
			lg.rxEnc[c.PayloadType] = c.Encoding
		}
	}
	lg.rxEnc[codec.PayloadType] = codec.Encoding
	lg.dtmfPT = dtmfPT
	lg.dir = SendRecv
	if lg.sdpAddr.Addr().IsUnspecified() && lg.latched {
		// Hold by c=0.0.0.0: the peer may still send (music on hold)
		// from where it did; keep that source.
		lg.seen = 0
		return nil
	}
	lg.latched = false
	lg.peer = netip.AddrPort{}
	lg.rtcpPeer = netip.AddrPort{}
	lg.seen = 0
	return nil
}

// SetDirection applies the direction from leg's peer's SDP: sendonly or
// inactive (hold) stops forwarding toward that leg; sendrecv resumes.
func (r *Relay) SetDirection(l Leg, d Direction) {
	r.mu.Lock()
	r.legs[l&1].dir = d
	r.mu.Unlock()
}

// SetLatch changes how leg l accepts its peer's source from the next
// SetRemote on (the call layer sets it from the trunk's media_latch).
func (r *Relay) SetLatch(l Leg, m LatchMode) {
	r.mu.Lock()
	r.legs[l&1].latch = m
	r.mu.Unlock()
}

// SetRemoteSDP is SetRemote then SetDirection from a parsed SDP; every
// G.711 codec the peer listed is accepted from it, codec is what we send.
func (r *Relay) SetRemoteSDP(l Leg, remote Remote, codec Codec) error {
	if err := r.setRemoteSec(l, remote.Addr, remote.Codecs, codec, remote.DTMFPT, nil, false); err != nil {
		return err
	}
	r.SetDirection(l, remote.Direction)
	return nil
}

// LegStats are receiver statistics of what a leg's peer sent us, computed
// from the RTP itself (RFC 3550 A.3 and A.8).
type LegStats struct {
	Packets  uint64         // accepted RTP packets
	Bytes    uint64         // accepted RTP payload bytes
	Lost     int64          // expected minus received (may go negative on duplicates)
	Jitter   time.Duration  // interarrival jitter
	Dropped  uint64         // packets from an unknown source
	Restarts uint64         // sequence restarts on the same SSRC
	Source   netip.AddrPort // the latched source, if any
}

// Stats returns leg's receiver statistics so far.
func (r *Relay) Stats(l Leg) LegStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	lg := r.legs[l&1]
	return LegStats{
		Packets:  lg.rx.received,
		Bytes:    lg.rx.bytes,
		Lost:     lg.rx.lost(),
		Jitter:   time.Duration(lg.rx.jitter / SampleRate * float64(time.Second)),
		Dropped:  lg.rx.dropped,
		Restarts: lg.rx.restarts,
		Source:   lg.peer,
	}
}

// Done is closed when media ends: Close, inactivity, tap failure.
func (r *Relay) Done() <-chan struct{} { return r.done }

// Err says why media ended: nil while running, ErrClosed after Close, or
// ErrInactive / an ErrTapFailed wrap.
func (r *Relay) Err() error {
	select {
	case <-r.done:
		return r.err
	default:
		return nil
	}
}

// end stops the media with err, once. It closes the sockets so readers
// return, but does not wait for them (it may run on a reader goroutine).
func (r *Relay) end(err error) {
	r.endOnce.Do(func() {
		r.err = err
		close(r.done)
		for _, l := range r.legs {
			l.ports.RTP.Close()
			l.ports.RTCP.Close()
		}
		if !errors.Is(err, ErrClosed) {
			r.cfg.log.Warn("media ended", "err", err)
		}
	})
}

// Close stops the relay, waits for its goroutines and returns its ports to
// the pool to drain. Safe to call more than once and after the relay ended.
func (r *Relay) Close() error {
	r.closeOnce.Do(func() {
		if m := r.mon.Load(); m != nil {
			r.DetachMonitor(m)
		}
		r.end(ErrClosed)
		r.wg.Wait()
		for _, l := range r.legs {
			if l.rx.received > 1 {
				r.cfg.metrics.jitter.Observe(l.rx.jitter / SampleRate)
			}
			l.ports.Close()
		}
		r.cfg.metrics.sessions.Dec()
	})
	return nil
}

func (r *Relay) readRTP(l *leg) {
	defer r.wg.Done()
	for {
		n, from, err := l.ports.RTP.ReadFromUDPAddrPort(l.buf[:])
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // transient (e.g. ICMP-induced) errors must not kill the call
		}
		r.handleRTP(l, n, from, r.cfg.now())
	}
}

// housekeeping runs the inactivity check and the RTCP reports on one
// goroutine per relay.
func (r *Relay) housekeeping() {
	defer r.wg.Done()
	// One wake-up every few seconds per call: fine-grained enough for
	// both jobs, cheap at hundreds of calls.
	tick := time.Duration(1<<63 - 1)
	if r.cfg.inactivity > 0 {
		tick = min(tick, max(r.cfg.inactivity/4, 5*time.Millisecond))
	}
	if r.cfg.rtcpEvery > 0 {
		tick = min(tick, max(r.cfg.rtcpEvery/2, 5*time.Millisecond))
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	var nextReport time.Time
	for {
		select {
		case <-r.done:
			return
		case <-t.C:
			now := r.cfg.now()
			if r.cfg.inactivity > 0 {
				idle := now.Sub(r.start) - time.Duration(r.lastRx.Load())
				if idle >= r.cfg.inactivity {
					r.end(fmt.Errorf("%w: no RTP for %v", ErrInactive, idle.Round(time.Millisecond)))
					return
				}
			}
			if r.cfg.rtcpEvery > 0 && !now.Before(nextReport) {
				r.sendReports(now)
				// RFC 3550 6.2: randomise the interval (0.5-1.5×) so the
				// reports of many calls do not synchronise.
				nextReport = now.Add(r.cfg.rtcpEvery/2 + rand.N(r.cfg.rtcpEvery))
			}
		}
	}
}
