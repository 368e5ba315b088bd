package recordings

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/pion/rtp"

	"plateau/audit"
)

// Auditor records recording events in the audit chain when no index
// transaction can carry them (the index itself failed).
type Auditor interface {
	Audit(ctx context.Context, kind, actor, subject, outcome, reason, source string, details map[string]any)
}

// Info identifies the call a recording belongs to.
type Info struct {
	ID       string // Plateau's call id; also the recording id
	CallIDs  []string
	Operator string
	Number   string
	Campaign string
	Start    time.Time
}

// Manager starts recordings, flushes the open ones on a timer (so that a
// crash loses at most one interval and fsync stays off the media path) and
// closes them into the index and the integrity chain.
type Manager struct {
	dir       string
	minFreeMB int
	index     Index
	audit     Auditor
	log       *slog.Logger
	now       func() time.Time
	metrics   *Metrics
	flushEach time.Duration
	// create opens a recording file; tests replace it to inject failing
	// files while keeping the real file for Repair.
	create func(path string, opts ...Option) (*Writer, error)

	mu       sync.Mutex
	open     map[*Session]struct{}
	readyAt  time.Time
	readyErr error
}

// NewManager records into dir, refusing new recordings when less than
// minFreeMB MiB are free. Every recording gets a row in idx; audit takes the
// events idx could not commit.
func NewManager(dir string, minFreeMB int, idx Index, audit Auditor, log *slog.Logger, now func() time.Time, m *Metrics) *Manager {
	return &Manager{dir: dir, minFreeMB: minFreeMB, index: idx, audit: audit, log: log, now: now, metrics: m,
		flushEach: 2 * time.Second, open: map[*Session]struct{}{}, create: Create}
}

// Dir is where recordings are written.
func (m *Manager) Dir() string { return m.dir }

// Ready reports whether a recording can start now. The disk check creates
// and syncs a file, so its result is reused for a second.
func (m *Manager) Ready() error {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.readyAt.IsZero() && now.Sub(m.readyAt) < time.Second && now.After(m.readyAt) {
		return m.readyErr
	}
	m.readyErr = Ready(m.dir, m.minFreeMB)
	m.readyAt = now
	return m.readyErr
}

// Start creates the recording file of a call and its open index row. The
// call must not be placed unless Start succeeds: a recording that is not
// indexed could be lost without anyone noticing.
func (m *Manager) Start(ctx context.Context, info Info) (*Session, error) {
	if err := m.Ready(); err != nil {
		return nil, err
	}
	if err := ValidateID(info.ID); err != nil {
		return nil, err
	}
	path := Path(m.dir, info.ID, info.Start)
	rel, err := filepath.Rel(m.dir, path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRecorderUnavailable, err)
	}
	rel = filepath.ToSlash(rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRecorderUnavailable, err)
	}
	opts := []Option{WithSyncInterval(0)}
	if m.metrics != nil {
		opts = append(opts, WithMetrics(m.metrics))
	}
	w, err := m.create(path, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRecorderUnavailable, err)
	}
	// The file exists before its row: a crash in between leaves a file
	// with a header and no audio (the call was not placed yet), which
	// verify reports as unindexed, rather than a row without a file.
	rec := Record{ID: info.ID, CallIDs: info.CallIDs, Operator: info.Operator, Number: info.Number,
		Campaign: info.Campaign, Start: info.Start, Path: rel, State: StateOpen}
	err = m.index.Begin(ctx, rec, m.now(), audit.Entry{Kind: "recording.started", Actor: info.Operator,
		Subject: info.ID, Outcome: "ok", Details: map[string]any{"number": info.Number, "path": rel, "call_ids": nonNil(info.CallIDs)}})
	if err != nil {
		w.discard()
		os.Remove(path)
		return nil, fmt.Errorf("%w: %w", ErrRecorderUnavailable, err)
	}
	s := &Session{m: m, w: w, info: info, path: path, rel: rel}
	m.mu.Lock()
	m.open[s] = struct{}{}
	m.mu.Unlock()
	return s, nil
}

// Run flushes open recordings until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(m.flushEach)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.mu.Lock()
			open := make([]*Session, 0, len(m.open))
			for s := range m.open {
				open = append(open, s)
			}
			m.mu.Unlock()
			now := m.now()
			for _, s := range open {
				// A session may close between the snapshot and its flush.
				if err := s.w.Flush(now); err != nil && !errors.Is(err, ErrClosed) {
					m.log.Error("recording flush failed", "recording", s.info.ID, "err", err)
				}
			}
		}
	}
}

// Session is one call's recording in progress.
type Session struct {
	m    *Manager
	w    *Writer
	info Info
	path string // absolute WAV path
	rel  string // as in the index
	once sync.Once
	err  error
}

// ID is the recording's id.
func (s *Session) ID() string { return s.info.ID }

// WriteRTP records one packet of a channel. An error means the recording
// is broken; the caller ends the call, then calls Close, which records the
// failure.
func (s *Session) WriteRTP(ch Channel, pkt *rtp.Packet, arrival time.Time) error {
	return s.w.WriteRTP(ch, pkt, arrival)
}

// Close finishes the file, writes its sidecar with the SHA-256 and commits
// the index row with the recording.closed audit entry. After a write
// failure it leaves a valid WAV of what was written instead, marked failed
// and audited as recording.failed. Close is idempotent.
func (s *Session) Close(end time.Time) error {
	s.once.Do(func() {
		m := s.m
		m.mu.Lock()
		delete(m.open, s)
		m.mu.Unlock()
		sum, dur, err := s.w.Close(end)
		if err != nil {
			s.err = s.failed(end, err)
			return
		}
		s.err = s.closed(end, sum, dur)
	})
	return s.err
}

// finishCtx: a recording is finalised whatever happened to the call (its
// context is usually cancelled by the hang-up that triggers Close).
func finishCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

func (s *Session) closed(end time.Time, sum string, dur time.Duration) error {
	m := s.m
	var errs []error
	details := map[string]any{"path": s.rel, "sha256": sum, "duration_ms": dur.Milliseconds()}
	sc := s.sidecar(end, sum, dur)
	if err := WriteSidecar(SidecarPath(m.dir, s.info.ID, s.info.Start), sc); err != nil {
		details["sidecar_error"] = err.Error()
		errs = append(errs, err)
	}
	ctx, cancel := finishCtx()
	defer cancel()
	f := Final{State: StateClosed, Start: sc.Start, End: end, DurationMS: dur.Milliseconds(), SHA256: sum,
		Audit: audit.Entry{Kind: "recording.closed", Actor: s.info.Operator, Subject: s.info.ID, Outcome: "ok", Details: details}}
	if err := m.index.Finish(ctx, s.info.ID, m.now(), f); err != nil {
		// The row stays open, so the next start's repair closes it (as
		// repaired, with the same hash); say so in the chain meanwhile.
		details["index_error"] = err.Error()
		m.audit.Audit(ctx, "recording.closed", s.info.Operator, s.info.ID, "index_failed", "", "", details)
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close recording %s: %w", s.info.ID, err)
	}
	return nil
}

// failed handles a recording whose writes failed mid-call: the header is
// repaired so the file plays up to the failure, hashed so later tampering
// shows, and the row marked failed with a recording.failed entry.
func (s *Session) failed(end time.Time, cause error) error {
	m := s.m
	details := map[string]any{"path": s.rel, "error": cause.Error()}
	f := Final{State: StateFailed, Start: s.w.Start(), End: end,
		Audit: audit.Entry{Kind: "recording.failed", Actor: s.info.Operator, Subject: s.info.ID, Outcome: "failed",
			Reason: "write_failed", Details: details}}
	if res, err := Repair(s.path); err != nil {
		details["repair_error"] = err.Error()
	} else if sum, err := hashFile(s.path); err != nil {
		details["hash_error"] = err.Error()
	} else {
		f.SHA256, f.DurationMS = sum, res.Duration.Milliseconds()
		details["sha256"], details["duration_ms"] = sum, f.DurationMS
		sc := s.sidecar(end, sum, res.Duration)
		sc.Repaired, sc.Failed = true, true
		// Often fails too on a full disk; repair rewrites it later.
		if err := WriteSidecar(SidecarPath(m.dir, s.info.ID, s.info.Start), sc); err != nil {
			details["sidecar_error"] = err.Error()
		}
	}
	ctx, cancel := finishCtx()
	defer cancel()
	if err := m.index.Finish(ctx, s.info.ID, m.now(), f); err != nil {
		details["index_error"] = err.Error()
		m.audit.Audit(ctx, "recording.failed", s.info.Operator, s.info.ID, "failed", "write_failed", "", details)
	}
	m.log.Error("recording failed", "recording", s.info.ID, "err", cause)
	return fmt.Errorf("close recording %s: %w", s.info.ID, cause)
}

func (s *Session) sidecar(end time.Time, sum string, dur time.Duration) *Sidecar {
	sc := &Sidecar{ID: s.info.ID, CallIDs: nonNil(s.info.CallIDs), Operator: s.info.Operator, Number: s.info.Number,
		Campaign: s.info.Campaign, Start: s.w.Start(), End: end, DurationMS: dur.Milliseconds(), SHA256: sum}
	if sc.Start.IsZero() {
		sc.Start = s.info.Start
	}
	return sc
}
