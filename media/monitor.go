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

// Monitor is a supervisor's media leg on an operator's call: its own RTP
// port toward the supervisor's phone, a Mixer fed by the call's decoded
// audio (Relay.AttachMonitor) and by the supervisor's RTP, and a 20 ms
// frame clock that sends the supervisor their mix and, toward each party
// that hears the supervisor in the mode (MixMatrix), that party's whole
// frame through the relay, recorded as sent.
//
// A Monitor outlives relays: Detach leaves it waiting (silence) for the
// operator's next call, Attach joins another.
type Monitor struct {
	pp    *PortPair
	log   *slog.Logger
	mixer *Mixer
	mode  atomic.Uint32
	dtmf  func(digit byte)

	mu        sync.Mutex
	relay     *Relay
	hasRemote bool
	remote    netip.AddrPort
	codec     Codec
	dtmfPT    uint8
	events    eventTracker // the supervisor's DTMF

	ssrc uint32
	seq  uint16
	ts   uint32

	reported uint64 // the mixer's re-anchors counted in the metric (frame clock only)

	done      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// MonitorOption configures a Monitor.
type MonitorOption func(*Monitor)

// WithDTMF calls fn (on the monitor's reader goroutine) for each RFC 4733
// digit the supervisor's phone sends, once per key press.
func WithDTMF(fn func(digit byte)) MonitorOption { return func(m *Monitor) { m.dtmf = fn } }

// WithMonitorLogger logs lifecycle events on log.
func WithMonitorLogger(log *slog.Logger) MonitorOption { return func(m *Monitor) { m.log = log } }

// NewMonitor allocates the supervisor's port pair from pool on ip and
// starts the frame clock in mode.
func NewMonitor(pool *PortPool, ip netip.Addr, mode MonitorMode, opts ...MonitorOption) (*Monitor, error) {
	pp, err := pool.Allocate(ip)
	if err != nil {
		return nil, fmt.Errorf("monitor: %w", err)
	}
	m := &Monitor{
		pp: pp, log: slog.New(slog.DiscardHandler), mixer: NewMixer(), done: make(chan struct{}),
		ssrc: rand.Uint32(), seq: rand.N[uint16](1 << 15), ts: rand.Uint32(),
	}
	m.mode.Store(uint32(mode))
	for _, o := range opts {
		o(m)
	}
	m.wg.Add(2)
	go m.read()
	go m.clock()
	return m, nil
}

// LocalPort is the RTP port to put in the SDP toward the supervisor.
func (m *Monitor) LocalPort() int { return m.pp.Port }

// SetRemote applies the supervisor's SDP.
func (m *Monitor) SetRemote(addr netip.AddrPort, codec Codec, dtmfPT uint8) error {
	if codec.Encoding != PCMU && codec.Encoding != PCMA {
		return fmt.Errorf("%w: codec %v", ErrNoCommonCodec, codec)
	}
	m.mu.Lock()
	m.hasRemote = true
	m.remote = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	m.codec, m.dtmfPT = codec, dtmfPT
	m.mu.Unlock()
	return nil
}

// Mode is the current mode.
func (m *Monitor) Mode() MonitorMode { return MonitorMode(m.mode.Load()) }

// SetMode switches mode at the next frame.
func (m *Monitor) SetMode(mode MonitorMode) {
	if mode < numModes {
		m.mode.Store(uint32(mode))
	}
}

// Attach joins r's call (see Relay.AttachMonitor), leaving any other.
func (m *Monitor) Attach(r *Relay) error {
	m.Detach()
	m.mixer.Reset(InOperator)
	m.mixer.Reset(InCustomer)
	if err := r.AttachMonitor(m); err != nil {
		return err
	}
	m.mu.Lock()
	m.relay = r
	m.mu.Unlock()
	return nil
}

// Detach leaves the current call, if any.
func (m *Monitor) Detach() {
	m.mu.Lock()
	r := m.relay
	m.relay = nil
	m.mu.Unlock()
	if r != nil {
		r.DetachMonitor(m)
	}
}

// feed gives the mixer a party's decoded audio (from the relay's reader).
func (m *Monitor) feed(in MixInput, ssrc, ts uint32, pcm []int16) {
	m.mixer.WritePCM(in, ssrc, ts, pcm)
}

// owns reports whether the supervisor is heard toward leg d in the
// current mode: then the monitor's clock, not the packet path, sends d
// its frames (the mix of the other party and the supervisor).
func (m *Monitor) owns(d Leg) bool {
	return MixMatrix[m.Mode()%numModes][hearOut(d)][InSupervisor]
}

// Close stops the monitor, leaves its call and releases its ports.
func (m *Monitor) Close() error {
	m.closeOnce.Do(func() {
		m.Detach()
		close(m.done)
		m.pp.Close()
		m.wg.Wait()
	})
	return nil
}

// read takes the supervisor's RTP: voice into the mixer, DTMF to fn.
func (m *Monitor) read() {
	defer m.wg.Done()
	var (
		buf [1500]byte
		pkt rtp.Packet
	)
	for {
		n, from, err := m.pp.RTP.ReadFromUDPAddrPort(buf[:])
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if pkt.Unmarshal(buf[:n]) != nil || pkt.Version != 2 {
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		m.mu.Lock()
		// Only the supervisor's phone (the host in its SDP) is heard.
		ok := m.hasRemote && from.Addr() == m.remote.Addr()
		codec, dtmfPT := m.codec, m.dtmfPT
		var digit byte
		if ok && dtmfPT != 0 && pkt.PayloadType == dtmfPT {
			digit = m.events.digit(&pkt)
			ok = false
		}
		m.mu.Unlock()
		if digit != 0 && m.dtmf != nil {
			m.dtmf(digit)
		}
		if !ok {
			continue
		}
		switch {
		case pkt.PayloadType == codec.PayloadType:
			m.mixer.Write(InSupervisor, codec.Encoding, &pkt)
		case pkt.PayloadType == 0:
			m.mixer.Write(InSupervisor, PCMU, &pkt)
		case pkt.PayloadType == 8:
			m.mixer.Write(InSupervisor, PCMA, &pkt)
		}
	}
}

// clock runs the 20 ms frame loop. A ticker drops the ticks its reader
// missed, so on a starved host the supervisor would hear gaps: each tick
// runs every frame due since the start (see framesDue).
func (m *Monitor) clock() {
	defer m.wg.Done()
	start := time.Now() // before the ticker: its kth tick is never before start + k·ptime
	t := time.NewTicker(ptime)
	defer t.Stop()
	var f monitorFrame
	var done int64
	for {
		select {
		case <-m.done:
			return
		case <-t.C:
			run, skip := framesDue(time.Since(start), done)
			if skip > 0 {
				m.mu.Lock()
				m.ts += uint32(skip) * FrameSamples // the gap shows in the timestamps
				m.mu.Unlock()
			}
			for range run {
				m.frame(&f)
			}
			done += run + skip
		}
	}
}

// maxCatchUp bounds the frames run back to back after a stall (100 ms):
// more would only fill the phone's jitter buffer; older ones are skipped.
const maxCatchUp = 5

// framesDue says how many frames to run now, elapsed after the start with
// done frames run or skipped so far, and how many to skip first.
func framesDue(elapsed time.Duration, done int64) (run, skip int64) {
	due := int64(elapsed/ptime) - done
	if due <= 0 {
		return 0, 0
	}
	if due > maxCatchUp {
		return maxCatchUp, due - maxCatchUp
	}
	return due, 0
}

// monitorFrame is the frame loop's working memory, kept across frames so
// a frame allocates nothing.
type monitorFrame struct {
	sup [FrameSamples]int16
	pkt [12 + FrameSamples]byte
	leg [2]monitorEmit
}

// frame mixes and sends one 20 ms frame: the supervisor's, and toward each
// party who hears the supervisor in this mode, that party's whole frame.
func (m *Monitor) frame(f *monitorFrame) {
	mode := m.Mode()
	m.mixer.Next()
	m.mu.Lock()
	relay, send, remote, codec := m.relay, m.hasRemote, m.remote, m.codec
	if send {
		m.seq++
		m.ts += FrameSamples
		writeHeader(f.pkt[:12], codec.PayloadType, false, m.seq, m.ts, m.ssrc)
	}
	m.mu.Unlock()
	if send && !remote.Addr().IsUnspecified() {
		m.mixer.Mix(&f.sup, mode, OutSupervisor, true)
		encodeFrame(codec.Encoding, f.pkt[12:], f.sup[:])
		m.pp.RTP.WriteToUDPAddrPort(f.pkt[:], remote)
	}
	if relay == nil {
		return
	}
	if n := m.mixer.reanchors; n > m.reported {
		relay.cfg.metrics.reanchors.Add(float64(n - m.reported))
		m.reported = n
	}
	now := relay.cfg.now()
	for _, d := range [2]Leg{LegOperator, LegOutside} {
		out := hearOut(d)
		if !MixMatrix[mode%numModes][out][InSupervisor] {
			continue
		}
		m.mixer.Mix(&f.leg[d].pcm, mode, out, false)
		relay.emitMonitor(m, d, &f.leg[d], now)
	}
}
