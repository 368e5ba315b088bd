package recordings

import "errors"

// Sentinel errors of the recordings package. Callers test them with
// errors.Is; the wrapped text says what happened and what to change.
var (
	// ErrWriteFailed means the recording file could not be written, sought
	// or synced. The Writer stops accepting packets after it: a recording
	// with a hole the recorder knows about must end the call (DESIGN.md,
	// "if it fails mid-call, the call is ended").
	ErrWriteFailed = errors.New("recordings: write failed")

	// ErrRecorderUnavailable means the recording directory cannot take a new
	// recording (not writable, not enough free space). Policy maps it to
	// RECORDER_UNAVAILABLE and the call is not placed.
	ErrRecorderUnavailable = errors.New("recordings: recorder unavailable")

	// ErrClosed is returned by a Writer used after Close.
	ErrClosed = errors.New("recordings: writer closed")

	// ErrNotRecording is returned by Repair for a file that is not a WAV of
	// the format this package writes; Repair never touches such a file.
	ErrNotRecording = errors.New("recordings: not a plateau recording")

	// ErrTooLarge means the recording reached the 4 GiB limit of the WAV
	// format (about 37 hours of 8 kHz stereo).
	ErrTooLarge = errors.New("recordings: recording exceeds the WAV size limit")

	// ErrInvalidID is returned for a recording id that could escape its
	// directory or is empty.
	ErrInvalidID = errors.New("recordings: invalid recording id")

	// ErrInvalidChannel is returned by WriteRTP for a channel other than
	// Operator or Outside.
	ErrInvalidChannel = errors.New("recordings: invalid channel")

	// ErrExists means a recording with this id is already indexed.
	ErrExists = errors.New("recordings: recording already exists")

	// ErrUnknown means no recording has this id in the index.
	ErrUnknown = errors.New("recordings: no such recording")

	// ErrNotOpen is returned when finishing a recording whose index row is
	// no longer open (closed twice, or repaired by someone else).
	ErrNotOpen = errors.New("recordings: recording is not open")

	// ErrDeleted means the recording's files were deleted by retention.
	ErrDeleted = errors.New("recordings: recording deleted")

	// ErrNoChange means the requested change was already in effect or no
	// longer applies (legal hold already set, row held or deleted since).
	ErrNoChange = errors.New("recordings: nothing to change")

	// ErrServerRunning means another process (plateau serve) holds the
	// recordings directory: offline repair would race its live files.
	ErrServerRunning = errors.New("recordings: directory in use by a running server")
)
