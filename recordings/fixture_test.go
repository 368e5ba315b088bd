package recordings

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"plateau/audit"
	"plateau/store"
)

// fixture is a Manager on a temporary directory and a real database, with
// a settable clock.
type fixture struct {
	t   *testing.T
	dir string
	st  *store.Store
	idx *DBIndex
	aud *fakeAuditor
	m   *Manager

	mu  sync.Mutex
	now time.Time
}

func newFixture(t *testing.T) *fixture {
	return newFixtureDir(t, t.TempDir())
}

func newFixtureDir(t *testing.T, dir string) *fixture {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "plateau.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{t: t, dir: dir, st: st, idx: NewDBIndex(st.DB()), aud: &fakeAuditor{}, now: t0}
	f.m = NewManager(dir, 0, f.idx, f.aud, discardLog(), f.clock, nil)
	return f
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) setNow(t time.Time) {
	f.mu.Lock()
	f.now = t
	f.mu.Unlock()
}

func info(id string, start time.Time) Info {
	return Info{ID: id, CallIDs: []string{id + "-op", id + "-out"}, Operator: "101", Number: "+33240123456",
		Campaign: "archi", Start: start}
}

// call records dur of a two-party call starting at in.Start and returns the
// session, not closed. Like the relay, it stops at the first write error
// and returns it. Every 2 s of media it flushes, as Manager.Run does.
func (f *fixture) call(in Info, dur time.Duration) (*Session, error) {
	f.t.Helper()
	s, err := f.m.Start(context.Background(), in)
	if err != nil {
		f.t.Fatalf("Start %s: %v", in.ID, err)
	}
	pkts := simulate(in.Start, rand.New(rand.NewPCG(1, 2)), 0.01, 20*time.Millisecond,
		operatorSpec(dur, nil), outsideSpec(300*time.Millisecond, dur, nil))
	next := in.Start.Add(2 * time.Second)
	for _, p := range pkts {
		if err := s.WriteRTP(p.ch, p.pkt, p.arrival); err != nil {
			return s, err
		}
		if p.arrival.After(next) {
			if err := s.w.Flush(p.arrival); err != nil {
				return s, err
			}
			next = next.Add(2 * time.Second)
		}
	}
	return s, nil
}

// closedCall records and closes a call.
func (f *fixture) closedCall(id string, start time.Time, dur time.Duration) Record {
	f.t.Helper()
	s, err := f.call(info(id, start), dur)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := s.Close(start.Add(dur)); err != nil {
		f.t.Fatal(err)
	}
	return f.get(id)
}

func (f *fixture) get(id string) Record {
	f.t.Helper()
	r, err := f.idx.Get(context.Background(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

func (f *fixture) abs(rel string) string { return filepath.Join(f.dir, filepath.FromSlash(rel)) }

// auditOf returns the chain's entries about a recording, oldest first, and
// checks the chain.
func (f *fixture) auditOf(id string) []audit.Record {
	f.t.Helper()
	l := audit.New(f.st.DB(), f.clock)
	rep, err := l.Verify(context.Background())
	if err != nil || !rep.OK {
		f.t.Fatalf("audit chain: %+v, %v", rep, err)
	}
	recs, err := l.List(context.Background(), audit.Filter{Subject: id, Limit: 1000})
	if err != nil {
		f.t.Fatal(err)
	}
	for i, j := 0, len(recs)-1; i < j; i, j = i+1, j-1 {
		recs[i], recs[j] = recs[j], recs[i]
	}
	return recs
}

func kinds(recs []audit.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Entry.Kind)
	}
	return out
}

// fakeAuditor keeps what the Manager audits outside the index.
type fakeAuditor struct {
	mu      sync.Mutex
	entries []audit.Entry
}

func (a *fakeAuditor) Audit(_ context.Context, kind, actor, subject, outcome, reason, source string, details map[string]any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.entries = append(a.entries, audit.Entry{Kind: kind, Actor: actor, Subject: subject, Outcome: outcome,
		Reason: reason, Source: source, Details: details})
}

// flakyIndex passes through to a real index unless told to fail.
type flakyIndex struct {
	Index
	failBegin, failFinish bool
}

var errIndexDown = errors.New("injected index failure")

func (x *flakyIndex) Begin(ctx context.Context, r Record, at time.Time, e audit.Entry) error {
	if x.failBegin {
		return errIndexDown
	}
	return x.Index.Begin(ctx, r, at, e)
}

func (x *flakyIndex) Finish(ctx context.Context, id string, at time.Time, f Final) error {
	if x.failFinish {
		return errIndexDown
	}
	return x.Index.Finish(ctx, id, at, f)
}

// failingFile is a real file whose writes fail once failAfter bytes have
// been written, after writing the part that fits, as a full disk does.
type failingFile struct {
	*os.File
	written, failAfter int64
}

func (f *failingFile) Write(p []byte) (int, error) {
	if f.written+int64(len(p)) <= f.failAfter {
		n, err := f.File.Write(p)
		f.written += int64(n)
		return n, err
	}
	n, _ := f.File.Write(p[:max(f.failAfter-f.written, 0)])
	f.written += int64(n)
	return n, errInjected
}
