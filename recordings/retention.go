package recordings

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"plateau/store"
)

// RetentionActor is the audit actor of deletions by the retention job.
const RetentionActor = "retention"

// Retention deletes recordings whose start is more than Days days old,
// unless under legal hold. The row is kept, marked deleted, and each
// deletion is audited (recording.deleted, with the SHA-256) in the same
// transaction, before the files go: a crash in between leaves files that
// the next sweep removes, never a deletion nobody recorded.
type Retention struct {
	Dir   string
	Index *DBIndex
	Days  int
	Log   *slog.Logger
	Now   func() time.Time
	// Every is the time between sweeps (default 24 h); After waits for it
	// (default time.After), injected so tests drive the job.
	Every time.Duration
	After func(time.Duration) <-chan time.Time
}

// SweepResult says what one sweep did.
type SweepResult struct {
	Deleted []string // recording ids deleted now
	Skipped []error  // recordings left in place, and why
}

// Run sweeps at once, then every r.Every, until ctx ends. Failures are
// logged: the next sweep retries them.
func (r *Retention) Run(ctx context.Context) {
	every, after := r.Every, r.After
	if every <= 0 {
		every = 24 * time.Hour
	}
	if after == nil {
		after = time.After
	}
	for {
		res, err := r.Sweep(ctx)
		if err != nil && ctx.Err() == nil {
			r.Log.Error("retention sweep failed", "err", err)
		}
		for _, e := range res.Skipped {
			r.Log.Error("retention skipped a recording", "err", e)
		}
		if len(res.Deleted) > 0 {
			r.Log.Info("retention deleted recordings", "count", len(res.Deleted), "retention_days", r.Days)
		}
		select {
		case <-ctx.Done():
			return
		case <-after(every):
		}
	}
}

// Sweep deletes the expired recordings now. A file that is missing or no
// longer matches its indexed hash is not deleted: retention must not erase
// the evidence of a loss or of tampering (verify reports it to security).
func (r *Retention) Sweep(ctx context.Context) (SweepResult, error) {
	var res SweepResult
	if r.Days < 1 {
		return res, fmt.Errorf("retention: %d days, want at least 1 (recordings.retention_days)", r.Days)
	}
	now := r.Now()
	cutoff := now.AddDate(0, 0, -r.Days)
	rows, err := r.Index.all(ctx, `state IN ('closed','repaired','failed') AND legal_hold = 0 AND start_time < ?`, store.FormatTime(cutoff))
	if err != nil {
		return res, err
	}
	for _, rec := range rows {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		wav := filepath.Join(r.Dir, filepath.FromSlash(rec.Path))
		sum, err := hashFile(wav)
		switch {
		case errors.Is(err, fs.ErrNotExist) && rec.SHA256 == "":
			// Failed before any audio was kept: nothing to delete but the row's state.
		case err != nil:
			res.Skipped = append(res.Skipped, fmt.Errorf("retention %s: %w", rec.Path, err))
			continue
		case sum != rec.SHA256:
			res.Skipped = append(res.Skipped, fmt.Errorf("retention %s: sha256 %s, index says %s: kept for security (see plateau recordings verify)", rec.Path, sum, rec.SHA256))
			continue
		}
		if err := r.Index.markDeleted(ctx, rec, RetentionActor, r.Now()); err != nil {
			if !errors.Is(err, ErrNoChange) { // held or deleted since the query: fine
				res.Skipped = append(res.Skipped, err)
			}
			continue
		}
		res.Deleted = append(res.Deleted, rec.ID)
		if err := removeFiles(r.Dir, rec); err != nil {
			res.Skipped = append(res.Skipped, err)
		}
	}
	// Files of rows already marked deleted, left by a crash or a failed
	// removal; bounded to recent deletions to keep the sweep cheap.
	left, err := r.Index.all(ctx, `state = 'deleted' AND deleted_at >= ?`, store.FormatTime(now.AddDate(0, 0, -30)))
	if err != nil {
		return res, err
	}
	for _, rec := range left {
		if err := removeFiles(r.Dir, rec); err != nil {
			res.Skipped = append(res.Skipped, err)
		}
	}
	return res, nil
}

// removeFiles removes a recording's WAV and sidecar; already gone is fine.
func removeFiles(dir string, rec Record) error {
	var errs []error
	for _, p := range []string{rec.Path, rec.SidecarRel()} {
		if err := os.Remove(filepath.Join(dir, filepath.FromSlash(p))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("retention: remove %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}
