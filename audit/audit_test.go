package audit_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"plateau/audit"
	"plateau/store"
)

func openLog(t *testing.T) (*audit.Log, *store.Store) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "plateau.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	base := time.Date(2026, 11, 27, 7, 30, 0, 0, time.UTC)
	var mu sync.Mutex
	n := 0
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		n++
		return base.Add(time.Duration(n) * time.Second)
	}
	return audit.New(st.DB(), now), st
}

func appendN(t *testing.T, l *audit.Log, n int) {
	t.Helper()
	for i := range n {
		_, err := l.Append(context.Background(), audit.Entry{Kind: "policy.decision", Actor: "101",
			Subject: fmt.Sprintf("+3324012345%d", i%10), Outcome: "deny", Reason: "NOT_ALLOWLISTED",
			Source: "127.0.0.1", Details: map[string]any{"i": i, "campaign": "c1"}})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// exec runs raw SQL as an attacker with the database file would, after
// dropping the append-only triggers.
func exec(t *testing.T, st *store.Store, q string, args ...any) {
	t.Helper()
	ctx := context.Background()
	for _, d := range []string{`DROP TRIGGER IF EXISTS audit_log_no_update`, `DROP TRIGGER IF EXISTS audit_log_no_delete`, q} {
		if _, err := st.DB().ExecContext(ctx, d, args...); err != nil && d == q {
			t.Fatal(err)
		}
	}
}

func TestAppendConcurrentVerify(t *testing.T) {
	l, _ := openLog(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	seqs := make(chan int64, 200)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				seq, err := l.Append(ctx, audit.Entry{Kind: "auth.ban", Actor: fmt.Sprint(g), Subject: fmt.Sprint(i)})
				if err != nil {
					t.Error(err)
					return
				}
				seqs <- seq
			}
		}()
	}
	wg.Wait()
	close(seqs)
	seen := map[int64]bool{}
	for s := range seqs {
		if seen[s] {
			t.Fatalf("seq %d given twice", s)
		}
		seen[s] = true
	}
	rep, err := l.Verify(ctx)
	if err != nil || !rep.OK || rep.Entries != 200 || rep.HeadSeq != 200 {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
}

func TestVerifyEmpty(t *testing.T) {
	l, _ := openLog(t)
	rep, err := l.Verify(context.Background())
	if err != nil || !rep.OK || rep.Entries != 0 || rep.Head != audit.Genesis {
		t.Fatalf("%+v %v", rep, err)
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	tests := []struct {
		name     string
		tamper   string
		args     []any
		brokenAt int64
		problem  string
	}{
		{"altered outcome", `UPDATE audit_log SET outcome = 'allow' WHERE seq = 4`, nil, 4, "hash"},
		{"altered details", `UPDATE audit_log SET details = '{"campaign":"c1","i":99}' WHERE seq = 7`, nil, 7, "hash"},
		{"altered time", `UPDATE audit_log SET time = '2026-11-27T06:00:00.000000000Z' WHERE seq = 1`, nil, 1, "hash"},
		{"rehashed row", `UPDATE audit_log SET prev_hash = ? WHERE seq = 5`, []any{audit.Genesis}, 5, "hash"},
		{"removed entry", `DELETE FROM audit_log WHERE seq = 6`, nil, 6, "missing"},
		{"removed first", `DELETE FROM audit_log WHERE seq = 1`, nil, 1, "missing"},
		{"renumbered after removal", `DELETE FROM audit_log WHERE seq = 6; UPDATE audit_log SET seq = seq - 1 WHERE seq > 6`, nil, 6, "hash"},
		// Swap every column but seq between entries 3 and 8.
		{"swapped", `UPDATE audit_log SET
			time = CASE seq WHEN 3 THEN (SELECT time FROM audit_log WHERE seq = 8) ELSE (SELECT time FROM audit_log WHERE seq = 3) END,
			subject = CASE seq WHEN 3 THEN (SELECT subject FROM audit_log WHERE seq = 8) ELSE (SELECT subject FROM audit_log WHERE seq = 3) END,
			details = CASE seq WHEN 3 THEN (SELECT details FROM audit_log WHERE seq = 8) ELSE (SELECT details FROM audit_log WHERE seq = 3) END,
			prev_hash = CASE seq WHEN 3 THEN (SELECT prev_hash FROM audit_log WHERE seq = 8) ELSE (SELECT prev_hash FROM audit_log WHERE seq = 3) END,
			hash = CASE seq WHEN 3 THEN (SELECT hash FROM audit_log WHERE seq = 8) ELSE (SELECT hash FROM audit_log WHERE seq = 3) END
			WHERE seq IN (3, 8)`, nil, 3, "hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, st := openLog(t)
			appendN(t, l, 10)
			exec(t, st, tt.tamper, tt.args...)
			rep, err := l.Verify(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK || rep.BrokenAt != tt.brokenAt || !strings.Contains(rep.Problem, tt.problem) {
				t.Fatalf("got %+v, want broken at %d (%s)", rep, tt.brokenAt, tt.problem)
			}
		})
	}
}

func TestAppendOnlyTriggers(t *testing.T) {
	l, st := openLog(t)
	appendN(t, l, 2)
	ctx := context.Background()
	if _, err := st.DB().ExecContext(ctx, `UPDATE audit_log SET actor = 'x'`); err == nil {
		t.Error("update allowed")
	}
	if _, err := st.DB().ExecContext(ctx, `DELETE FROM audit_log`); err == nil {
		t.Error("delete allowed")
	}
}

func TestAppendInvalid(t *testing.T) {
	l, _ := openLog(t)
	ctx := context.Background()
	if _, err := l.Append(ctx, audit.Entry{}); !errors.Is(err, audit.ErrInvalidEntry) {
		t.Errorf("no kind: %v", err)
	}
	if _, err := l.Append(ctx, audit.Entry{Kind: "x", Details: map[string]any{"c": make(chan int)}}); !errors.Is(err, audit.ErrInvalidEntry) {
		t.Errorf("bad details: %v", err)
	}
	if rep, _ := l.Verify(ctx); rep.Entries != 0 {
		t.Errorf("invalid entries written: %+v", rep)
	}
}

func TestList(t *testing.T) {
	l, _ := openLog(t)
	ctx := context.Background()
	appendN(t, l, 5)
	l.Append(ctx, audit.Entry{Kind: "recording.access", Actor: "301", Subject: "rec-1", Outcome: "ok"})
	all, err := l.List(ctx, audit.Filter{})
	if err != nil || len(all) != 6 || all[0].Seq != 6 || all[5].Seq != 1 {
		t.Fatalf("all: %d %v", len(all), err)
	}
	if d := all[5].Entry.Details; d["campaign"] != "c1" || d["i"] != float64(0) {
		t.Errorf("details %v", d)
	}
	got, _ := l.List(ctx, audit.Filter{Kind: "recording.access"})
	if len(got) != 1 || got[0].Entry.Actor != "301" || got[0].Entry.Subject != "rec-1" {
		t.Errorf("by kind: %+v", got)
	}
	got, _ = l.List(ctx, audit.Filter{Actor: "101", Limit: 2, Offset: 1})
	if len(got) != 2 || got[0].Seq != 4 || got[1].Seq != 3 {
		t.Errorf("limit/offset: %+v", got)
	}
	got, _ = l.List(ctx, audit.Filter{Subject: "+33240123451"})
	if len(got) != 1 || got[0].Seq != 2 {
		t.Errorf("by subject: %+v", got)
	}
	since := all[3].Time // seq 3
	got, _ = l.List(ctx, audit.Filter{Since: since, Until: since.Add(2 * time.Second)})
	if len(got) != 2 || got[0].Seq != 4 || got[1].Seq != 3 {
		t.Errorf("time range: %+v", got)
	}
}

// A head noted earlier catches what the chain alone cannot: its newest
// entries deleted, or the chain rebuilt from some entry on.
func TestVerifyHeads(t *testing.T) {
	ctx := context.Background()
	noted := func(t *testing.T, l *audit.Log) audit.Head {
		rep, err := l.Verify(ctx)
		if err != nil || !rep.OK {
			t.Fatalf("verify: %+v %v", rep, err)
		}
		return audit.Head{Seq: rep.HeadSeq, Hash: rep.Head}
	}
	tests := []struct {
		name     string
		tamper   func(t *testing.T, l *audit.Log, st *store.Store)
		brokenAt int64 // 0: intact
		problem  string
	}{
		{"intact, more entries since", func(t *testing.T, l *audit.Log, st *store.Store) { appendN(t, l, 3) }, 0, ""},
		{"newest entries deleted", func(t *testing.T, l *audit.Log, st *store.Store) {
			exec(t, st, `DELETE FROM audit_log WHERE seq > 8`)
		}, 9, "deleted"},
		{"rebuilt from entry 3", func(t *testing.T, l *audit.Log, st *store.Store) {
			exec(t, st, `DELETE FROM audit_log WHERE seq >= 3`)
			appendN(t, l, 8) // a valid chain again, with other content
		}, 5, "rewritten"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, st := openLog(t)
			appendN(t, l, 5)
			h5 := noted(t, l)
			appendN(t, l, 5)
			h10 := noted(t, l)
			tt.tamper(t, l, st)
			if rep, _ := l.Verify(ctx); !rep.OK {
				t.Fatalf("the chain alone should still verify: %+v", rep)
			}
			rep, err := l.VerifyHeads(ctx, []audit.Head{h5, h10})
			if err != nil {
				t.Fatal(err)
			}
			if tt.brokenAt == 0 {
				if !rep.OK {
					t.Fatalf("got %+v, want ok", rep)
				}
				return
			}
			if rep.OK || rep.BrokenAt != tt.brokenAt || !strings.Contains(rep.Problem, tt.problem) {
				t.Fatalf("got %+v, want broken at %d (%s)", rep, tt.brokenAt, tt.problem)
			}
		})
	}
}

func TestParseHead(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	tests := []struct {
		in   string
		want audit.Head
		ok   bool
	}{
		{"12:" + hash, audit.Head{Seq: 12, Hash: hash}, true},
		{" 12:" + strings.ToUpper(hash) + "\n", audit.Head{Seq: 12, Hash: hash}, true},
		{"12", audit.Head{}, false},
		{"0:" + hash, audit.Head{}, false},
		{"-1:" + hash, audit.Head{}, false},
		{"x:" + hash, audit.Head{}, false},
		{"12:" + hash[:62], audit.Head{}, false},
		{"12:" + strings.Repeat("zz", 32), audit.Head{}, false},
		{"", audit.Head{}, false},
	}
	for _, tt := range tests {
		got, err := audit.ParseHead(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseHead(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
		if err == nil && got.String() != strings.TrimSpace(strings.ToLower(tt.in)) {
			t.Errorf("String() = %q", got.String())
		}
	}
}
