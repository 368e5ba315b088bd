package media

import "errors"

// Sentinel errors of the media package. Callers match them with errors.Is;
// the B2BUA maps some of them to SIP statuses (noted per error).
var (
	// ErrNoPorts: the RTP port range is exhausted (or every free port is
	// bound by another process). The B2BUA answers 503.
	ErrNoPorts = errors.New("media: no free RTP port in range")

	// ErrInvalidSDP: the body is not parseable SDP. The B2BUA answers 400.
	ErrInvalidSDP = errors.New("media: invalid SDP")
	// ErrNoAudio: the SDP has no usable audio m-line. The B2BUA answers 488.
	ErrNoAudio = errors.New("media: SDP has no audio stream")
	// ErrAudioRejected: the audio m-line has port 0 (stream rejected).
	ErrAudioRejected = errors.New("media: audio stream rejected (port 0)")
	// ErrNoConnection: neither session nor media level has a usable c= line.
	ErrNoConnection = errors.New("media: SDP has no usable connection address (c=)")
	// ErrUnsupportedTransport: e.g. RTP/SAVP (SRTP) on a leg not configured
	// for it (ParseSDP), or UDP/TLS/RTP/SAVP (DTLS) anywhere.
	ErrUnsupportedTransport = errors.New("media: unsupported media transport")
	// ErrNoCommonCodec: the offer has neither PCMU nor PCMA. The B2BUA
	// answers 488 Not Acceptable Here.
	ErrNoCommonCodec = errors.New("media: no common codec (need PCMU or PCMA)")
	// ErrBadLocal: BuildSDP was given an unusable Local description.
	ErrBadLocal = errors.New("media: invalid local media description")

	// ErrInactive: no RTP from either leg within the inactivity timeout.
	ErrInactive = errors.New("media: RTP inactivity timeout")
	// ErrTapFailed: the recording tap refused a packet; the call must end
	// because an unrecorded call is not allowed.
	ErrTapFailed = errors.New("media: recording tap failed")
	// ErrClosed: the relay or endpoint was closed.
	ErrClosed = errors.New("media: closed")
	// ErrNoRemote: Play was asked to send toward a leg with no remote address.
	ErrNoRemote = errors.New("media: remote address not set")

	// ErrNoticeIncomplete: PlayNotice did not play the whole notice to the
	// current outside party; the notice gate stays closed.
	ErrNoticeIncomplete = errors.New("media: recording notice not fully played")

	// ErrBadWAV: the WAV data is malformed or truncated.
	ErrBadWAV = errors.New("media: malformed WAV")
	// ErrUnsupportedWAV: a well-formed WAV that is not 8 kHz mono 16-bit PCM.
	ErrUnsupportedWAV = errors.New("media: unsupported WAV format (need 8000 Hz, mono, 16-bit PCM)")
)
