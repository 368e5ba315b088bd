package sip

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Panic recovery. sipgo runs each request's handler on its own goroutine
// and recovers nothing: one nil dereference in a handler would end the
// process and every call in progress. Every handler registered on the sipgo
// server goes through guard (server.go), which defers recoverRequest; the
// goroutines Plateau starts itself defer RecoverGoroutine.

// recoverRequest is deferred by guard around a request handler. It must be
// the deferred function itself (recover only works there). On a panic it
// logs the stack, counts and audits it, and answers 500 when the
// transaction can still take a final response (sipgo ignores a final
// response after one was sent, and an ACK gets none).
func (s *Server) recoverRequest(where string, req *sip.Request, tx sip.ServerTransaction) {
	v := recover()
	if v == nil {
		return
	}
	s.panicked(where, v, req.Source(), string(req.Method))
	if tx == nil || req.IsAck() {
		return
	}
	res := sip.NewResponseFromRequest(req, sip.StatusInternalServerError, "Server Internal Error", nil)
	s.respond(tx, req, res)
}

// RecoverGoroutine is deferred at the top of a goroutine Plateau starts
// (`defer s.RecoverGoroutine("call.media")`): a panic there is logged,
// counted and audited like a handler's, and the goroutine ends instead of
// the process. Ending the call concerned is the caller's job (a deferred
// cleanup that runs after this one returns).
func (s *Server) RecoverGoroutine(where string) {
	if v := recover(); v != nil {
		s.panicked(where, v, "", "")
	}
}

// panicked reports a recovered panic. The stack goes to the log only; the
// audit entry carries where it happened and, for runtime errors, what
// (their text names no request data), never the panic value of other
// types, which could hold anything.
func (s *Server) panicked(where string, v any, source, method string) {
	s.metrics.panics.WithLabelValues(where).Inc()
	s.log.Error("panic recovered", "where", where, "method", method, "source", source,
		"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	what := fmt.Sprintf("%T", v)
	if re, ok := v.(runtime.Error); ok {
		what = re.Error()
	}
	details := map[string]any{"panic": what}
	if method != "" {
		details["method"] = method
	}
	s.audit.Audit(context.WithoutCancel(s.ctx), "process.panic", "", where, "recovered", "PANIC", source, details)
}

// supervise runs a long-lived loop (the registrar's persistence, the ban
// sweeper, the trunks' keepalives) until ctx ends. A panic in it is
// reported like any other and the loop starts again a second later: a
// loop that stayed dead would fail silently (bindings no longer saved),
// and one that ended the process would end every call with it.
func (s *Server) supervise(ctx context.Context, where string, loop func(context.Context)) {
	for {
		panicked := func() (p bool) {
			defer func() {
				if v := recover(); v != nil {
					s.panicked(where, v, "", "")
					p = true
				}
			}()
			loop(ctx)
			return false
		}()
		if !panicked {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.restartDelay):
		}
	}
}
