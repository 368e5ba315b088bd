package media

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"
)

// Static payload type of comfort noise (RFC 3389): passed through unchanged
// because both legs share the static mapping.
const ptComfortNoise = 13

// handleRTP is the per-packet path. It allocates nothing: the packet is
// parsed into l.pkt over l.buf, rewritten in place and sent from the other
// leg's socket.
func (r *Relay) handleRTP(l *leg, n int, from netip.AddrPort, now time.Time) {
	m := r.cfg.metrics
	data := l.buf[:n]
	if err := l.pkt.Unmarshal(data); err != nil || l.pkt.Version != 2 {
		m.dropBadPacket.Inc()
		return
	}
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	sinceStart := now.Sub(r.start)

	r.mu.Lock()
	if !l.accept(from, r.cfg.latchWindow) {
		l.rx.dropped++
		r.mu.Unlock()
		m.dropUnknownSrc.Inc()
		return
	}
	srcEnc, audio := l.encodingOf(l.pkt.PayloadType)
	// While a muted prompt (the recording notice) plays toward the other
	// side, that side hears the prompt, and the prompt is what is recorded
	// on this channel: one stream at a time per channel.
	promptOver := r.legs[l.id.Other()].muted > 0
	event := !audio && l.dtmfPT != 0 && l.pkt.PayloadType == l.dtmfPT
	if gap := l.rx.update(l.pkt.SequenceNumber, l.pkt.Timestamp, l.pkt.SSRC, len(l.pkt.Payload), sinceStart, audio); gap > 0 {
		m.lost.Add(float64(gap))
	}
	r.mu.Unlock()
	r.lastRx.Store(int64(sinceStart))
	m.packetsIn.Inc()

	if event && r.cfg.onDTMF != nil {
		if digit := l.events.digit(&l.pkt); digit != 0 {
			r.cfg.onDTMF(l.id, digit)
		}
	}
	r.monitorTap(l, now)
	if r.cfg.tap != nil && !promptOver {
		if err := r.cfg.tap.TapRTP(l.id, r.monitorRecord(l, srcEnc, audio), now); err != nil {
			r.end(fmt.Errorf("%w: %s leg: %w", ErrTapFailed, l.id, err))
			return
		}
	}

	d := r.legs[l.id.Other()]
	r.mu.Lock()
	dest, reason := d.rtpDest()
	if reason == "" && d.muted > 0 {
		reason = DropMuted
	}
	var outPT uint8
	switch {
	case reason != "":
	case audio:
		outPT = d.codec.PayloadType
	case l.pkt.PayloadType == ptComfortNoise:
		outPT = ptComfortNoise
	case l.dtmfPT != 0 && l.pkt.PayloadType == l.dtmfPT && d.dtmfPT != 0:
		outPT = d.dtmfPT
	default:
		reason = DropUnknownPayload
	}
	if reason != "" {
		r.mu.Unlock()
		switch reason {
		case DropHold:
			m.dropHold.Inc()
		case DropNoDestination:
			m.dropNoDest.Inc()
		case DropMuted:
			m.dropMuted.Inc()
		default:
			m.dropPayload.Inc()
		}
		return
	}
	seq, ts, marker := d.out.forward(l.pkt.SSRC, l.pkt.SequenceNumber, l.pkt.Timestamp, now)
	if audio {
		if d.mixReady {
			// A non-muting Play is running toward d: mix its frame into
			// the forwarded audio rather than send a second stream.
			pl := l.pkt.Payload
			pcm := l.pcm[:len(pl)]
			decodeFrame(srcEnc, pcm, pl)
			for i := range pcm[:min(len(pcm), FrameSamples)] {
				pcm[i] = sat16(int32(pcm[i]) + int32(d.mix[i]))
			}
			encodeFrame(d.codec.Encoding, pl, pcm)
			d.mixReady = false
		} else {
			transcode(srcEnc, d.codec.Encoding, l.pkt.Payload)
		}
		r.monitorForward(l, d, l.pkt.Payload)
	}
	r.mu.Unlock()

	b1 := outPT
	if l.pkt.Marker || marker {
		b1 |= 0x80
	}
	data[1] = b1
	binary.BigEndian.PutUint16(data[2:], seq)
	binary.BigEndian.PutUint32(data[4:], ts)
	binary.BigEndian.PutUint32(data[8:], d.out.ssrc)
	if _, err := d.ports.RTP.WriteToUDPAddrPort(data, dest); err == nil {
		m.packetsOut.Inc()
	}
}

func sat16(v int32) int16 {
	return int16(max(-32768, min(32767, v)))
}

// accept implements symmetric RTP latching. Before a source is latched the
// first packet from the SDP address, or from anywhere within the latch
// window, wins; the SDP address may still take over within the window
// (the peer told us where it is; a NAT guess is only a guess). After that
// only the latched source is accepted.
func (l *leg) accept(from netip.AddrPort, window int) bool {
	if l.seen <= window {
		l.seen++
	}
	inWindow := l.seen <= window
	fromSDP := l.hasRemote && from == l.sdpAddr
	if l.latched {
		if from == l.peer {
			return true
		}
		if inWindow && fromSDP {
			l.peer = from
			return true
		}
		return false
	}
	if fromSDP || inWindow {
		l.latched, l.peer = true, from
		return true
	}
	return false
}

// encodingOf maps a received payload type to audio. Before SetRemote the
// static types are trusted so early packets can still be classified.
func (l *leg) encodingOf(pt uint8) (Encoding, bool) {
	if l.hasRemote {
		if pt == l.codec.PayloadType {
			return l.codec.Encoding, true
		}
		if l.codec.PayloadType != 0 && l.codec.PayloadType != 8 || pt == l.dtmfPT {
			return 0, false
		}
	}
	switch pt {
	case 0:
		return PCMU, true
	case 8:
		return PCMA, true
	}
	return 0, false
}

// rtpDest says where to send toward this leg, or why not.
func (l *leg) rtpDest() (netip.AddrPort, string) {
	switch {
	case !l.hasRemote:
		return netip.AddrPort{}, DropNoDestination
	case !l.dir.Receives() || l.sdpAddr.Addr().IsUnspecified():
		return netip.AddrPort{}, DropHold
	case l.latched:
		return l.peer, ""
	}
	return l.sdpAddr, ""
}

func (l *leg) rtcpDest() (netip.AddrPort, bool) {
	rtp, reason := l.rtpDest()
	switch {
	case reason != "":
		return netip.AddrPort{}, false
	case l.rtcpPeer.IsValid():
		return l.rtcpPeer, true
	}
	return netip.AddrPortFrom(rtp.Addr(), rtp.Port()+1), true
}

// outStream is the single RTP stream we send toward a leg. Whatever feeds it
// (the other leg's peer, which may change SSRC on re-INVITE, or Play) the
// peer sees one SSRC with continuous sequence numbers and timestamps, so its
// jitter buffer never resets mid-call.
type outStream struct {
	ssrc      uint32
	started   bool
	seq       uint16 // highest sent
	ts        uint32
	lastSent  time.Time
	lastFwd   time.Time
	synced    bool // offsets valid for srcSSRC
	injecting bool // the last packet came from Play
	srcSSRC   uint32
	seqOff    uint16
	tsOff     uint32
}

// advance returns the timestamp step since the last packet: wall-clock
// elapsed in samples, at least one frame.
func (o *outStream) advance(now time.Time) uint32 {
	s := now.Sub(o.lastSent) * SampleRate / time.Second
	return uint32(max(int64(s), FrameSamples))
}

func (o *outStream) forward(srcSSRC uint32, seq uint16, ts uint32, now time.Time) (uint16, uint32, bool) {
	marker := false
	if !o.synced || srcSSRC != o.srcSSRC {
		nextSeq, nextTS := rand.N[uint16](1<<15), rand.Uint32()
		if o.started {
			nextSeq, nextTS = o.seq+1, o.ts+o.advance(now)
			marker = true // a new talkspurt for the receiver
		}
		o.seqOff, o.tsOff = nextSeq-seq, nextTS-ts
		o.srcSSRC, o.synced = srcSSRC, true
	}
	outSeq, outTS := seq+o.seqOff, ts+o.tsOff
	if !o.started || int16(outSeq-o.seq) > 0 {
		o.seq, o.ts = outSeq, outTS
	}
	o.started, o.injecting = true, false
	o.lastSent, o.lastFwd = now, now
	return outSeq, outTS, marker
}

// inject numbers a packet generated by the relay (Play).
func (o *outStream) inject(now time.Time) (uint16, uint32, bool) {
	marker := !o.injecting
	switch {
	case !o.started:
		o.seq, o.ts = rand.N[uint16](1<<15), rand.Uint32()
	case o.injecting:
		o.seq, o.ts = o.seq+1, o.ts+FrameSamples
	default:
		o.seq, o.ts = o.seq+1, o.ts+o.advance(now)
	}
	o.started, o.injecting, o.synced = true, true, false
	o.lastSent = now
	return o.seq, o.ts, marker
}

// recvStats follows RFC 3550 appendix A.1 (sequence) and A.8 (jitter).
type recvStats struct {
	started    bool
	ssrc       uint32
	baseSeq    uint32
	maxSeq     uint16
	cycles     uint32
	recvCur    uint64 // since the current SSRC started
	lostPrev   int64  // lost in earlier SSRCs of this leg
	received   uint64
	bytes      uint64
	dropped    uint64
	hasTransit bool
	transit    uint32
	jitter     float64 // in timestamp units
}

// update records one packet and returns the sequence gap it revealed.
func (s *recvStats) update(seq uint16, ts, ssrc uint32, size int, arrival time.Duration, audio bool) int {
	gap := 0
	if !s.started || ssrc != s.ssrc {
		if s.started {
			s.lostPrev = s.lost()
		}
		s.started, s.ssrc = true, ssrc
		s.baseSeq, s.maxSeq, s.cycles, s.recvCur = uint32(seq), seq, 0, 0
		s.hasTransit = false
	} else if d := int16(seq - s.maxSeq); d > 0 {
		if seq < s.maxSeq {
			s.cycles += 1 << 16
		}
		if d > 1 && d < 3000 { // bigger jumps are restarts, not loss
			gap = int(d) - 1
		}
		s.maxSeq = seq
	}
	s.recvCur++
	s.received++
	s.bytes += uint64(size)
	if audio {
		// Events (RFC 4733) repeat one timestamp, so they would read as
		// jitter; only audio counts.
		arr := uint32(int64(arrival) * SampleRate / int64(time.Second))
		transit := arr - ts
		if s.hasTransit {
			d := float64(int32(transit - s.transit))
			if d < 0 {
				d = -d
			}
			s.jitter += (d - s.jitter) / 16
		}
		s.transit, s.hasTransit = transit, true
	}
	return gap
}

func (s *recvStats) lost() int64 {
	if !s.started {
		return s.lostPrev
	}
	expected := int64(s.cycles) + int64(s.maxSeq) - int64(s.baseSeq) + 1
	return s.lostPrev + expected - int64(s.recvCur)
}
