//go:build race

package media

// raceEnabled: allocation counts that go through sync.Pool vary under the
// race detector.
const raceEnabled = true
