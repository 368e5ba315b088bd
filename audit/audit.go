// Package audit is Plateau's tamper-evident log: every policy decision,
// recording and access, allowlist change and ban is appended to a SHA-256
// hash chain in the SQLite database (table audit_log, migration 0002).
//
// Each entry's hash covers its sequence number, time, fields, JSON details
// and the previous entry's hash. Verify recomputes the chain and names the
// first entry that was altered, removed or moved. The chain proves the log
// is intact relative to its head: deleting the newest entries, or rewriting
// the whole chain with the file in hand, is only detected by comparing with
// a head (Report.Head) recorded elsewhere, which VerifyHeads does.
package audit

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"plateau/sqlstmt"
)

// Genesis is the prev_hash of the first entry.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// timeLayout matches store.FormatTime (fixed width, so that SQLite compares
// times as strings); repeated here so that audit does not import store,
// which appends audit entries inside its own transactions.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// Entry is one audited event.
type Entry struct {
	Kind    string         // e.g. policy.decision, recording.access, allowlist.approve
	Actor   string         // who: an extension, "system", a web user
	Subject string         // what: a number, a recording id, an allowlist id
	Outcome string         // e.g. allow, deny, ok, failed
	Reason  string         // e.g. a policy reason code
	Source  string         // where from: an IP address, "cli"
	Details map[string]any // anything else; stored as JSON
}

// Record is a stored entry with its place in the chain.
type Record struct {
	Seq      int64
	Time     time.Time
	Entry    Entry
	PrevHash string
	Hash     string
}

// Log appends to and reads the chain.
type Log struct {
	db  *sql.DB
	now func() time.Time
	// mu is held by the one appender that commits: entries queued while it
	// commits go together in the next transaction (group commit), so a
	// burst of calls costs a few commits, not one each. The write
	// transaction is what keeps the chain linear across processes (the CLI
	// and the server).
	mu sync.Mutex

	qmu   sync.Mutex
	queue []*pending

	stmts *sqlstmt.Cache // AppendTx's statements, for its group commits
}

// pending is an entry, or an Update's function, waiting for its batch to
// commit.
type pending struct {
	at    time.Time
	entry Entry
	fn    func(context.Context, *sql.Tx) error // Update; entry unused
	seq   int64
	err   error
	done  bool // set under Log.mu by the committer
}

// New returns a log on db, whose schema must include migration 0002. A
// Log prepares its statements on db once: a long-running process keeps
// one Log per database.
func New(db *sql.DB, now func() time.Time) *Log {
	if now == nil {
		now = time.Now
	}
	return &Log{db: db, now: now, stmts: sqlstmt.New(db)}
}

// The transactions of a Log's group commits carry its statement cache in
// their context, which is how AppendTx, called there directly or from an
// Update's function, finds it: every call appends several entries, and
// SQLite would otherwise parse and plan the same two statements each time.
type stmtCacheKey struct{}

// txQueryRow and txExec run query in tx, as a statement prepared once when
// ctx comes from a Log's group commit, else compiled for this use.
func txQueryRow(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	if c, ok := ctx.Value(stmtCacheKey{}).(*sqlstmt.Cache); ok {
		if st, err := c.Get(ctx, query); err == nil {
			return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
		}
	}
	return tx.QueryRowContext(ctx, query, args...)
}

func txExec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	if c, ok := ctx.Value(stmtCacheKey{}).(*sqlstmt.Cache); ok {
		if st, err := c.Get(ctx, query); err == nil {
			return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
		}
	}
	return tx.ExecContext(ctx, query, args...)
}

// Append adds an entry and returns its sequence number once it is
// committed. Concurrent appends are committed together.
func (l *Log) Append(ctx context.Context, e Entry) (int64, error) {
	// A bad entry fails alone, not the batch it would have joined.
	if e.Kind == "" {
		return 0, fmt.Errorf("%w: kind is required", ErrInvalidEntry)
	}
	if _, err := json.Marshal(e.Details); err != nil {
		return 0, fmt.Errorf("%w: details: %v", ErrInvalidEntry, err)
	}
	p := &pending{at: l.now(), entry: e}
	l.wait(ctx, p)
	return p.seq, p.err
}

// Update runs fn in the transaction of a group commit, so that the changes
// fn makes and the entries it appends with AppendTx are committed together,
// or not at all, on the same write path as Append. Within one process this
// queues writers in Go: separate write transactions would meet on SQLite's
// lock, whose busy handler sleeps (1 ms, 2 ms, ... 100 ms) between tries.
// fn must use the context it is given (the batch's, never cancelled: one
// caller's cancellation must not interrupt the others' transaction), and
// may run more than once: it must read what it decides on inside tx. An
// error from fn undoes fn's changes alone and is returned to its caller;
// the rest of the batch still commits.
func (l *Log) Update(ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
	p := &pending{fn: fn}
	l.wait(ctx, p)
	return p.err
}

// wait queues p and returns once a commit, its own or an earlier
// appender's, has written it.
func (l *Log) wait(ctx context.Context, p *pending) {
	l.qmu.Lock()
	l.queue = append(l.queue, p)
	l.qmu.Unlock()

	l.mu.Lock()
	defer l.mu.Unlock()
	if p.done { // an earlier committer took it in its batch
		return
	}
	l.qmu.Lock()
	batch := l.queue
	l.queue = nil
	l.qmu.Unlock()
	err := l.commit(ctx, batch)
	for _, q := range batch {
		if err != nil {
			q.seq, q.err = 0, err
		}
		q.done = true
	}
}

// commit writes a batch in one transaction; all or none of it, except
// that an Update whose function fails is left out: the transaction is
// rolled back and the rest of the batch run again without it. Failures are
// rare (a duplicate, a row no longer open), so the common path pays for no
// savepoint (each costs SQLite a copy of every page it touches).
func (l *Log) commit(ctx context.Context, batch []*pending) error {
	// Appenders of a batch may have gone; the entries must still be written.
	ctx = context.WithValue(context.WithoutCancel(ctx), stmtCacheKey{}, l.stmts)
	for {
		failed, err := l.commitOnce(ctx, batch)
		if failed < 0 || err != nil {
			return err
		}
		// Its error is in batch[failed].err; its transaction is gone.
		batch = append(batch[:failed:failed], batch[failed+1:]...)
		if len(batch) == 0 {
			return nil
		}
	}
}

// commitOnce runs batch in one transaction and commits it. If an Update's
// function fails it stops there, without committing, keeps the function's
// error in its pending and returns its index; otherwise -1.
func (l *Log) commitOnce(ctx context.Context, batch []*pending) (int, error) {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return -1, fmt.Errorf("audit append: %w", err)
	}
	defer tx.Rollback()
	for i, q := range batch {
		if q.fn != nil {
			if q.err = q.fn(ctx, tx); q.err != nil {
				return i, nil
			}
			continue
		}
		if q.seq, err = AppendTx(ctx, tx, q.at, q.entry); err != nil {
			return -1, err
		}
	}
	if err := tx.Commit(); err != nil {
		return -1, fmt.Errorf("audit append: %w", err)
	}
	return -1, nil
}

// AppendTx adds an entry inside the caller's transaction, so that a change
// and its audit entry are committed together or not at all (the allowlist
// does this). The transaction must hold SQLite's write lock from its start
// (the store opens with _txlock=immediate); otherwise a concurrent append
// fails on the seq primary key rather than forking the chain.
func AppendTx(ctx context.Context, tx *sql.Tx, at time.Time, e Entry) (int64, error) {
	if e.Kind == "" {
		return 0, fmt.Errorf("%w: kind is required", ErrInvalidEntry)
	}
	details := []byte("{}")
	if len(e.Details) > 0 {
		var err error
		// encoding/json sorts map keys, so the text is deterministic; the
		// hash covers the stored text itself, never a re-encoding.
		if details, err = json.Marshal(e.Details); err != nil {
			return 0, fmt.Errorf("%w: details: %v", ErrInvalidEntry, err)
		}
	}
	var last int64
	prev := Genesis
	err := txQueryRow(ctx, tx, `SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).Scan(&last, &prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("audit append: read head: %w", err)
	}
	r := row{seq: last + 1, time: formatTime(at), kind: e.Kind, actor: e.Actor, subject: e.Subject,
		outcome: e.Outcome, reason: e.Reason, source: e.Source, details: string(details), prev: prev}
	r.hash = r.computeHash()
	_, err = txExec(ctx, tx, `INSERT INTO audit_log
		(seq, time, kind, actor, subject, outcome, reason, source, details, prev_hash, hash)
		VALUES (?,?,?,?,?,?,?,?,?,?,?)`,
		r.seq, r.time, r.kind, r.actor, r.subject, r.outcome, r.reason, r.source, r.details, r.prev, r.hash)
	if err != nil {
		return 0, fmt.Errorf("audit append %s: %w", e.Kind, err)
	}
	return r.seq, nil
}

// row is an entry as stored: every hashed value is text exactly as kept in
// the database, so Verify hashes the same bytes that Append did.
type row struct {
	seq                                                 int64
	time, kind, actor, subject, outcome, reason, source string
	details, prev, hash                                 string
}

// computeHash is SHA-256 over a length-prefixed serialisation of the row:
// "<len>:<bytes>," for each value in a fixed order. Length prefixes make the
// encoding unambiguous ("ab"+"c" and "a"+"bc" differ) without escaping.
func (r row) computeHash() string {
	h := sha256.New()
	for _, v := range []string{"plateau-audit-v1", strconv.FormatInt(r.seq, 10), r.time, r.kind, r.actor,
		r.subject, r.outcome, r.reason, r.source, r.details, r.prev} {
		h.Write([]byte(strconv.Itoa(len(v))))
		h.Write([]byte{':'})
		h.Write([]byte(v))
		h.Write([]byte{','})
	}
	return hex.EncodeToString(h.Sum(nil))
}

const rowCols = `seq, time, kind, actor, subject, outcome, reason, source, details, prev_hash, hash`

func scanRow(s interface{ Scan(...any) error }) (row, error) {
	var r row
	err := s.Scan(&r.seq, &r.time, &r.kind, &r.actor, &r.subject, &r.outcome, &r.reason, &r.source, &r.details, &r.prev, &r.hash)
	return r, err
}

// Report is the result of Verify.
type Report struct {
	OK       bool
	Entries  int64  // entries checked
	BrokenAt int64  // first bad entry's seq when !OK
	Problem  string // why it is bad
	Head     string // hash of the last entry; record it elsewhere to detect truncation
	HeadSeq  int64
}

// Head names one entry of the chain by its sequence number and hash, as
// `plateau audit verify` prints it: noted outside this machine, it lets a
// later check prove that the log was neither truncated nor rewritten
// since.
type Head struct {
	Seq  int64
	Hash string
}

func (h Head) String() string { return strconv.FormatInt(h.Seq, 10) + ":" + h.Hash }

// ParseHead reads a head written SEQ:SHA256.
func ParseHead(s string) (Head, error) {
	seq, hash, ok := strings.Cut(strings.TrimSpace(s), ":")
	n, err := strconv.ParseInt(seq, 10, 64)
	if !ok || err != nil || n < 1 {
		return Head{}, fmt.Errorf("audit head %q: want SEQ:SHA256, SEQ a positive entry number", s)
	}
	hash = strings.ToLower(hash)
	if b, err := hex.DecodeString(hash); err != nil || len(b) != sha256.Size {
		return Head{}, fmt.Errorf("audit head %q: the hash must be 64 hexadecimal digits", s)
	}
	return Head{Seq: n, Hash: hash}, nil
}

// Verify recomputes the whole chain in order. The error is for failures to
// read; a broken chain is reported in Report.
func (l *Log) Verify(ctx context.Context) (Report, error) { return l.VerifyHeads(ctx, nil) }

// VerifyHeads is Verify that also checks heads noted earlier: each must
// still be in the chain with the same hash. A missing one means the newest
// entries were deleted; a different hash, that the chain was rewritten.
func (l *Log) VerifyHeads(ctx context.Context, heads []Head) (Report, error) {
	noted := make(map[int64]string, len(heads))
	for _, h := range heads {
		noted[h.Seq] = h.Hash
	}
	rows, err := l.db.QueryContext(ctx, `SELECT `+rowCols+` FROM audit_log ORDER BY seq`)
	if err != nil {
		return Report{}, fmt.Errorf("audit verify: %w", err)
	}
	defer rows.Close()
	rep := Report{OK: true, Head: Genesis}
	broken := func(seq int64, format string, args ...any) (Report, error) {
		rep.OK, rep.BrokenAt, rep.Problem = false, seq, fmt.Sprintf(format, args...)
		return rep, nil
	}
	want := int64(1)
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return rep, fmt.Errorf("audit verify: %w", err)
		}
		switch {
		case r.seq != want:
			return broken(want, "entry %d is missing (next entry is %d)", want, r.seq)
		case r.computeHash() != r.hash:
			return broken(r.seq, "content does not match its hash (altered or moved)")
		case r.prev != rep.Head:
			return broken(r.seq, "prev_hash does not match the hash of entry %d", r.seq-1)
		case noted[r.seq] != "" && noted[r.seq] != r.hash:
			return broken(r.seq, "hash differs from the head noted earlier (%s): the chain was rewritten", Head{r.seq, noted[r.seq]})
		}
		rep.Entries++
		rep.Head, rep.HeadSeq = r.hash, r.seq
		want++
	}
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("audit verify: %w", err)
	}
	for _, h := range heads {
		if h.Seq > rep.HeadSeq {
			return broken(rep.HeadSeq+1, "the chain ends at entry %d but entry %d was noted earlier (%s): entries were deleted", rep.HeadSeq, h.Seq, h)
		}
	}
	return rep, nil
}

// Filter selects entries for List; zero fields match everything.
type Filter struct {
	Kind, Actor, Subject string
	Since, Until         time.Time // Since inclusive, Until exclusive
	Limit, Offset        int       // Limit 0 means 100
}

// List returns matching entries, newest first.
func (l *Log) List(ctx context.Context, f Filter) ([]Record, error) {
	q := `SELECT ` + rowCols + ` FROM audit_log WHERE 1=1`
	var args []any
	for _, c := range []struct{ col, v string }{{"kind", f.Kind}, {"actor", f.Actor}, {"subject", f.Subject}} {
		if c.v != "" {
			q += ` AND ` + c.col + ` = ?`
			args = append(args, c.v)
		}
	}
	if !f.Since.IsZero() {
		q += ` AND time >= ?`
		args = append(args, formatTime(f.Since))
	}
	if !f.Until.IsZero() {
		q += ` AND time < ?`
		args = append(args, formatTime(f.Until))
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	q += ` ORDER BY seq DESC LIMIT ? OFFSET ?`
	args = append(args, f.Limit, max(f.Offset, 0))
	rows, err := l.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("audit list: %w", err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, fmt.Errorf("audit list: %w", err)
		}
		rec := Record{Seq: r.seq, PrevHash: r.prev, Hash: r.hash, Entry: Entry{Kind: r.kind, Actor: r.actor,
			Subject: r.subject, Outcome: r.outcome, Reason: r.reason, Source: r.source}}
		rec.Time, _ = time.Parse(timeLayout, r.time)
		if r.details != "" && r.details != "{}" {
			// A row whose details no longer parse is still listed; Verify
			// is where tampering is reported.
			_ = json.Unmarshal([]byte(r.details), &rec.Entry.Details)
		}
		out = append(out, rec)
	}
	return out, rows.Err()
}
