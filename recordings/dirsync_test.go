package recordings

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// setFsyncDir replaces the directory fsync for one test.
func setFsyncDir(t *testing.T, fn func(string) error) {
	t.Helper()
	old := fsyncDirFn
	fsyncDirFn = fn
	t.Cleanup(func() { fsyncDirFn = old })
}

// Every caller returns after an fsync that started after it called, and
// concurrent callers share fsyncs.
func TestSyncDirSharesFsyncs(t *testing.T) {
	dir := t.TempDir()
	var clock atomic.Int64
	type span struct{ start, end int64 }
	var mu sync.Mutex
	var fsyncs []span
	setFsyncDir(t, func(d string) error {
		s := clock.Add(1)
		time.Sleep(2 * time.Millisecond)
		err := fsyncDir(d)
		mu.Lock()
		fsyncs = append(fsyncs, span{s, clock.Add(1)})
		mu.Unlock()
		return err
	})
	const n = 64
	asked, returned := make([]int64, n), make([]int64, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 1 {
				time.Sleep(time.Duration(i%7) * time.Millisecond)
			}
			asked[i] = clock.Add(1)
			if err := syncDir(dir); err != nil {
				t.Error(err)
			}
			returned[i] = clock.Add(1)
		}()
	}
	wg.Wait()
	for i := range n {
		covered := false
		for _, f := range fsyncs {
			if f.start > asked[i] && f.end < returned[i] {
				covered = true
			}
		}
		if !covered {
			t.Fatalf("caller %d (asked %d, returned %d): no fsync started after it asked and ended before it returned: %v",
				i, asked[i], returned[i], fsyncs)
		}
	}
	if len(fsyncs) >= n {
		t.Errorf("%d fsyncs for %d concurrent callers: none shared", len(fsyncs), n)
	}
}

// A failed fsync is the error of every caller it covered, and only theirs.
func TestSyncDirError(t *testing.T) {
	dir := t.TempDir()
	boom := errors.New("boom")
	release := make(chan struct{})
	var calls atomic.Int32
	setFsyncDir(t, func(string) error {
		if calls.Add(1) == 1 {
			<-release // the first round runs while the others join the next
			return nil
		}
		return boom
	})
	first := make(chan error)
	go func() { first <- syncDir(dir) }()
	for calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() { errs <- syncDir(dir) }()
	}
	time.Sleep(50 * time.Millisecond) // they join the round after the first
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("first round: %v", err)
	}
	for range n {
		if err := <-errs; !errors.Is(err, boom) {
			t.Fatalf("second round: %v, want boom", err)
		}
	}
	// Normally 2 (the n callers share the second); a caller the machine
	// was too busy to start within 50 ms would run a round of its own.
	if got := calls.Load(); got < 2 {
		t.Errorf("%d fsyncs, want 2", got)
	} else if got > 2 {
		t.Logf("%d fsyncs, normally 2", got)
	}
	setFsyncDir(t, fsyncDir)
	if err := syncDir(dir); err != nil {
		t.Fatalf("after the failure: %v", err)
	}
}
