package recordings

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/pion/rtp"
)

// Auditor records recording events in the audit chain.
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
// closes them into the integrity chain.
type Manager struct {
	dir       string
	minFreeMB int
	audit     Auditor
	log       *slog.Logger
	now       func() time.Time
	metrics   *Metrics
	flushEach time.Duration

	mu       sync.Mutex
	open     map[*Session]struct{}
	readyAt  time.Time
	readyErr error
}

// NewManager records into dir, refusing new recordings when less than
// minFreeMB MiB are free.
func NewManager(dir string, minFreeMB int, audit Auditor, log *slog.Logger, now func() time.Time, m *Metrics) *Manager {
	return &Manager{dir: dir, minFreeMB: minFreeMB, audit: audit, log: log, now: now, metrics: m,
		flushEach: 2 * time.Second, open: map[*Session]struct{}{}}
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

// Start creates the recording file of a call.
func (m *Manager) Start(ctx context.Context, info Info) (*Session, error) {
	if err := m.Ready(); err != nil {
		return nil, err
	}
	if err := ValidateID(info.ID); err != nil {
		return nil, err
	}
	path := Path(m.dir, info.ID, info.Start)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRecorderUnavailable, err)
	}
	opts := []Option{WithSyncInterval(0)}
	if m.metrics != nil {
		opts = append(opts, WithMetrics(m.metrics))
	}
	w, err := Create(path, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRecorderUnavailable, err)
	}
	s := &Session{m: m, w: w, info: info, path: path}
	m.mu.Lock()
	m.open[s] = struct{}{}
	m.mu.Unlock()
	m.audit.Audit(ctx, "recording.started", info.Operator, info.ID, "ok", "", "", map[string]any{"number": info.Number, "path": path})
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
				if err := s.w.Flush(now); err != nil {
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
	path string
	once sync.Once
	err  error
}

// ID is the recording's id.
func (s *Session) ID() string { return s.info.ID }

// WriteRTP records one packet of a channel.
func (s *Session) WriteRTP(ch Channel, pkt *rtp.Packet, arrival time.Time) error {
	return s.w.WriteRTP(ch, pkt, arrival)
}

// Close finishes the file, writes its sidecar with the SHA-256 and chains
// that hash into the audit log.
func (s *Session) Close(end time.Time) error {
	s.once.Do(func() {
		m := s.m
		m.mu.Lock()
		delete(m.open, s)
		m.mu.Unlock()
		sum, dur, err := s.w.Close(end)
		outcome, details := "ok", map[string]any{"path": s.path}
		if err != nil {
			s.err = fmt.Errorf("close recording %s: %w", s.info.ID, err)
			outcome, details["error"] = "failed", err.Error()
		} else {
			sc := &Sidecar{ID: s.info.ID, CallIDs: s.info.CallIDs, Operator: s.info.Operator, Number: s.info.Number,
				Campaign: s.info.Campaign, Start: s.w.Start(), End: end, DurationMS: dur.Milliseconds(), SHA256: sum}
			if sc.Start.IsZero() {
				sc.Start = s.info.Start
			}
			if err := WriteSidecar(SidecarPath(m.dir, s.info.ID, s.info.Start), sc); err != nil {
				s.err = err
				outcome, details["error"] = "failed", err.Error()
			}
			details["sha256"], details["duration_ms"] = sum, dur.Milliseconds()
		}
		m.audit.Audit(context.Background(), "recording.closed", s.info.Operator, s.info.ID, outcome, "", "", details)
	})
	return s.err
}
