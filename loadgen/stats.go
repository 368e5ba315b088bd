package loadgen

import (
	"encoding/binary"
	"sync/atomic"
	"time"
)

// Probe layout inside a G.711 payload (160 bytes): Plateau relays the
// payload unchanged when both legs use the same codec and pstn-sim echoes it
// byte for byte, so the loadgen recognises its own packets and reads back
// when each was sent. The rest of the payload is µ-law silence.
//
// The fields after the magic are written 7 bits a byte with the top bit
// set, so no probe byte is 0x7f: a monitor in whisper or barge mode mixes
// the supervisor's silence into the relayed packets (decode, add zero,
// encode), and µ-law's 0x7f ("-0") is the one code that does not survive
// that round trip.
const (
	probeMagic  = 0x504c4731    // "PLG1"
	probeLen    = 4 + 5 + 5 + 9 // magic, stream, seq, send time
	payloadSize = 160           // 20 ms of G.711 at 8 kHz
	rtpHeader   = 12
	packetSize  = rtpHeader + payloadSize
	ulawSilence = 0xff
)

// putProbe writes the probe into payload: stream index, per-stream
// sequence and the send time as nanoseconds since the run's start.
func putProbe(payload []byte, stream, seq uint32, sent time.Duration) {
	binary.BigEndian.PutUint32(payload[0:], probeMagic)
	put7(payload[4:9], uint64(stream))
	put7(payload[9:14], uint64(seq))
	put7(payload[14:probeLen], uint64(sent))
}

// readProbe decodes a probe; ok is false for anything the loadgen did not
// send (Plateau's tone and notice, mixed or transcoded audio).
func readProbe(payload []byte) (stream, seq uint32, sent time.Duration, ok bool) {
	if len(payload) < probeLen || binary.BigEndian.Uint32(payload) != probeMagic {
		return 0, 0, 0, false
	}
	st, ok1 := get7(payload[4:9])
	sq, ok2 := get7(payload[9:14])
	t, ok3 := get7(payload[14:probeLen])
	if !ok1 || !ok2 || !ok3 || st > 1<<32-1 || sq > 1<<32-1 {
		return 0, 0, 0, false
	}
	return uint32(st), uint32(sq), time.Duration(t), true
}

// put7 writes the low 7·len(b) bits of v into b, most significant first,
// 7 bits a byte with the top bit set.
func put7(b []byte, v uint64) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = 0x80 | byte(v&0x7f)
		v >>= 7
	}
}

// get7 reads what put7 wrote; ok is false when a byte lacks its top bit.
func get7(b []byte) (v uint64, ok bool) {
	for _, c := range b {
		if c&0x80 == 0 {
			return 0, false
		}
		v = v<<7 | uint64(c&0x7f)
	}
	return v, true
}

// Histogram counts latencies: 1 µs buckets up to 10 ms, then 100 µs
// buckets up to 1 s; slower ones land in the last bucket. One goroutine
// owns a Histogram; Merge combines them afterwards.
type Histogram struct {
	counts [histFine + histCoarse]uint64
	n      uint64
	sum    time.Duration
	max    time.Duration
}

const (
	histFine   = 10_000 // 1 µs buckets: 0..10 ms
	histCoarse = 9_900  // 100 µs buckets: 10 ms..1 s
)

func bucketOf(d time.Duration) int {
	us := int(d / time.Microsecond)
	switch {
	case us < 0:
		return 0
	case us < histFine:
		return us
	}
	return min(histFine+(us-histFine)/100, histFine+histCoarse-1)
}

// lowerBound is the smallest latency that lands in bucket b.
func lowerBound(b int) time.Duration {
	if b < histFine {
		return time.Duration(b) * time.Microsecond
	}
	return time.Duration(histFine+(b-histFine)*100) * time.Microsecond
}

// Add records one latency.
func (h *Histogram) Add(d time.Duration) {
	h.counts[bucketOf(d)]++
	h.n++
	h.sum += d
	h.max = max(h.max, d)
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// Count is the number of latencies recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest latency recorded.
func (h *Histogram) Max() time.Duration { return h.max }

// Mean is the average latency, 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// Quantile returns the latency below which a fraction q of the samples
// fall, at the resolution of the buckets (the bucket's lower bound).
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = max(1, min(rank, h.n))
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return lowerBound(i)
		}
	}
	return h.max
}

// RTTs are one receiver's round trips: of every call, and of the watched
// calls (the monitored ones) apart.
type RTTs struct{ All, Watched Histogram }

// Merge adds o's round trips to r.
func (r *RTTs) Merge(o *RTTs) {
	r.All.Merge(&o.All)
	r.Watched.Merge(&o.Watched)
}

// Window is one measurement: packets sent in [From, To) count as sent, and
// an echo counts as received when the time it was sent lies in the window
// (so packets still in flight at To are waited for, not lost).
type Window struct {
	From, To time.Duration // since the run's start
	// Watched streams [0, Watched) have their round trips recorded apart
	// too (RTTs.Watched); set before the window is shared.
	Watched int
	streams []streamCount
	foreign atomic.Uint64 // packets that carry no probe of ours
	unknown atomic.Uint64 // probes naming a stream out of range
}

type streamCount struct {
	sent, recv, dup atomic.Uint64
	lastSeq         atomic.Uint32 // highest sequence received + 1 (0: none)
}

// NewWindow accounts for n streams between from and to.
func NewWindow(n int, from, to time.Duration) *Window {
	return &Window{From: from, To: to, streams: make([]streamCount, n)}
}

func (w *Window) in(t time.Duration) bool { return t >= w.From && t < w.To }

// Sent records that stream sent a packet at t; only the sender calls it.
func (w *Window) Sent(stream int, t time.Duration) {
	if w.in(t) && stream < len(w.streams) {
		w.streams[stream].sent.Add(1)
	}
}

// Received accounts for one packet's payload arriving at now and records
// its round trip in r (owned by the calling receiver).
func (w *Window) Received(payload []byte, now time.Duration, r *RTTs) {
	stream, seq, sent, ok := readProbe(payload)
	if !ok {
		w.foreign.Add(1)
		return
	}
	if int(stream) >= len(w.streams) {
		w.unknown.Add(1)
		return
	}
	if !w.in(sent) {
		return
	}
	s := &w.streams[stream]
	// A packet whose sequence is not above the highest seen is a
	// duplicate or a reordered one; the loadgen sends in order, so
	// count it apart only when it repeats the latest sequence.
	if last := s.lastSeq.Load(); last != 0 && seq+1 == last {
		s.dup.Add(1)
		return
	}
	if seq+1 > s.lastSeq.Load() {
		s.lastSeq.Store(seq + 1)
	}
	s.recv.Add(1)
	r.All.Add(now - sent)
	if int(stream) < w.Watched {
		r.Watched.Add(now - sent)
	}
}

// Loss is a window's totals once every echo has had time to come back.
type Loss struct {
	Streams    int     // streams that sent in the window
	Sent, Recv uint64  // packets
	Dup        uint64  // repeated packets (not counted in Recv)
	Foreign    uint64  // packets without our probe (Plateau's tones, prompts)
	Lost       uint64  // per stream Sent - Recv, summed (a stream with more back counts 0)
	LossPct    float64 // Lost / Sent, in %
	WorstPct   float64 // the worst stream's loss, in %
	Lossy      int     // streams above 0.1 % loss
	Silent     int     // streams that sent but got nothing back
}

// Loss sums the window's streams.
func (w *Window) Loss() Loss {
	l := w.LossOf(0, len(w.streams))
	l.Foreign = w.foreign.Load()
	return l
}

// LossOf sums streams [from, to) (Foreign is the whole window's, in Loss).
func (w *Window) LossOf(from, to int) Loss {
	var l Loss
	for i := max(from, 0); i < min(to, len(w.streams)); i++ {
		s := &w.streams[i]
		sent, recv := s.sent.Load(), s.recv.Load()
		if sent == 0 {
			continue
		}
		l.Streams++
		l.Sent += sent
		l.Recv += recv
		l.Dup += s.dup.Load()
		if recv == 0 {
			l.Silent++
		}
		if recv < sent {
			l.Lost += sent - recv
			pct := 100 * float64(sent-recv) / float64(sent)
			l.WorstPct = max(l.WorstPct, pct)
			if pct > 0.1 {
				l.Lossy++
			}
		}
	}
	if l.Sent > 0 {
		l.LossPct = 100 * float64(l.Lost) / float64(l.Sent)
	}
	return l
}
