package recordings

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"
	"time"
)

func newRetention(f *fixture, days int) *Retention {
	return &Retention{Dir: f.dir, Index: f.idx, Days: days, Log: discardLog(), Now: f.clock}
}

// TestRetentionSweep: with 30 days of retention, the recording started 31
// days ago is deleted and audited, the held one and the recent one stay;
// a day later nothing changes; lifting the hold lets the next sweep go.
func TestRetentionSweep(t *testing.T) {
	f := newFixture(t)
	now := t0
	old := f.closedCall("old", now.AddDate(0, 0, -31), 2*time.Second)
	held := f.closedCall("held", now.AddDate(0, 0, -31).Add(time.Minute), 2*time.Second)
	f.closedCall("recent", now.AddDate(0, 0, -29), 2*time.Second)
	f.setNow(now)
	ctx := context.Background()
	if err := f.idx.SetHold(ctx, "held", true, "301", "cli", now); err != nil {
		t.Fatal(err)
	}
	ret := newRetention(f, 30)
	res, err := ret.Sweep(ctx)
	if err != nil || !slices.Equal(res.Deleted, []string{"old"}) || len(res.Skipped) != 0 {
		t.Fatalf("Sweep = %+v, %v; want old deleted", res, err)
	}
	for _, p := range []string{old.Path, old.SidecarRel()} {
		if _, err := os.Stat(f.abs(p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still on disk: %v", p, err)
		}
	}
	r := f.get("old")
	if r.State != StateDeleted || r.DeletedBy != RetentionActor || !r.DeletedAt.Equal(now) || r.SHA256 != old.SHA256 {
		t.Errorf("row = %+v, want deleted by retention at %v, hash kept", r, now)
	}
	recs := f.auditOf("old")
	last := recs[len(recs)-1].Entry
	if last.Kind != "recording.deleted" || last.Details["sha256"] != old.SHA256 || last.Actor != RetentionActor {
		t.Errorf("last audit entry = %+v, want recording.deleted with the hash", last)
	}
	if rep, err := Verify(ctx, f.dir, f.idx, time.Time{}); err != nil || !rep.OK() {
		t.Errorf("Verify after retention = %+v, %v", rep, err)
	}

	f.setNow(now.Add(24 * time.Hour))
	if res, err := ret.Sweep(ctx); err != nil || len(res.Deleted) != 0 {
		t.Errorf("next day Sweep = %+v, %v; want nothing (held and recent)", res, err)
	}
	if _, err := os.Stat(f.abs(held.Path)); err != nil {
		t.Errorf("held recording deleted: %v", err)
	}
	if err := f.idx.SetHold(ctx, "held", false, "301", "cli", now); err != nil {
		t.Fatal(err)
	}
	if res, err := ret.Sweep(ctx); err != nil || !slices.Equal(res.Deleted, []string{"held"}) {
		t.Errorf("Sweep after unhold = %+v, %v; want held deleted", res, err)
	}
}

// TestRetentionKeepsEvidence: a modified or missing file is not deleted:
// retention must not erase a loss or tampering before security sees it.
func TestRetentionKeepsEvidence(t *testing.T) {
	f := newFixture(t)
	start := t0.AddDate(0, 0, -100)
	mod := f.closedCall("mod", start, time.Second)
	gone := f.closedCall("gone", start.Add(time.Minute), time.Second)
	if err := os.WriteFile(f.abs(mod.Path), []byte("RIFF tampered"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(f.abs(gone.Path)); err != nil {
		t.Fatal(err)
	}
	res, err := newRetention(f, 30).Sweep(context.Background())
	if err != nil || len(res.Deleted) != 0 || len(res.Skipped) != 2 {
		t.Fatalf("Sweep = %+v, %v; want both skipped", res, err)
	}
	for _, id := range []string{"mod", "gone"} {
		if r := f.get(id); r.State != StateClosed {
			t.Errorf("%s: state %s, want closed", id, r.State)
		}
	}
}

// TestRetentionRemovesLeftovers: files of a row marked deleted (a crash
// between the commit and the removal) are removed by the next sweep.
func TestRetentionRemovesLeftovers(t *testing.T) {
	f := newFixture(t)
	r := f.closedCall("left", t0.AddDate(0, 0, -40), time.Second)
	if err := f.idx.markDeleted(context.Background(), r, RetentionActor, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := newRetention(f, 30).Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(f.abs(r.Path)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("leftover WAV still there: %v", err)
	}
}

// TestRetentionRun drives the daily job with an injected timer: a sweep at
// start, one per tick, and it stops with its context.
func TestRetentionRun(t *testing.T) {
	f := newFixture(t)
	f.closedCall("a", t0.AddDate(0, 0, -10), time.Second)
	f.closedCall("b", t0.AddDate(0, 0, -5), time.Second)
	f.setNow(t0)
	ret := newRetention(f, 7)
	ticks := make(chan time.Time)
	waits := make(chan time.Duration, 10)
	ret.After = func(d time.Duration) <-chan time.Time { waits <- d; return ticks }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ret.Run(ctx); close(done) }()

	if d := <-waits; d != 24*time.Hour {
		t.Errorf("waits %v between sweeps, want 24h", d)
	}
	if r := f.get("a"); r.State != StateDeleted {
		t.Errorf("a: %s after the first sweep, want deleted", r.State)
	}
	if r := f.get("b"); r.State != StateClosed {
		t.Errorf("b: %s after the first sweep, want closed", r.State)
	}
	f.setNow(t0.AddDate(0, 0, 3))
	ticks <- t0
	<-waits
	if r := f.get("b"); r.State != StateDeleted {
		t.Errorf("b: %s after the second sweep, want deleted", r.State)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop with its context")
	}
}

func TestRetentionRefusesZeroDays(t *testing.T) {
	f := newFixture(t)
	if _, err := newRetention(f, 0).Sweep(context.Background()); err == nil {
		t.Error("Sweep with 0 days succeeded")
	}
}
