package media

import (
	"fmt"
	"math"
	"sync"

	"github.com/pion/rtp"
)

// MonitorMode is how a supervisor takes part in an operator's call.
type MonitorMode uint8

const (
	// Listen: the supervisor hears both sides; nobody hears the supervisor.
	Listen MonitorMode = iota
	// Whisper: the supervisor hears both sides and is heard by the
	// operator only, never by the customer.
	Whisper
	// Barge: a three-way call; everyone hears everyone.
	Barge
	numModes
)

func (m MonitorMode) String() string {
	switch m {
	case Listen:
		return "listen"
	case Whisper:
		return "whisper"
	case Barge:
		return "barge"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// ParseMonitorMode reads "listen", "whisper" or "barge".
func ParseMonitorMode(s string) (MonitorMode, error) {
	for m := range numModes {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("monitor mode %q is not listen, whisper or barge", s)
}

// MixInput is one audio source of a monitored call.
type MixInput uint8

const (
	InOperator   MixInput = iota // what the operator's phone sends
	InCustomer                   // what the outside party sends
	InSupervisor                 // what the supervisor's phone sends
	numInputs
)

func (i MixInput) String() string {
	return [...]string{"operator", "customer", "supervisor"}[i]
}

// MixOutput is one destination of a monitored call's audio.
type MixOutput uint8

const (
	OutOperator   MixOutput = iota // what the operator hears
	OutCustomer                    // what the outside party hears
	OutSupervisor                  // what the supervisor hears
	// OutRecordOperator is the recording's operator (left) channel: what
	// was sent toward the outside party, so its row equals OutCustomer's.
	OutRecordOperator
	// OutRecordCustomer is the recording's outside (right) channel: what
	// was sent toward the operator, so its row equals OutOperator's (a
	// whisper is recorded there, with what the operator heard).
	OutRecordCustomer
	numOutputs
)

func (o MixOutput) String() string {
	return [...]string{"operator", "customer", "supervisor", "record-operator", "record-customer"}[o]
}

// MixMatrix says, per mode, which inputs each output gets. It is the one
// place where "whisper never reaches the customer" is decided; the tests
// check it row by row and the start-up self-test checks it on real sockets.
// The recording rows are not mixed separately: the relay records each
// frame it sends, so they hold by construction (a test checks they equal
// the rows of what each party hears).
var MixMatrix = [numModes][numOutputs][numInputs]bool{
	Listen: {
		OutOperator:       {InCustomer: true},
		OutCustomer:       {InOperator: true},
		OutSupervisor:     {InOperator: true, InCustomer: true},
		OutRecordOperator: {InOperator: true},
		OutRecordCustomer: {InCustomer: true},
	},
	Whisper: {
		OutOperator:       {InCustomer: true, InSupervisor: true},
		OutCustomer:       {InOperator: true},
		OutSupervisor:     {InOperator: true, InCustomer: true},
		OutRecordOperator: {InOperator: true},
		OutRecordCustomer: {InCustomer: true, InSupervisor: true},
	},
	Barge: {
		OutOperator:       {InCustomer: true, InSupervisor: true},
		OutCustomer:       {InOperator: true, InSupervisor: true},
		OutSupervisor:     {InOperator: true, InCustomer: true},
		OutRecordOperator: {InOperator: true, InSupervisor: true},
		OutRecordCustomer: {InCustomer: true, InSupervisor: true},
	},
}

// DirectPath marks the matrix entries the Relay delivers itself, packet by
// packet, while the supervisor is not heard in that direction: the call's
// own two-way audio and the recording of each side.
var DirectPath = [numOutputs][numInputs]bool{
	OutOperator:       {InCustomer: true},
	OutCustomer:       {InOperator: true},
	OutRecordOperator: {InOperator: true},
	OutRecordCustomer: {InCustomer: true},
}

// Jitter buffer geometry: 2048 samples (256 ms, a power of two so the
// ring index survives the RTP timestamp's wraparound) of room, playout
// 2 frames (40 ms) behind the newest packet when a stream (re)starts.
//
// The playout point then follows the stream: a phone's clock is not the
// monitor's (100 ppm slow drifts 40 ms in under 7 minutes) and a network
// path can change its delay at once. Without re-anchoring, a stream that
// fell 40–256 ms behind would be dropped as late for good (the supervisor
// hears nothing, or the whisper goes silent) and one that ran ahead would
// pile up latency. So, per window of jbWindow packets:
//   - jbLateMax late packets (one straggler is reordering or a spike; two
//     is a stream that lags) move the playout point back to jbDelay
//     before the latest: the listener hears a short gap, then the stream;
//   - if the window's smallest margin (packet start minus playout point)
//     fell under jbMinMargin (a slow clock, before a packet is late), the
//     point moves back so that margin is jbDelay again: under 40 ms of
//     silence is inserted, no audio is lost;
//   - if it rose over jbMaxMargin (a fast clock, or a path that got
//     shorter), the point moves forward the same way, skipping that
//     excess audio once.
//
// Each is a few integer updates per packet: nothing allocates.
const (
	jbSamples   = 2048
	jbDelay     = 2 * FrameSamples
	jbWindow    = 50 // packets, 1 s at 20 ms
	jbLateMax   = 2
	jbMinMargin = FrameSamples / 2       // 10 ms
	jbMaxMargin = jbDelay + FrameSamples // 60 ms
)

// jitterBuffer turns one input's RTP packets into a steady 20 ms frame
// stream, placing samples by RTP timestamp so reordered packets land where
// they belong and missing ones read as silence. It resynchronises when the
// stream changes SSRC or jumps outside its window (hold, restart), and
// re-anchors its playout point when the stream drifts (see jbWindow).
type jitterBuffer struct {
	mu      sync.Mutex
	ring    [jbSamples]int16
	started bool
	ssrc    uint32
	head    uint32 // RTP timestamp of the next sample to play out
	pcm     [1500]int16

	// The current window: packets placed, late ones, smallest margin
	// (packet start minus head) seen.
	winN, winLate int
	winMin        int32

	late      uint64 // packets (partly) dropped as already played out
	reanchors uint64 // playout point moved without a resync
}

// write places a packet's payload (G.711, decoded with enc).
func (j *jitterBuffer) write(enc Encoding, pkt *rtp.Packet) {
	n := min(len(pkt.Payload), len(j.pcm))
	if n == 0 {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	decodeFrame(enc, j.pcm[:n], pkt.Payload[:n])
	j.place(pkt.SSRC, pkt.Timestamp, j.pcm[:n])
}

// writePCM places decoded samples starting at RTP timestamp ts.
func (j *jitterBuffer) writePCM(ssrc, ts uint32, pcm []int16) {
	if len(pcm) == 0 || len(pcm) > jbSamples/2 {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.place(ssrc, ts, pcm)
}

// place puts pcm in the ring at ts, resynchronising on a new stream and
// re-anchoring on a drifting one.
func (j *jitterBuffer) place(ssrc, ts uint32, pcm []int16) {
	n := len(pcm)
	rel := int32(ts - j.head)
	if !j.started || ssrc != j.ssrc || rel < -jbSamples || rel+int32(n) > jbSamples {
		clear(j.ring[:])
		j.started, j.ssrc = true, ssrc
		j.head = ts - jbDelay
		rel = jbDelay
		j.newWindow()
	}
	if rel < 0 {
		j.late++
		j.winLate++
		if j.winLate >= jbLateMax {
			j.moveHead(ts - jbDelay)
			rel = jbDelay
			j.newWindow()
		}
	}
	j.winN++
	j.winMin = min(j.winMin, rel)
	if j.winN >= jbWindow {
		switch {
		case j.winMin < jbMinMargin || j.winMin > jbMaxMargin:
			// Keep the window's worst packet jbDelay ahead of playout.
			j.moveHead(j.head + uint32(j.winMin) - jbDelay)
			rel = int32(ts - j.head)
		}
		j.newWindow()
	}
	for i, s := range pcm {
		if int32(i)+rel < 0 {
			continue // already played out
		}
		j.ring[(ts+uint32(i))%jbSamples] = s
	}
}

// newWindow starts a drift window.
func (j *jitterBuffer) newWindow() {
	j.winN, j.winLate, j.winMin = 0, 0, math.MaxInt32
}

// moveHead moves the playout point to h (less than a ring away). The
// slots between the old and the new point are cleared: skipped audio
// going forward; going back, played-out slots that may alias audio a
// ring ahead, now outside the window.
func (j *jitterBuffer) moveHead(h uint32) {
	d := int32(h - j.head)
	from, k := j.head, d
	if d < 0 {
		from, k = h, -d
	}
	for i := range min(k, jbSamples) {
		j.ring[(from+uint32(i))%jbSamples] = 0
	}
	j.head = h
	j.reanchors++
}

// read plays out the next frame into dst and frees its slots. It
// returns the buffer's re-anchors so far (for the metric).
func (j *jitterBuffer) read(dst *[FrameSamples]int16) (reanchors uint64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.started {
		clear(dst[:])
		return j.reanchors
	}
	for i := range dst {
		k := (j.head + uint32(i)) % jbSamples
		dst[i], j.ring[k] = j.ring[k], 0
	}
	j.head += FrameSamples
	return j.reanchors
}

func (j *jitterBuffer) reset() {
	j.mu.Lock()
	j.started = false
	clear(j.ring[:])
	j.mu.Unlock()
}

// Mixer mixes a monitored call's three inputs on 20 ms frames, one
// jitter buffer per input, with saturating sums. Write may be called from
// any goroutine; Next and Mix belong to one goroutine (the frame clock).
type Mixer struct {
	in  [numInputs]jitterBuffer
	cur [numInputs][FrameSamples]int16
	// reanchors is the inputs' re-anchors so far, as of the last Next.
	reanchors uint64
}

// NewMixer returns an empty mixer.
func NewMixer() *Mixer { return &Mixer{} }

// Write gives the mixer one RTP packet of input in, encoded with enc.
func (m *Mixer) Write(in MixInput, enc Encoding, pkt *rtp.Packet) {
	if in < numInputs {
		m.in[in].write(enc, pkt)
	}
}

// WritePCM gives the mixer decoded audio of input in, starting at RTP
// timestamp ts of stream ssrc.
func (m *Mixer) WritePCM(in MixInput, ssrc, ts uint32, pcm []int16) {
	if in < numInputs {
		m.in[in].writePCM(ssrc, ts, pcm)
	}
}

// Reset forgets an input's buffered audio (the stream restarts).
func (m *Mixer) Reset(in MixInput) { m.in[in].reset() }

// Next advances every input by one frame.
func (m *Mixer) Next() {
	var n uint64
	for i := range m.in {
		n += m.in[i].read(&m.cur[i])
	}
	m.reanchors = n
}

// Mix writes into dst the current frame of output out in mode: the
// saturating sum of the inputs MixMatrix gives it, leaving out those the
// relay delivers directly when skipDirect is set. It reports whether any
// input was mixed (false: dst is silence and need not be sent).
func (m *Mixer) Mix(dst *[FrameSamples]int16, mode MonitorMode, out MixOutput, skipDirect bool) bool {
	var acc [FrameSamples]int32
	any := false
	for in := range numInputs {
		if !MixMatrix[mode%numModes][out][in] || skipDirect && DirectPath[out][in] {
			continue
		}
		any = true
		for i, s := range m.cur[in] {
			acc[i] += int32(s)
		}
	}
	for i, v := range acc {
		dst[i] = sat16(v)
	}
	return any
}
