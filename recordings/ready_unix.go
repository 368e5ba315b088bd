//go:build unix

package recordings

import "syscall"

// freeBytes is the space available to unprivileged users (Bavail, not
// Bfree): the recorder does not run as root and must not count the
// reserved blocks.
func freeBytes(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil
}
