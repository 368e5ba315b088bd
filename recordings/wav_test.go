package recordings

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// wavBytes is our header claiming claim data bytes, followed by n bytes.
func wavBytes(claim uint32, n int) []byte {
	var h [headerSize]byte
	putHeader(&h, claim)
	b := append(h[:], make([]byte, n)...)
	for i := headerSize; i < len(b); i++ {
		b[i] = byte(i)
	}
	return b
}

// foreignWAV is a valid WAV of another format, to be refused.
func foreignWAV(mutate func(b []byte)) []byte {
	b := wavBytes(400, 400)
	mutate(b)
	return b
}

func TestRepair(t *testing.T) {
	le := binary.LittleEndian
	tests := []struct {
		name    string
		file    []byte
		changed bool
		data    int64
		cut     int64
		refuse  bool
	}{
		{name: "consistent", file: wavBytes(4000, 4000), data: 4000},
		{name: "header only", file: wavBytes(0, 0)},
		{name: "sizes zero after crash", file: wavBytes(0, 4000), changed: true, data: 4000},
		{name: "header behind data", file: wavBytes(1600, 32000), changed: true, data: 32000},
		{name: "header ahead of data (truncated copy)", file: wavBytes(32000, 1600), changed: true, data: 1600},
		{name: "partial trailing frame", file: wavBytes(0, 4003), changed: true, data: 4000, cut: 3},
		{name: "only a partial frame", file: wavBytes(0, 2), changed: true, cut: 2},
		{name: "riff size alone wrong", file: func() []byte { b := wavBytes(8, 8); le.PutUint32(b[4:], 7); return b }(), changed: true, data: 8},
		{name: "empty file", file: nil, refuse: true},
		{name: "shorter than header", file: wavBytes(0, 0)[:30], refuse: true},
		{name: "not RIFF", file: foreignWAV(func(b []byte) { copy(b, "RIFX") }), refuse: true},
		{name: "not WAVE", file: foreignWAV(func(b []byte) { copy(b[8:], "AVI ") }), refuse: true},
		{name: "mono", file: foreignWAV(func(b []byte) { le.PutUint16(b[22:], 1) }), refuse: true},
		{name: "44.1 kHz", file: foreignWAV(func(b []byte) { le.PutUint32(b[24:], 44100) }), refuse: true},
		{name: "8-bit", file: foreignWAV(func(b []byte) { le.PutUint16(b[34:], 8) }), refuse: true},
		{name: "float", file: foreignWAV(func(b []byte) { le.PutUint16(b[20:], 3) }), refuse: true},
		{name: "extensible fmt", file: foreignWAV(func(b []byte) { le.PutUint32(b[16:], 40) }), refuse: true},
		{name: "LIST chunk before data", file: foreignWAV(func(b []byte) { copy(b[36:], "LIST") }), refuse: true},
		{name: "text file", file: []byte("this is not a recording, it is a shopping list\n"), refuse: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "r.wav")
			if err := os.WriteFile(path, tt.file, 0o640); err != nil {
				t.Fatal(err)
			}
			res, err := Repair(path)
			after, rerr := os.ReadFile(path)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if tt.refuse {
				if !errors.Is(err, ErrNotRecording) {
					t.Fatalf("Repair: %v, want ErrNotRecording", err)
				}
				if !bytes.Equal(after, tt.file) {
					t.Fatal("a refused file was modified")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Changed != tt.changed || res.DataBytes != tt.data || res.TruncatedBytes != tt.cut || res.Path != path {
				t.Errorf("Repair = %+v, want changed=%v data=%d cut=%d", res, tt.changed, tt.data, tt.cut)
			}
			if want := framesDuration(tt.data / frameBytes); res.Duration != want {
				t.Errorf("duration %v, want %v", res.Duration, want)
			}
			decodeWAV(t, after)
			if !bytes.Equal(after[headerSize:], tt.file[headerSize:headerSize+int(tt.data)]) {
				t.Error("audio bytes changed")
			}
			again, err := Repair(path)
			if err != nil || again.Changed || again.DataBytes != res.DataBytes {
				t.Errorf("second Repair = %+v, %v; want unchanged", again, err)
			}
		})
	}
}

func TestRepairNotAFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := Repair(filepath.Join(dir, "missing.wav")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Repair(dir); err == nil {
		t.Error("Repair of a directory succeeded")
	}
}

func TestPlanRepairTooLarge(t *testing.T) {
	_, err := planRepair(wavBytes(0, 0), headerSize+maxDataBytes+frameBytes)
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("planRepair over 4 GiB: %v, want ErrTooLarge", err)
	}
	p, err := planRepair(wavBytes(0, 0), headerSize+maxDataBytes)
	if err != nil || p.res.Duration != framesDuration(maxDataBytes/frameBytes) {
		t.Errorf("planRepair at the limit: %+v, %v", p.res, err)
	}
}

// FuzzRepair feeds arbitrary file contents to Repair: it must refuse or
// leave a consistent file, never panic, and be idempotent.
func FuzzRepair(f *testing.F) {
	f.Add(wavBytes(0, 4003))
	f.Add(wavBytes(4000, 4000))
	f.Add(wavBytes(0xFFFFFFFF, 7))
	f.Add(foreignWAV(func(b []byte) { binary.LittleEndian.PutUint16(b[22:], 1) }))
	f.Add([]byte("RIFF"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, file []byte) {
		path := filepath.Join(dir, "fuzz.wav")
		if err := os.WriteFile(path, file, 0o640); err != nil {
			t.Fatal(err)
		}
		res, err := Repair(path)
		after, rerr := os.ReadFile(path)
		if rerr != nil {
			t.Fatal(rerr)
		}
		if err != nil {
			if !errors.Is(err, ErrNotRecording) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			if !bytes.Equal(after, file) {
				t.Fatal("a refused file was modified")
			}
			return
		}
		h, err := parseHeader(after)
		if err != nil {
			t.Fatalf("repaired file does not parse: %v", err)
		}
		if int64(len(after)) != headerSize+res.DataBytes || int64(h.dataSize) != res.DataBytes ||
			h.riffSize != h.dataSize+36 || res.DataBytes%frameBytes != 0 {
			t.Fatalf("inconsistent repair: %+v, header %+v, %d bytes", res, h, len(after))
		}
		if res.Duration != time.Duration(res.DataBytes/frameBytes)*sampleDur {
			t.Fatalf("duration %v for %d bytes", res.Duration, res.DataBytes)
		}
		again, err := Repair(path)
		if err != nil || again.Changed {
			t.Fatalf("second Repair = %+v, %v", again, err)
		}
	})
}
