package recordings

import (
	"path/filepath"
	"sync"
)

// syncDir makes the entries created in dir so far durable (fsync of the
// directory), sharing the fsync with concurrent callers on the same
// directory: every call creates a recording and later its sidecar in the
// day's directory, and under load each of those fsyncs, with its open and
// close, was a few percent of the server's CPU.
//
// It returns once an fsync of dir that started after syncDir was called
// has finished, with that fsync's error: what the caller created before
// calling is covered, exactly as by an fsync of its own.
func syncDir(dir string) error {
	v, _ := dirSyncers.LoadOrStore(filepath.Clean(dir), newDirSyncer())
	return v.(*dirSyncer).sync(dir)
}

// dirSyncers holds one dirSyncer per directory (a day's directory each
// day: a few hundred small entries a year).
var dirSyncers sync.Map

// fsyncDirFn is the fsync itself; tests count and delay it.
var fsyncDirFn = fsyncDir

// dirSyncer groups callers into rounds. Callers join the next round while
// one runs; when it ends, one of them runs the next round's fsync for all.
type dirSyncer struct {
	mu      sync.Mutex
	cond    sync.Cond
	running bool       // a round's fsync is in progress
	next    *syncRound // the round new callers join; nil when none waits
}

type syncRound struct {
	done bool
	err  error
}

func newDirSyncer() *dirSyncer {
	s := &dirSyncer{}
	s.cond.L = &s.mu
	return s
}

func (s *dirSyncer) sync(dir string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next == nil {
		s.next = &syncRound{}
	}
	r := s.next
	for !r.done {
		if s.running {
			s.cond.Wait()
			continue
		}
		// Lead round r: it closes to newcomers before its fsync starts, so
		// every member joined (and created its entry) before the fsync.
		s.running, s.next = true, nil
		s.mu.Unlock()
		err := fsyncDirFn(dir)
		s.mu.Lock()
		r.done, r.err = true, err
		s.running = false
		s.cond.Broadcast()
	}
	return r.err
}
