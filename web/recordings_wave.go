package web

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
)

// defaultPeaks is how many slices a waveform has unless asked: about one
// per pixel of the supervisor's canvas at 1366×768.
const defaultPeaks = 800

// errNotWAV is a file the waveform reader does not understand.
var errNotWAV = errors.New("not a 16-bit PCM WAV")

// waveform is GET /api/v1/recordings/{id}/waveform.
type waveform struct {
	ID         string `json:"id"`
	SampleRate int    `json:"sample_rate"`
	Channels   int    `json:"channels"`
	DurationMS int64  `json:"duration_ms"`
	// SliceMS is how much audio each peak covers.
	SliceMS float64 `json:"slice_ms"`
	// Left is the operator, Right the outside party (DESIGN.md); each
	// value is the largest absolute sample of its slice, 0 to 1.
	Left  []float64 `json:"left"`
	Right []float64 `json:"right,omitempty"`
}

// wavPeaks reads a PCM 16-bit WAV (mono or stereo) of size bytes and
// returns n peaks per channel. A data size of 0 or past the end of the
// file (a recording whose header a crash left stale) reads to the end.
func wavPeaks(r io.Reader, size int64, n int) (waveform, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var hdr [12]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return waveform{}, fmt.Errorf("%w: %v", errNotWAV, err)
	}
	if string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" {
		return waveform{}, fmt.Errorf("%w: no RIFF/WAVE header", errNotWAV)
	}
	le := binary.LittleEndian
	pos := int64(12)
	var channels, rate, align int
	var dataSize int64
	for {
		var ch [8]byte
		if _, err := io.ReadFull(br, ch[:]); err != nil {
			return waveform{}, fmt.Errorf("%w: no data chunk", errNotWAV)
		}
		pos += 8
		csize := int64(le.Uint32(ch[4:8]))
		if string(ch[0:4]) == "data" {
			if channels == 0 {
				return waveform{}, fmt.Errorf("%w: data before fmt", errNotWAV)
			}
			dataSize = csize
			if rest := size - pos; dataSize == 0 || dataSize > rest {
				dataSize = max(rest, 0)
			}
			break
		}
		body := csize + csize&1 // chunks are word-aligned
		if string(ch[0:4]) == "fmt " {
			if csize < 16 || csize > 1024 {
				return waveform{}, fmt.Errorf("%w: fmt chunk of %d bytes", errNotWAV, csize)
			}
			b := make([]byte, body)
			if _, err := io.ReadFull(br, b); err != nil {
				return waveform{}, fmt.Errorf("%w: %v", errNotWAV, err)
			}
			format, bits := le.Uint16(b[0:2]), le.Uint16(b[14:16])
			channels, rate, align = int(le.Uint16(b[2:4])), int(le.Uint32(b[4:8])), int(le.Uint16(b[12:14]))
			if format != 1 || bits != 16 || channels < 1 || channels > 2 || rate <= 0 || align != 2*channels {
				return waveform{}, fmt.Errorf("%w: format %d, %d bits, %d channels", errNotWAV, format, bits, channels)
			}
		} else if _, err := io.CopyN(io.Discard, br, body); err != nil {
			return waveform{}, fmt.Errorf("%w: %v", errNotWAV, err)
		}
		pos += body
	}
	frames := dataSize / int64(align)
	peaks := make([][]int32, channels)
	for c := range peaks {
		peaks[c] = make([]int32, n)
	}
	buf := make([]byte, 4096*align)
	var frame int64
	for frame < frames {
		want := min(int64(len(buf)/align), frames-frame)
		got, err := io.ReadFull(br, buf[:want*int64(align)])
		got /= align
		for i := 0; i < got; i++ {
			slice := int((frame + int64(i)) * int64(n) / frames)
			for c := 0; c < channels; c++ {
				v := int32(int16(le.Uint16(buf[i*align+2*c:])))
				if v < 0 {
					v = -v
				}
				if v > peaks[c][slice] {
					peaks[c][slice] = v
				}
			}
		}
		frame += int64(got)
		if err != nil {
			break // a file cut short: what was read is the waveform
		}
	}
	wf := waveform{SampleRate: rate, Channels: channels, DurationMS: frames * 1000 / int64(rate),
		SliceMS: float64(frames) * 1000 / float64(rate) / float64(n)}
	scale := func(p []int32) []float64 {
		out := make([]float64, len(p))
		for i, v := range p {
			out[i] = math.Round(float64(v)/32768*1000) / 1000
		}
		return out
	}
	wf.Left = scale(peaks[0])
	if channels == 2 {
		wf.Right = scale(peaks[1])
	}
	return wf, nil
}

// peakCache keeps the waveforms of finished recordings: a supervisor going
// back and forth between calls does not re-read each file.
type peakCache struct {
	mu  sync.Mutex
	max int
	m   map[string]waveform
}

func newPeakCache(size int) *peakCache { return &peakCache{max: size, m: map[string]waveform{}} }

func (c *peakCache) get(k string) (waveform, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	wf, ok := c.m[k]
	return wf, ok
}

func (c *peakCache) put(k string, wf waveform) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		clear(c.m) // simple and bounded; a miss costs one read of the file
	}
	c.m[k] = wf
}
