package recordings

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/zaf/g711"
)

// Channel is a side of the stereo recording.
type Channel int

const (
	// Operator is the operator's leg, recorded on the left channel.
	Operator Channel = 0
	// Outside is the outside party's leg, recorded on the right channel.
	Outside Channel = 1
)

// RTP payload types the recorder decodes; everything else (telephone-event,
// comfort noise) is ignored, as the audio it stands for is not G.711.
const (
	ptPCMU = 0
	ptPCMA = 8
)

const (
	// ringSize is the per-channel buffer of not yet committed samples. It
	// must hold the reorder window, a packet placed up to one discontinuity
	// (1 s) ahead of its arrival time, and the packet itself.
	ringSize = 1 << 14
	ringMask = ringSize - 1
	// discontinuity is how far (in samples) a packet's timestamp position
	// may disagree with its arrival before the stream is re-anchored on
	// the wall clock: larger than any jitter, smaller than a hold.
	discontinuity = SampleRate
	// maxPayload is 200 ms of G.711; anything larger is not a packet a
	// phone sends and would not fit the ring with the window.
	maxPayload = 1600
	// maxWindow keeps window + discontinuity + maxPayload inside the ring.
	maxWindow = 500 * time.Millisecond
	// commitBatch samples are written at once; with maxWindow it must fit
	// in the ring with room for a packet.
	commitBatch = SampleRate

	// driftPeriod and driftStep: every 250 packets (5 s of 20 ms packets)
	// the anchor follows the least delayed packet if it moved by more than
	// 10 ms, costing a 10 ms gap or overlap, far below an audible skip.
	driftPeriod = 250
	driftStep   = SampleRate / 100

	// RFC 3550 A.1: a sequence number this far ahead of, or behind, the
	// newest is a restart, not loss or reordering.
	maxDropout  = 3000
	maxMisorder = 100

	defaultWindow       = 200 * time.Millisecond
	defaultSyncInterval = 5 * time.Second
	sampleDur           = time.Second / SampleRate
)

// File is what a Writer writes to: *os.File in production, an in-memory or
// failing file in tests. Read is needed once, at Close, to hash the bytes
// as they are in the file rather than as we believe we wrote them.
type File interface {
	io.ReadWriteSeeker
	Sync() error
}

// Option configures a Writer.
type Option func(*Writer)

// WithMetrics makes the Writer report on m (shared by all writers).
func WithMetrics(m *Metrics) Option { return func(w *Writer) { w.m = m } }

// WithReorderWindow sets how long samples wait for late or reordered
// packets before they are committed to the file (default 200 ms, at most
// 500 ms). A longer window tolerates more jitter; a crash loses it too.
func WithReorderWindow(d time.Duration) Option {
	return func(w *Writer) { w.window = int64(min(max(d, 0), maxWindow) / sampleDur) }
}

// WithSyncInterval sets how often, in packet arrival time, WriteRTP rewrites
// the header and fsyncs (default 5 s). Zero disables it: the owner then
// calls Flush from its own timer, e.g. to keep fsync off the media path.
func WithSyncInterval(d time.Duration) Option {
	return func(w *Writer) { w.syncEvery = max(d, 0) }
}

// Stats counts what a Writer did with the packets it was given.
type Stats struct {
	Packets   uint64 // G.711 packets placed in the recording
	Ignored   uint64 // other payload types (DTMF events, comfort noise)
	Late      uint64 // dropped: arrived after their samples were committed
	Oversize  uint64 // dropped: payload over 200 ms
	Segments  uint64 // stream starts and re-anchors (SSRC change, jumps)
	Restarts  uint64 // of which sequence restarts on the same SSRC
	Realigned uint64 // anchor nudges for sender clock drift
}

// stream is one channel's mapping from RTP timestamp to timeline sample.
type stream struct {
	started  bool
	ssrc     uint32
	lastSeq  uint16 // sequence number of the newest packet
	refTS    uint32 // timestamp of the newest packet
	refPos   int64  // timeline sample of refTS
	segStart int64  // first sample written in this segment
	segEnd   int64  // one past the last sample written in this segment

	// Clock drift: the least transit seen over the last driftPeriod
	// packets. A sender's clock is never exactly ours (±50 ppm is ~30 ms
	// in 10 minutes), so the anchor is nudged when that minimum moves.
	minTransit int64
	periodPkts int
}

// Writer writes one call's recording: a stereo WAV whose timeline is the
// call's wall clock. Each packet is placed by its RTP timestamp relative
// to its stream's anchor, and a stream is anchored on the wall clock by
// arrival time (when it starts, changes SSRC or jumps), so loss and gaps
// become silence and both channels stay aligned. Samples wait in a small
// ring for reordered packets, then are committed to the file.
//
// A Writer is safe for concurrent use: both legs' relays and the owner's
// flush timer call it.
type Writer struct {
	mu        sync.Mutex
	f         File
	owned     io.Closer // closed by Close when the Writer opened the file
	m         *Metrics
	window    int64 // reorder window in samples
	syncEvery time.Duration

	originSet   bool
	origin      time.Time // wall clock of timeline sample 0
	dataStarted bool
	startPos    int64 // timeline sample of the file's first frame
	committed   int64 // timeline samples before this are in the file
	maxArrival  int64
	lastSync    time.Time
	streams     [Channels]stream
	ring        [Channels][]int16
	buf         []byte      // interleaved frames on their way to the file
	bufs        *writerBufs // ring and buf's storage, back to the pool at Close
	hdr         [headerSize]byte
	dataBytes   int64
	stats       Stats

	err    error // sticky: after a write failure nothing more is accepted
	closed bool
	sum    string
	dur    time.Duration
}

// writerBufs is a Writer's working memory, 128 KiB: allocated and zeroed
// for every call it was half of all the bytes a call setup allocated, so
// Writers reuse it through bufPool.
type writerBufs struct {
	ring [Channels][ringSize]int16
	buf  [ringSize * frameBytes]byte
}

var bufPool = sync.Pool{New: func() any { return new(writerBufs) }}

// getBufs returns buffers whose rings are silent (zero); buf is scratch.
func getBufs() *writerBufs { return bufPool.Get().(*writerBufs) }

// putBufs silences the rings (a re-anchored stream can leave samples
// behind) and returns b to the pool.
func putBufs(b *writerBufs) {
	for i := range b.ring {
		clear(b.ring[i][:])
	}
	bufPool.Put(b)
}

// release gives the buffers back once the Writer is closed (under w.mu):
// nothing reads them after that, and a bug that did would panic on nil.
func (w *Writer) release() {
	if w.bufs == nil {
		return
	}
	putBufs(w.bufs)
	w.bufs, w.buf = nil, nil
	w.ring = [Channels][]int16{}
}

// NewWriter starts a recording on f, which must be empty and positioned at
// its start. The Writer does not close f.
func NewWriter(f File, opts ...Option) (*Writer, error) {
	b := getBufs()
	w := &Writer{
		f:         f,
		window:    int64(defaultWindow / sampleDur),
		syncEvery: defaultSyncInterval,
		bufs:      b,
		buf:       b.buf[:],
	}
	for _, o := range opts {
		o(w)
	}
	w.ring[Operator] = b.ring[Operator][:]
	w.ring[Outside] = b.ring[Outside][:]
	// The header goes first and is synced, so that even a crash before the
	// first packet leaves a file Repair recognises.
	if err := w.syncHeader(); err != nil {
		w.release()
		return nil, err
	}
	w.m.addActive(1)
	return w, nil
}

// Create creates the recording file at path (see Path), refusing to
// overwrite an existing one, and starts a Writer on it that closes the file
// at Close.
func Create(path string, opts ...Option) (*Writer, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("%w: create %s: %w", ErrWriteFailed, dir, err)
	}
	// O_EXCL: a recording is evidence; a second call with the same id must
	// fail rather than truncate the first one.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return nil, fmt.Errorf("%w: create %s: %w", ErrWriteFailed, path, err)
	}
	w, err := NewWriter(f, opts...)
	if err == nil {
		// The new directory entry must survive a crash with the file.
		err = syncDir(dir)
		if err != nil {
			w.m.addActive(-1)
			w.release()
			err = fmt.Errorf("%w: %w", ErrWriteFailed, err)
		}
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	w.owned = f
	return w, nil
}

// WriteRTP places one RTP packet of channel ch in the recording. arrival is
// when the relay received it. Packets that are not PCMU/PCMA are ignored;
// late or malformed ones are dropped and counted, without error. An error
// (wrapping ErrWriteFailed) means the recording is broken: the Writer
// accepts nothing more and the call must end. pkt is not retained.
func (w *Writer) WriteRTP(ch Channel, pkt *rtp.Packet, arrival time.Time) error {
	if ch != Operator && ch != Outside {
		return fmt.Errorf("%w: %d", ErrInvalidChannel, ch)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	if w.err != nil {
		w.m.drop(DropFailed)
		return w.err
	}
	if pkt.PayloadType != ptPCMU && pkt.PayloadType != ptPCMA {
		w.stats.Ignored++
		return nil
	}
	n := int64(len(pkt.Payload))
	if n == 0 {
		return nil
	}
	if n > maxPayload {
		w.stats.Oversize++
		w.m.drop(DropOversize)
		return nil
	}
	if !w.originSet {
		// Sample 0 is one window before the first packet, so that anchors
		// refined to an earlier arrival (see below) still fit; the file
		// itself starts at the first sample written.
		w.origin = arrival.Add(-time.Duration(w.window) * sampleDur)
		w.originSet = true
		w.lastSync = arrival
	}
	apos := max(w.samplesAt(arrival), 0)
	w.maxArrival = max(w.maxArrival, apos)

	pos := w.place(&w.streams[ch], ch, pkt, apos)
	if pos < w.committed {
		w.stats.Late++
		w.m.drop(DropLate)
		return nil
	}
	if end := pos + n; end > w.committed+ringSize {
		// Only reachable with a clock far from the arrivals; committing
		// early is better than writing over uncommitted samples.
		if err := w.commit(end - ringSize); err != nil {
			return err
		}
	}
	w.decode(ch, pkt.PayloadType, pkt.Payload, pos)
	s := &w.streams[ch]
	s.segStart = min(s.segStart, pos)
	s.segEnd = max(s.segEnd, pos+n)
	w.stats.Packets++

	// Samples are committed in blocks of commitBatch: one write(2) per
	// second of audio, not one per packet (Flush and Close commit the rest).
	if target := w.maxArrival - w.window; target-w.committed >= commitBatch {
		if err := w.commit(target); err != nil {
			return err
		}
	}
	if w.syncEvery > 0 && arrival.Sub(w.lastSync) >= w.syncEvery {
		w.lastSync = arrival
		return w.syncHeader()
	}
	return nil
}

// place returns the timeline sample of pkt's first sample, re-anchoring or
// refining s as needed; a negative result means "late, drop it".
func (w *Writer) place(s *stream, ch Channel, pkt *rtp.Packet, apos int64) int64 {
	if !s.started || pkt.SSRC != s.ssrc {
		return w.newSegment(s, pkt, apos)
	}
	if d := int16(pkt.SequenceNumber - s.lastSeq); d >= maxDropout || d < -maxMisorder {
		// The sender restarted its numbering on the same SSRC (a carrier
		// re-INVITE does): a new segment, not stale packets to drop.
		w.stats.Restarts++
		return w.newSegment(s, pkt, apos)
	}
	// Sequence numbers, not timestamps, say which packet is the newest: a
	// stale packet and a timestamp reset both go backwards in time, only
	// the reset goes forwards in sequence.
	newer := int16(pkt.SequenceNumber-s.lastSeq) > 0
	// int32 difference: correct across the uint32 wraparound, and the
	// reference follows the newest packet so it never grows large.
	rel := int64(int32(pkt.Timestamp - s.refTS))
	pos := s.refPos + rel
	transit := apos - pos // how much later than its anchor predicts
	switch {
	case transit > discontinuity || transit < -discontinuity:
		if !newer {
			return -1 // a straggler from before the jump, or long lost
		}
		// Timestamp jump or a pause with a frozen timestamp (hold): the
		// timestamp no longer says where we are, the wall clock does.
		return w.newSegment(s, pkt, apos)
	case newer && pos < w.committed:
		// The newest packet is already behind the file: the sender's
		// clock has drifted behind ours by more than the window. Re-anchor
		// rather than drop everything until the 1 s threshold.
		return w.newSegment(s, pkt, apos)
	case transit < 0 && s.segStart+transit >= w.committed:
		// This packet crossed the network faster than the one the anchor
		// came from: the anchor carried that one's jitter. Move the young
		// segment earlier while none of it is committed, so the anchor
		// ends at the least delayed packet and both channels line up.
		w.shift(ch, s, transit)
		pos += transit
	}
	if newer {
		s.lastSeq, s.refTS, s.refPos = pkt.SequenceNumber, pkt.Timestamp, pos
	}
	s.minTransit = min(s.minTransit, apos-pos)
	if s.periodPkts++; s.periodPkts >= driftPeriod {
		if s.minTransit > driftStep || s.minTransit < -driftStep {
			s.refPos += s.minTransit // this packet stays put, later ones move
			w.stats.Realigned++
		}
		s.minTransit, s.periodPkts = math.MaxInt64, 0
	}
	return pos
}

func (w *Writer) newSegment(s *stream, pkt *rtp.Packet, apos int64) int64 {
	pos := max(apos, w.committed)
	*s = stream{
		started: true, ssrc: pkt.SSRC, lastSeq: pkt.SequenceNumber, refTS: pkt.Timestamp,
		refPos: pos, segStart: pos, segEnd: pos, minTransit: math.MaxInt64,
	}
	w.stats.Segments++
	return pos
}

// shift moves the uncommitted samples of s by d (< 0) samples.
func (w *Writer) shift(ch Channel, s *stream, d int64) {
	r := w.ring[ch]
	for p := s.segStart; p < s.segEnd; p++ {
		r[(p+d)&ringMask] = r[p&ringMask]
	}
	for p := max(s.segEnd+d, s.segStart); p < s.segEnd; p++ {
		r[p&ringMask] = 0
	}
	s.segStart += d
	s.segEnd += d
	s.refPos += d
}

func (w *Writer) decode(ch Channel, pt uint8, payload []byte, pos int64) {
	r := w.ring[ch]
	if pt == ptPCMU {
		for i, b := range payload {
			r[(pos+int64(i))&ringMask] = g711.DecodeUlawFrame(b)
		}
		return
	}
	for i, b := range payload {
		r[(pos+int64(i))&ringMask] = g711.DecodeAlawFrame(b)
	}
}

// commit writes the timeline up to (not including) sample target to the
// file, silence where nothing was placed, and clears those ring slots.
func (w *Writer) commit(target int64) error {
	if !w.dataStarted {
		// The recording starts with the first media: the earliest sample
		// placed, once no refinement can move it any more.
		start := target
		for i := range w.streams {
			if s := &w.streams[i]; s.started && s.segStart < start {
				start = s.segStart
			}
		}
		if start >= target {
			return nil
		}
		w.dataStarted, w.startPos, w.committed = true, start, start
	}
	for w.committed < target {
		k := min(target-w.committed, int64(len(w.buf)/frameBytes))
		if w.dataBytes+k*frameBytes > maxDataBytes {
			return w.fail(ErrTooLarge)
		}
		b := w.buf[:k*frameBytes]
		left, right := w.ring[Operator], w.ring[Outside]
		for i := range k {
			j := (w.committed + i) & ringMask
			binary.LittleEndian.PutUint16(b[i*frameBytes:], uint16(left[j]))
			binary.LittleEndian.PutUint16(b[i*frameBytes+2:], uint16(right[j]))
			left[j], right[j] = 0, 0
		}
		if err := w.write(b); err != nil {
			return err
		}
		w.committed += k
		w.dataBytes += int64(len(b))
		w.m.addBytes(len(b))
	}
	return nil
}

func (w *Writer) write(b []byte) error {
	n, err := w.f.Write(b)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return w.fail(err)
	}
	return nil
}

// syncHeader rewrites the header with the current sizes and fsyncs, so a
// crash loses at most what was written since: Repair recovers the rest
// from the file length anyway, the header makes the file playable as is.
func (w *Writer) syncHeader() error {
	putHeader(&w.hdr, uint32(w.dataBytes))
	if _, err := w.f.Seek(0, io.SeekStart); err != nil {
		return w.fail(err)
	}
	if err := w.write(w.hdr[:]); err != nil {
		return err
	}
	if _, err := w.f.Seek(headerSize+w.dataBytes, io.SeekStart); err != nil {
		return w.fail(err)
	}
	if err := w.f.Sync(); err != nil {
		return w.fail(err)
	}
	return nil
}

func (w *Writer) fail(err error) error {
	w.err = fmt.Errorf("%w: %w", ErrWriteFailed, err)
	w.m.writeError()
	return w.err
}

// Flush commits everything older than the reorder window before now
// (silence if no media came, e.g. both sides on hold), rewrites the header
// and fsyncs. The owner calls it from a timer so the 5 s crash bound holds
// when no packets arrive to drive it.
func (w *Writer) Flush(now time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	if w.err != nil {
		return w.err
	}
	if w.originSet {
		if target := w.samplesAt(now) - w.window; target > w.committed {
			if err := w.commit(target); err != nil {
				return err
			}
		}
	}
	w.lastSync = now
	return w.syncHeader()
}

// Close ends the recording at end (the call's hang-up): both channels are
// padded with silence to the same length, the final header is written and
// synced, and the SHA-256 (hex) of the complete file is returned with the
// recording's duration. Close is idempotent; after a write failure it
// returns that failure, and it always releases the file it opened.
func (w *Writer) Close(end time.Time) (sha256Hex string, duration time.Duration, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return w.sum, w.dur, w.err
	}
	w.closed = true
	w.m.addActive(-1)
	err = w.finish(end)
	w.release()
	if w.owned != nil {
		if cerr := w.owned.Close(); cerr != nil && err == nil {
			err = w.fail(cerr)
		}
	}
	if err != nil {
		return "", 0, err
	}
	w.m.complete()
	return w.sum, w.dur, nil
}

func (w *Writer) finish(end time.Time) error {
	if w.err != nil {
		return w.err
	}
	if w.originSet {
		// Pad to the hang-up, but never cut audio already placed past it
		// (a peer's clock may run a little ahead of ours).
		target := w.samplesAt(end)
		for i := range w.streams {
			if s := &w.streams[i]; s.started {
				target = max(target, s.segEnd)
			}
		}
		if err := w.commit(target); err != nil {
			return err
		}
	}
	if err := w.syncHeader(); err != nil {
		return err
	}
	if _, err := w.f.Seek(0, io.SeekStart); err != nil {
		return w.fail(err)
	}
	h := sha256.New()
	n, err := io.CopyBuffer(h, io.LimitReader(w.f, headerSize+w.dataBytes), w.buf)
	if err == nil && n != headerSize+w.dataBytes {
		err = fmt.Errorf("hash: read %d of %d bytes", n, headerSize+w.dataBytes)
	}
	if err != nil {
		return w.fail(err)
	}
	w.sum = hex.EncodeToString(h.Sum(nil))
	w.dur = framesDuration(w.dataBytes / frameBytes)
	return nil
}

// discard releases a Writer whose recording is abandoned before any audio
// (its index row could not be written): the caller removes the file.
func (w *Writer) discard() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.closed = true
	w.m.addActive(-1)
	w.release()
	if w.owned != nil {
		w.owned.Close()
	}
}

// Start is the wall-clock time of the recording's first frame (zero before
// any audio was committed).
func (w *Writer) Start() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.dataStarted {
		return time.Time{}
	}
	return w.origin.Add(time.Duration(w.startPos) * sampleDur)
}

// Stats returns the packet counters so far.
func (w *Writer) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

// samplesAt is the timeline sample of wall-clock time t; dividing by the
// exact 125 µs sample period cannot overflow for any real call.
func (w *Writer) samplesAt(t time.Time) int64 {
	return int64(t.Sub(w.origin) / sampleDur)
}

// fsyncDir makes dir's entries durable; use syncDir, which shares it.
func fsyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
