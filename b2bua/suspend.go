package b2bua

import (
	"context"
	"errors"
	"time"

	psip "plateau/sip"
)

// EndCallsOf ends everything a user has in progress: their calls (BYE on
// every leg, recording closed, call.ended audited with why) and their
// monitor sessions as a supervisor. The admin console calls it when it
// suspends an account: a suspension takes effect at once, not at the
// user's next call (an inmate taken off the phones mid-call stays on the
// line otherwise). It returns how many calls and sessions it ended.
func (b *B2BUA) EndCallsOf(ext, why string) int {
	if b == nil || ext == "" {
		return 0
	}
	b.mu.Lock()
	seen := map[*call]bool{}
	var calls []*call
	for _, c := range b.calls {
		if c.operator == ext && !seen[c] {
			seen[c] = true
			calls = append(calls, c)
		}
	}
	b.mu.Unlock()
	for _, c := range calls {
		c.end(why)
	}
	n := len(calls)
	for _, m := range b.monitors.all() {
		if m.supervisor == ext {
			m.end(why)
			n++
		}
	}
	if n > 0 {
		b.s.Log().Warn("calls of a suspended user ended", "ext", ext, "reason", why, "ended", n)
	}
	return n
}

// suspendSweep is how often calls in progress are checked against the
// user directory: `plateau user suspend` runs in another process, and a
// user deleted or suspended there must not keep a call going for hours.
const suspendSweep = 5 * time.Second

// watchSuspensions ends, every suspendSweep until ctx ends, what users who
// are no longer active have in progress.
func (b *B2BUA) watchSuspensions(ctx context.Context) {
	t := time.NewTicker(suspendSweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			b.endInactiveUsers(ctx)
		}
	}
}

// endInactiveUsers ends the calls and monitor sessions of every user the
// directory says is suspended or gone. A failed lookup ends nothing: the
// directory being down must not cut every call.
func (b *B2BUA) endInactiveUsers(ctx context.Context) int {
	users := map[string]bool{}
	b.mu.Lock()
	for _, c := range b.calls {
		users[c.operator] = true
	}
	b.mu.Unlock()
	for _, m := range b.monitors.all() {
		users[m.supervisor] = true
	}
	n := 0
	for ext := range users {
		u, err := b.s.User(ctx, ext)
		switch {
		case errors.Is(err, psip.ErrUnknownAccount):
			n += b.EndCallsOf(ext, "user_removed")
		case err != nil:
			b.s.Log().Warn("user status check failed", "ext", ext, "err", err)
		case !u.Active:
			n += b.EndCallsOf(ext, "user_suspended")
		}
	}
	return n
}
