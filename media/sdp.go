package media

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/pion/sdp/v3"
)

// Remote is what we need from a peer's SDP offer or answer.
type Remote struct {
	// Addr is where the peer wants RTP (c= at media or session level, m= port).
	Addr netip.AddrPort
	// Codecs are the offered G.711 codecs in the peer's order of preference,
	// with the payload types the peer uses. Unknown codecs are left out.
	Codecs []Codec
	// DTMFPT is the telephone-event payload type, 0 if none (RFC 4733 types
	// are dynamic, 96-127, so 0 cannot be a real one).
	DTMFPT uint8
	// Direction as written by the peer; c=0.0.0.0 (RFC 2543 hold) turns
	// sendrecv into sendonly and recvonly into inactive.
	Direction Direction
	// Ptime is the a=ptime packetisation, 0 if absent.
	Ptime time.Duration
	// Secure: the stream is RTP/SAVP (SRTP, RFC 3711), only from
	// ParseSDPSRTP. Crypto holds its a=crypto values (RFC 4568), in the
	// peer's order, for package srtp to select from.
	Secure bool
	Crypto []string
}

// OnHold reports whether the peer does not want media sent to it.
func (r Remote) OnHold() bool {
	return !r.Direction.Receives() || !r.Addr.Addr().IsValid() || r.Addr.Addr().IsUnspecified()
}

// ParseSDP extracts the first active audio stream of body. Errors wrap the
// sentinels in errors.go and say what is wrong with the SDP. An RTP/SAVP
// (SRTP) stream is ErrUnsupportedTransport: only a leg configured for
// SRTP (ParseSDPSRTP) takes one.
func ParseSDP(body []byte) (Remote, error) { return parseSDP(body, false) }

// ParseSDPSRTP is ParseSDP for a leg that may run SRTP (a trunk with
// trunks[].srtp optional or required): RTP/SAVP is accepted too, with
// Secure set and its a=crypto values in Crypto. a=crypto lines on an
// RTP/AVP stream are ignored (best-effort SRTP is not RFC 4568).
func ParseSDPSRTP(body []byte) (Remote, error) { return parseSDP(body, true) }

// maxCryptoLines bounds what a peer may list: real offers carry 1 to 4.
const maxCryptoLines = 16

func parseSDP(body []byte, allowSRTP bool) (Remote, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return Remote{}, fmt.Errorf("%w: empty body", ErrInvalidSDP)
	}
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(body); err != nil {
		return Remote{}, fmt.Errorf("%w: %v", ErrInvalidSDP, err)
	}
	var md *sdp.MediaDescription
	sawAudio := false
	for _, m := range sd.MediaDescriptions {
		if m.MediaName.Media != "audio" {
			continue
		}
		sawAudio = true
		if m.MediaName.Port.Value != 0 {
			md = m
			break
		}
	}
	switch {
	case !sawAudio:
		return Remote{}, fmt.Errorf("%w: no m=audio line", ErrNoAudio)
	case md == nil:
		return Remote{}, ErrAudioRejected
	}
	if p := md.MediaName.Port.Value; p < 1 || p > 65535 {
		return Remote{}, fmt.Errorf("%w: m=audio port %d out of range", ErrInvalidSDP, p)
	}
	proto := strings.Join(md.MediaName.Protos, "/")
	secure := allowSRTP && (proto == "RTP/SAVP" || proto == "RTP/SAVPF")
	if proto != "RTP/AVP" && proto != "RTP/AVPF" && !secure {
		if allowSRTP {
			return Remote{}, fmt.Errorf("%w: m=audio uses %q, only RTP/AVP and RTP/SAVP are relayed", ErrUnsupportedTransport, proto)
		}
		return Remote{}, fmt.Errorf("%w: m=audio uses %q, only RTP/AVP is relayed (no SRTP)", ErrUnsupportedTransport, proto)
	}

	ci := md.ConnectionInformation
	if ci == nil {
		ci = sd.ConnectionInformation
	}
	addr, err := connectionAddr(ci)
	if err != nil {
		return Remote{}, err
	}
	r := Remote{Addr: netip.AddrPortFrom(addr, uint16(md.MediaName.Port.Value)), Secure: secure}
	if secure {
		for _, a := range md.Attributes {
			if a.Key == "crypto" {
				if len(r.Crypto) == maxCryptoLines {
					return Remote{}, fmt.Errorf("%w: more than %d a=crypto lines", ErrInvalidSDP, maxCryptoLines)
				}
				r.Crypto = append(r.Crypto, a.Value)
			}
		}
	}

	rtpmaps := map[uint8]string{}
	for _, a := range md.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		ptStr, enc, ok := strings.Cut(a.Value, " ")
		pt, err := strconv.ParseUint(ptStr, 10, 7)
		if !ok || err != nil {
			return Remote{}, fmt.Errorf("%w: bad a=rtpmap:%s", ErrInvalidSDP, a.Value)
		}
		rtpmaps[uint8(pt)] = strings.ToLower(strings.TrimSpace(enc))
	}
	for _, f := range md.MediaName.Formats {
		pt, err := strconv.ParseUint(f, 10, 7)
		if err != nil {
			return Remote{}, fmt.Errorf("%w: m=audio format %q is not a payload type 0-127", ErrInvalidSDP, f)
		}
		enc, mapped := rtpmaps[uint8(pt)]
		name, rate, _ := strings.Cut(enc, "/")
		rate, _, _ = strings.Cut(rate, "/") // drop channel count
		switch {
		case !mapped && pt == 0, mapped && name == "pcmu" && rate == "8000":
			r.Codecs = append(r.Codecs, Codec{Encoding: PCMU, PayloadType: uint8(pt)})
		case !mapped && pt == 8, mapped && name == "pcma" && rate == "8000":
			r.Codecs = append(r.Codecs, Codec{Encoding: PCMA, PayloadType: uint8(pt)})
		case mapped && name == "telephone-event" && rate == "8000" && r.DTMFPT == 0 && pt != 0:
			r.DTMFPT = uint8(pt)
		}
	}

	r.Direction = SendRecv
	if d, ok := direction(md.Attributes); ok {
		r.Direction = d
	} else if d, ok := direction(sd.Attributes); ok {
		r.Direction = d
	}
	if addr.IsUnspecified() {
		switch r.Direction {
		case SendRecv:
			r.Direction = SendOnly
		case RecvOnly:
			r.Direction = Inactive
		}
	}

	pt, ok := md.Attribute("ptime")
	if !ok {
		pt, ok = sd.Attribute("ptime")
	}
	if ok {
		ms, err := strconv.ParseFloat(strings.TrimSpace(pt), 64)
		if err != nil || ms <= 0 || ms > 1000 {
			return Remote{}, fmt.Errorf("%w: bad a=ptime:%s", ErrInvalidSDP, pt)
		}
		r.Ptime = time.Duration(ms * float64(time.Millisecond))
	}
	return r, nil
}

func connectionAddr(ci *sdp.ConnectionInformation) (netip.Addr, error) {
	if ci == nil || ci.Address == nil {
		return netip.Addr{}, fmt.Errorf("%w: no c= line for the audio stream", ErrNoConnection)
	}
	if ci.NetworkType != "IN" {
		return netip.Addr{}, fmt.Errorf("%w: network type %q, want IN", ErrNoConnection, ci.NetworkType)
	}
	addr, err := netip.ParseAddr(ci.Address.Address)
	if err != nil {
		// Hostnames are legal SDP but resolving them on the call path is a
		// latency and spoofing risk; no carrier we know sends them.
		return netip.Addr{}, fmt.Errorf("%w: c= address %q is not an IP literal", ErrNoConnection, ci.Address.Address)
	}
	if (ci.AddressType == "IP4") != addr.Is4() {
		return netip.Addr{}, fmt.Errorf("%w: c= address %q does not match address type %q", ErrNoConnection, ci.Address.Address, ci.AddressType)
	}
	if addr.IsMulticast() {
		return netip.Addr{}, fmt.Errorf("%w: c= address %s is multicast", ErrNoConnection, addr)
	}
	return addr, nil
}

func direction(attrs []sdp.Attribute) (Direction, bool) {
	for _, a := range attrs {
		switch a.Key {
		case "sendrecv":
			return SendRecv, true
		case "sendonly":
			return SendOnly, true
		case "recvonly":
			return RecvOnly, true
		case "inactive":
			return Inactive, true
		}
	}
	return SendRecv, false
}

// Local describes our side of a media stream for BuildSDP.
type Local struct {
	Addr      netip.Addr
	Port      int
	Codecs    []Codec // PCMU and/or PCMA only, in our preference order
	DTMFPT    uint8   // telephone-event payload type (96-127), 0 for none
	Direction Direction
	SessionID uint64
	Version   uint64 // bump on every re-INVITE (RFC 3264 §8)
	// Crypto, when set, makes the stream RTP/SAVP with these a=crypto
	// values (package srtp writes them): SDES keys, sent only on a leg
	// whose signalling is encrypted.
	Crypto []string
}

// BuildSDP renders l. It only ever offers PCMU, PCMA and telephone-event,
// so nothing we cannot relay or record is negotiated.
func BuildSDP(l Local) ([]byte, error) {
	if !l.Addr.IsValid() {
		return nil, fmt.Errorf("%w: no address", ErrBadLocal)
	}
	if l.Port < 1 || l.Port > 65535 {
		return nil, fmt.Errorf("%w: port %d", ErrBadLocal, l.Port)
	}
	if l.DTMFPT != 0 && (l.DTMFPT < 96 || l.DTMFPT > 127) {
		return nil, fmt.Errorf("%w: telephone-event payload type %d not in 96-127", ErrBadLocal, l.DTMFPT)
	}
	addrType := "IP4"
	if l.Addr.Is6() && !l.Addr.Is4In6() {
		addrType = "IP6"
	}
	addr := l.Addr.Unmap().String()
	md := &sdp.MediaDescription{
		MediaName: sdp.MediaName{Media: "audio", Port: sdp.RangedPort{Value: l.Port}, Protos: []string{"RTP", "AVP"}},
	}
	if len(l.Crypto) > 0 {
		md.MediaName.Protos = []string{"RTP", "SAVP"}
	}
	seen := map[uint8]bool{}
	for _, c := range l.Codecs {
		if c.Encoding != PCMU && c.Encoding != PCMA {
			return nil, fmt.Errorf("%w: codec %v is not PCMU or PCMA", ErrBadLocal, c)
		}
		if seen[c.PayloadType] || c.PayloadType == l.DTMFPT && l.DTMFPT != 0 {
			return nil, fmt.Errorf("%w: payload type %d used twice", ErrBadLocal, c.PayloadType)
		}
		seen[c.PayloadType] = true
		pt := strconv.Itoa(int(c.PayloadType))
		md.MediaName.Formats = append(md.MediaName.Formats, pt)
		md.Attributes = append(md.Attributes, sdp.NewAttribute("rtpmap", pt+" "+c.Encoding.String()+"/8000"))
	}
	if len(l.Codecs) == 0 {
		return nil, fmt.Errorf("%w: no codec", ErrBadLocal)
	}
	if l.DTMFPT != 0 {
		pt := strconv.Itoa(int(l.DTMFPT))
		md.MediaName.Formats = append(md.MediaName.Formats, pt)
		md.Attributes = append(md.Attributes,
			sdp.NewAttribute("rtpmap", pt+" telephone-event/8000"),
			sdp.NewAttribute("fmtp", pt+" 0-16"))
	}
	for _, c := range l.Crypto {
		if c == "" || strings.ContainsAny(c, "\r\n") {
			return nil, fmt.Errorf("%w: a=crypto value %q", ErrBadLocal, c)
		}
		md.Attributes = append(md.Attributes, sdp.NewAttribute("crypto", c))
	}
	md.Attributes = append(md.Attributes,
		sdp.NewAttribute("ptime", "20"),
		sdp.NewPropertyAttribute(l.Direction.String()))
	sd := &sdp.SessionDescription{
		Origin: sdp.Origin{
			Username: "plateau", SessionID: l.SessionID, SessionVersion: l.Version,
			NetworkType: "IN", AddressType: addrType, UnicastAddress: addr,
		},
		SessionName:           "plateau",
		ConnectionInformation: &sdp.ConnectionInformation{NetworkType: "IN", AddressType: addrType, Address: &sdp.Address{Address: addr}},
		TimeDescriptions:      []sdp.TimeDescription{{}},
		MediaDescriptions:     []*sdp.MediaDescription{md},
	}
	return sd.Marshal()
}

// Negotiate picks the first codec in the remote's order that we support and
// returns it with the remote's payload type. ErrNoCommonCodec means 488.
func Negotiate(remote Remote, supported []Codec) (Codec, error) {
	for _, rc := range remote.Codecs {
		for _, s := range supported {
			if s.Encoding == rc.Encoding {
				return rc, nil
			}
		}
	}
	return Codec{}, ErrNoCommonCodec
}
