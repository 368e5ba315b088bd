//go:build !unix

package recordings

import "os"

// lockFile does nothing where flock is missing: the server only runs on
// unix hosts, and there repair is protected.
func lockFile(*os.File) error { return nil }
