package recordings

import (
	"encoding/binary"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/zaf/g711"
)

var errInjected = errors.New("injected I/O error")

// memFile is an in-memory File. It can fail after a number of bytes or on
// Sync, and keeps a snapshot of its content at each Sync: that snapshot is
// what a power loss would leave on disk.
type memFile struct {
	mu        sync.Mutex
	data      []byte
	off       int64
	written   int64
	failAfter int64 // bytes accepted before writes fail; < 0: never
	failSync  bool
	syncs     int
	synced    []byte
}

func newMemFile() *memFile { return &memFile{failAfter: -1} }

func (f *memFile) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(p)
	var err error
	if f.failAfter >= 0 && f.written+int64(n) > f.failAfter {
		n = int(max(f.failAfter-f.written, 0))
		err = errInjected
	}
	if end := f.off + int64(n); end > int64(len(f.data)) {
		f.data = append(f.data, make([]byte, end-int64(len(f.data)))...)
	}
	copy(f.data[f.off:], p[:n])
	f.off += int64(n)
	f.written += int64(n)
	return n, err
}

func (f *memFile) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.off >= int64(len(f.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.data[f.off:])
	f.off += int64(n)
	return n, nil
}

func (f *memFile) Seek(offset int64, whence int) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += f.off
	case io.SeekEnd:
		offset += int64(len(f.data))
	}
	if offset < 0 {
		return 0, errors.New("negative offset")
	}
	f.off = offset
	return offset, nil
}

func (f *memFile) Sync() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failSync {
		return errInjected
	}
	f.syncs++
	f.synced = append(f.synced[:0], f.data...)
	return nil
}

func (f *memFile) bytes() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]byte(nil), f.data...)
}

// discardFile is a File that stores nothing, for benchmarks.
type discardFile struct{ off int64 }

func (f *discardFile) Write(p []byte) (int, error) { f.off += int64(len(p)); return len(p), nil }
func (f *discardFile) Read([]byte) (int, error)    { return 0, io.EOF }
func (f *discardFile) Sync() error                 { return nil }
func (f *discardFile) Seek(o int64, _ int) (int64, error) {
	f.off = o
	return o, nil
}

// streamSpec describes one synthetic leg: a sine tone with loud marker
// packets at known wall-clock times, G.711 in 20 ms packets.
type streamSpec struct {
	ch      Channel
	pt      uint8
	freq    float64
	ssrc    uint32
	ts0     uint32
	start   time.Duration // send time of the first packet, from t0
	dur     time.Duration
	markers []time.Duration // multiples of 20 ms; never lost

	ssrcChangeAt time.Duration // 0: none
	newSSRC      uint32
	newTS0       uint32

	tsJumpAt time.Duration // 0: none
	tsJump   uint32
	seqJump  uint16 // added to sequence numbers from tsJumpAt on (a restart)

	gapFrom, gapTo time.Duration // no packets sent in [gapFrom, gapTo)
	freezeTS       bool          // timestamps do not advance during the gap

	ppm float64 // sender clock error: timestamps run (1 + ppm/1e6) fast
}

type simPacket struct {
	ch      Channel
	pkt     *rtp.Packet
	arrival time.Time
}

const (
	toneAmp   = 4000
	markerAmp = 30000
	pktDur    = 20 * time.Millisecond
	pktLen    = 160
)

// simulate renders the specs into packets ordered by arrival, with random
// loss (markers excepted) and a uniform jitter in [0, jitter).
func simulate(t0 time.Time, rng *rand.Rand, loss float64, jitter time.Duration, specs ...streamSpec) []simPacket {
	var out []simPacket
	for _, sp := range specs {
		frozen := 0 // packets not counted in the timestamp (frozen gap)
		for k := 0; ; k++ {
			send := sp.start + time.Duration(k)*pktDur
			if send >= sp.start+sp.dur {
				break
			}
			if sp.gapTo > sp.gapFrom && send >= sp.gapFrom && send < sp.gapTo {
				if sp.freezeTS {
					frozen++
				}
				continue
			}
			ssrc, ts := sp.ssrc, sp.ts0+uint32(math.Round(float64((k-frozen)*pktLen)*(1+sp.ppm/1e6)))
			if sp.ssrcChangeAt > 0 && send >= sp.ssrcChangeAt {
				kc := int((sp.ssrcChangeAt - sp.start) / pktDur)
				ssrc, ts = sp.newSSRC, sp.newTS0+uint32(k-kc)*pktLen
			}
			seq := uint16(k)
			if sp.tsJumpAt > 0 && send >= sp.tsJumpAt {
				ts += sp.tsJump
				seq += sp.seqJump
			}
			marker := false
			for _, m := range sp.markers {
				marker = marker || m == send
			}
			if !marker && rng.Float64() < loss {
				continue
			}
			payload := make([]byte, pktLen)
			base := int64(send / sampleDur)
			for i := range payload {
				v := int16(toneAmp * math.Sin(2*math.Pi*sp.freq*float64(base+int64(i))/SampleRate))
				if marker {
					v = markerAmp
				}
				if sp.pt == ptPCMU {
					payload[i] = g711.EncodeUlawFrame(v)
				} else {
					payload[i] = g711.EncodeAlawFrame(v)
				}
			}
			var j time.Duration
			if jitter > 0 {
				j = time.Duration(rng.Int64N(int64(jitter)))
			}
			out = append(out, simPacket{
				ch: sp.ch,
				pkt: &rtp.Packet{
					Header:  rtp.Header{Version: 2, PayloadType: sp.pt, SequenceNumber: seq, Timestamp: ts, SSRC: ssrc},
					Payload: payload,
				},
				arrival: t0.Add(send + j),
			})
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].arrival.Before(out[b].arrival) })
	return out
}

func feed(t *testing.T, w *Writer, pkts []simPacket) {
	t.Helper()
	for _, p := range pkts {
		if err := w.WriteRTP(p.ch, p.pkt, p.arrival); err != nil {
			t.Fatalf("WriteRTP at %v: %v", p.arrival, err)
		}
	}
}

// decodeWAV checks the header of b against its length and returns the
// two channels.
func decodeWAV(t *testing.T, b []byte) (left, right []int16) {
	t.Helper()
	h, err := parseHeader(b)
	if err != nil {
		t.Fatalf("parse header: %v", err)
	}
	data := b[headerSize:]
	if int(h.dataSize) != len(data) || h.riffSize != h.dataSize+36 {
		t.Fatalf("header sizes riff=%d data=%d, file has %d data bytes", h.riffSize, h.dataSize, len(data))
	}
	if len(data)%frameBytes != 0 {
		t.Fatalf("data of %d bytes is not whole frames", len(data))
	}
	for i := 0; i+frameBytes <= len(data); i += frameBytes {
		left = append(left, int16(binary.LittleEndian.Uint16(data[i:])))
		right = append(right, int16(binary.LittleEndian.Uint16(data[i+2:])))
	}
	return left, right
}

// goertzel is the energy of x at freq.
func goertzel(x []int16, freq float64) float64 {
	k := 2 * math.Cos(2*math.Pi*freq/SampleRate)
	var s1, s2 float64
	for _, v := range x {
		s := float64(v) + k*s1 - s2
		s2, s1 = s1, s
	}
	return s1*s1 + s2*s2 - k*s1*s2
}

// onset finds the first sample above the marker threshold within ±0.5 s
// of around, or -1.
func onset(x []int16, around int) int {
	for i := max(around-SampleRate/2, 0); i < min(around+SampleRate/2, len(x)); i++ {
		if x[i] > markerAmp*2/3 {
			return i
		}
	}
	return -1
}

// checkMarkers asserts that each marker is where the wall clock puts it,
// on both channels, within one packet.
func checkMarkers(t *testing.T, left, right []int16, start, t0 time.Time, markers []time.Duration) {
	t.Helper()
	for _, m := range markers {
		want := int(t0.Add(m).Sub(start) / sampleDur)
		l, r := onset(left, want), onset(right, want)
		if l < 0 || r < 0 {
			t.Errorf("marker at %v: not found (left %d, right %d, want %d)", m, l, r, want)
			continue
		}
		if d := l - r; d > pktLen || d < -pktLen {
			t.Errorf("marker at %v: channels %d samples apart (left %d, right %d)", m, d, l, r)
		}
		for _, got := range []int{l, r} {
			if d := got - want; d > pktLen || d < -pktLen {
				t.Errorf("marker at %v: at sample %d, wall clock says %d (%v off)", m, got, want, time.Duration(d)*sampleDur)
			}
		}
	}
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
