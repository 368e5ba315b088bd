package sim

import (
	"errors"
	"fmt"

	"plateau/media"
	"plateau/srtp"
)

// SDES (RFC 4568) in the simulator: a carrier that answers RTP/SAVP offers
// with its own fresh key, offers RTP/SAVP on the calls it places, and then
// encrypts what it plays or echoes and decrypts what it receives (packets
// that fail authentication are dropped and counted: CallStats.SRTPDropped).

// sdes is one call's keys: the simulator's and the peer's.
type sdes struct {
	local, remote srtp.Crypto
	sess          *srtp.Session
}

var errPlainRefused = errors.New("plain RTP offered, srtp is required")

func (p *PSTN) srtpMode() media.SRTPMode {
	m, _ := media.ParseSRTPMode(p.cfg.SRTP) // validated
	return m
}

// readOffer parses an offer under the simulator's srtp policy and picks
// the keys it takes: cur (a re-INVITE) keeps its key when the peer keeps
// its own, and re-keys what it receives when the peer sends a new one.
func (p *PSTN) readOffer(body []byte, cur *sdes) (media.Remote, media.Codec, *sdes, error) {
	mode := p.srtpMode()
	parse := media.ParseSDP
	if mode != media.SRTPOff {
		parse = media.ParseSDPSRTP
	}
	offer, err := parse(body)
	if err != nil {
		return offer, media.Codec{}, nil, err
	}
	codec, err := media.Negotiate(offer, media.DefaultCodecs())
	if err != nil {
		return offer, codec, nil, err
	}
	if !offer.Secure {
		if mode == media.SRTPRequired {
			return offer, codec, nil, errPlainRefused
		}
		return offer, codec, nil, nil
	}
	sel, err := srtp.Select(offer.Crypto)
	if err != nil {
		return offer, codec, nil, err
	}
	if cur != nil && cur.local.Suite == sel.Suite {
		k := &sdes{local: cur.local, remote: sel, sess: cur.sess}
		k.local.Tag = sel.Tag
		if !cur.remote.Equal(sel) {
			if err := k.sess.SetRemote(sel); err != nil {
				return offer, codec, nil, err
			}
		}
		return offer, codec, k, nil
	}
	local, err := srtp.Answer(sel)
	if err != nil {
		return offer, codec, nil, err
	}
	sess, err := srtp.NewSession(local, sel)
	if err != nil {
		return offer, codec, nil, err
	}
	return offer, codec, &sdes{local: local, remote: sel, sess: sess}, nil
}

// offerKey is the key of an RTP/SAVP offer the simulator places (nil with
// srtp off).
func (p *PSTN) offerKey() (*srtp.Crypto, error) {
	if p.srtpMode() == media.SRTPOff {
		return nil, nil
	}
	k, err := srtp.NewCrypto(1, srtp.AES_CM_128_HMAC_SHA1_80)
	return &k, err
}

// readAnswer parses the answer to an offer that carried key (nil: plain):
// an answer must keep the offer's protection and accept its tag.
func readAnswer(body []byte, key *srtp.Crypto) (media.Remote, media.Codec, *sdes, error) {
	parse := media.ParseSDP
	if key != nil {
		parse = media.ParseSDPSRTP
	}
	ans, err := parse(body)
	if err != nil {
		return ans, media.Codec{}, nil, err
	}
	codec, err := media.Negotiate(ans, media.DefaultCodecs())
	if err != nil || key == nil {
		return ans, codec, nil, err
	}
	if !ans.Secure {
		return ans, codec, nil, errors.New("RTP/AVP answer to an RTP/SAVP offer")
	}
	for _, a := range ans.Crypto {
		got, err := srtp.ParseCrypto(a)
		if err != nil || got.Tag != key.Tag || got.Suite != key.Suite {
			continue
		}
		sess, err := srtp.NewSession(*key, got)
		if err != nil {
			return ans, codec, nil, err
		}
		return ans, codec, &sdes{local: *key, remote: got, sess: sess}, nil
	}
	return ans, codec, nil, fmt.Errorf("no a=crypto in the answer accepts tag %d %s", key.Tag, key.Suite)
}

// cryptoAttrs are the a=crypto values of our SDP for keys (none: plain).
func cryptoAttrs(k *sdes) []string {
	if k == nil {
		return nil
	}
	return []string{k.local.String()}
}
