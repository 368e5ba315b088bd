package audit_test

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"
	"time"

	"plateau/audit"
)

// Update joins the group commit: its changes and entries are committed with
// the batch; a failing Update undoes its own changes and entries alone.
func TestUpdateConcurrentWithAppend(t *testing.T) {
	l, st := openLog(t)
	ctx := context.Background()
	if _, err := st.DB().ExecContext(ctx, `CREATE TABLE things (id INTEGER PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	errBoom := errors.New("boom")
	const n = 40
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs[i] = l.Update(ctx, func(ctx context.Context, tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, `INSERT INTO things (id) VALUES (?)`, i); err != nil {
					return err
				}
				if _, err := audit.AppendTx(ctx, tx, time.Now(), audit.Entry{Kind: "thing.added", Actor: "t"}); err != nil {
					return err
				}
				if i%4 == 0 {
					return errBoom // after a row and an entry: both must go
				}
				return nil
			})
		}()
		go func() {
			defer wg.Done()
			if _, err := l.Append(ctx, audit.Entry{Kind: "policy.decision", Actor: "101"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if want := i%4 == 0; want != errors.Is(err, errBoom) || (!want && err != nil) {
			t.Fatalf("update %d: %v", i, err)
		}
	}
	var things, added, decisions int
	db := st.DB()
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM things`).Scan(&things); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM audit_log WHERE kind='thing.added'`).Scan(&added); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM audit_log WHERE kind='policy.decision'`).Scan(&decisions); err != nil {
		t.Fatal(err)
	}
	if want := n - n/4; things != want || added != want || decisions != n {
		t.Fatalf("things %d, thing.added %d, decisions %d; want %d, %d, %d", things, added, decisions, want, want, n)
	}
	rep, err := l.Verify(ctx)
	if err != nil || !rep.OK || rep.Entries != int64(n+n-n/4) {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

// A caller's cancelled context does not interrupt the batch it joined: fn
// gets the batch's context.
func TestUpdateCancelledCaller(t *testing.T) {
	l, _ := openLog(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := l.Update(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		_, err := audit.AppendTx(ctx, tx, time.Now(), audit.Entry{Kind: "thing.added"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := l.Verify(context.Background()); err != nil || !rep.OK || rep.Entries != 1 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}
