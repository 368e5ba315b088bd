package b2bua

import (
	"fmt"
	"runtime/debug"
)

// goCall runs fn on a goroutine the b2bua waits for at shutdown. A panic
// in it is logged with its stack, counted (plateau_panics_total{where}),
// audited (process.panic) and ends only the call concerned (c may be nil:
// then nothing else ends). sipgo does not recover panics: without this,
// one nil dereference in a call's goroutine stops every call.
func (b *B2BUA) goCall(c *call, where string, fn func()) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer b.recoverCall(c, where)
		fn()
	}()
}

// recoverCall is deferred by goCall.
func (b *B2BUA) recoverCall(c *call, where string) {
	v := recover()
	if v == nil {
		return
	}
	b.s.CountPanic(where)
	callID := ""
	if c != nil {
		callID = c.id
	}
	b.s.Log().Error("panic recovered", "where", where, "call", callID, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	b.s.Audit(b.s.Context(), "process.panic", "", where, "recovered", "PANIC", "",
		map[string]any{"call_id": callID, "panic": fmt.Sprint(v)})
	if c == nil {
		return
	}
	// End the call on a fresh goroutine: the panicking one may hold the
	// call's lock. A panic while ending is recovered too (where "end").
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer b.recoverCall(nil, "end")
		c.end("panic")
	}()
}
