package media

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
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
// sent, ctx is done, or the relay ends. A muted prompt's packets are also
// given to the tap as audio of the other leg's channel (what leg's peer
// hears), in a stream with its own SSRC, in place of that leg's real audio.
// While leg is on hold the frames are skipped, not queued.
func (r *Relay) Play(ctx context.Context, l Leg, pcm []int16, opts ...PlayOption) error {
	var cfg playConfig
	for _, o := range opts {
		o(&cfg)
	}
	d := r.legs[l&1]
	r.mu.Lock()
	if !d.hasRemote {
		r.mu.Unlock()
		return fmt.Errorf("play to %s leg: %w", d.id, ErrNoRemote)
	}
	if cfg.mute {
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
		buf      [12 + FrameSamples]byte
		frame    [FrameSamples]int16
		tapPkt   rtp.Packet
		tapSSRC  = rand.Uint32()
		tapSeq   = rand.N[uint16](1 << 15)
		tapTS    = rand.Uint32()
		ticker   = time.NewTicker(ptime)
		firstTap = true
	)
	defer ticker.Stop()
	for off := 0; off < len(pcm); off += FrameSamples {
		// Pad the last frame with silence so every packet is 20 ms.
		n := copy(frame[:], pcm[off:])
		clear(frame[n:])
		now := r.cfg.now()

		r.mu.Lock()
		dest, reason := d.rtpDest()
		send := reason == ""
		mixing := send && !cfg.mute && d.muted == 0 && now.Sub(d.out.lastFwd) < 3*ptime
		var seq uint16
		var ts uint32
		var marker bool
		switch {
		case mixing:
			d.mix, d.mixReady = frame, true
		case send:
			seq, ts, marker = d.out.inject(now)
			encodeFrame(d.codec.Encoding, buf[12:], frame[:])
		}
		pt := d.codec.PayloadType
		enc := d.codec.Encoding
		r.mu.Unlock()

		if send && !mixing {
			writeHeader(buf[:12], pt, marker, seq, ts, d.out.ssrc)
			if _, err := d.ports.RTP.WriteToUDPAddrPort(buf[:], dest); err != nil {
				if errors.Is(err, net.ErrClosed) {
					return fmt.Errorf("play to %s leg: %w", d.id, ErrClosed)
				}
			} else {
				r.cfg.metrics.packetsOut.Inc()
			}
		}
		// Only a muted prompt is recorded as its own stream (it replaces what
		// the peer hears); a short tone mixed into a live stream is not, so
		// that a channel never holds two interleaved streams.
		if r.cfg.tap != nil && cfg.mute {
			if !send || mixing {
				encodeFrame(enc, buf[12:], frame[:])
			}
			tapPkt.Header = rtp.Header{Version: 2, PayloadType: pt, Marker: firstTap, SequenceNumber: tapSeq, Timestamp: tapTS, SSRC: tapSSRC}
			tapPkt.Payload = buf[12:]
			firstTap = false
			tapSeq++
			tapTS += FrameSamples
			if err := r.cfg.tap.TapRTP(d.id.Other(), &tapPkt, now); err != nil {
				err = fmt.Errorf("%w: prompt to %s leg: %w", ErrTapFailed, d.id, err)
				r.end(err)
				return err
			}
		}

		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.done:
			return fmt.Errorf("play to %s leg: %w", d.id, ErrClosed)
		case <-ticker.C:
		}
	}
	return nil
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
