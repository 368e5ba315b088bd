package media

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

// ErrMonitorBusy: the relay already has a monitor attached.
var ErrMonitorBusy = errors.New("media: call already monitored")

// injectSamples bounds the supervisor audio waiting to be mixed into one
// direction (128 ms): beyond it the oldest is dropped, so a stalled stream
// never makes the whisper lag behind the conversation.
const (
	injectSamples = 1024
	injectPrime   = 2 * FrameSamples
)

// injectRing is a FIFO of 8 kHz samples waiting to be mixed into packets
// of one direction. It refills to injectPrime after running dry, so the
// mixing is not chopped by the jitter between the two clocks.
type injectRing struct {
	buf    [injectSamples]int16
	r, n   int
	primed bool
}

func (q *injectRing) push(frame []int16) {
	for _, s := range frame {
		if q.n == injectSamples { // drop the oldest
			q.r = (q.r + 1) % injectSamples
			q.n--
		}
		q.buf[(q.r+q.n)%injectSamples] = s
		q.n++
	}
	if q.n >= injectPrime {
		q.primed = true
	}
}

// mixInto adds up to len(pcm) queued samples into pcm (saturating) and
// reports whether it added any.
func (q *injectRing) mixInto(pcm []int16) bool {
	if !q.primed || q.n == 0 {
		return false
	}
	k := min(len(pcm), q.n)
	for i := range k {
		pcm[i] = sat16(int32(pcm[i]) + int32(q.buf[q.r]))
		q.r = (q.r + 1) % injectSamples
	}
	q.n -= k
	if q.n == 0 {
		q.primed = false
	}
	return true
}

func (q *injectRing) reset() { q.r, q.n, q.primed = 0, 0, false }

// tapBox lets an interface live in an atomic.Pointer.
type tapBox struct{ t Tap }

// monitorHook is the Relay's second tap point, for a supervisor's
// monitor, and the queues of the supervisor's audio to mix in. With no
// monitor attached the packet path pays one atomic load per hook.
type monitorHook struct {
	tap    atomic.Pointer[tapBox]
	active atomic.Bool

	mu     sync.Mutex
	toLeg  [2]injectRing // heard by that leg's peer
	record injectRing    // recorded on the operator channel only
}

// monitorScratch is reader-owned room for the recording's copy of an
// operator packet with the supervisor's audio mixed in.
type monitorScratch struct {
	buf [1500]byte
	pkt rtp.Packet
}

// AttachMonitor makes t receive a copy of every accepted packet of both
// legs (before anything is mixed in), and enables InjectMonitor. One
// monitor per relay: a second gets ErrMonitorBusy.
func (r *Relay) AttachMonitor(t Tap) error {
	select {
	case <-r.done:
		return ErrClosed
	default:
	}
	if !r.mon.tap.CompareAndSwap(nil, &tapBox{t}) {
		return ErrMonitorBusy
	}
	r.mon.active.Store(true)
	return nil
}

// DetachMonitor removes t (if it is the attached monitor) and drops the
// audio it queued.
func (r *Relay) DetachMonitor(t Tap) {
	b := r.mon.tap.Load()
	if b == nil || b.t != t {
		return
	}
	r.mon.active.Store(false)
	r.mon.tap.Store(nil)
	r.mon.mu.Lock()
	r.mon.toLeg[0].reset()
	r.mon.toLeg[1].reset()
	r.mon.record.reset()
	r.mon.mu.Unlock()
}

// InjectMonitor queues one 20 ms frame of a monitor's audio: toOperator is
// mixed into what the operator hears, toOutside into what the outside
// party hears, recordOperator into the recording's operator channel. A
// nil frame queues nothing. The frames are mixed into the packets the
// relay forwards anyway: the call's own audio is never delayed for them.
func (r *Relay) InjectMonitor(toOperator, toOutside, recordOperator *[FrameSamples]int16) {
	if !r.mon.active.Load() {
		return
	}
	// Lock order is r.mu then r.mon.mu (the packet path's): the direct
	// send decides under r.mu alone.
	var queue [2]*[FrameSamples]int16
	for l, f := range [2]*[FrameSamples]int16{toOperator, toOutside} {
		if f != nil && !r.injectDirect(r.legs[l], f) {
			queue[l] = f
		}
	}
	r.mon.mu.Lock()
	for l, f := range queue {
		if f != nil {
			r.mon.toLeg[l].push(f[:])
		}
	}
	if recordOperator != nil {
		r.mon.record.push(recordOperator[:])
	}
	r.mon.mu.Unlock()
}

// monitorTap gives the attached monitor its copy of a received packet.
func (r *Relay) monitorTap(l *leg, now time.Time) {
	if b := r.mon.tap.Load(); b != nil {
		b.t.TapRTP(l.id, &l.pkt, now) // a monitor never ends the call
	}
}

// monitorRecord returns the packet the recording should get: for the
// operator leg, with the queued record-only supervisor audio mixed into a
// copy (the forwarded packet stays untouched).
func (r *Relay) monitorRecord(l *leg, enc Encoding, audio bool) *rtp.Packet {
	if l.id != LegOperator || !audio || !r.mon.active.Load() {
		return &l.pkt
	}
	pl := l.pkt.Payload
	pcm := l.pcm[:len(pl)]
	decodeFrame(enc, pcm, pl)
	r.mon.mu.Lock()
	mixed := r.mon.record.mixInto(pcm)
	r.mon.mu.Unlock()
	if !mixed {
		return &l.pkt
	}
	s := &l.monScratch
	s.pkt.Header = l.pkt.Header
	s.pkt.Payload = s.buf[:len(pl)]
	encodeFrame(enc, s.pkt.Payload, pcm)
	return &s.pkt
}

// monitorForward mixes the supervisor audio queued toward d into a
// forwarded payload already in d's codec. It runs under r.mu on l's reader.
func (r *Relay) monitorForward(l, d *leg, payload []byte) {
	if !r.mon.active.Load() {
		return
	}
	pcm := l.pcm[:len(payload)]
	decodeFrame(d.codec.Encoding, pcm, payload)
	r.mon.mu.Lock()
	mixed := r.mon.toLeg[d.id].mixInto(pcm)
	r.mon.mu.Unlock()
	if mixed {
		encodeFrame(d.codec.Encoding, payload, pcm)
	}
}

// injectDirect sends a monitor frame toward d as a packet of its own when
// nothing is being forwarded to d (the other side is silent, muted by
// DTX or finished): there is no packet to mix into, and no stream to
// collide with. It reports whether it sent.
func (r *Relay) injectDirect(d *leg, f *[FrameSamples]int16) bool {
	now := r.cfg.now()
	r.mu.Lock()
	dest, reason := d.rtpDest()
	if reason != "" || d.muted > 0 || now.Sub(d.out.lastFwd) < 3*ptime || d.out.injecting && now.Sub(d.out.lastSent) < ptime/2 {
		r.mu.Unlock()
		return false
	}
	seq, ts, marker := d.out.inject(now)
	enc, pt, ssrc := d.codec.Encoding, d.codec.PayloadType, d.out.ssrc
	r.mu.Unlock()
	r.mon.mu.Lock()
	if q := &r.mon.toLeg[d.id]; q.n > 0 {
		q.mixInto(f[:]) // what was queued while packets still flowed
	}
	r.mon.mu.Unlock()
	var pkt [12 + FrameSamples]byte
	writeHeader(pkt[:12], pt, marker, seq, ts, ssrc)
	encodeFrame(enc, pkt[12:], f[:])
	if _, err := d.ports.RTP.WriteToUDPAddrPort(pkt[:], dest); err == nil {
		r.cfg.metrics.packetsOut.Inc()
	}
	return true
}
