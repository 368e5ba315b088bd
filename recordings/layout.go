package recordings

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Path is where the recording id started at start lives:
// dir/YYYY/MM/DD/<id>.wav. The date is start's in its own location, so the
// caller chooses the site's time zone (or UTC) once, for every recording.
// id must pass ValidateID first: Path does not check it, and an id such
// as "../x" would leave the day directory.
func Path(dir, id string, start time.Time) string {
	return filepath.Join(dayDir(dir, start), id+".wav")
}

// SidecarPath is the JSON sidecar next to Path's WAV: dir/YYYY/MM/DD/<id>.json.
func SidecarPath(dir, id string, start time.Time) string {
	return filepath.Join(dayDir(dir, start), id+".json")
}

func dayDir(dir string, t time.Time) string {
	return filepath.Join(dir, t.Format("2006"), t.Format("01"), t.Format("02"))
}

// ValidateID refuses ids that are empty, hidden or could leave the day
// directory: an id becomes a file name under the recordings root.
func ValidateID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty", ErrInvalidID)
	case len(id) > 128:
		return fmt.Errorf("%w: %d characters, at most 128", ErrInvalidID, len(id))
	case strings.HasPrefix(id, "."):
		return fmt.Errorf("%w: %q starts with a dot", ErrInvalidID, id)
	}
	for _, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
		if !ok {
			return fmt.Errorf("%w: %q: use only letters, digits, '-', '_' and '.'", ErrInvalidID, id)
		}
	}
	return nil
}

// Sidecar is the JSON file written next to each recording: what security
// needs to find a recording and to prove it unaltered (sha256 of the WAV).
type Sidecar struct {
	ID       string   `json:"id"`
	CallIDs  []string `json:"call_ids"`
	Operator string   `json:"operator"`
	Number   string   `json:"number"`
	Campaign string   `json:"campaign,omitempty"`
	// Start is the wall-clock time of the WAV's first sample (the call's
	// first media), as in the index; Start + DurationMS = End.
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	DurationMS int64     `json:"duration_ms"`
	SHA256     string    `json:"sha256"`
	// Repaired marks a recording recovered by Repair after a crash: its
	// tail may miss the last seconds, and security must know.
	Repaired bool `json:"repaired"`
	// Failed marks a recording whose writing failed mid-call (disk full,
	// I/O error): the call was ended and the file holds what was written.
	Failed bool `json:"failed,omitempty"`
}

// WriteSidecar writes s to path atomically: a temporary file in the same
// directory, fsynced, renamed over path, then the directory fsynced. A
// reader (or a crash) sees the old sidecar or the new one, never half.
func WriteSidecar(path string, s *Sidecar) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("sidecar %s: %w", path, err)
	}
	b = append(b, '\n')
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("sidecar %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("sidecar %s: %w", path, err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o640); err != nil {
		return fmt.Errorf("sidecar %s: %w", path, err)
	}
	if _, err := tmp.Write(b); err != nil {
		return fmt.Errorf("sidecar %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sidecar %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("sidecar %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("sidecar %s: %w", path, err)
	}
	done = true
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("sidecar %s: sync directory: %w", path, err)
	}
	return nil
}

// ReadSidecar reads a sidecar written by WriteSidecar; unknown fields are
// errors, as a sidecar is not meant to be edited by hand.
func ReadSidecar(path string) (*Sidecar, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sidecar %s: %w", path, err)
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	var s Sidecar
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("sidecar %s: %w", path, err)
	}
	return &s, nil
}
