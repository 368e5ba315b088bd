package recordings

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"plateau/audit"
)

// LockName is the lock file `plateau serve` holds in the recordings
// directory while it runs. It is hidden, so verify ignores it.
const LockName = ".plateau-recorder.lock"

// DirLock is an exclusive hold on a recordings directory: one process at a
// time writes or repairs its open recordings.
type DirLock struct{ f *os.File }

// LockDir takes the recordings directory's lock without waiting. It fails
// with ErrServerRunning while another process (a running server, another
// repair) holds it. The lock dies with its process, kill -9 included, so
// "locked" always means "someone alive is using these files": that is why
// offline repair trusts it rather than the age of the open rows, which says
// nothing about a long call in progress.
func LockDir(dir string) (*DirLock, error) {
	path := filepath.Join(dir, LockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		if errors.Is(err, ErrServerRunning) {
			return nil, fmt.Errorf("%w: %s is locked (stop plateau serve first; it repairs at start)", err, path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &DirLock{f: f}, nil
}

// Close releases the lock; it is idempotent.
func (l *DirLock) Close() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// RepairOutcome is what RepairOpen did with one recording.
type RepairOutcome struct {
	ID     string
	Path   string // relative, as in the index
	State  State  // repaired, failed, or open if the index update failed
	Result RepairResult
	Err    error // why the recording is failed or still open
}

// RepairOpen repairs every recording whose index row is still open. It must
// run only while no process writes recordings in dir (hold LockDir): then
// every open row is a crash's leftover. Each file's header is fixed from
// its length (Repair), the file hashed, the sidecar rewritten with
// repaired: true and the row marked repaired with a recording.repaired
// audit entry. A missing or unrecognisable file marks the row failed
// (recording.failed) and is left untouched as evidence. Failed rows whose
// sidecar could not be written (full disk) get it now, if the file still
// matches the indexed hash. One recording's trouble does not stop the rest.
func RepairOpen(ctx context.Context, dir string, idx *DBIndex, actor string, now func() time.Time) ([]RepairOutcome, error) {
	open, err := idx.all(ctx, `state = 'open'`)
	if err != nil {
		return nil, err
	}
	var out []RepairOutcome
	for _, r := range open {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		out = append(out, repairOne(ctx, dir, idx, r, actor, now))
	}
	failed, err := idx.all(ctx, `state = 'failed' AND sha256 <> ''`)
	if err != nil {
		return out, err
	}
	for _, r := range failed {
		sc := filepath.Join(dir, filepath.FromSlash(r.SidecarRel()))
		if _, err := os.Stat(sc); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if sum, err := hashFile(filepath.Join(dir, filepath.FromSlash(r.Path))); err != nil || sum != r.SHA256 {
			continue // verify reports it; a sidecar must not vouch for it
		}
		s := recordSidecar(r)
		s.Repaired, s.Failed = true, true
		if err := WriteSidecar(sc, s); err != nil {
			out = append(out, RepairOutcome{ID: r.ID, Path: r.Path, State: r.State, Err: err})
		}
	}
	return out, nil
}

func repairOne(ctx context.Context, dir string, idx *DBIndex, r Record, actor string, now func() time.Time) RepairOutcome {
	o := RepairOutcome{ID: r.ID, Path: r.Path, State: StateOpen}
	abs := filepath.Join(dir, filepath.FromSlash(r.Path))
	details := map[string]any{"path": r.Path}
	fail := func(reason string, cause error) RepairOutcome {
		details["error"] = cause.Error()
		err := idx.Finish(ctx, r.ID, now(), Final{State: StateFailed, Audit: audit.Entry{Kind: "recording.failed",
			Actor: actor, Subject: r.ID, Outcome: "failed", Reason: reason, Details: details}})
		if err != nil {
			o.Err = errors.Join(cause, err)
			return o
		}
		o.State, o.Err = StateFailed, cause
		return o
	}
	res, err := Repair(abs)
	o.Result = res
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fail("missing_after_crash", err)
	case err != nil:
		return fail("unrepairable", err)
	}
	sum, err := hashFile(abs)
	if err != nil {
		o.Err = err
		return o
	}
	s := recordSidecar(r)
	s.End = r.Start.Add(res.Duration)
	s.DurationMS, s.SHA256, s.Repaired = res.Duration.Milliseconds(), sum, true
	if err := WriteSidecar(filepath.Join(dir, filepath.FromSlash(r.SidecarRel())), s); err != nil {
		details["sidecar_error"] = err.Error()
	}
	details["sha256"], details["duration_ms"] = sum, s.DurationMS
	details["changed"], details["old_data_bytes"], details["truncated_bytes"] = res.Changed, res.OldDataBytes, res.TruncatedBytes
	err = idx.Finish(ctx, r.ID, now(), Final{State: StateRepaired, End: s.End, DurationMS: s.DurationMS, SHA256: sum,
		Audit: audit.Entry{Kind: "recording.repaired", Actor: actor, Subject: r.ID, Outcome: "ok", Details: details}})
	if err != nil {
		o.Err = err
		return o
	}
	o.State = StateRepaired
	return o
}

func recordSidecar(r Record) *Sidecar {
	return &Sidecar{ID: r.ID, CallIDs: nonNil(r.CallIDs), Operator: r.Operator, Number: r.Number, Campaign: r.Campaign,
		Start: r.Start, End: r.End, DurationMS: r.DurationMS, SHA256: r.SHA256}
}
