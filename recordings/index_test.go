package recordings

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"plateau/audit"
)

func TestIndexSearch(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rows := []Record{
		{ID: "r1", Operator: "101", Number: "+33240000001", Campaign: "archi", Start: t0},
		{ID: "r2", Operator: "102", Number: "+33240000002", Campaign: "archi", Start: t0.Add(time.Hour)},
		{ID: "r3", Operator: "101", Number: "+33240000002", Campaign: "syndic", Start: t0.Add(24 * time.Hour)},
		{ID: "r4", Operator: "103", Number: "+33240000003", Start: t0.Add(48 * time.Hour)},
	}
	for _, r := range rows {
		r.Path = "x/" + r.ID + ".wav"
		if err := f.idx.Begin(ctx, r, t0, audit.Entry{Kind: "recording.started", Subject: r.ID}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.idx.Finish(ctx, "r2", t0, Final{State: StateClosed, SHA256: "ab", DurationMS: 1000, End: t0.Add(time.Hour + time.Second),
		Audit: audit.Entry{Kind: "recording.closed", Subject: "r2"}}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		f    Filter
		want []string
	}{
		{"all, newest first", Filter{}, []string{"r4", "r3", "r2", "r1"}},
		{"oldest first", Filter{Oldest: true}, []string{"r1", "r2", "r3", "r4"}},
		{"operator", Filter{Operator: "101"}, []string{"r3", "r1"}},
		{"number", Filter{Number: "+33240000002"}, []string{"r3", "r2"}},
		{"campaign", Filter{Campaign: "archi"}, []string{"r2", "r1"}},
		{"state", Filter{State: StateClosed}, []string{"r2"}},
		{"since inclusive", Filter{Since: t0.Add(time.Hour)}, []string{"r4", "r3", "r2"}},
		{"until exclusive", Filter{Until: t0.Add(24 * time.Hour)}, []string{"r2", "r1"}},
		{"limit and offset", Filter{Limit: 2, Offset: 1}, []string{"r3", "r2"}},
		{"nothing", Filter{Operator: "999"}, nil},
	}
	for _, c := range cases {
		got, err := f.idx.Search(ctx, c.f)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range got {
			ids = append(ids, r.ID)
		}
		if !slices.Equal(ids, c.want) {
			t.Errorf("%s: %v, want %v", c.name, ids, c.want)
		}
	}
	r, err := f.idx.Get(ctx, "r2")
	if err != nil || r.State != StateClosed || r.SHA256 != "ab" || r.DurationMS != 1000 || !r.Start.Equal(t0.Add(time.Hour)) || r.CallIDs == nil {
		t.Errorf("Get r2 = %+v, %v", r, err)
	}
	if _, err := f.idx.Get(ctx, "nope"); !errors.Is(err, ErrUnknown) {
		t.Errorf("Get unknown = %v, want ErrUnknown", err)
	}
	err = f.idx.Begin(ctx, Record{ID: "r1", Path: "y/r1.wav", Start: t0}, t0, audit.Entry{Kind: "recording.started"})
	if !errors.Is(err, ErrExists) {
		t.Errorf("duplicate Begin = %v, want ErrExists", err)
	}
	// A failed Begin or Finish leaves no audit entry behind.
	if recs := f.auditOf("r1"); len(recs) != 1 {
		t.Errorf("r1 has %d audit entries, want 1", len(recs))
	}
}

// TestIndexBackstops: the schema refuses to drop a row or change a hash.
func TestIndexBackstops(t *testing.T) {
	f := newFixture(t)
	r := f.closedCall("kept", t0, time.Second)
	if _, err := f.st.DB().Exec(`DELETE FROM recordings WHERE id = 'kept'`); err == nil {
		t.Error("DELETE of a recordings row succeeded")
	}
	if _, err := f.st.DB().Exec(`UPDATE recordings SET sha256 = 'ff' WHERE id = 'kept'`); err == nil {
		t.Error("changing a recording's sha256 succeeded")
	}
	if got := f.get("kept"); got.SHA256 != r.SHA256 {
		t.Errorf("hash changed to %s", got.SHA256)
	}
}

func TestIndexSetHold(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r := f.closedCall("h", t0, time.Second)
	if err := f.idx.SetHold(ctx, "h", true, "301", "cli", t0); err != nil {
		t.Fatal(err)
	}
	if !f.get("h").LegalHold {
		t.Error("hold not set")
	}
	if err := f.idx.SetHold(ctx, "h", true, "301", "cli", t0); !errors.Is(err, ErrNoChange) {
		t.Errorf("second hold = %v, want ErrNoChange", err)
	}
	if err := f.idx.SetHold(ctx, "nope", true, "301", "cli", t0); !errors.Is(err, ErrUnknown) {
		t.Errorf("hold unknown = %v, want ErrUnknown", err)
	}
	if err := f.idx.SetHold(ctx, "h", false, "302", "cli", t0); err != nil {
		t.Fatal(err)
	}
	recs := f.auditOf("h")
	if got := kinds(recs); !slices.Equal(got, []string{"recording.started", "recording.closed", "recording.hold", "recording.unhold"}) {
		t.Errorf("audit kinds = %v", got)
	}
	if e := recs[2].Entry; e.Actor != "301" || e.Details["sha256"] != r.SHA256 {
		t.Errorf("recording.hold = %+v", e)
	}
	if err := f.idx.markDeleted(ctx, r, RetentionActor, t0); err != nil {
		t.Fatal(err)
	}
	if err := f.idx.SetHold(ctx, "h", true, "301", "cli", t0); !errors.Is(err, ErrDeleted) {
		t.Errorf("hold of a deleted recording = %v, want ErrDeleted", err)
	}
}
