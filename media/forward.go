package media

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/pion/rtp"
)

// Static payload type of comfort noise (RFC 3389). CN is never relayed:
// its payload is not audio Plateau decodes and records, so it could carry
// anything; the receiver fills the silence itself.
const ptComfortNoise = 13

// source is what produced a frame on its way toward a leg.
type source uint8

const (
	srcForward source = iota // the other leg's peer, packet by packet
	srcPlay                  // a tone or prompt mixed in or sent alone (Play)
	srcPrompt                // a muted prompt: the notice, heard alone (Play with Muted, PlayNotice)
	srcMonitor               // a monitor's frame clock: the mix with the supervisor's voice
)

// handleRTP is the per-packet path. It allocates nothing: the packet is
// parsed into l.pkt over l.buf, and what leaves toward the other leg is a
// new packet built in l.obuf with a fresh header (no extension, CSRC or
// padding of the sender's survives) and the payload re-encoded in the
// other leg's codec.
func (r *Relay) handleRTP(l *leg, n int, from netip.AddrPort, now time.Time) {
	m := r.cfg.metrics
	b := l.buf[:n]
	if s := l.srtp.Load(); s != nil {
		// SRTP leg: authenticate and decrypt before anything else looks
		// at the packet, latching included (a forged packet must not
		// latch the leg). In place: the ciphertext is not needed after.
		p, err := s.UnprotectRTP(b[:0], b)
		if err != nil {
			m.drop(srtpDrop(err))
			return
		}
		b = p
	}
	if err := l.pkt.Unmarshal(b); err != nil || l.pkt.Version != 2 {
		m.drop(rMalformed)
		return
	}
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	sinceStart := now.Sub(r.start)
	pt := l.pkt.PayloadType & 0x7f

	r.mu.Lock()
	if !l.hasRemote {
		// Before the peer's address is signalled nothing can say whether
		// this is the peer: a sender guessing a fresh port is not latched.
		l.rx.dropped++
		r.mu.Unlock()
		m.drop(rNoRemote)
		return
	}
	if !l.accept(from, r.cfg.latchWindow) {
		l.rx.dropped++
		r.mu.Unlock()
		m.drop(rUnknownSource)
		return
	}
	enc := l.rxEnc[pt]
	event := enc == 0 && l.dtmfPT != 0 && pt == l.dtmfPT
	gap, restart := l.rx.update(l.pkt.SequenceNumber, l.pkt.Timestamp, l.pkt.SSRC, len(l.pkt.Payload), sinceStart, enc != 0)
	seg := l.rx.seg
	r.mu.Unlock()
	r.lastRx.Store(int64(sinceStart))
	m.packetsIn.Inc()
	if gap > 0 {
		m.lost.Add(float64(gap))
	}
	if restart {
		m.restarts.Inc()
	}

	d := r.legs[l.id.Other()]
	switch {
	case enc != 0:
		r.forwardAudio(l, d, enc, seg, now)
	case event:
		r.forwardEvent(l, d, seg, now)
	case pt == ptComfortNoise:
		m.drop(rComfortNoise)
	default:
		m.drop(rUnknownPayload)
	}
}

// forwardAudio sends one received audio packet on toward d, decoded to
// PCM once if a monitor or a tone needs it.
func (r *Relay) forwardAudio(l, d *leg, enc Encoding, seg uint32, now time.Time) {
	m := r.cfg.metrics
	pl := l.pkt.Payload
	n := len(pl)
	switch {
	case n == 0:
		m.drop(rMalformed)
		return
	case n > maxAudioBytes:
		m.drop(rOversize)
		return
	}
	pcm := l.pcm[:n]
	decoded := false
	if mon := r.mon.Load(); mon != nil {
		decodeFrame(enc, pcm, pl)
		decoded = true
		mon.feed(inputOf(l.id), l.pkt.SSRC, l.pkt.Timestamp, pcm)
		if mon.owns(d.id) {
			// The supervisor is heard toward d: the monitor's frame clock
			// sends d the mix of this audio and the supervisor's, so that
			// d and the recording get the same frames whether or not this
			// leg's phone sends anything.
			return
		}
	}
	r.mu.Lock()
	dest, reason, ok := r.admitLocked(d, srcForward)
	if !ok {
		r.mu.Unlock()
		m.drop(reason)
		return
	}
	seq, ts, marker, fresh := d.out.forward(seg, l.pkt.SequenceNumber, l.pkt.Timestamp, now, true)
	if !fresh {
		r.mu.Unlock()
		m.drop(rLate)
		return
	}
	codec, ssrc := d.codec, d.out.ssrc
	b := l.obuf[:12+n]
	if d.mixReady {
		// A non-muting Play runs toward d: its frame is mixed into the
		// forwarded audio rather than sent as a second stream.
		if !decoded {
			decodeFrame(enc, pcm, pl)
		}
		for i := range pcm[:min(n, FrameSamples)] {
			pcm[i] = sat16(int32(pcm[i]) + int32(d.mix[i]))
		}
		d.mixReady = false
		encodeFrame(codec.Encoding, b[12:], pcm)
	} else {
		transcodeInto(enc, codec.Encoding, b[12:], pl)
	}
	d.out.sent(n)
	r.mu.Unlock()
	r.send(d, b, codec, seq, ts, marker, ssrc, dest, &l.tapPkt, now)
}

// forwardEvent sends one RFC 4733 telephone-event packet on toward d,
// rebuilt from its fields, if it is one valid event.
func (r *Relay) forwardEvent(l, d *leg, seg uint32, now time.Time) {
	m := r.cfg.metrics
	pl := l.pkt.Payload
	// One event per packet (redundancy is RFC 2198, another payload type),
	// a DTMF key (0-15: 0-9 * # A-D), the reserved bit clear.
	if len(pl) != 4 || pl[0] > 15 || pl[1]&0x40 != 0 {
		m.drop(rBadEvent)
		return
	}
	if r.cfg.onDTMF != nil {
		if digit := l.events.digit(&l.pkt); digit != 0 {
			r.cfg.onDTMF(l.id, digit)
		}
	}
	r.mu.Lock()
	dest, reason, ok := r.admitLocked(d, srcForward)
	if ok && d.dtmfPT == 0 {
		reason, ok = rNoEvents, false
	}
	if !ok {
		r.mu.Unlock()
		m.drop(reason)
		return
	}
	seq, ts, marker, fresh := d.out.forward(seg, l.pkt.SequenceNumber, l.pkt.Timestamp, now, false)
	if !fresh {
		r.mu.Unlock()
		m.drop(rLate)
		return
	}
	// Every packet of one event carries the event's start timestamp; keep
	// it across a resynchronisation (a monitor's frames interleaved), or
	// the receiver would see one key press as several. The marker starts
	// an event (RFC 4733 2.5.1.2): ours, not the sender's.
	sameEvent := l.events.fwdAny && l.pkt.Timestamp == l.events.fwdTS
	if sameEvent {
		ts = d.out.evTS
	} else {
		d.out.evTS = ts
	}
	marker = !sameEvent
	l.events.fwdTS, l.events.fwdAny = l.pkt.Timestamp, true
	pt, ssrc := d.dtmfPT, d.out.ssrc
	d.out.sent(4)
	r.mu.Unlock()
	b := l.obuf[:16]
	b[12] = pl[0]
	b[13] = pl[1]&0x80 | 10 // end bit kept; volume fixed (-10 dBm0): not a free field
	b[14], b[15] = pl[2], pl[3]
	writeHeader(b[:12], pt, marker, seq, ts, ssrc)
	if r.writeRTP(d, b, dest) {
		m.packetsOut.Inc()
	}
}

// admitLocked decides, under r.mu, whether a frame from src may be sent
// toward d now, and where to. It is the one table of who may be heard:
//
//	no address for d              → no_destination
//	d on hold                     → hold
//	d outside, before answer      → early_media (one-way: outside → operator)
//	d outside, notice not heard   → notice_pending, except the muted prompt (the notice itself)
//	a muted prompt plays toward d → muted, except that prompt
//
// The destination carries d's SRTP session as of the same instant, so the
// frame is protected as the peer it goes to expects.
func (r *Relay) admitLocked(d *leg, src source) (sendTo, dropReason, bool) {
	switch {
	case !d.hasRemote:
		return sendTo{}, rNoDestination, false
	case !d.dir.Receives() || d.sdpAddr.Addr().IsUnspecified():
		return sendTo{}, rHold, false
	case d.id == LegOutside && r.early:
		return sendTo{}, rEarlyMedia, false
	case d.id == LegOutside && r.noticePending && src != srcPrompt:
		return sendTo{}, rNotice, false
	case d.muted > 0 && src != srcPrompt:
		return sendTo{}, rMuted, false
	case d.latched:
		return sendTo{d.peer, d.srtp.Load()}, 0, true
	}
	return sendTo{d.sdpAddr, d.srtp.Load()}, 0, true
}

// send records, then sends, one audio frame toward d: it is the only place
// audio leaves toward a party. b is the whole packet: 12 bytes of room for
// the header, then the payload in codec. The tap gets exactly those
// payload bytes under the static payload type of their encoding, so the
// recording is, frame by frame, what the party was sent; a frame the tap
// refuses is not sent, and the call ends. Toward an SRTP leg the tapped
// plaintext is what writeRTP then protects and sends.
func (r *Relay) send(d *leg, b []byte, codec Codec, seq uint16, ts uint32, marker bool, ssrc uint32, dest sendTo, tp *rtp.Packet, now time.Time) bool {
	if r.cfg.tap != nil {
		tp.Header = rtp.Header{Version: 2, PayloadType: codec.Encoding.Codec().PayloadType, Marker: marker, SequenceNumber: seq, Timestamp: ts, SSRC: ssrc}
		tp.Payload = b[12:]
		if err := r.cfg.tap.TapRTP(d.id.Other(), tp, now); err != nil {
			r.end(fmt.Errorf("%w: toward %s leg: %w", ErrTapFailed, d.id, err))
			return false
		}
	}
	writeHeader(b[:12], codec.PayloadType, marker, seq, ts, ssrc)
	if !r.writeRTP(d, b, dest) {
		return false
	}
	r.cfg.metrics.packetsOut.Inc()
	return true
}

func sat16(v int32) int16 {
	return int16(max(-32768, min(32767, v)))
}

// accept implements symmetric RTP latching, under r.mu. A leg accepts
// only its signalled host (LatchHost; any port of it, the first packet
// latches the exact address) or, for LatchAny, a first source from
// anywhere within the latch window. The exact signalled address may take
// over within the window (the peer told us where it is). After that only
// the latched source is accepted.
func (l *leg) accept(from netip.AddrPort, window int) bool {
	if l.seen <= window {
		l.seen++
	}
	inWindow := l.seen <= window
	if l.latched {
		if from == l.peer {
			return true
		}
		if inWindow && from == l.sdpAddr {
			l.peer = from
			return true
		}
		return false
	}
	if l.srcHost.IsValid() && from.Addr() == l.srcHost || l.latch == LatchAny && inWindow {
		l.latched, l.peer = true, from
		return true
	}
	return false
}

// rtcpDest is where our reports to this leg go: only to a peer that sends
// RTCP itself, at the address it sends from (symmetric RTCP). Guessing
// port+1 could hit another socket of the peer's host.
func (l *leg) rtcpDest() (netip.AddrPort, bool) {
	if !l.hasRemote || !l.dir.Receives() || l.sdpAddr.Addr().IsUnspecified() || !l.rtcpPeer.IsValid() {
		return netip.AddrPort{}, false
	}
	return l.rtcpPeer, true
}

// outStream is the single RTP stream we send toward a leg. Whatever feeds it
// (the other leg's peer, which may change SSRC or restart on re-INVITE,
// Play, a monitor) the peer and the recording see one SSRC with continuous
// sequence numbers and timestamps, so a jitter buffer never resets mid-call.
type outStream struct {
	ssrc      uint32
	started   bool
	seq       uint16 // highest sent
	ts        uint32
	lastSent  time.Time
	lastFwd   time.Time // last frame not from Play: a stream is flowing
	synced    bool      // offsets valid for srcSeg
	injecting bool      // the last packet was generated here (Play, monitor)
	srcSeg    uint32
	syncSeq   uint16 // the source sequence number the offsets were set on
	seqOff    uint16
	tsOff     uint32
	evTS      uint32 // our timestamp of the event being forwarded
	packets   uint32 // sender's counts for RTCP
	octets    uint32
}

// advance returns the timestamp step since the last packet: wall-clock
// elapsed in samples, at least one frame.
func (o *outStream) advance(now time.Time) uint32 {
	s := now.Sub(o.lastSent) * SampleRate / time.Second
	return uint32(max(int64(s), FrameSamples))
}

// syncTrail is how far the resync point may trail the newest packet
// forwarded. A packet of a segment is never more than maxMisorder behind
// its newest (recvStats calls anything older a restart, a new segment),
// so a point this far behind refuses nothing but what it refused before.
const syncTrail = 1 << 14

// forward numbers a packet of the source segment seg (see recvStats.seg).
// A new segment (SSRC change, sequence restart), or the first packet after
// generated ones, continues our numbering with a marker. A packet older
// than the one the numbering was resynchronised on is refused (fresh
// false): its number would be one already sent.
func (o *outStream) forward(seg uint32, seq uint16, ts uint32, now time.Time, audio bool) (outSeq uint16, outTS uint32, marker, fresh bool) {
	if o.synced && seg == o.srcSeg && int16(seq-o.syncSeq) < 0 {
		return 0, 0, false, false
	}
	if !o.synced || seg != o.srcSeg {
		nextSeq, nextTS := rand.N[uint16](1<<15), rand.Uint32()
		if o.started {
			nextSeq, nextTS = o.seq+1, o.ts+o.advance(now)
			marker = true // a new talkspurt for the receiver
		}
		o.seqOff, o.tsOff = nextSeq-seq, nextTS-ts
		o.srcSeg, o.synced, o.syncSeq = seg, true, seq
	}
	outSeq, outTS = seq+o.seqOff, ts+o.tsOff
	if int16(seq-o.syncSeq) > syncTrail {
		// Keep the resync point within reach of the 16-bit comparison
		// above: left behind, after 32768 packets (11 minutes) every
		// in-order packet would look older than it and be dropped.
		o.syncSeq = seq - syncTrail
	}
	if !o.started || int16(outSeq-o.seq) > 0 {
		o.seq, o.ts = outSeq, outTS
	}
	o.started, o.injecting = true, false
	o.lastSent = now
	if audio {
		o.lastFwd = now
	}
	return outSeq, outTS, marker, true
}

// inject numbers a packet generated by the relay (Play, a monitor).
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

func (o *outStream) sent(payload int) {
	o.packets++
	o.octets += uint32(payload)
}

// RFC 3550 A.1: a sequence number more than maxDropout ahead of, or more
// than maxMisorder behind, the highest seen is not loss or reordering: the
// sender restarted its numbering (a carrier re-INVITE does, keeping the
// SSRC). So is a timestamp that goes back, or leaps a minute, in order.
const (
	maxDropout  = 3000
	maxMisorder = 100
	maxTSLeap   = 60 * SampleRate
)

// recvStats follows RFC 3550 appendix A.1 (sequence) and A.8 (jitter).
type recvStats struct {
	started    bool
	ssrc       uint32
	seg        uint32 // bumped on every new SSRC or restart: forwarding resyncs
	baseSeq    uint32
	maxSeq     uint16
	maxTS      uint32 // timestamp of the newest audio packet
	hasTS      bool
	cycles     uint32
	recvCur    uint64 // since the current segment started
	lostPrev   int64  // lost in earlier segments of this leg
	received   uint64
	bytes      uint64
	dropped    uint64
	restarts   uint64
	hasTransit bool
	transit    uint32
	jitter     float64 // in timestamp units
}

// update records one packet and returns the sequence gap it revealed and
// whether it restarted the stream on the same SSRC.
func (s *recvStats) update(seq uint16, ts, ssrc uint32, size int, arrival time.Duration, audio bool) (gap int, restart bool) {
	d := int16(seq - s.maxSeq)
	if s.started && ssrc == s.ssrc {
		// Only audio timestamps advance with time: an event keeps its
		// start timestamp, possibly behind the audio sent meanwhile.
		leap := audio && s.hasTS && (int32(ts-s.maxTS) < 0 || int32(ts-s.maxTS) > maxTSLeap)
		restart = d >= maxDropout || d < -maxMisorder || d > 0 && leap
	}
	if !s.started || ssrc != s.ssrc || restart {
		if s.started {
			s.lostPrev = s.lost()
		}
		if restart {
			s.restarts++
		}
		s.started, s.ssrc = true, ssrc
		s.seg++
		s.baseSeq, s.maxSeq, s.cycles, s.recvCur = uint32(seq), seq, 0, 0
		s.hasTransit, s.hasTS = false, false
	} else if d > 0 {
		if seq < s.maxSeq {
			s.cycles += 1 << 16
		}
		gap = int(d) - 1
		s.maxSeq = seq
	}
	if audio && (d > 0 || !s.hasTS) {
		s.maxTS, s.hasTS = ts, true
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
	return gap, restart
}

func (s *recvStats) lost() int64 {
	if !s.started {
		return s.lostPrev
	}
	expected := int64(s.cycles) + int64(s.maxSeq) - int64(s.baseSeq) + 1
	return s.lostPrev + expected - int64(s.recvCur)
}
