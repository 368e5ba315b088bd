package media

import (
	"errors"
	"time"

	"github.com/pion/rtp"
)

// ErrMonitorBusy: the relay already has a monitor attached.
var ErrMonitorBusy = errors.New("media: call already monitored")

// AttachMonitor makes m receive each party's decoded audio (after payload
// type mapping, before the supervisor's voice is mixed in: a barging
// supervisor does not hear their own echo), and hands m's frame clock the
// directions the supervisor is heard in (MixMatrix: toward the operator in
// whisper and barge, toward the outside party in barge). One monitor per
// relay: another gets ErrMonitorBusy.
func (r *Relay) AttachMonitor(m *Monitor) error {
	select {
	case <-r.done:
		return ErrClosed
	default:
	}
	if !r.mon.CompareAndSwap(nil, m) {
		return ErrMonitorBusy
	}
	return nil
}

// DetachMonitor removes m if it is the attached monitor: the packet path
// sends both directions again.
func (r *Relay) DetachMonitor(m *Monitor) { r.mon.CompareAndSwap(m, nil) }

// inputOf is the mixer input of what leg l's peer sends.
func inputOf(l Leg) MixInput {
	if l == LegOperator {
		return InOperator
	}
	return InCustomer
}

// hearOut is the mixer output leg l's peer hears.
func hearOut(l Leg) MixOutput {
	if l == LegOperator {
		return OutOperator
	}
	return OutCustomer
}

// monitorEmit is a monitor's working memory for one direction's frame.
type monitorEmit struct {
	pcm [FrameSamples]int16
	buf [12 + FrameSamples]byte
	tap rtp.Packet
}

// emitMonitor sends the monitor's frame f.pcm toward leg d through the
// same gate and recording as every other frame (admitLocked, send): the
// frame the party hears is the frame recorded, produced on the monitor's
// clock whether or not the other party's phone sends RTP.
func (r *Relay) emitMonitor(m *Monitor, d Leg, f *monitorEmit, now time.Time) {
	if r.mon.Load() != m || r.Err() != nil {
		return // detached, or the call is over: nothing more toward its parties
	}
	dl := r.legs[d&1]
	r.mu.Lock()
	dest, reason, ok := r.admitLocked(dl, srcMonitor)
	if !ok {
		r.mu.Unlock()
		r.cfg.metrics.drop(reason)
		return
	}
	if dl.mixReady { // a tone toward d (Play) rides on this stream
		for i := range f.pcm {
			f.pcm[i] = sat16(int32(f.pcm[i]) + int32(dl.mix[i]))
		}
		dl.mixReady = false
	}
	seq, ts, marker := dl.out.inject(now)
	codec, ssrc := dl.codec, dl.out.ssrc
	encodeFrame(codec.Encoding, f.buf[12:], f.pcm[:])
	dl.out.sent(FrameSamples)
	dl.out.lastFwd = now
	r.mu.Unlock()
	r.send(dl, f.buf[:], codec, seq, ts, marker, ssrc, dest, &f.tap, now)
}
