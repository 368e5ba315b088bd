package sim

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrNotAnswered: the call ended with a final non-2xx response.
	ErrNotAnswered = errors.New("sim: call not answered")
	// ErrRegister: the registrar refused the REGISTER.
	ErrRegister = errors.New("sim: registration failed")
	// ErrNoMedia: the call was answered but no RTP arrived.
	ErrNoMedia = errors.New("sim: no RTP received")
)

// StatusError is a final SIP failure response, with its Reason header text
// (RFC 3326), e.g. 403 Forbidden (NOT_ALLOWLISTED).
type StatusError struct {
	Status int
	Phrase string
	Reason string // Reason header text, "" if none
	// Warning is the text of a Warning header (RFC 3261 20.43), e.g.
	// Plateau's "calling opens Mon 2026-12-07 07:30 CET"; "" if none.
	Warning string
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("%d %s", e.Status, e.Phrase)
	if e.Reason != "" {
		s += " (" + e.Reason + ")"
	}
	return s
}

func (e *StatusError) Unwrap() error { return ErrNotAnswered }

// reasonText extracts the text of a Reason header value such as
// `SIP;cause=403;text="NOT_ALLOWLISTED"`; the whole value when it has none.
func reasonText(v string) string {
	if v == "" {
		return ""
	}
	for _, p := range strings.Split(v, ";") {
		p = strings.TrimSpace(p)
		if t, ok := strings.CutPrefix(p, "text="); ok {
			return strings.Trim(t, `"`)
		}
	}
	return strings.TrimSpace(v)
}

// warningText extracts the quoted text of a Warning header value such as
// `399 plateau "calling opens Mon 2026-12-07 07:30 CET"`.
func warningText(v string) string {
	if i := strings.IndexByte(v, '"'); i >= 0 {
		if j := strings.LastIndexByte(v, '"'); j > i {
			return v[i+1 : j]
		}
	}
	return strings.TrimSpace(v)
}
