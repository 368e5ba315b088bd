//go:build race

package srtp

// raceEnabled: the race detector allocates on its own; allocation counts
// are checked only without it.
const raceEnabled = true
