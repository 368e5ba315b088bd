package recordings

import (
	"context"
	"errors"
	"sync"
	"testing"

	"plateau/audit"
)

// Through the audit log's group commits (UseLog, as the server runs), the
// index keeps its rules: a duplicate Begin and a second Finish fail alone
// and leave no entry, and the chain stays whole beside concurrent appends.
func TestIndexThroughAuditLog(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	log := audit.New(f.st.DB(), f.clock)
	f.idx.UseLog(log)
	var wg sync.WaitGroup
	ids := []string{"r1", "r2", "r3", "r4", "r5", "r6"}
	for _, id := range ids {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := f.idx.Begin(ctx, Record{ID: id, Path: "x/" + id + ".wav", Start: t0}, t0,
				audit.Entry{Kind: "recording.started", Subject: id}); err != nil {
				t.Error(err)
				return
			}
			if err := f.idx.Finish(ctx, id, t0, Final{State: StateClosed, SHA256: "ab", End: t0,
				Audit: audit.Entry{Kind: "recording.closed", Subject: id}}); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			if _, err := log.Append(ctx, audit.Entry{Kind: "policy.decision", Subject: id}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	err := f.idx.Begin(ctx, Record{ID: "r1", Path: "y/r1.wav", Start: t0}, t0, audit.Entry{Kind: "recording.started", Subject: "r1"})
	if !errors.Is(err, ErrExists) {
		t.Errorf("duplicate Begin = %v, want ErrExists", err)
	}
	err = f.idx.Finish(ctx, "r1", t0, Final{State: StateClosed, Audit: audit.Entry{Kind: "recording.closed", Subject: "r1"}})
	if !errors.Is(err, ErrNotOpen) {
		t.Errorf("second Finish = %v, want ErrNotOpen", err)
	}
	for _, id := range ids {
		if r, err := f.idx.Get(ctx, id); err != nil || r.State != StateClosed || r.Path != "x/"+id+".wav" {
			t.Errorf("%s: %+v %v", id, r, err)
		}
		if recs := f.auditOf(id); len(recs) != 3 { // decision, started, closed
			t.Errorf("%s has %d audit entries, want 3", id, len(recs))
		}
	}
	if rep, err := log.Verify(ctx); err != nil || !rep.OK || rep.Entries != int64(3*len(ids)) {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}
