package media

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Goertzel returns the power of pcm at freq (8 kHz), normalised by the
// length so it compares across windows.
func Goertzel(pcm []int16, freq float64) float64 {
	if len(pcm) == 0 {
		return 0
	}
	w := 2 * math.Pi * freq / SampleRate
	coeff := 2 * math.Cos(w)
	var s1, s2 float64
	for _, x := range pcm {
		s0 := float64(x) + coeff*s1 - s2
		s2, s1 = s1, s0
	}
	p := s1*s1 + s2*s2 - coeff*s1*s2
	return p / float64(len(pcm)) / float64(len(pcm))
}

// Self-test tones: the operator's and the customer's voices, and the
// supervisor's whisper. Each is a multiple of 50 Hz, so a 20 ms frame
// holds whole cycles of it: within one frame the tones are orthogonal and
// the voices leave no trace at the whisper's frequency (440 Hz leaked to
// -39 dB there, a hair from the -40 dB leak limit).
const (
	selfTestOperatorHz   = 450
	selfTestCustomerHz   = 650
	selfTestSupervisorHz = 1750
)

// Errors of the whisper self-test. A leak stops the start and is never
// retried away; an inconclusive attempt (the machine too busy to carry the
// test's audio) is retried a bounded number of times.
var (
	ErrWhisperLeak          = errors.New("whisper self-test: the supervisor's whisper reached the customer leg")
	ErrSelfTestInconclusive = errors.New("whisper self-test: inconclusive")
)

// The verdict works on 20 ms frames (one RTP packet each), levels in dB
// relative to a test tone's own level in a frame. Judging frame by frame
// keeps it independent of timing: under load the whisper reaches the
// operator in pieces whose phases do not line up (the monitor's jitter
// buffer drops late audio and resynchronises), and a Goertzel over the
// whole capture then cancels itself out (measured at -19 dB on a loaded
// 2-core host, where the old check wanted -10 dB) although every piece is
// loud and clear.
const (
	// heardDB: a tone is heard in a frame at this level or above. A frame
	// half filled by a tone is at -6 dB.
	heardDB = -20.0
	// leakFrameDB: the whisper in any frame the customer received at this
	// level or above is a leak. A leaked whisper arrives at about 0 dB;
	// G.711 noise and the clicks of lost packets stay below -50 dB.
	leakFrameDB = -30.0
	// leakMeanDB: the whisper's mean level over every frame the customer
	// received, at this level or above, is a leak (a faint, steady one).
	leakMeanDB = -40.0
	// silenceDB is what a level of zero power is logged as.
	silenceDB = -120.0
)

// What an attempt needs before its "no leak" means something: the
// customer leg carried the call while the whisper was on, the operator
// heard the whisper both while the operator talked and while the operator
// was silent (the relay then sends the whisper in packets of its own),
// and the supervisor heard the call.
const (
	minCustomerVoiceFrames   = 5
	minCustomerWhisperFrames = 5 // frames the customer received while the whisper was on
	phaseWhisperFrames       = 8 // whisper frames the operator hears in each phase
	minSupervisorFrames      = 5
)

// selfTestRef is a test tone's power in a frame, the 0 dB of the levels.
var selfTestRef = Goertzel(Tone(selfTestSupervisorHz, 100*time.Millisecond)[FrameSamples:2*FrameSamples], selfTestSupervisorHz)

// levelDB is p in dB relative to selfTestRef.
func levelDB(p float64) float64 {
	if p <= 0 {
		return silenceDB
	}
	return max(10*math.Log10(p/selfTestRef), silenceDB)
}

// frameLevels returns the level of hz in each whole 20 ms frame of pcm.
func frameLevels(pcm []int16, hz float64) []float64 {
	out := make([]float64, 0, len(pcm)/FrameSamples)
	for off := 0; off+FrameSamples <= len(pcm); off += FrameSamples {
		out = append(out, levelDB(Goertzel(pcm[off:off+FrameSamples], hz)))
	}
	return out
}

// framesHeard counts the frames of pcm where hz is heard.
func framesHeard(pcm []int16, hz float64) int {
	n := 0
	for _, l := range frameLevels(pcm, hz) {
		if l >= heardDB {
			n++
		}
	}
	return n
}

// party is one phone of the self-test.
type party uint8

const (
	partyOperator party = iota
	partyCustomer
	partySupervisor
	numParties
)

func (p party) String() string { return [...]string{"operator", "customer", "supervisor"}[p] }

// whisperCapture is what the self-test's phones received in one attempt.
type whisperCapture struct {
	pcm     [numParties][]int16
	packets [numParties]int
	// custDuringWhisper counts the frames the customer received between
	// the whisper's start and the end of the phase where the operator talks.
	custDuringWhisper int
	// incomplete says why the attempt stopped early ("" when it ran through).
	incomplete string
}

// whisperMeasure is what the verdict is made of; every attempt logs it.
type whisperMeasure struct {
	packets                       [numParties]int
	frames                        [numParties]int
	custVoice, custDuringWhisper  int
	custLeakFrames                int
	custLeakMaxDB, custLeakMeanDB float64
	opWhisper, opCustomer         int
	supCall                       int
}

func (m whisperMeasure) logAttrs() []any {
	return []any{
		"packets_operator", m.packets[partyOperator], "packets_customer", m.packets[partyCustomer], "packets_supervisor", m.packets[partySupervisor],
		"customer_voice_frames", m.custVoice, "customer_frames_during_whisper", m.custDuringWhisper,
		"customer_whisper_frames", m.custLeakFrames,
		"customer_whisper_max_db", math.Round(m.custLeakMaxDB*10) / 10, "customer_whisper_mean_db", math.Round(m.custLeakMeanDB*10) / 10,
		"operator_whisper_frames", m.opWhisper, "operator_customer_frames", m.opCustomer,
		"supervisor_call_frames", m.supCall,
	}
}

// judgeWhisper decides on what each phone actually received. A leak is
// judged first and on everything the customer got, so that no shortage
// elsewhere can turn a leak into a retry. Shortages are inconclusive.
func judgeWhisper(c whisperCapture) (whisperMeasure, error) {
	m := whisperMeasure{packets: c.packets, custDuringWhisper: c.custDuringWhisper, custLeakMaxDB: silenceDB}
	for p := range numParties {
		m.frames[p] = len(c.pcm[p]) / FrameSamples
	}
	var sum float64
	leak := frameLevels(c.pcm[partyCustomer], selfTestSupervisorHz)
	for _, l := range leak {
		sum += math.Pow(10, l/10)
		m.custLeakMaxDB = max(m.custLeakMaxDB, l)
		if l >= leakFrameDB {
			m.custLeakFrames++
		}
	}
	m.custLeakMeanDB = silenceDB
	if len(leak) > 0 {
		m.custLeakMeanDB = levelDB(sum / float64(len(leak)) * selfTestRef)
	}
	m.custVoice = framesHeard(c.pcm[partyCustomer], selfTestOperatorHz)
	m.opWhisper = framesHeard(c.pcm[partyOperator], selfTestSupervisorHz)
	m.opCustomer = framesHeard(c.pcm[partyOperator], selfTestCustomerHz)
	sup := c.pcm[partySupervisor]
	m.supCall = max(framesHeard(sup, selfTestOperatorHz), framesHeard(sup, selfTestCustomerHz))

	switch {
	case m.custLeakFrames > 0:
		return m, fmt.Errorf("%w: in %d of %d frames, up to %.1f dB of the whisper's level", ErrWhisperLeak, m.custLeakFrames, len(leak), m.custLeakMaxDB)
	case m.custLeakMeanDB >= leakMeanDB:
		return m, fmt.Errorf("%w: faintly, %.1f dB of the whisper's level over %d frames", ErrWhisperLeak, m.custLeakMeanDB, len(leak))
	case c.incomplete != "":
		return m, fmt.Errorf("%w: %s", ErrSelfTestInconclusive, c.incomplete)
	case m.custVoice < minCustomerVoiceFrames || m.custDuringWhisper < minCustomerWhisperFrames:
		return m, fmt.Errorf("%w: the customer leg received %d frames of the operator's voice, %d of them during the whisper (want %d and %d)",
			ErrSelfTestInconclusive, m.custVoice, m.custDuringWhisper, minCustomerVoiceFrames, minCustomerWhisperFrames)
	case m.opWhisper < 2*phaseWhisperFrames:
		return m, fmt.Errorf("%w: the operator heard the whisper in %d frames (want %d)", ErrSelfTestInconclusive, m.opWhisper, 2*phaseWhisperFrames)
	case m.supCall < minSupervisorFrames:
		return m, fmt.Errorf("%w: the supervisor heard the call in %d frames (want %d)", ErrSelfTestInconclusive, m.supCall, minSupervisorFrames)
	}
	return m, nil
}

// SelfTestOption configures SelfTestWhisper.
type SelfTestOption func(*selfTest)

// WithSelfTestLogger logs each attempt's measurements on log.
func WithSelfTestLogger(log *slog.Logger) SelfTestOption {
	return func(s *selfTest) { s.log = log }
}

type selfTest struct {
	log      *slog.Logger
	attempts int
	timeout  time.Duration // of one attempt
	mode     MonitorMode   // Whisper; tests make a leak with Barge
	// stall, when set, is how long phone p is held up before sending its
	// frame k: tests play a starved machine with it.
	stall func(p party, k int) time.Duration
	// poll is how often the phases look at what arrived.
	poll time.Duration
}

// SelfTestWhisper runs a whisper through a real Relay and Monitor on ip
// (loopback sockets from pool) and fails unless the operator hears the
// supervisor and the customer does not. plateau serve runs it at start and
// refuses to start if the whisper could reach a customer.
//
// An attempt has two phases, each ended by what has arrived, not by a
// clock: the operator and the customer talk; once both hear each other the
// supervisor whispers; once the operator has heard the whisper the
// operator falls silent (the relay then sends the whisper in packets of
// its own) until the operator has heard it again. What the customer
// received is then searched, frame by frame, for the whisper.
//
// A leak ends the test at once with ErrWhisperLeak. An attempt that could
// not show the paths work (too little audio arrived, a phase timed out: a
// busy machine) is retried, up to 3 attempts, then ErrSelfTestInconclusive.
func SelfTestWhisper(ctx context.Context, pool *PortPool, ip netip.Addr, opts ...SelfTestOption) error {
	return newSelfTest(opts...).run(ctx, pool, ip)
}

func newSelfTest(opts ...SelfTestOption) *selfTest {
	st := &selfTest{
		log: slog.New(slog.DiscardHandler), attempts: 3, timeout: 3 * time.Second, mode: Whisper,
		poll: 10 * time.Millisecond,
	}
	for _, o := range opts {
		o(st)
	}
	return st
}

func (st *selfTest) run(ctx context.Context, pool *PortPool, ip netip.Addr) error {
	var last error
	for n := 1; n <= st.attempts; n++ {
		start := time.Now()
		m, err := st.attempt(ctx, pool, ip)
		attrs := append([]any{"attempt", n, "of", st.attempts, "took", time.Since(start).Round(time.Millisecond)}, m.logAttrs()...)
		switch {
		case err == nil:
			st.log.Info("whisper self-test passed", attrs...)
			return nil
		case errors.Is(err, ErrWhisperLeak):
			st.log.Error("whisper self-test found a leak", append(attrs, "err", err)...)
			return err
		case !errors.Is(err, ErrSelfTestInconclusive):
			return err
		}
		st.log.Warn("whisper self-test inconclusive", append(attrs, "err", err)...)
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("whisper self-test: %w (last attempt: %w)", err, last)
	}
	return fmt.Errorf("%w after %d attempts (last: %w)", ErrSelfTestInconclusive, st.attempts, last)
}

// attempt runs one self-test on fresh sockets and judges it.
func (st *selfTest) attempt(parent context.Context, pool *PortPool, ip netip.Addr) (whisperMeasure, error) {
	ctx, cancel := context.WithTimeout(parent, st.timeout)
	defer cancel()
	r, err := NewRelay(pool, ip)
	if err != nil {
		return whisperMeasure{}, fmt.Errorf("whisper self-test: %w", err)
	}
	defer r.Close()
	var phones [numParties]*Endpoint
	defer func() {
		for _, e := range phones {
			if e != nil {
				e.Close()
			}
		}
	}()
	codecs := [numParties]Codec{PCMU.Codec(), PCMA.Codec(), PCMU.Codec()}
	for p := range numParties {
		if phones[p], err = NewEndpoint(nil, ip, codecs[p]); err != nil {
			return whisperMeasure{}, fmt.Errorf("whisper self-test: %w", err)
		}
	}
	op, cust, sup := phones[partyOperator], phones[partyCustomer], phones[partySupervisor]
	r.SetRemote(LegOperator, op.LocalAddr(), codecs[partyOperator], 101)
	r.SetRemote(LegOutside, cust.LocalAddr(), codecs[partyCustomer], 101)
	m, err := NewMonitor(pool, ip, st.mode)
	if err != nil {
		return whisperMeasure{}, fmt.Errorf("whisper self-test: %w", err)
	}
	defer m.Close()
	m.SetRemote(sup.LocalAddr(), codecs[partySupervisor], 101)
	if err := m.Attach(r); err != nil {
		return whisperMeasure{}, fmt.Errorf("whisper self-test: %w", err)
	}
	op.SetRemote(netip.AddrPortFrom(ip, uint16(r.LocalPort(LegOperator))))
	cust.SetRemote(netip.AddrPortFrom(ip, uint16(r.LocalPort(LegOutside))))
	sup.SetRemote(netip.AddrPortFrom(ip, uint16(m.LocalPort())))

	// Each phone talks until stopped; the tones outlast the attempt.
	var wg sync.WaitGroup
	var stop [numParties]context.CancelFunc
	talk := func(p party, hz float64) {
		pctx, pcancel := context.WithCancel(ctx)
		stop[p] = pcancel
		wg.Add(1)
		snd := &selfTestSender{conn: phones[p].conn, to: phones[p].remote, codec: codecs[p], ssrc: rand.Uint32()}
		go func() { defer wg.Done(); st.play(pctx, p, snd, Tone(hz, st.timeout)) }()
	}

	heard := func(p party, hz float64) int { return framesHeard(phones[p].PCM(), hz) }
	// A phase ends early on a leak: no need to go on to refuse the start.
	leaked := func() bool {
		for _, l := range frameLevels(cust.PCM(), selfTestSupervisorHz) {
			if l >= leakFrameDB {
				return true
			}
		}
		return false
	}
	var c whisperCapture
	phase := func(cond func() bool, late string) bool {
		switch {
		case !st.waitFor(ctx, func() bool { return cond() || leaked() }):
			c.incomplete = late
		case !cond():
			c.incomplete = "stopped: the customer heard the whisper"
		}
		return c.incomplete == ""
	}
	talk(partyOperator, selfTestOperatorHz)
	talk(partyCustomer, selfTestCustomerHz)
	if phase(func() bool {
		return heard(partyCustomer, selfTestOperatorHz) >= minCustomerVoiceFrames && heard(partyOperator, selfTestCustomerHz) >= minCustomerVoiceFrames
	}, "the operator and the customer did not hear each other in time") {
		custBefore := cust.Received()
		talk(partySupervisor, selfTestSupervisorHz)
		ok := phase(func() bool { return heard(partyOperator, selfTestSupervisorHz) >= phaseWhisperFrames },
			"the operator did not hear the whisper in time while talking")
		c.custDuringWhisper = cust.Received() - custBefore
		if ok {
			stop[partyOperator]()
			phase(func() bool { return heard(partyOperator, selfTestSupervisorHz) >= 2*phaseWhisperFrames },
				"the operator did not hear the whisper in time while silent")
		}
	}
	for _, s := range stop {
		if s != nil {
			s()
		}
	}
	wg.Wait()
	st.settle(ctx, phones)
	for p, e := range phones {
		c.pcm[p], c.packets[p] = e.PCM(), e.Received()
	}
	return judgeWhisper(c)
}

// waitFor polls cond until it holds (true) or ctx ends (false).
func (st *selfTest) waitFor(ctx context.Context, cond func() bool) bool {
	t := time.NewTicker(st.poll)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return cond()
		case <-t.C:
		}
	}
	return true
}

// settle waits, after the phones fell silent, until no packet has arrived
// for three frames, so that what is still in flight (a leak included) is
// judged. It gives up after 500 ms or when ctx ends.
func (st *selfTest) settle(ctx context.Context, phones [numParties]*Endpoint) {
	count := func() (n int) {
		for _, e := range phones {
			n += e.Received()
		}
		return n
	}
	t := time.NewTicker(ptime)
	defer t.Stop()
	deadline := time.NewTimer(500 * time.Millisecond)
	defer deadline.Stop()
	last, quiet := count(), 0
	for quiet < 3 {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case <-t.C:
		}
		if n := count(); n == last {
			quiet++
		} else {
			last, quiet = n, 0
		}
	}
}

// selfTestSender is a phone's way out: its socket, where it sends and how.
type selfTestSender struct {
	conn  *net.UDPConn
	to    netip.AddrPort
	codec Codec
	ssrc  uint32
	seq   uint16
	ts    uint32
	pkt   [12 + FrameSamples]byte
}

// send sends frame k of pcm (silence-padded) as one RTP packet.
func (s *selfTestSender) send(pcm []int16, k int) error {
	var frame [FrameSamples]int16
	copy(frame[:], pcm[k*FrameSamples:])
	s.seq++
	s.ts += FrameSamples
	writeHeader(s.pkt[:12], s.codec.PayloadType, k == 0, s.seq, s.ts, s.ssrc)
	encodeFrame(s.codec.Encoding, s.pkt[12:], frame[:])
	_, err := s.conn.WriteToUDPAddrPort(s.pkt[:], s.to)
	return err
}

// play sends pcm in 20 ms packets on a wall clock until it ends or ctx
// does. After a stall it sends the frames due at once, as a phone's audio
// clock would: a sender that instead fell behind for good (a ticker drops
// the ticks it missed) would stay late for the monitor's jitter buffer,
// which drops late audio, and the operator would never hear the whisper
// again in that attempt.
func (st *selfTest) play(ctx context.Context, p party, s *selfTestSender, pcm []int16) error {
	frames := (len(pcm) + FrameSamples - 1) / FrameSamples
	t := time.NewTicker(ptime)
	defer t.Stop()
	start := time.Now()
	for k := 0; k < frames; {
		due := min(int(time.Since(start)/ptime)+1, frames)
		for ; k < due; k++ {
			if st.stall != nil {
				if d := st.stall(p, k); d > 0 && !sleepCtx(ctx, d) {
					return ctx.Err()
				}
			}
			if err := s.send(pcm, k); err != nil {
				return fmt.Errorf("whisper self-test: %s sends: %w", p, err)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// sleepCtx sleeps d unless ctx ends first (false).
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
