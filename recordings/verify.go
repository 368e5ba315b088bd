package recordings

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"plateau/audit"
	"plateau/store"
)

// Kinds of Problem found by Verify.
const (
	ProblemModified  = "modified"  // the WAV's SHA-256 differs from the index
	ProblemMissing   = "missing"   // the index has the recording, the disk does not
	ProblemUnindexed = "unindexed" // a file on disk that no index row accounts for
	ProblemSidecar   = "sidecar"   // sidecar missing, unreadable or disagreeing with the index
	ProblemUndeleted = "undeleted" // marked deleted by retention, yet still on disk
)

// Problem is one finding of Verify, about one file.
type Problem struct {
	Kind   string
	ID     string // recording id, empty for an unindexed file
	Path   string // relative to the recordings directory
	Detail string
}

func (p Problem) String() string {
	s := p.Kind + " " + p.Path
	if p.Detail != "" {
		s += ": " + p.Detail
	}
	return s
}

// VerifyReport is the result of Verify.
type VerifyReport struct {
	Verified int // recordings whose files were checked
	Open     int // recordings still open (in progress, or awaiting repair)
	Problems []Problem
}

// OK reports whether nothing was wrong.
func (r VerifyReport) OK() bool { return len(r.Problems) == 0 }

// AuditEntry is the recordings.verified entry that chains a verification
// run, so security can show when the recordings were last proved intact
// and what was found. since is the run's lower bound as given ("" for all).
func (r VerifyReport) AuditEntry(actor, source, since string) audit.Entry {
	outcome := "ok"
	if !r.OK() {
		outcome = "problems"
	}
	details := map[string]any{"verified": r.Verified, "problems": len(r.Problems), "open": r.Open}
	if since != "" {
		details["since"] = since
	}
	// The first problems name their files; the full list is the run's
	// output, and would make one huge entry after a disaster.
	var found []string
	for _, p := range r.Problems[:min(len(r.Problems), 100)] {
		found = append(found, p.String())
	}
	if len(found) > 0 {
		details["found"] = found
	}
	return audit.Entry{Kind: "recordings.verified", Actor: actor, Outcome: outcome, Source: source, Details: details}
}

// Verify recomputes the SHA-256 of every recording that started at or after
// since (zero: all) and compares it with the index and the sidecar. It
// reports files modified or missing, sidecars that disagree, files deleted
// by retention but still present, and files on disk that no index row
// accounts for. The error is for failures to read the index.
//
// The disk is listed before the index is read: a recording being started
// creates its file, then its row, so a file seen on disk has its row by the
// time the index is read and is not reported as unindexed.
func Verify(ctx context.Context, dir string, idx *DBIndex, since time.Time) (VerifyReport, error) {
	var rep VerifyReport
	onDisk, err := listFiles(dir, since)
	if err != nil {
		return rep, err
	}
	known, err := idx.paths(ctx)
	if err != nil {
		return rep, err
	}
	where, args := `1=1`, []any(nil)
	if !since.IsZero() {
		where, args = `start_time >= ?`, []any{store.FormatTime(since)}
	}
	rows, err := idx.all(ctx, where, args...)
	if err != nil {
		return rep, err
	}
	problem := func(kind string, r Record, path, format string, a ...any) {
		rep.Problems = append(rep.Problems, Problem{Kind: kind, ID: r.ID, Path: path, Detail: fmt.Sprintf(format, a...)})
	}
	for _, r := range rows {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		wav := filepath.Join(dir, filepath.FromSlash(r.Path))
		switch r.State {
		case StateOpen:
			rep.Open++
			continue
		case StateDeleted:
			for _, p := range []string{r.Path, r.SidecarRel()} {
				if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(p))); err == nil {
					problem(ProblemUndeleted, r, p, "deleted on %s but still on disk", r.DeletedAt.Format(time.DateOnly))
				}
			}
			continue
		}
		rep.Verified++
		sum, err := hashFile(wav)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if r.State == StateFailed && r.SHA256 == "" {
				continue // failed before any audio could be kept: audited then
			}
			problem(ProblemMissing, r, r.Path, "recording %s (%s, state %s) is not on disk", r.ID, r.Start.UTC().Format(time.RFC3339), r.State)
			continue
		case err != nil:
			problem(ProblemMissing, r, r.Path, "cannot read: %v", err)
			continue
		case r.SHA256 == "":
			problem(ProblemModified, r, r.Path, "index has no sha256 for this %s recording, file has %s", r.State, sum)
			continue
		case sum != r.SHA256:
			problem(ProblemModified, r, r.Path, "sha256 %s, index says %s", sum, r.SHA256)
		}
		sc, err := ReadSidecar(filepath.Join(dir, filepath.FromSlash(r.SidecarRel())))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			problem(ProblemSidecar, r, r.SidecarRel(), "missing (plateau recordings repair rewrites it if the WAV is intact)")
		case err != nil:
			problem(ProblemSidecar, r, r.SidecarRel(), "unreadable: %v", err)
		case sc.ID != r.ID:
			problem(ProblemSidecar, r, r.SidecarRel(), "id %q, index says %q", sc.ID, r.ID)
		case sc.SHA256 != r.SHA256:
			problem(ProblemSidecar, r, r.SidecarRel(), "sha256 %s, index says %s", sc.SHA256, r.SHA256)
		case sc.DurationMS != r.DurationMS:
			problem(ProblemSidecar, r, r.SidecarRel(), "duration %d ms, index says %d ms", sc.DurationMS, r.DurationMS)
		}
	}
	for _, p := range onDisk {
		if !known[p] {
			rep.Problems = append(rep.Problems, Problem{Kind: ProblemUnindexed, Path: p, Detail: "no index row accounts for this file"})
		}
	}
	return rep, nil
}

// listFiles returns the visible regular files under dir, relative and
// slash-separated, skipping day directories wholly before since. Hidden
// files are the recorder's own (lock, readiness probe, sidecar being
// written) and never recordings (ValidateID forbids a leading dot).
func listFiles(dir string, since time.Time) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && path != dir {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if !since.IsZero() {
			// Day directories are in the zone of the call's start, so keep
			// a day either side rather than guess it.
			if day, err := time.Parse("2006/01/02", filepath.ToSlash(filepath.Dir(rel))); err == nil && day.AddDate(0, 0, 2).Before(since) {
				return nil
			}
		}
		out = append(out, rel)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list recordings: %w", err)
	}
	return out, nil
}

// paths is the set of files the index accounts for (WAV and sidecar of
// every row, whatever its state or start).
func (x *DBIndex) paths(ctx context.Context) (map[string]bool, error) {
	rows, err := x.db.QueryContext(ctx, `SELECT path FROM recordings`)
	if err != nil {
		return nil, fmt.Errorf("recordings index: %w", err)
	}
	defer rows.Close()
	known := map[string]bool{}
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, fmt.Errorf("recordings index: %w", err)
		}
		known[p] = true
		known[Record{Path: p}.SidecarRel()] = true
	}
	return known, rows.Err()
}

// hashFile is the hex SHA-256 of a file's content.
func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
