package recordings

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestManagerCloseAgrees: after a normal call the index row, the sidecar,
// the file and the audit chain all carry the same hash.
func TestManagerCloseAgrees(t *testing.T) {
	f := newFixture(t)
	r := f.closedCall("call-1", t0, 10*time.Second)

	if r.State != StateClosed || r.SHA256 == "" || r.Path != "2026/03/02/call-1.wav" {
		t.Fatalf("row = %+v, want closed with a hash at 2026/03/02/call-1.wav", r)
	}
	if !r.End.Equal(t0.Add(10*time.Second)) || r.DurationMS < 9_500 || r.DurationMS > 10_100 {
		t.Errorf("row end %v duration %d ms, want %v and about 10 s", r.End, r.DurationMS, t0.Add(10*time.Second))
	}
	if !slices.Equal(r.CallIDs, []string{"call-1-op", "call-1-out"}) || r.Operator != "101" || r.Number != "+33240123456" || r.Campaign != "archi" {
		t.Errorf("row identity = %+v", r)
	}
	sum, err := hashFile(f.abs(r.Path))
	if err != nil || sum != r.SHA256 {
		t.Errorf("file hashes to %s (%v), index says %s", sum, err, r.SHA256)
	}
	b, _ := os.ReadFile(f.abs(r.Path))
	left, _ := decodeWAV(t, b)
	if got := framesDuration(int64(len(left))).Milliseconds(); got != r.DurationMS {
		t.Errorf("file holds %d ms, index says %d", got, r.DurationMS)
	}
	sc, err := ReadSidecar(f.abs(r.SidecarRel()))
	if err != nil {
		t.Fatal(err)
	}
	if sc.SHA256 != r.SHA256 || sc.DurationMS != r.DurationMS || sc.Repaired || sc.Failed {
		t.Errorf("sidecar %+v disagrees with row %+v", sc, r)
	}
	recs := f.auditOf("call-1")
	if got := kinds(recs); !slices.Equal(got, []string{"recording.started", "recording.closed"}) {
		t.Fatalf("audit kinds = %v", got)
	}
	if d := recs[1].Entry.Details; d["sha256"] != r.SHA256 || d["path"] != r.Path {
		t.Errorf("recording.closed details %v, want sha256 %s", d, r.SHA256)
	}
	if len(f.aud.entries) != 0 {
		t.Errorf("fallback auditor used: %+v", f.aud.entries)
	}
	rep, err := Verify(context.Background(), f.dir, f.idx, time.Time{})
	if err != nil || !rep.OK() || rep.Verified != 1 {
		t.Errorf("Verify = %+v, %v; want 1 verified, no problem", rep, err)
	}
	// Close is idempotent and a closed row cannot be finished again.
	err = f.idx.Finish(context.Background(), "call-1", t0, Final{State: StateFailed})
	if !errors.Is(err, ErrNotOpen) {
		t.Errorf("second Finish = %v, want ErrNotOpen", err)
	}
}

func TestManagerStartIndexFailure(t *testing.T) {
	f := newFixture(t)
	f.m.index = &flakyIndex{Index: f.idx, failBegin: true}
	_, err := f.m.Start(context.Background(), info("call-2", t0))
	if !errors.Is(err, ErrRecorderUnavailable) || !errors.Is(err, errIndexDown) {
		t.Fatalf("Start = %v, want ErrRecorderUnavailable wrapping the index error", err)
	}
	if _, err := os.Stat(f.abs("2026/03/02/call-2.wav")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an unindexed file was left behind: %v", err)
	}
	if _, err := f.idx.Get(context.Background(), "call-2"); !errors.Is(err, ErrUnknown) {
		t.Errorf("Get = %v, want ErrUnknown", err)
	}
}

// TestManagerCloseIndexFailure: the file and sidecar are complete, the row
// stays open and the fallback auditor says why; the next start's repair
// closes it with the same hash.
func TestManagerCloseIndexFailure(t *testing.T) {
	f := newFixture(t)
	fl := &flakyIndex{Index: f.idx}
	f.m.index = fl
	s, err := f.call(info("call-3", t0), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	fl.failFinish = true
	if err := s.Close(t0.Add(5 * time.Second)); !errors.Is(err, errIndexDown) {
		t.Fatalf("Close = %v, want the index error", err)
	}
	if len(f.aud.entries) != 1 || f.aud.entries[0].Kind != "recording.closed" || f.aud.entries[0].Outcome != "index_failed" {
		t.Fatalf("fallback audit = %+v", f.aud.entries)
	}
	sc, err := ReadSidecar(f.abs("2026/03/02/call-3.json"))
	if err != nil {
		t.Fatal(err)
	}
	if r := f.get("call-3"); r.State != StateOpen {
		t.Fatalf("row state %s, want open", r.State)
	}
	outs, err := RepairOpen(context.Background(), f.dir, f.idx, "system", f.clock)
	if err != nil || len(outs) != 1 || outs[0].State != StateRepaired || outs[0].Result.Changed {
		t.Fatalf("RepairOpen = %+v, %v; want one repaired, file unchanged", outs, err)
	}
	if r := f.get("call-3"); r.SHA256 != sc.SHA256 {
		t.Errorf("repaired hash %s, closed hash %s", r.SHA256, sc.SHA256)
	}
}

// TestManagerWriteFailure: a write error mid-call leaves a playable WAV of
// what was written, the row failed with its hash, and recording.failed.
func TestManagerWriteFailure(t *testing.T) {
	f := newFixture(t)
	const limit = headerSize + 5*SampleRate*frameBytes // 5 s of audio
	f.m.create = func(path string, opts ...Option) (*Writer, error) {
		file, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
		if err != nil {
			return nil, err
		}
		w, err := NewWriter(&failingFile{File: file, failAfter: limit}, opts...)
		if err != nil {
			return nil, err
		}
		w.owned = file
		return w, nil
	}
	s, err := f.call(info("call-4", t0), 20*time.Second)
	if !errors.Is(err, ErrWriteFailed) || !errors.Is(err, errInjected) {
		t.Fatalf("write error = %v, want ErrWriteFailed wrapping the I/O error", err)
	}
	if err := s.Close(t0.Add(8 * time.Second)); !errors.Is(err, errInjected) {
		t.Fatalf("Close = %v, want the write failure", err)
	}
	checkFailed(t, f, "call-4", 4*time.Second)
}

func checkFailed(t *testing.T, f *fixture, id string, atLeast time.Duration) {
	t.Helper()
	r := f.get(id)
	if r.State != StateFailed || r.SHA256 == "" {
		t.Fatalf("row = %+v, want failed with the hash of what was kept", r)
	}
	b, err := os.ReadFile(f.abs(r.Path))
	if err != nil {
		t.Fatal(err)
	}
	left, _ := decodeWAV(t, b) // valid header, whole frames
	got := framesDuration(int64(len(left)))
	if got < atLeast || got.Milliseconds() != r.DurationMS {
		t.Errorf("file holds %v (index %d ms), want at least %v", got, r.DurationMS, atLeast)
	}
	if sum, _ := hashFile(f.abs(r.Path)); sum != r.SHA256 {
		t.Errorf("file hashes to %s, index says %s", sum, r.SHA256)
	}
	recs := f.auditOf(id)
	last := recs[len(recs)-1].Entry
	if last.Kind != "recording.failed" || last.Details["sha256"] != r.SHA256 || !strings.Contains(last.Details["error"].(string), "write failed") {
		t.Errorf("last audit entry = %+v, want recording.failed with the hash and the error", last)
	}
}

// TestManagerDiskFull fills a real 2 MiB tmpfs mid-call (about 65 s of
// stereo audio): the same guarantees as an injected failure, plus the
// sidecar that could not be written on the full disk comes back with
// repair once there is room.
func TestManagerDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping the tmpfs disk-full test: mounting needs root (the injected failure is TestManagerWriteFailure)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("skipping the tmpfs disk-full test: mount not permitted here: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	f := newFixtureDir(t, dir)
	s, err := f.call(info("full-1", t0), 120*time.Second)
	if !errors.Is(err, ErrWriteFailed) {
		t.Fatalf("write error = %v, want ErrWriteFailed (disk full)", err)
	}
	if err := s.Close(t0.Add(70 * time.Second)); err == nil {
		t.Fatal("Close succeeded on a full disk")
	}
	checkFailed(t, f, "full-1", 50*time.Second)

	rep, err := Verify(context.Background(), f.dir, f.idx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("verify on the full disk: %v", rep.Problems)
	for _, p := range rep.Problems {
		if p.Kind != ProblemSidecar {
			t.Errorf("unexpected problem %v", p)
		}
	}
	if out, err := exec.Command("mount", "-o", "remount,size=4m", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v: %s", err, out)
	}
	if _, err := RepairOpen(context.Background(), f.dir, f.idx, "system", f.clock); err != nil {
		t.Fatal(err)
	}
	rep, err = Verify(context.Background(), f.dir, f.idx, time.Time{})
	if err != nil || !rep.OK() {
		t.Errorf("Verify after repair = %+v, %v; want no problem", rep, err)
	}
	sc, err := ReadSidecar(filepath.Join(dir, "2026/03/02/full-1.json"))
	if err != nil || !sc.Failed || !sc.Repaired {
		t.Errorf("sidecar = %+v, %v; want failed and repaired", sc, err)
	}
}
