package recordings

import (
	"fmt"
	"os"
)

// Ready reports whether a new recording can start in dir: the directory
// exists and is writable (proved by creating, syncing and removing a file,
// since permission bits lie about read-only mounts and full quotas), and
// at least minFreeMB MiB are free. The error wraps ErrRecorderUnavailable;
// policy refuses the call with RECORDER_UNAVAILABLE.
//
// Ready does not create dir: a missing recordings directory usually means a
// missing mount, and recording onto the root file system instead would
// hide it.
func Ready(dir string, minFreeMB int) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%w: recordings directory %s: %w (create it or fix recordings.dir)", ErrRecorderUnavailable, dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: recordings directory %s is not a directory (fix recordings.dir)", ErrRecorderUnavailable, dir)
	}
	f, err := os.CreateTemp(dir, ".ready-*")
	if err != nil {
		return fmt.Errorf("%w: recordings directory %s is not writable: %w (check its owner, permissions and mount)", ErrRecorderUnavailable, dir, err)
	}
	_, werr := f.Write([]byte{0})
	if werr == nil {
		werr = f.Sync()
	}
	f.Close()
	os.Remove(f.Name())
	if werr != nil {
		return fmt.Errorf("%w: recordings directory %s: write test failed: %w", ErrRecorderUnavailable, dir, werr)
	}
	free, err := freeBytes(dir)
	if err != nil {
		return fmt.Errorf("%w: recordings directory %s: free space: %w", ErrRecorderUnavailable, dir, err)
	}
	if free < uint64(max(minFreeMB, 0))<<20 {
		return fmt.Errorf("%w: recordings directory %s has %d MiB free, below the %d MiB minimum (free space or move recordings.dir)",
			ErrRecorderUnavailable, dir, free>>20, minFreeMB)
	}
	return nil
}
