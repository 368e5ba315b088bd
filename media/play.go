package media

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/pion/rtp"
)

// PlayOption configures one Play.
type PlayOption func(*playConfig)

type playConfig struct{ mute bool }

// Muted stops forwarding from the other leg toward the target leg while the
// audio plays: the recording notice must be heard alone, before bridging.
// Without it the audio is mixed into the forwarded stream (warning beeps).
func Muted() PlayOption { return func(c *playConfig) { c.mute = true } }

// ptime is the packetisation we send: 20 ms, what every G.711 peer expects.
const ptime = 20 * time.Millisecond

// Play sends pcm (8 kHz linear) toward leg's peer in 20 ms packets encoded
// with that leg's codec, paced by a ticker, and returns when it has all been
// sent, ctx is done, or the relay ends. Like every frame sent toward a
// party, each is recorded as sent (see Tap): on the other leg's channel,
// the one that records what leg's peer hears. A non-muted Play is mixed
// into the stream already flowing toward leg, if any. Frames the gate
// refuses (hold, early media, notice pending: see admitLocked) are
// skipped, not queued, and counted as dropped.
func (r *Relay) Play(ctx context.Context, l Leg, pcm []int16, opts ...PlayOption) error {
	_, err := r.play(ctx, l, pcm, opts...)
	return err
}

// play is Play, also returning how many frames were sent (or mixed into
// a sent frame).
func (r *Relay) play(ctx context.Context, l Leg, pcm []int16, opts ...PlayOption) (int, error) {
	var cfg playConfig
	for _, o := range opts {
		o(&cfg)
	}
	d := r.legs[l&1]
	src := srcPlay
	r.mu.Lock()
	if !d.hasRemote {
		r.mu.Unlock()
		return 0, fmt.Errorf("play to %s leg: %w", d.id, ErrNoRemote)
	}
	if cfg.mute {
		src = srcPrompt
		d.muted++
	}
	r.mu.Unlock()
	if cfg.mute {
		defer func() {
			r.mu.Lock()
			d.muted--
			r.mu.Unlock()
		}()
	}

	var (
		buf    [12 + FrameSamples]byte
		frame  [FrameSamples]int16
		tapPkt rtp.Packet
		ticker = time.NewTicker(ptime)
		sent   int
	)
	defer ticker.Stop()
	for off := 0; off < len(pcm); off += FrameSamples {
		// Pad the last frame with silence so every packet is 20 ms.
		n := copy(frame[:], pcm[off:])
		clear(frame[n:])
		now := r.cfg.now()

		r.mu.Lock()
		dest, reason, ok := r.admitLocked(d, src)
		mixing := ok && !cfg.mute && now.Sub(d.out.lastFwd) < 3*ptime
		var (
			seq    uint16
			ts     uint32
			marker bool
			codec  = d.codec
			ssrc   = d.out.ssrc
		)
		switch {
		case mixing:
			d.mix, d.mixReady = frame, true
		case ok:
			seq, ts, marker = d.out.inject(now)
			encodeFrame(codec.Encoding, buf[12:], frame[:])
			d.out.sent(FrameSamples)
		}
		r.mu.Unlock()

		switch {
		case !ok:
			r.cfg.metrics.drop(reason)
		case mixing:
			sent++
		case r.send(d, buf[:], codec, seq, ts, marker, ssrc, dest, &tapPkt, now):
			sent++
		}
		if err := r.Err(); err != nil {
			return sent, fmt.Errorf("play to %s leg: %w", d.id, err)
		}

		select {
		case <-ctx.Done():
			return sent, ctx.Err()
		case <-r.done:
			return sent, fmt.Errorf("play to %s leg: %w", d.id, ErrClosed)
		case <-ticker.C:
		}
	}
	return sent, nil
}

// PlayNotice plays the recording notice to the outside party, alone (as
// Play with Muted), and opens the notice gate (WithDetention) once every
// frame of it was sent to the current outside party. If a frame could not
// be sent (hold, early media), the notice was interrupted (ctx, relay end)
// or NewOutsideParty was called meanwhile, the gate stays closed and the
// error says why: call PlayNotice again.
func (r *Relay) PlayNotice(ctx context.Context, pcm []int16) error {
	if len(pcm) == 0 {
		return fmt.Errorf("%w: empty notice", ErrNoticeIncomplete)
	}
	r.mu.Lock()
	gen := r.outsideGen
	r.mu.Unlock()
	sent, err := r.play(ctx, LegOutside, pcm, Muted())
	if err != nil {
		return err
	}
	frames := (len(pcm) + FrameSamples - 1) / FrameSamples
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case sent < frames:
		return fmt.Errorf("%w: %d of %d frames reached the outside party", ErrNoticeIncomplete, sent, frames)
	case r.outsideGen != gen:
		return fmt.Errorf("%w: the outside party changed while it played", ErrNoticeIncomplete)
	}
	r.noticePending = false
	return nil
}

// NewOutsideParty says the outside leg now reaches another party (a REFER
// target, a failover): in detention mode the notice gate closes again
// until PlayNotice has played the notice to that party.
func (r *Relay) NewOutsideParty() {
	r.mu.Lock()
	r.outsideGen++
	if r.cfg.detention {
		r.noticePending = true
	}
	r.mu.Unlock()
}

// SetEarly marks the call as not answered yet (early media, a 183 with
// SDP): nothing is sent toward the outside party, while the operator hears
// it. SetEarly(false) at answer. In detention mode the notice gate keeps
// the outside direction closed after answer until PlayNotice.
func (r *Relay) SetEarly(on bool) {
	r.mu.Lock()
	r.early = on
	r.mu.Unlock()
}

// NoticePending reports whether the notice gate is closed (WithDetention,
// before PlayNotice completes for the current outside party).
func (r *Relay) NoticePending() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.noticePending
}

func writeHeader(b []byte, pt uint8, marker bool, seq uint16, ts, ssrc uint32) {
	b[0] = 0x80 // version 2, no padding, extension or CSRC
	b[1] = pt
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], ssrc)
}
