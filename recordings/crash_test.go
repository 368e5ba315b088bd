package recordings

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// crashCall feeds 23 s of a two-party call to w and stops without Close,
// returning the audio duration the Writer had committed.
func crashCall(t *testing.T, w *Writer, markers []time.Duration) time.Duration {
	t.Helper()
	const callDur = 23 * time.Second
	pkts := simulate(t0, rand.New(rand.NewPCG(11, 12)), 0.02, 40*time.Millisecond,
		operatorSpec(callDur, markers), outsideSpec(300*time.Millisecond, callDur, markers))
	feed(t, w, pkts)
	w.mu.Lock()
	defer w.mu.Unlock()
	return framesDuration(w.dataBytes / frameBytes)
}

// TestCrashKill9 is a process crash: every byte written is in the page
// cache, but the header still has the sizes of the last periodic rewrite.
func TestCrashKill9(t *testing.T) {
	path := Path(t.TempDir(), "crash", t0)
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	markers := []time.Duration{3 * time.Second, 18 * time.Second}
	written := crashCall(t, w, markers)
	w.owned.Close() // the kernel closes the descriptors of a killed process

	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := parseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if stale := written - framesDuration(int64(h.dataSize)/frameBytes); stale <= 0 || stale > 5*time.Second {
		t.Errorf("header %v behind the data, want (0, 5s]: the header is rewritten every 5 s", stale)
	}

	res, err := Repair(path)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || res.Duration != written || res.TruncatedBytes != 0 {
		t.Errorf("Repair = %+v, want changed and %v of audio", res, written)
	}
	b, err = os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	left, right := decodeWAV(t, b)
	checkMarkers(t, left, right, t0, t0, markers)

	again, err := Repair(path)
	if err != nil || again.Changed || again.Duration != res.Duration {
		t.Errorf("second Repair = %+v, %v; want unchanged", again, err)
	}
}

// TestCrashPowerLoss is a machine crash: only what was fsynced survives,
// plus possibly part of what followed (here an odd number of bytes).
func TestCrashPowerLoss(t *testing.T) {
	f := newMemFile()
	w, err := NewWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	written := crashCall(t, w, nil)
	disk := append([]byte(nil), f.synced...)
	all := f.bytes()
	disk = append(disk, all[len(disk):len(disk)+4003]...) // a torn tail

	path := filepath.Join(t.TempDir(), "power.wav")
	if err := os.WriteFile(path, disk, 0o640); err != nil {
		t.Fatal(err)
	}
	res, err := Repair(path)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || res.TruncatedBytes != 3 {
		t.Errorf("Repair = %+v, want changed with a 3-byte partial frame cut", res)
	}
	if lost := written - res.Duration; lost < 0 || lost > 5*time.Second {
		t.Errorf("repaired %v of %v written: lost %v, want at most 5s", res.Duration, written, lost)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	decodeWAV(t, b)
}
