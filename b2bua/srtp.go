package b2bua

// SRTP with SDES keys (RFC 4568) on the trunk leg, per trunks[].srtp:
//
//   - off: plain RTP; an RTP/SAVP offer from the carrier is refused 488
//     (ParseSDP), as before.
//   - required: Plateau offers RTP/SAVP only, and refuses a carrier's
//     RTP/AVP offer with 488 SRTP_REQUIRED (audited).
//   - optional: Plateau offers RTP/SAVP; a carrier that refuses it with
//     488 gets the same call offered once more in RTP/AVP (audited as a
//     downgrade). This is the RFC-compliant best effort: an RTP/AVP offer
//     carrying a=crypto is not RFC 4568, and RFC 5939 capability
//     negotiation is not what carriers implement. The carrier's own offer
//     may be either.
//
// Keys: every INVITE to a trunk carries a fresh key from crypto/rand, and
// so does every answer to a carrier's new SRTP offer; re-offers and
// answers in the dialog repeat the negotiated key (RFC 4568 7.1.4), and a
// carrier that re-keys only re-keys what Plateau receives. The relay
// applies the session together with the media address (SetRemoteSRTP),
// so recording and the media invariants are those of a plain call:
// decrypt first on ingress, protect last on egress (media/srtp.go).

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/emiago/sipgo/sip"

	"plateau/media"
	psip "plateau/sip"
	"plateau/srtp"
)

// Reason codes of SRTP refusals (Reason header, audit).
const (
	ReasonSRTPRequired = "SRTP_REQUIRED"       // plain RTP on a trunk with srtp: required
	ReasonSRTPCrypto   = "SRTP_CRYPTO_REFUSED" // an RTP/SAVP offer with no a=crypto Plateau implements
	ReasonSRTPNeedsTLS = "SRTP_NEEDS_TLS"      // SDES keys offered over signalling that is not TLS
)

// errSRTPAnswer: an answer whose media protection does not match the
// offer (RTP/AVP to RTP/SAVP, an unknown tag, a changed suite).
var errSRTPAnswer = errors.New("SRTP answer does not match the offer")

// srtpOfferSuites is what Plateau offers a carrier: the suite every SDES
// implementation has (RFC 4568 6.2.1); GCM or AES-256 from a carrier's
// own offer are accepted.
var srtpOfferSuites = []srtp.Suite{srtp.AES_CM_128_HMAC_SHA1_80}

// trunkSRTP is the SDES state of a call's outside leg, under call.mu.
type trunkSRTP struct {
	mode      media.SRTPMode // the current outside party's trunk policy
	offer     []srtp.Crypto  // our keys in the INVITE to a trunk awaiting its answer
	offerMode media.SRTPMode // that trunk's policy
	local     srtp.Crypto    // our negotiated key: in answers and re-offers
	remote    srtp.Crypto    // the carrier's
	sess      *srtp.Session  // nil: the outside leg runs plain RTP
}

// sdesKeys are the keys an offer from the carrier takes, not yet applied.
type sdesKeys struct {
	local, remote srtp.Crypto
}

// newTrunkOffer draws fresh keys for an INVITE to a trunk with policy
// mode and returns its a=crypto values; nil when the offer is plain RTP.
func (c *call) newTrunkOffer(mode media.SRTPMode, secure bool) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.srtp.offer, c.srtp.offerMode = nil, mode
	if !secure {
		return nil, nil
	}
	attrs := make([]string, 0, len(srtpOfferSuites))
	for i, s := range srtpOfferSuites {
		k, err := srtp.NewCrypto(uint32(i+1), s)
		if err != nil {
			return nil, err
		}
		c.srtp.offer = append(c.srtp.offer, k)
		attrs = append(attrs, k.String())
	}
	return attrs, nil
}

// srtpAttrsLocked is the a=crypto of our SDP toward leg l in the dialog
// (answers, re-offers): the negotiated key, if the leg runs SRTP.
func (c *call) srtpAttrsLocked(l media.Leg) []string {
	if l != media.LegOutside || c.srtp.sess == nil {
		return nil
	}
	return []string{c.srtp.local.String()}
}

// outsideSecure reports whether the outside leg currently runs SRTP.
func (c *call) outsideSecure() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.srtp.sess != nil
}

// readTrunkOffer reads an offer from the outside party under its trunk's
// policy mode, and the keys it takes (nil: plain RTP), without applying
// anything. cur is the leg's running state (a re-INVITE), nil for a new
// call. An unusable offer is a refusal (488).
func readTrunkOffer(body []byte, mode media.SRTPMode, cur *trunkSRTP) (media.Remote, media.Codec, *sdesKeys, *Refusal) {
	if mode == media.SRTPOff {
		remote, codec, ref := readOffer(body)
		return remote, codec, nil, ref
	}
	remote, err := media.ParseSDPSRTP(body)
	if err != nil {
		return remote, media.Codec{}, nil, &Refusal{Status: sip.StatusNotAcceptableHere, Reason: ReasonBadSDP, Rule: ruleMedia, Detail: err.Error()}
	}
	codec, err := media.Negotiate(remote, media.DefaultCodecs())
	if err != nil {
		return remote, codec, nil, &Refusal{Status: sip.StatusNotAcceptableHere, Reason: ReasonNoCommonCodec, Rule: ruleMedia, Detail: err.Error()}
	}
	if !remote.Secure {
		if mode == media.SRTPRequired {
			return remote, codec, nil, &Refusal{Status: sip.StatusNotAcceptableHere, Reason: ReasonSRTPRequired, Rule: ruleMedia,
				Detail: "the carrier offered plain RTP (RTP/AVP) on a trunk with srtp: required"}
		}
		return remote, codec, nil, nil
	}
	sel, err := srtp.Select(remote.Crypto)
	if err != nil {
		return remote, codec, nil, &Refusal{Status: sip.StatusNotAcceptableHere, Reason: ReasonSRTPCrypto, Rule: ruleMedia, Detail: err.Error()}
	}
	keys := &sdesKeys{remote: sel}
	if cur != nil && cur.sess != nil && cur.local.Suite == sel.Suite {
		// A re-offer: keep our key, under the tag the carrier chose.
		keys.local = cur.local
		keys.local.Tag = sel.Tag
	} else if keys.local, err = srtp.Answer(sel); err != nil {
		return remote, codec, nil, &Refusal{Status: sip.StatusServiceUnavailable, Reason: ReasonSRTPCrypto, Rule: ruleMedia, Detail: err.Error()}
	}
	return remote, codec, keys, nil
}

// readLegOffer reads an in-dialog offer (re-INVITE, UPDATE) from leg l.
func (c *call) readLegOffer(l media.Leg, body []byte) (media.Remote, media.Codec, *sdesKeys, *Refusal) {
	if l != media.LegOutside {
		remote, codec, ref := readOffer(body)
		return remote, codec, nil, ref
	}
	c.mu.Lock()
	cur := c.srtp
	c.mu.Unlock()
	return readTrunkOffer(body, cur.mode, &cur)
}

// applyOffer points leg l of the relay at an offer read by readOffer,
// readTrunkOffer or readLegOffer, with the keys it takes; mode is the
// outside party's trunk policy (ignored for the operator's leg).
func (c *call) applyOffer(l media.Leg, remote media.Remote, codec media.Codec, keys *sdesKeys, mode media.SRTPMode) error {
	c.mu.Lock()
	relay := c.relay
	cur := c.srtp
	c.mu.Unlock()
	if l != media.LegOutside {
		return relay.SetRemoteSDP(l, remote, codec)
	}
	var sess *srtp.Session
	switch {
	case keys == nil:
	case cur.sess != nil && cur.local.Equal(keys.local):
		sess = cur.sess
		if !cur.remote.Equal(keys.remote) {
			if err := sess.SetRemote(keys.remote); err != nil {
				return err
			}
		}
	default:
		var err error
		if sess, err = srtp.NewSession(keys.local, keys.remote); err != nil {
			return err
		}
	}
	if err := relay.SetRemoteSRTP(l, remote, codec, sess); err != nil {
		return err
	}
	c.mu.Lock()
	c.srtp.mode, c.srtp.sess = mode, sess
	if keys != nil {
		c.srtp.local, c.srtp.remote = keys.local, keys.remote
	}
	c.mu.Unlock()
	if sess != cur.sess {
		c.log.Info("outside media keyed", "srtp", sess != nil)
	}
	return nil
}

// applyTrunkAnswer applies the answer to our INVITE to a trunk (a 183's
// or the 200's SDP) with the keys that INVITE offered.
func (c *call) applyTrunkAnswer(body []byte) error { return c.applyOutsideAnswer(body, true) }

// applyOutsideAnswer applies an answer from the outside party: to the
// INVITE to its trunk (initial), or to one of our in-dialog offers (a
// session refresh, a delayed offer), which carried the negotiated key.
// An answer must keep the offer's protection: RTP/AVP to an RTP/SAVP
// offer, or the reverse, is refused (errSRTPAnswer), and so is a key
// under a tag or suite we did not offer.
func (c *call) applyOutsideAnswer(body []byte, initial bool) error {
	c.mu.Lock()
	cur := c.srtp
	c.mu.Unlock()
	mode := cur.mode
	offered := []srtp.Crypto(nil)
	if initial {
		mode, offered = cur.offerMode, cur.offer
	} else if cur.sess != nil {
		offered = []srtp.Crypto{cur.local}
	}
	parse := media.ParseSDP
	if mode != media.SRTPOff {
		parse = media.ParseSDPSRTP
	}
	remote, err := parse(body)
	if err != nil {
		return fmt.Errorf("%s SDP: %w", media.LegOutside, err)
	}
	codec, err := media.Negotiate(remote, media.DefaultCodecs())
	if err != nil {
		return fmt.Errorf("%s SDP: %w", media.LegOutside, err)
	}
	var keys *sdesKeys
	switch {
	case len(offered) == 0 && remote.Secure:
		return fmt.Errorf("%w: RTP/SAVP answer to an RTP/AVP offer", errSRTPAnswer)
	case len(offered) > 0 && !remote.Secure:
		return fmt.Errorf("%w: RTP/AVP (plain RTP) answer to an RTP/SAVP offer", errSRTPAnswer)
	case len(offered) > 0:
		keys, err = matchAnswer(offered, remote.Crypto)
		if err != nil {
			return err
		}
	}
	// Early media then the answer both answer the same offer: the second
	// finds the same keys and keeps the session (applyOffer).
	return c.applyOffer(media.LegOutside, remote, codec, keys, mode)
}

// matchAnswer finds the answer's a=crypto that accepts one of ours: same
// tag, same suite (RFC 4568 7.1.2).
func matchAnswer(offered []srtp.Crypto, attrs []string) (*sdesKeys, error) {
	for _, a := range attrs {
		got, err := srtp.ParseCrypto(a)
		if err != nil {
			continue
		}
		for _, o := range offered {
			if o.Tag == got.Tag && o.Suite == got.Suite {
				return &sdesKeys{local: o, remote: got}, nil
			}
		}
	}
	return nil, fmt.Errorf("%w: no a=crypto accepts ours (offered %s)", errSRTPAnswer, offered[0].Suite)
}

// carrierRefused reports whether err is the trunk's own final answer
// with status (not Plateau hanging up an answer it could not use: that
// call was answered, and trying again would ring the party twice).
func carrierRefused(err error, status int) bool {
	var le *TrunkLegError
	return errors.As(err, &le) && le.Status == status
}

// auditSRTPAnswer records an answer refused for its media protection: the
// answered call was hung up rather than bridged unprotected.
func (c *call) auditSRTPAnswer(err error, trunk string) {
	if !errors.Is(err, errSRTPAnswer) {
		return
	}
	c.b.s.Audit(context.WithoutCancel(c.ctx), "call.srtp_refused", c.operator, c.num(), "hung_up", "SRTP_ANSWER_MISMATCH", c.source,
		map[string]any{"call_id": c.id, "trunk": trunk, "detail": err.Error()})
}

// sdesTransportOK reports whether SDES keys may travel over a SIP
// transport: only TLS keeps them secret.
func (b *B2BUA) sdesTransportOK(transport string) bool {
	return strings.EqualFold(transport, "tls") || b.opts.SDESWithoutTLS
}

// trunkOfferSecure decides whether an INVITE to t offers SRTP: its policy,
// and only over TLS. A required trunk whose signalling is not TLS cannot
// be used (check-config refuses that configuration; this is the fail-safe).
func (b *B2BUA) trunkOfferSecure(t *psip.Trunk) (secure bool, err error) {
	switch {
	case t.SRTP == media.SRTPOff:
		return false, nil
	case t.SignallingTLS() || b.opts.SDESWithoutTLS:
		return true, nil
	case t.SRTP == media.SRTPRequired:
		return false, fmt.Errorf("trunk %s: srtp required but its transport is %s, not tls: no SDES keys in clear", t.Name, t.Transport)
	}
	return false, nil
}
