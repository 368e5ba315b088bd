package policy

import "errors"

var (
	// ErrInvalidNumber means a dialled string is not a valid phone number in
	// the site's region; Decide answers INVALID_NUMBER.
	ErrInvalidNumber = errors.New("invalid phone number")
	// ErrInvalidConfig is returned by New and NewWindows for unusable settings.
	ErrInvalidConfig = errors.New("invalid policy configuration")
)
