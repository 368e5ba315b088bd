package b2bua

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

// readOffer negotiates a request's offer; an unusable one is a refusal
// (488 BAD_SDP or NO_COMMON_CODEC).
func readOffer(body []byte) (media.Remote, media.Codec, *Refusal) {
	remote, codec, err := negotiate(body)
	switch {
	case err == nil:
		return remote, codec, nil
	case remote.Addr.IsValid() || len(remote.Codecs) > 0:
		return remote, codec, &Refusal{Status: sip.StatusNotAcceptableHere, Reason: ReasonNoCommonCodec, Rule: ruleMedia, Detail: err.Error()}
	default:
		return remote, codec, &Refusal{Status: sip.StatusNotAcceptableHere, Reason: ReasonBadSDP, Rule: ruleMedia, Detail: err.Error()}
	}
}

// applyRemote negotiates a peer's SDP (an answer, early media, an ACK's
// answer) and points leg l of the relay at it.
func (c *call) applyRemote(l media.Leg, body []byte) error {
	if l == media.LegOutside {
		return c.applyOutsideAnswer(body, false) // SRTP-aware (srtp.go)
	}
	remote, codec, err := negotiate(body)
	if err != nil {
		return fmt.Errorf("%s SDP: %w", l, err)
	}
	if l == media.LegOperator {
		if err := c.operatorMediaAllowed(remote); err != nil { // mediaguard.go
			return err
		}
	}
	c.mu.Lock()
	relay := c.relay
	c.mu.Unlock()
	return relay.SetRemoteSDP(l, remote, codec)
}
