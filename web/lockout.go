package web

import (
	"sync"
	"time"
)

// lockout counts failed logins per user and per source address in a
// sliding window; past the limit, logins from that user or source are
// refused until the lock ends, whatever the password. State is in memory:
// a restart clears it (the audit log keeps the history).
type lockout struct {
	mu       sync.Mutex
	window   time.Duration
	duration time.Duration
	limits   map[string]int // "user", "source" → failures allowed in window
	fails    map[string][]time.Time
	until    map[string]time.Time
}

func newLockout(window, duration time.Duration, perUser, perSource int) *lockout {
	return &lockout{window: window, duration: duration,
		limits: map[string]int{"user": perUser, "source": perSource},
		fails:  map[string][]time.Time{}, until: map[string]time.Time{}}
}

// locked reports whether the key (kind "user" or "source") is locked at now.
func (l *lockout) locked(kind, key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := kind + ":" + key
	u, ok := l.until[k]
	if ok && !now.Before(u) {
		delete(l.until, k)
		return false
	}
	return ok
}

// fail records a failure and reports whether it just locked the key.
func (l *lockout) fail(kind, key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := kind + ":" + key
	if _, ok := l.until[k]; ok {
		return false
	}
	fs := l.fails[k][:0:0]
	for _, t := range l.fails[k] {
		if now.Sub(t) < l.window {
			fs = append(fs, t)
		}
	}
	fs = append(fs, now)
	if len(fs) >= l.limits[kind] {
		delete(l.fails, k)
		l.until[k] = now.Add(l.duration)
		return true
	}
	l.fails[k] = fs
	if len(l.fails) > maxTracked {
		// Guessing many names must not grow memory without bound: forget
		// keys whose last failure left the window.
		for key, ts := range l.fails {
			if now.Sub(ts[len(ts)-1]) >= l.window {
				delete(l.fails, key)
			}
		}
	}
	return false
}

// maxTracked is how many keys may be tracked before old ones are pruned.
const maxTracked = 10000

// succeed clears a user's failures after a good login (not the source's:
// one good account must not unlock guessing at others from that desk).
func (l *lockout) succeed(user string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, "user:"+user)
}

// unlock lifts a user's lock (an admin reactivating an account).
func (l *lockout) unlock(user string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, "user:"+user)
	delete(l.until, "user:"+user)
}
