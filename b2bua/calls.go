package b2bua

import (
	"context"
	"sync"
)

// ActiveCalls counts calls in progress per operator and for the site. The
// policy reads it (limits); the B2BUA reserves and releases slots.
type ActiveCalls struct {
	mu   sync.Mutex
	byOp map[string]int
	site int
}

// NewActiveCalls returns an empty table.
func NewActiveCalls() *ActiveCalls { return &ActiveCalls{byOp: map[string]int{}} }

// Active implements policy.Calls.
func (a *ActiveCalls) Active(_ context.Context, ext string) (operator, site int, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.byOp[ext], a.site, nil
}

func (a *ActiveCalls) add(ext string) {
	a.mu.Lock()
	a.byOp[ext]++
	a.site++
	a.mu.Unlock()
}

func (a *ActiveCalls) remove(ext string) {
	a.mu.Lock()
	if a.byOp[ext]--; a.byOp[ext] <= 0 {
		delete(a.byOp, ext)
	}
	a.site--
	a.mu.Unlock()
}

// Site returns the number of calls in progress.
func (a *ActiveCalls) Site() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.site
}
