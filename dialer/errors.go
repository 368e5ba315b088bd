package dialer

import (
	"errors"
	"net/http"
)

// Errors. The HTTP handlers map each to a status (see statusOf); the CLI
// turns the ones a user can cause into usage errors.
var (
	ErrNotFound            = errors.New("not found")
	ErrExists              = errors.New("already exists")
	ErrInvalid             = errors.New("invalid")
	ErrForbidden           = errors.New("not allowed for this user")
	ErrNotActive           = errors.New("campaign is not active")
	ErrNotAssigned         = errors.New("operator is not assigned to this campaign")
	ErrOutsideWindow       = errors.New("outside the calling hours")
	ErrNoContact           = errors.New("no contact is due now")
	ErrDispositionRequired = errors.New("the last call needs a disposition first")
	ErrNotLeased           = errors.New("contact is not leased to this operator")
	ErrUnknownDisposition  = errors.New("disposition is not one of the campaign's")
	ErrUnreadableFile      = errors.New("unreadable contact file")
	// ErrCallbackOutsideHours: a callback must fall inside the site's and
	// the campaign's calling hours, or nobody could make it.
	ErrCallbackOutsideHours = errors.New("the callback time is outside the calling hours")
	// ErrCorrectionClosed: the outcome can no longer be corrected by this
	// user (the operator's window is over, or the contact is being called).
	ErrCorrectionClosed = errors.New("the outcome can no longer be corrected")
	// ErrDNCLocked: an outcome that put the number on the do-not-call list
	// is not corrected away; removing a number is a security decision.
	ErrDNCLocked = errors.New("the number is on the do-not-call list")
	// ErrBadAnswer: an answer to a script field is unknown, too long or
	// not of the field's kind.
	ErrBadAnswer = errors.New("invalid answer to a script field")
)

func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrForbidden), errors.Is(err, ErrNotAssigned):
		return http.StatusForbidden
	case errors.Is(err, ErrExists), errors.Is(err, ErrNotActive), errors.Is(err, ErrOutsideWindow),
		errors.Is(err, ErrDispositionRequired), errors.Is(err, ErrNotLeased), errors.Is(err, ErrCorrectionClosed),
		errors.Is(err, ErrDNCLocked):
		return http.StatusConflict
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrUnknownDisposition), errors.Is(err, ErrUnreadableFile),
		errors.Is(err, ErrCallbackOutsideHours), errors.Is(err, ErrBadAnswer):
		return http.StatusBadRequest
	case errors.Is(err, ErrNoContact):
		return http.StatusNoContent
	}
	return http.StatusInternalServerError
}

// codeOf is the stable, machine-readable name of an error for API clients
// (the consoles translate it); "" for errors without one.
func codeOf(err error) string {
	for _, c := range []struct {
		err  error
		code string
	}{
		{ErrNotFound, "not_found"}, {ErrExists, "exists"}, {ErrInvalid, "invalid"}, {ErrForbidden, "forbidden"},
		{ErrNotActive, "not_active"}, {ErrNotAssigned, "not_assigned"}, {ErrOutsideWindow, "outside_window"},
		{ErrNoContact, "no_contact"}, {ErrDispositionRequired, "disposition_required"}, {ErrNotLeased, "not_leased"},
		{ErrUnknownDisposition, "unknown_disposition"}, {ErrUnreadableFile, "unreadable_file"},
		{ErrCallbackOutsideHours, "callback_outside_hours"}, {ErrCorrectionClosed, "correction_closed"},
		{ErrDNCLocked, "dnc_locked"}, {ErrBadAnswer, "bad_answer"},
	} {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return ""
}
