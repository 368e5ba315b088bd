package recordings

import (
	"bytes"
	"context"
	"errors"
	"os"
	"slices"
	"testing"
	"time"
)

// TestCrashKill9Manager: a server killed mid-call leaves the file open and
// its row open. A restarted server (new Manager, same database) repairs it
// before anything else: the WAV plays, holds the call up to within 5 s of
// the kill, and is marked repaired in index, sidecar and audit chain.
func TestCrashKill9Manager(t *testing.T) {
	f := newFixture(t)
	const callDur = 23 * time.Second
	s, err := f.call(info("kill-1", t0), callDur)
	if err != nil {
		t.Fatal(err)
	}
	s.w.mu.Lock()
	written := framesDuration(s.w.dataBytes / frameBytes)
	s.w.mu.Unlock()
	s.w.owned.Close() // what the kernel does for a killed process; no Close, no sidecar

	if r := f.get("kill-1"); r.State != StateOpen {
		t.Fatalf("row state %s before repair, want open", r.State)
	}
	// The restart: take the directory, then repair.
	lock, err := LockDir(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	f2 := &fixture{t: t, dir: f.dir, st: f.st, idx: NewDBIndex(f.st.DB()), now: t0.Add(time.Hour)}
	outs, err := RepairOpen(context.Background(), f2.dir, f2.idx, "system", f2.clock)
	if err != nil || len(outs) != 1 || outs[0].Err != nil || outs[0].State != StateRepaired {
		t.Fatalf("RepairOpen = %+v, %v; want kill-1 repaired", outs, err)
	}
	r := f2.get("kill-1")
	b, err := os.ReadFile(f.abs(r.Path))
	if err != nil {
		t.Fatal(err)
	}
	left, right := decodeWAV(t, b)
	got := framesDuration(int64(len(left)))
	if lost := callDur - got; lost < 0 || lost > 5*time.Second || got != written {
		t.Errorf("repaired file holds %v of a %v call (%v written): want within 5 s", got, callDur, written)
	}
	if goertzel(left[SampleRate:2*SampleRate], 600) < 100*goertzel(right[SampleRate:2*SampleRate], 600) {
		t.Error("operator tone not on the left channel after repair")
	}
	if r.State != StateRepaired || r.DurationMS != got.Milliseconds() {
		t.Errorf("row = %+v, want repaired with %v", r, got)
	}
	if sum, _ := hashFile(f.abs(r.Path)); sum != r.SHA256 {
		t.Errorf("file hashes to %s, index says %s", sum, r.SHA256)
	}
	sc, err := ReadSidecar(f.abs(r.SidecarRel()))
	if err != nil || !sc.Repaired || sc.SHA256 != r.SHA256 {
		t.Errorf("sidecar = %+v, %v; want repaired with the row's hash", sc, err)
	}
	recs := f2.auditOf("kill-1")
	if got := kinds(recs); !slices.Equal(got, []string{"recording.started", "recording.repaired"}) {
		t.Fatalf("audit kinds = %v", got)
	}
	// Whether the header needed fixing depends on when the crash fell
	// relative to the last flush; the hash must be there either way.
	if d := recs[1].Entry.Details; d["sha256"] != r.SHA256 {
		t.Errorf("recording.repaired details = %v", d)
	}
	// Idempotent: nothing is open any more.
	if outs, err := RepairOpen(context.Background(), f2.dir, f2.idx, "system", f2.clock); err != nil || len(outs) != 0 {
		t.Errorf("second RepairOpen = %+v, %v; want nothing", outs, err)
	}
	if rep, err := Verify(context.Background(), f.dir, f.idx, time.Time{}); err != nil || !rep.OK() {
		t.Errorf("Verify = %+v, %v", rep, err)
	}
}

// TestRepairOpenUnrecoverable: a missing file and a file that is not ours
// mark their rows failed, audited, and the foreign file is left untouched.
func TestRepairOpenUnrecoverable(t *testing.T) {
	f := newFixture(t)
	for _, id := range []string{"gone", "garbage"} {
		s, err := f.call(info(id, t0), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		s.w.owned.Close()
	}
	if err := os.Remove(f.abs("2026/03/02/gone.wav")); err != nil {
		t.Fatal(err)
	}
	junk := []byte("this is not a wav file at all, but it is evidence of something")
	if err := os.WriteFile(f.abs("2026/03/02/garbage.wav"), junk, 0o640); err != nil {
		t.Fatal(err)
	}
	outs, err := RepairOpen(context.Background(), f.dir, f.idx, "cli", f.clock)
	if err != nil || len(outs) != 2 {
		t.Fatalf("RepairOpen = %+v, %v", outs, err)
	}
	for _, o := range outs {
		if o.State != StateFailed || o.Err == nil {
			t.Errorf("%s: %+v, want failed with the cause", o.ID, o)
		}
	}
	if !errors.Is(outs[1].Err, os.ErrNotExist) && !errors.Is(outs[0].Err, os.ErrNotExist) {
		t.Errorf("no outcome says the file is missing: %+v", outs)
	}
	if b, _ := os.ReadFile(f.abs("2026/03/02/garbage.wav")); !bytes.Equal(b, junk) {
		t.Error("a file that is not a recording was modified")
	}
	for _, id := range []string{"gone", "garbage"} {
		recs := f.auditOf(id)
		if last := recs[len(recs)-1].Entry; last.Kind != "recording.failed" || last.Actor != "cli" {
			t.Errorf("%s: last audit entry %+v, want recording.failed by cli", id, last)
		}
	}
	// The missing one is failed with no audio: verify has nothing to say
	// about it; the foreign file has no hash and is reported.
	rep, err := Verify(context.Background(), f.dir, f.idx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 1 || rep.Problems[0].Path != "2026/03/02/garbage.wav" {
		t.Errorf("Verify problems = %v, want only garbage.wav", rep.Problems)
	}
}

func TestLockDir(t *testing.T) {
	dir := t.TempDir()
	l, err := LockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockDir(dir); !errors.Is(err, ErrServerRunning) {
		t.Fatalf("second LockDir = %v, want ErrServerRunning", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l.Close() // idempotent
	l2, err := LockDir(dir)
	if err != nil {
		t.Fatalf("LockDir after release = %v", err)
	}
	l2.Close()
	if _, err := LockDir(dir + "/missing"); err == nil {
		t.Error("LockDir on a missing directory succeeded")
	}
}
