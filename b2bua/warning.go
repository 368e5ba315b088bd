package b2bua

import (
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"plateau/policy"
)

// decisionWarning is the Warning header (RFC 3261 20.43, code 399:
// miscellaneous) of a refusal that has something useful to add to its
// Reason code: when calling opens, for OUTSIDE_WINDOW. The Reason text
// stays the bare code (the interface contract); the Warning is for people.
// Nothing else goes there: a refusal's detail may name internal state.
func decisionWarning(d *Refusal) []sip.Header {
	if d.Reason != policy.ReasonOutsideWindow || d.Opens.IsZero() {
		return nil
	}
	text := "calling opens " + policy.FormatOpens(d.Opens)
	text = strings.NewReplacer(`"`, "", `\`, "").Replace(text)
	return []sip.Header{sip.NewHeader("Warning", `399 plateau "`+text+`"`)}
}

// NumberWindowClock is a WindowClock that knows the hours of each number
// (policy.number_windows): a call ends when its own number's window
// closes, not the site's.
type NumberWindowClock interface {
	NextCloseFor(e164 string, t time.Time) (time.Time, bool)
}

// windowCloseFor is when the window of a call to e164 in progress at t
// closes: the number's own hours when the clock knows them.
func windowCloseFor(w WindowClock, e164 string, t time.Time) (time.Time, bool) {
	if nw, ok := w.(NumberWindowClock); ok {
		return nw.NextCloseFor(e164, t)
	}
	return w.NextClose(t)
}
