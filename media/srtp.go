package media

import (
	"errors"
	"net"
	"net/netip"
	"sync"

	"plateau/srtp"
)

// SRTP on a leg (the trunk leg, SDES keys). The security of a leg's media
// is applied at the two edges of the relay, so everything between them
// (payload-type mapping, the gate, the recording tap, monitors, RTCP
// termination) sees and records plaintext only, exactly as on a plain leg:
//
//   - ingress: a packet from an SRTP leg is authenticated and decrypted
//     first of all, before latching, payload-type mapping, the gate and
//     the tap; one that fails (authentication, replay, malformed) is
//     dropped and counted (srtp_auth, srtp_replay, malformed), never
//     forwarded, recorded or allowed to latch the leg;
//   - egress: the one send function taps the plaintext frame, then
//     protects it with the session the gate admitted the frame under and
//     writes the result, so the recording holds exactly the plaintext of
//     what was encrypted and sent. RFC 4733 events and Plateau's own RTCP
//     reports toward an SRTP leg are protected the same way.
//
// A leg's security and its remote address change together, under the
// relay's lock (SetRemoteSRTP): no frame admitted toward an SRTP peer can
// leave in clear, even while a transfer switches the outside party.

// SRTPMode is a trunk's SRTP policy (trunks[].srtp).
type SRTPMode uint8

const (
	// SRTPOff: plain RTP only; an RTP/SAVP offer is refused (488).
	SRTPOff SRTPMode = iota
	// SRTPOptional: offers RTP/SAVP and falls back to RTP/AVP when the
	// carrier refuses it (488); accepts either from the carrier.
	SRTPOptional
	// SRTPRequired: RTP/SAVP only, both ways; plain RTP is refused (488).
	SRTPRequired
)

// ParseSRTPMode reads "off", "optional" or "required" ("" is off).
func ParseSRTPMode(s string) (SRTPMode, error) {
	switch s {
	case "", "off":
		return SRTPOff, nil
	case "optional":
		return SRTPOptional, nil
	case "required":
		return SRTPRequired, nil
	}
	return SRTPOff, errors.New("srtp " + s + " is not off, optional or required")
}

func (m SRTPMode) String() string {
	switch m {
	case SRTPOptional:
		return "optional"
	case SRTPRequired:
		return "required"
	}
	return "off"
}

// sendTo is where the gate admitted a frame toward a leg, and under which
// SRTP session (nil: plain RTP), both read under Relay.mu.
type sendTo struct {
	addr netip.AddrPort
	srtp *srtp.Session
}

// srtpOut is a leg's buffer for protected packets, RTP and RTCP: sends
// toward one leg come from several goroutines (the other leg's reader,
// Play, a monitor, the RTCP reports).
type srtpOut struct {
	mu  sync.Mutex
	buf [1500 + 64]byte
}

// SetRemoteSRTP is SetRemoteSDP that also sets the leg's SRTP session: s
// non-nil makes leg l SRTP (every packet to and from it protected with s;
// call again with a new session to re-key), nil makes it plain RTP. The
// address and the session change under one lock: no frame is ever sent
// to the new peer with the old protection, or to an SRTP peer in clear.
// SetRemoteSDP and SetRemote keep a leg's current protection.
func (r *Relay) SetRemoteSRTP(l Leg, remote Remote, codec Codec, s *srtp.Session) error {
	if err := r.setRemoteSec(l, remote.Addr, remote.Codecs, codec, remote.DTMFPT, s, true); err != nil {
		return err
	}
	r.SetDirection(l, remote.Direction)
	return nil
}

// SRTP returns leg l's current SRTP session, nil for plain RTP.
func (r *Relay) SRTP(l Leg) *srtp.Session {
	return r.legs[l&1].srtp.Load()
}

// srtpDrop maps an Unprotect error to its drop reason.
func srtpDrop(err error) dropReason {
	switch {
	case errors.Is(err, srtp.ErrAuth):
		return rSRTPAuth
	case errors.Is(err, srtp.ErrReplay):
		return rSRTPReplay
	case errors.Is(err, srtp.ErrKeyExhausted):
		return rSRTPKey
	}
	return rMalformed
}

// writeRTP writes one whole RTP packet b toward d's peer at to, protected
// when to.srtp is set. It is the only place RTP is written toward a
// party; b stays plaintext (the caller tapped it).
func (r *Relay) writeRTP(d *leg, b []byte, to sendTo) bool {
	return r.write(d, d.ports.RTP, b, to, (*srtp.Session).ProtectRTP)
}

// writeRTCP writes one of Plateau's compound reports toward l's peer.
func (r *Relay) writeRTCP(l *leg, b []byte, to sendTo) bool {
	return r.write(l, l.ports.RTCP, b, to, (*srtp.Session).ProtectRTCP)
}

// write sends b on conn to to.addr, in clear toward a plain leg, else
// protected into l's buffer under its lock.
func (r *Relay) write(l *leg, conn *net.UDPConn, b []byte, to sendTo, protect func(*srtp.Session, []byte, []byte) ([]byte, error)) bool {
	if to.srtp != nil {
		l.enc.mu.Lock()
		defer l.enc.mu.Unlock()
		var err error
		if b, err = protect(to.srtp, l.enc.buf[:0], b); err != nil {
			r.cfg.metrics.drop(srtpDrop(err))
			return false
		}
	}
	_, err := conn.WriteToUDPAddrPort(b, to.addr)
	return err == nil
}
