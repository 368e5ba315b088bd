package recordings

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// The one WAV layout this package writes: a canonical 44-byte header
// (RIFF, "fmt " of 16 bytes, "data") followed by interleaved 16-bit
// little-endian frames, left = operator, right = outside party. Keeping it
// fixed is what lets Repair be strict: a file that differs in any header
// field was not written by us and must not be "fixed".
const (
	// SampleRate is the recording's sample rate (G.711 narrowband).
	SampleRate = 8000
	// Channels is the number of channels in a recording.
	Channels      = 2
	bitsPerSample = 16
	frameBytes    = Channels * bitsPerSample / 8 // one stereo sample
	headerSize    = 44
	// maxDataBytes keeps the RIFF size (data + 36) inside uint32 and whole
	// frames only.
	maxDataBytes = (0xFFFFFFFF - (headerSize - 8)) / frameBytes * frameBytes
)

// putHeader writes our canonical header for dataBytes of audio into b.
func putHeader(b *[headerSize]byte, dataBytes uint32) {
	le := binary.LittleEndian
	copy(b[0:4], "RIFF")
	le.PutUint32(b[4:8], dataBytes+headerSize-8)
	copy(b[8:12], "WAVE")
	copy(b[12:16], "fmt ")
	le.PutUint32(b[16:20], 16)
	le.PutUint16(b[20:22], 1) // PCM
	le.PutUint16(b[22:24], Channels)
	le.PutUint32(b[24:28], SampleRate)
	le.PutUint32(b[28:32], SampleRate*frameBytes)
	le.PutUint16(b[32:34], frameBytes)
	le.PutUint16(b[34:36], bitsPerSample)
	copy(b[36:40], "data")
	le.PutUint32(b[40:44], dataBytes)
}

// header is what parseHeader reads back: the two sizes a crash can leave
// stale.
type header struct {
	riffSize uint32
	dataSize uint32
}

// parseHeader checks that b starts with our exact header and returns its
// sizes. The sizes themselves are not checked against anything: they are
// what Repair exists to fix.
func parseHeader(b []byte) (header, error) {
	if len(b) < headerSize {
		return header{}, fmt.Errorf("%w: %d bytes, shorter than the %d-byte WAV header", ErrNotRecording, len(b), headerSize)
	}
	le := binary.LittleEndian
	bad := func(what string, got, want any) (header, error) {
		return header{}, fmt.Errorf("%w: %s is %v, want %v (8 kHz 16-bit stereo PCM WAV)", ErrNotRecording, what, got, want)
	}
	switch {
	case string(b[0:4]) != "RIFF":
		return bad("RIFF tag", fmt.Sprintf("%q", b[0:4]), `"RIFF"`)
	case string(b[8:12]) != "WAVE":
		return bad("WAVE tag", fmt.Sprintf("%q", b[8:12]), `"WAVE"`)
	case string(b[12:16]) != "fmt ":
		return bad("first chunk", fmt.Sprintf("%q", b[12:16]), `"fmt "`)
	case le.Uint32(b[16:20]) != 16:
		return bad("fmt chunk size", le.Uint32(b[16:20]), 16)
	case le.Uint16(b[20:22]) != 1:
		return bad("audio format", le.Uint16(b[20:22]), "1 (PCM)")
	case le.Uint16(b[22:24]) != Channels:
		return bad("channel count", le.Uint16(b[22:24]), Channels)
	case le.Uint32(b[24:28]) != SampleRate:
		return bad("sample rate", le.Uint32(b[24:28]), SampleRate)
	case le.Uint32(b[28:32]) != SampleRate*frameBytes:
		return bad("byte rate", le.Uint32(b[28:32]), SampleRate*frameBytes)
	case le.Uint16(b[32:34]) != frameBytes:
		return bad("block align", le.Uint16(b[32:34]), frameBytes)
	case le.Uint16(b[34:36]) != bitsPerSample:
		return bad("bits per sample", le.Uint16(b[34:36]), bitsPerSample)
	case string(b[36:40]) != "data":
		return bad("second chunk", fmt.Sprintf("%q", b[36:40]), `"data"`)
	}
	return header{riffSize: le.Uint32(b[4:8]), dataSize: le.Uint32(b[40:44])}, nil
}

// RepairResult says what Repair found and did.
type RepairResult struct {
	Path string
	// Changed is false when the file was already consistent: Repair is
	// idempotent and a second run changes nothing.
	Changed bool
	// OldDataBytes is the data size the header claimed before the repair.
	OldDataBytes uint32
	// DataBytes is the audio kept, in whole stereo frames.
	DataBytes int64
	// TruncatedBytes is the trailing partial frame cut off (0..3 bytes).
	TruncatedBytes int64
	// Duration is the audio duration after repair.
	Duration time.Duration
}

// repairPlan is the pure part of Repair, kept apart so it can be tested and
// fuzzed without files.
type repairPlan struct {
	res      RepairResult
	header   [headerSize]byte
	truncate int64 // new file size, or -1 to keep it
}

func planRepair(hdr []byte, fileSize int64) (repairPlan, error) {
	h, err := parseHeader(hdr)
	if err != nil {
		return repairPlan{}, err
	}
	if fileSize < headerSize {
		return repairPlan{}, fmt.Errorf("%w: file is %d bytes, shorter than the %d-byte header", ErrNotRecording, fileSize, headerSize)
	}
	// The file length is the truth after a crash: the header is only
	// rewritten every few seconds, the data was appended in between.
	data := fileSize - headerSize
	cut := data % frameBytes
	data -= cut
	if data > maxDataBytes {
		return repairPlan{}, fmt.Errorf("%w: %d bytes of audio do not fit a WAV file; split it before repairing", ErrTooLarge, data)
	}
	p := repairPlan{truncate: -1}
	p.res = RepairResult{
		OldDataBytes:   h.dataSize,
		DataBytes:      data,
		TruncatedBytes: cut,
		Duration:       framesDuration(data / frameBytes),
	}
	putHeader(&p.header, uint32(data))
	if cut != 0 {
		p.truncate = headerSize + data
	}
	p.res.Changed = cut != 0 || h.dataSize != uint32(data) || h.riffSize != uint32(data)+headerSize-8
	return p, nil
}

// Repair fixes the RIFF and data sizes of a recording left open by a crash
// (kill -9, power loss), taking the audio length from the file length and
// cutting a trailing partial frame. It refuses, without writing anything, a
// file that is not a WAV of our format. Running it again changes nothing.
func Repair(path string) (RepairResult, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return RepairResult{Path: path}, fmt.Errorf("repair %s: %w", path, err)
	}
	res, err := repairFile(f)
	res.Path = path
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return res, fmt.Errorf("repair %s: %w", path, err)
	}
	return res, nil
}

func repairFile(f *os.File) (RepairResult, error) {
	fi, err := f.Stat()
	if err != nil {
		return RepairResult{}, err
	}
	if !fi.Mode().IsRegular() {
		return RepairResult{}, fmt.Errorf("%w: not a regular file", ErrNotRecording)
	}
	var hdr [headerSize]byte
	n, err := io.ReadFull(f, hdr[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return RepairResult{}, err
	}
	p, err := planRepair(hdr[:n], fi.Size())
	if err != nil {
		return RepairResult{}, err
	}
	if !p.res.Changed {
		return p.res, nil
	}
	if p.truncate >= 0 {
		if err := f.Truncate(p.truncate); err != nil {
			return RepairResult{}, err
		}
	}
	if _, err := f.WriteAt(p.header[:], 0); err != nil {
		return RepairResult{}, err
	}
	// A repair that is not on disk has not happened.
	return p.res, f.Sync()
}

// framesDuration converts stereo frames to a duration; 125 µs per frame is
// exact at 8 kHz, so there is no rounding.
func framesDuration(frames int64) time.Duration {
	return time.Duration(frames) * (time.Second / SampleRate)
}
