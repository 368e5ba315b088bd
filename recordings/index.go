package recordings

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"plateau/audit"
	"plateau/sqlstmt"
	"plateau/store"
)

// State is where a recording is in its life.
type State string

const (
	// StateOpen: being written, or left open by a crash until repaired.
	StateOpen State = "open"
	// StateClosed: ended normally; the hash covers the whole call.
	StateClosed State = "closed"
	// StateRepaired: recovered after a crash; the last seconds may be lost.
	StateRepaired State = "repaired"
	// StateFailed: writing failed (disk full, I/O error) and the call was
	// ended; the file, if any, holds what was written before the failure.
	StateFailed State = "failed"
	// StateDeleted: the files were removed by retention; the row stays.
	StateDeleted State = "deleted"
)

// Record is a row of the recordings index.
type Record struct {
	ID          string
	CallIDs     []string
	Operator    string
	Number      string
	Campaign    string
	Start       time.Time // the WAV's first sample once closed (Final.Start); the call's setup while open
	End         time.Time // zero while open
	DurationMS  int64
	Path        string // relative to the recordings directory, slash-separated
	SHA256      string // hex; empty while open
	State       State
	LegalHold   bool
	Disposition string
	DeletedAt   time.Time
	DeletedBy   string
}

// SidecarRel is the sidecar's path relative to the recordings directory.
func (r Record) SidecarRel() string { return strings.TrimSuffix(r.Path, ".wav") + ".json" }

// Filter selects recordings for Search; zero fields match everything.
type Filter struct {
	Operator, Number, Campaign, Disposition string
	State                                   State
	Since, Until                            time.Time // start: Since inclusive, Until exclusive
	Limit, Offset                           int       // Limit 0 means 100
	Oldest                                  bool      // oldest first (default newest first)
	// MinDurationMS leaves out finished recordings shorter than this (a
	// call never answered: busy, refused); open ones always match.
	MinDurationMS int64
}

// Final is how a recording ended: the row's new values and the audit entry
// that must be committed with them.
type Final struct {
	State State
	// Start, when set, replaces the row's start: the wall-clock time of
	// the WAV's first sample, known once audio came (the row is opened at
	// the call's setup, before). Start + duration = end, in the index as
	// in the sidecar.
	Start      time.Time
	End        time.Time
	DurationMS int64
	SHA256     string
	Audit      audit.Entry
}

// Index is what the Manager needs from the recordings index. Each call
// commits the row change and its audit entry together or not at all.
type Index interface {
	// Begin inserts r in state open with the recording.started entry.
	Begin(ctx context.Context, r Record, at time.Time, e audit.Entry) error
	// Finish moves an open recording to f.State with f.Audit.
	Finish(ctx context.Context, id string, at time.Time, f Final) error
}

// DBIndex is the Index in the Plateau database (migration 0004), chained
// into the audit log of the same database.
type DBIndex struct {
	db *sql.DB
	// log, when set, carries the index writes in its group commits: one
	// write path with the process's other audit entries (see UseLog).
	log *audit.Log
	// mu queues this process's index writes in Go when there is no log:
	// SQLite's busy handler would make concurrent writers sleep and retry
	// instead.
	mu sync.Mutex

	stmts *sqlstmt.Cache // every call's statements, prepared once
}

// exec runs query in tx as a statement prepared once on the index's
// database (every call starts and closes a recording: SQLite would parse
// and plan the same statements each time).
func (x *DBIndex) exec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	st, err := x.stmts.Get(ctx, query)
	if err != nil {
		return nil, err
	}
	return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
}

// NewDBIndex returns the index on db (store.Store.DB()).
func NewDBIndex(db *sql.DB) *DBIndex { return &DBIndex{db: db, stmts: sqlstmt.New(db)} }

// UseLog makes the index write through l's group commits (l must be on the
// same database). A server appends audit entries from many goroutines
// while recordings start and close: with two write paths, each would wait
// for the other on SQLite's lock, whose busy handler sleeps between tries
// (1 ms rising to 100 ms), and under load most of a call's setup was spent
// there. Call it before the index is used.
func (x *DBIndex) UseLog(l *audit.Log) { x.log = l }

// inTx runs fn in a write transaction: the store opens SQLite with
// _txlock=immediate, which audit.AppendTx needs to keep the chain linear.
// fn must use the context it is given.
func (x *DBIndex) inTx(ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
	if x.log != nil {
		return x.log.Update(ctx, fn)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	tx, err := x.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(ctx, tx); err != nil {
		return err
	}
	return tx.Commit()
}

// Begin implements Index.
func (x *DBIndex) Begin(ctx context.Context, r Record, at time.Time, e audit.Entry) error {
	ids, err := json.Marshal(nonNil(r.CallIDs))
	if err != nil {
		return fmt.Errorf("index %s: %w", r.ID, err)
	}
	err = x.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := x.exec(ctx, tx, `INSERT INTO recordings
			(id, call_ids, operator, number, campaign, start_time, path, state) VALUES (?,?,?,?,?,?,?,?)`,
			r.ID, string(ids), r.Operator, r.Number, r.Campaign, store.FormatTime(r.Start), r.Path, string(StateOpen))
		if err != nil {
			if strings.Contains(err.Error(), "UNIQUE") || strings.Contains(err.Error(), "PRIMARY KEY") {
				return fmt.Errorf("%w: %s", ErrExists, r.ID)
			}
			return err
		}
		_, err = audit.AppendTx(ctx, tx, at, e)
		return err
	})
	if err != nil {
		return fmt.Errorf("index %s: %w", r.ID, err)
	}
	return nil
}

// Finish implements Index. Only an open row can finish: a second Close or
// a repair racing a live server fails with ErrNotOpen and audits nothing.
func (x *DBIndex) Finish(ctx context.Context, id string, at time.Time, f Final) error {
	end, start := "", ""
	if !f.End.IsZero() {
		end = store.FormatTime(f.End)
	}
	if !f.Start.IsZero() {
		start = store.FormatTime(f.Start)
	}
	err := x.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := x.exec(ctx, tx, `UPDATE recordings SET state = ?, end_time = ?, duration_ms = ?, sha256 = ?,
			start_time = CASE WHEN ? = '' THEN start_time ELSE ? END
			WHERE id = ? AND state = 'open'`, string(f.State), end, f.DurationMS, f.SHA256, start, start, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: %s", ErrNotOpen, id)
		}
		_, err = audit.AppendTx(ctx, tx, at, f.Audit)
		return err
	})
	if err != nil {
		return fmt.Errorf("index %s: %w", id, err)
	}
	return nil
}

// SetHold sets or clears the legal hold of a recording, audited as
// recording.hold or recording.unhold by `by`. A deleted recording cannot
// be held: its audio is gone.
func (x *DBIndex) SetHold(ctx context.Context, id string, on bool, by, source string, at time.Time) error {
	kind := "recording.unhold"
	if on {
		kind = "recording.hold"
	}
	err := x.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		r, err := getRecord(ctx, tx, id)
		if err != nil {
			return err
		}
		if r.State == StateDeleted {
			return fmt.Errorf("%w: %s was deleted on %s", ErrDeleted, id, r.DeletedAt.Format(time.DateOnly))
		}
		if r.LegalHold == on {
			return fmt.Errorf("%w: %s already has legal hold %v", ErrNoChange, id, onOff(on))
		}
		if _, err := tx.ExecContext(ctx, `UPDATE recordings SET legal_hold = ? WHERE id = ?`, on, id); err != nil {
			return err
		}
		_, err = audit.AppendTx(ctx, tx, at, audit.Entry{Kind: kind, Actor: by, Subject: id, Outcome: "ok",
			Source: source, Details: map[string]any{"sha256": r.SHA256, "path": r.Path}})
		return err
	})
	if err != nil {
		return fmt.Errorf("legal hold %s: %w", id, err)
	}
	return nil
}

// markDeleted records the deletion of an expired recording with its audit
// entry. The WHERE clause re-checks hold and state inside the transaction,
// so a hold set since the retention query wins.
func (x *DBIndex) markDeleted(ctx context.Context, r Record, by string, at time.Time) error {
	err := x.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE recordings SET state = 'deleted', deleted_at = ?, deleted_by = ?
			WHERE id = ? AND legal_hold = 0 AND state IN ('closed','repaired','failed')`, store.FormatTime(at), by, r.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: %s is held, open or already deleted", ErrNoChange, r.ID)
		}
		_, err = audit.AppendTx(ctx, tx, at, audit.Entry{Kind: "recording.deleted", Actor: by, Subject: r.ID,
			Outcome: "ok", Reason: "retention", Details: map[string]any{"sha256": r.SHA256, "path": r.Path,
				"start": store.FormatTime(r.Start), "state": string(r.State)}})
		return err
	})
	if err != nil {
		return fmt.Errorf("delete %s: %w", r.ID, err)
	}
	return nil
}

// Get returns one recording; ErrUnknown if there is none.
func (x *DBIndex) Get(ctx context.Context, id string) (Record, error) {
	r, err := getRecord(ctx, x.db, id)
	if err != nil {
		return r, fmt.Errorf("recording %s: %w", id, err)
	}
	return r, nil
}

type queryer interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

func getRecord(ctx context.Context, q queryer, id string) (Record, error) {
	r, err := scanRecord(q.QueryRowContext(ctx, `SELECT `+recordCols+` FROM recordings WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, ErrUnknown
	}
	return r, err
}

// Search returns the recordings matching f, newest first unless f.Oldest.
func (x *DBIndex) Search(ctx context.Context, f Filter) ([]Record, error) {
	q := `SELECT ` + recordCols + ` FROM recordings WHERE 1=1`
	var args []any
	for _, c := range []struct{ col, v string }{{"operator", f.Operator}, {"number", f.Number},
		{"campaign", f.Campaign}, {"disposition", f.Disposition}, {"state", string(f.State)}} {
		if c.v != "" {
			q += ` AND ` + c.col + ` = ?`
			args = append(args, c.v)
		}
	}
	if f.MinDurationMS > 0 {
		q += ` AND (state = 'open' OR duration_ms >= ?)`
		args = append(args, f.MinDurationMS)
	}
	if !f.Since.IsZero() {
		q += ` AND start_time >= ?`
		args = append(args, store.FormatTime(f.Since))
	}
	if !f.Until.IsZero() {
		q += ` AND start_time < ?`
		args = append(args, store.FormatTime(f.Until))
	}
	order := "DESC"
	if f.Oldest {
		order = "ASC"
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	q += ` ORDER BY start_time ` + order + `, id ` + order + ` LIMIT ? OFFSET ?`
	args = append(args, f.Limit, max(f.Offset, 0))
	return x.query(ctx, q, args...)
}

// all returns every row matching the WHERE clause (no limit): verify and
// retention must see everything, not a page.
func (x *DBIndex) all(ctx context.Context, where string, args ...any) ([]Record, error) {
	return x.query(ctx, `SELECT `+recordCols+` FROM recordings WHERE `+where+` ORDER BY start_time, id`, args...)
}

func (x *DBIndex) query(ctx context.Context, q string, args ...any) ([]Record, error) {
	rows, err := x.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("recordings index: %w", err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("recordings index: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

const recordCols = `id, call_ids, operator, number, campaign, start_time, end_time, duration_ms, path, sha256,
	state, legal_hold, disposition, deleted_at, deleted_by`

func scanRecord(row interface{ Scan(...any) error }) (Record, error) {
	var r Record
	var ids, start, end, state, deleted string
	err := row.Scan(&r.ID, &ids, &r.Operator, &r.Number, &r.Campaign, &start, &end, &r.DurationMS, &r.Path,
		&r.SHA256, &state, &r.LegalHold, &r.Disposition, &deleted, &r.DeletedBy)
	if err != nil {
		return r, err
	}
	// A row whose call ids do not parse is still listed: verify is about
	// the audio, and the ids are in the sidecar and the audit log too.
	_ = json.Unmarshal([]byte(ids), &r.CallIDs)
	r.State = State(state)
	r.Start = store.ParseTime(start)
	if end != "" {
		r.End = store.ParseTime(end)
	}
	if deleted != "" {
		r.DeletedAt = store.ParseTime(deleted)
	}
	return r, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}
