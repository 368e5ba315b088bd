package sip

// EndCallsOf ends everything a user has in progress: their calls (BYE on
// every leg, recording closed, call.ended audited with why) and their
// monitor sessions as a supervisor. The admin console calls it when it
// suspends an account: a suspension takes effect at once, not at the
// user's next call (an inmate taken off the phones mid-call stays on the
// line otherwise). It returns how many calls and sessions it ended.
func (s *Server) EndCallsOf(ext, why string) int {
	b := s.calls
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
		s.log.Warn("calls of a suspended user ended", "ext", ext, "reason", why, "ended", n)
	}
	return n
}
