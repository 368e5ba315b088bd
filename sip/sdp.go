package sip

import (
	"fmt"

	"github.com/emiago/sipgo/sip"

	"plateau/media"
)

// negotiate reads a peer's SDP and picks the codec we use with it.
func negotiate(body []byte) (media.Remote, media.Codec, error) {
	remote, err := media.ParseSDP(body)
	if err != nil {
		return remote, media.Codec{}, err
	}
	codec, err := media.Negotiate(remote, media.DefaultCodecs())
	return remote, codec, err
}

// readOffer negotiates a request's offer, answering 488 with the reason
// (BAD_SDP or NO_COMMON_CODEC) when it is unusable.
func (b *b2bua) readOffer(req *sip.Request, tx sip.ServerTransaction) (media.Remote, media.Codec, bool) {
	remote, codec, err := negotiate(req.Body())
	switch {
	case err == nil:
		return remote, codec, true
	case remote.Addr.IsValid() || len(remote.Codecs) > 0:
		b.respondReason(req, tx, sip.StatusNotAcceptableHere, "Not Acceptable Here", "NO_COMMON_CODEC")
	default:
		b.respondReason(req, tx, sip.StatusNotAcceptableHere, "Not Acceptable Here", "BAD_SDP")
	}
	return remote, codec, false
}

// applyRemote negotiates a peer's SDP (an answer, early media, an ACK's
// answer) and points leg l of the relay at it.
func (c *call) applyRemote(l media.Leg, body []byte) error {
	remote, codec, err := negotiate(body)
	if err != nil {
		return fmt.Errorf("%s SDP: %w", l, err)
	}
	return c.relay.SetRemoteSDP(l, remote, codec)
}
