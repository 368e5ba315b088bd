package siprec

import "errors"

// Sentinel errors of the siprec package.
var (
	// ErrBadBody means a recording session's body is not what RFC 7866
	// describes: not multipart/mixed with an SDP part, or a part that does
	// not parse. The server answers 400 or 488.
	ErrBadBody = errors.New("siprec: malformed recording session body")

	// ErrBadMetadata means the rs-metadata XML does not parse or refers to
	// participants or streams it does not define.
	ErrBadMetadata = errors.New("siprec: malformed recording metadata")

	// ErrNoAudio means an SDP offer has no audio stream the recorder can
	// take (G.711 over RTP/AVP); the server answers 488.
	ErrNoAudio = errors.New("siprec: no recordable audio stream")

	// ErrSessionEnded means the recorder ended the recording session (BYE)
	// or a packet could not be sent to it: the call must end.
	ErrSessionEnded = errors.New("siprec: recording session ended")
)
