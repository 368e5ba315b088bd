package audit

import "errors"

var (
	// ErrInvalidEntry means an entry lacks its kind or its details cannot
	// be encoded as JSON; nothing was written.
	ErrInvalidEntry = errors.New("invalid audit entry")
)
