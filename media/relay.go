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
)

// Tap receives a copy of the call's audio for the recorder. It is called for
// every accepted RTP packet received on each leg and for every packet the
// relay injects (Play). pkt and its payload are only valid during the call:
// implementations must copy what they keep. Calls for the two legs and for
// Play come from different goroutines concurrently.
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
}

// WithTap sends every accepted and injected RTP packet to t. A tap error
// ends the relay with an error wrapping ErrTapFailed.
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

// WithLatchWindow sets how many packets after SetRemote may teach the relay
// a peer's source address (default 16): long enough for a NATed phone whose
// SDP address is private, short enough that a stray sender cannot take over
// an established stream.
func WithLatchWindow(n int) Option { return func(c *relayConfig) { c.latchWindow = n } }

// WithDigits calls fn once for each RFC 4733 key a leg's peer sends, from
// the relay's reader goroutine (fn must not block). The events are
// forwarded as usual; this is for the audit.
func WithDigits(fn func(l Leg, digit byte)) Option { return func(c *relayConfig) { c.onDTMF = fn } }

// Relay anchors the media of one two-leg call: each leg has its own RTP/RTCP
// port pair, and packets from one leg's peer are sent to the other's from
// that other leg's port (symmetric RTP).
type Relay struct {
	cfg   relayConfig
	start time.Time
	legs  [2]*leg

	mu sync.Mutex // guards the per-leg signalling and stream state

	done      chan struct{}
	endOnce   sync.Once
	err       error
	closeOnce sync.Once
	wg        sync.WaitGroup
	lastRx    atomic.Int64 // ns since start of the last accepted packet

	mon monitorHook // a supervisor's monitor (monitor_relay.go)
}

// leg is one side. Fields after "reader-owned" are only touched by that
// leg's reader goroutine, which is how the packet path avoids allocation.
type leg struct {
	id    Leg
	ports *PortPair

	// guarded by Relay.mu
	hasRemote bool
	sdpAddr   netip.AddrPort
	codec     Codec
	dtmfPT    uint8
	dir       Direction
	latched   bool
	peer      netip.AddrPort
	seen      int
	rtcpPeer  netip.AddrPort
	out       outStream // the stream we send toward this leg
	rx        recvStats // the stream this leg's peer sends us
	muted     int       // Plays toward this leg that mute forwarding
	mix       [FrameSamples]int16
	mixReady  bool

	// reader-owned
	buf        [1500]byte
	pkt        rtp.Packet
	pcm        [1500]int16
	rtcpBuf    [1500]byte
	monScratch monitorScratch
	events     eventTracker // DTMF digits reported (WithDigits)
}

// NewRelay allocates a port pair per leg from pool, bound on ip, and starts
// relaying. Packets are dropped until SetRemote names the other leg.
func NewRelay(pool *PortPool, ip netip.Addr, opts ...Option) (*Relay, error) {
	cfg := relayConfig{now: time.Now, latchWindow: 16}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.metrics == nil {
		cfg.metrics = NewMetrics(nil)
	}
	if cfg.log == nil {
		cfg.log = slog.New(slog.DiscardHandler)
	}
	r := &Relay{cfg: cfg, start: cfg.now(), done: make(chan struct{})}
	for i := range r.legs {
		pp, err := pool.Allocate(ip)
		if err != nil {
			for _, l := range r.legs[:i] {
				l.ports.Close()
			}
			return nil, fmt.Errorf("relay %s leg: %w", Leg(i), err)
		}
		r.legs[i] = &leg{id: Leg(i), ports: pp, out: outStream{ssrc: rand.Uint32()}}
	}
	cfg.metrics.sessions.Inc()
	r.wg.Add(4)
	for _, l := range r.legs {
		go r.readRTP(l)
		go r.readRTCP(l)
	}
	if cfg.inactivity > 0 {
		r.wg.Add(1)
		go r.watchInactivity()
	}
	return r, nil
}

// LocalPort is the RTP port to put in the SDP we send to leg's peer.
func (r *Relay) LocalPort(l Leg) int { return r.legs[l&1].ports.Port }

// SetRemote applies the address and codec negotiated with leg's peer. Call it
// again on every re-INVITE: the new address takes effect at once and
// latching starts over, because a peer that moves its media (transfer,
// failover, resume from hold) sends from a new source. It resets the
// direction to sendrecv; an unspecified address (c=0.0.0.0) means hold.
func (r *Relay) SetRemote(l Leg, addr netip.AddrPort, codec Codec, dtmfPT uint8) error {
	if l > LegOutside {
		return fmt.Errorf("media: invalid leg %d", l)
	}
	if codec.Encoding != PCMU && codec.Encoding != PCMA {
		return fmt.Errorf("%w: codec %v", ErrNoCommonCodec, codec)
	}
	lg := r.legs[l]
	r.mu.Lock()
	defer r.mu.Unlock()
	lg.hasRemote = true
	lg.sdpAddr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	lg.codec = codec
	lg.dtmfPT = dtmfPT
	lg.dir = SendRecv
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

// SetRemoteSDP is SetRemote then SetDirection from a parsed SDP.
func (r *Relay) SetRemoteSDP(l Leg, remote Remote, codec Codec) error {
	if err := r.SetRemote(l, remote.Addr, codec, remote.DTMFPT); err != nil {
		return err
	}
	r.SetDirection(l, remote.Direction)
	return nil
}

// LegStats are receiver statistics of what a leg's peer sent us, computed
// from the RTP itself (RFC 3550 A.3 and A.8).
type LegStats struct {
	Packets uint64         // accepted RTP packets
	Bytes   uint64         // accepted RTP payload bytes
	Lost    int64          // expected minus received (may go negative on duplicates)
	Jitter  time.Duration  // interarrival jitter
	Dropped uint64         // packets from an unknown source
	Source  netip.AddrPort // the latched source, if any
}

// Stats returns leg's receiver statistics so far.
func (r *Relay) Stats(l Leg) LegStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	lg := r.legs[l&1]
	return LegStats{
		Packets: lg.rx.received,
		Bytes:   lg.rx.bytes,
		Lost:    lg.rx.lost(),
		Jitter:  time.Duration(lg.rx.jitter / SampleRate * float64(time.Second)),
		Dropped: lg.rx.dropped,
		Source:  lg.peer,
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

func (r *Relay) readRTCP(l *leg) {
	defer r.wg.Done()
	d := r.legs[l.id.Other()]
	for {
		n, from, err := l.ports.RTCP.ReadFromUDPAddrPort(l.rtcpBuf[:])
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		r.mu.Lock()
		// RTCP comes from the same host as the RTP (usually port+1, but
		// NATs rewrite ports), so the host is what we check.
		want := l.sdpAddr.Addr()
		if l.latched {
			want = l.peer.Addr()
		}
		if from.Addr() != want {
			r.mu.Unlock()
			r.cfg.metrics.dropUnknownSrc.Inc()
			continue
		}
		l.rtcpPeer = from
		dest, ok := d.rtcpDest()
		r.mu.Unlock()
		if ok {
			d.ports.RTCP.WriteToUDPAddrPort(l.rtcpBuf[:n], dest)
		}
	}
}

func (r *Relay) watchInactivity() {
	defer r.wg.Done()
	tick := max(r.cfg.inactivity/4, 5*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-t.C:
			idle := r.cfg.now().Sub(r.start) - time.Duration(r.lastRx.Load())
			if idle >= r.cfg.inactivity {
				r.end(fmt.Errorf("%w: no RTP for %v", ErrInactive, idle.Round(time.Millisecond)))
				return
			}
		}
	}
}
