package siprec

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// G.711 static payload types, the only audio the recorder decodes.
const (
	ptPCMU = 0
	ptPCMA = 8
)

var rtpmaps = map[string]string{"0": "0 PCMU/8000", "8": "8 PCMA/8000"}

// mediaStream is one m= line of a recording session's SDP.
type mediaStream struct {
	Index   int    // position among the m= lines
	Media   string // audio, video, ...
	Proto   string // RTP/AVP, ...
	Formats []string
	Label   string         // a=label, "" if none
	Addr    netip.AddrPort // c= (media or session level) and port
	Dir     string         // sendonly, recvonly, sendrecv, inactive
	Crypto  []string       // a=crypto values (SDES), in the offer's order
}

// recordable reports whether the recorder can take the stream: G.711
// audio over RTP or SRTP, with a port. Whether SRTP is what the link
// wants is the server's decision (Server.onInvite).
func (m mediaStream) recordable() bool {
	switch {
	case m.Media != "audio" || m.Addr.Port() == 0:
		return false
	case m.Proto != "RTP/AVP" && m.Proto != "RTP/AVPF" && !m.secure():
		return false
	}
	return slices.Contains(m.Formats, "0") || slices.Contains(m.Formats, "8")
}

// secure reports whether the stream is SRTP (RFC 3711 profiles).
func (m mediaStream) secure() bool { return m.Proto == "RTP/SAVP" || m.Proto == "RTP/SAVPF" }

// parseStreams reads every m= line of an SDP.
func parseStreams(body []byte) ([]mediaStream, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, fmt.Errorf("%w: empty SDP", ErrBadBody)
	}
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(body); err != nil {
		return nil, fmt.Errorf("%w: SDP: %w", ErrBadBody, err)
	}
	if len(sd.MediaDescriptions) > maxElems {
		return nil, fmt.Errorf("%w: %d m= lines", ErrBadBody, len(sd.MediaDescriptions))
	}
	out := make([]mediaStream, 0, len(sd.MediaDescriptions))
	for i, md := range sd.MediaDescriptions {
		m := mediaStream{Index: i, Media: md.MediaName.Media, Proto: strings.Join(md.MediaName.Protos, "/"),
			Formats: md.MediaName.Formats, Dir: "sendrecv"}
		ci := md.ConnectionInformation
		if ci == nil {
			ci = sd.ConnectionInformation
		}
		port := md.MediaName.Port.Value
		if port < 0 || port > 65535 {
			return nil, fmt.Errorf("%w: SDP: m= line %d: port %d out of range", ErrBadBody, i+1, port)
		}
		if port > 0 {
			if ci == nil || ci.Address == nil {
				return nil, fmt.Errorf("%w: SDP: m= line %d has no c= line", ErrBadBody, i+1)
			}
			a, err := netip.ParseAddr(strings.SplitN(ci.Address.Address, "/", 2)[0])
			if err != nil {
				return nil, fmt.Errorf("%w: SDP: c= address %q: %w", ErrBadBody, ci.Address.Address, err)
			}
			m.Addr = netip.AddrPortFrom(a.Unmap(), uint16(port))
		}
		for _, a := range md.Attributes {
			switch a.Key {
			case "label":
				m.Label = strings.TrimSpace(a.Value)
			case "crypto":
				if len(m.Crypto) < maxElems {
					m.Crypto = append(m.Crypto, a.Value)
				}
			case "sendonly", "recvonly", "sendrecv", "inactive":
				m.Dir = a.Key
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// sdpSession starts an SDP with its origin and connection on ip.
func sdpSession(ip netip.Addr, sessID uint64) *sdp.SessionDescription {
	nt := "IP4"
	if ip.Is6() {
		nt = "IP6"
	}
	return &sdp.SessionDescription{
		Origin: sdp.Origin{Username: "plateau", SessionID: sessID, SessionVersion: sessID,
			NetworkType: "IN", AddressType: nt, UnicastAddress: ip.String()},
		SessionName:           "SIPREC",
		ConnectionInformation: &sdp.ConnectionInformation{NetworkType: "IN", AddressType: nt, Address: &sdp.Address{Address: ip.String()}},
		TimeDescriptions:      []sdp.TimeDescription{{}},
	}
}

// audioMedia is one G.711 m= line; with crypto (an a=crypto value) it is
// SRTP (RTP/SAVP), else plain RTP/AVP.
func audioMedia(port int, formats []string, label, dir, crypto string) *sdp.MediaDescription {
	proto := []string{"RTP", "AVP"}
	if crypto != "" {
		proto = []string{"RTP", "SAVP"}
	}
	md := &sdp.MediaDescription{MediaName: sdp.MediaName{Media: "audio", Port: sdp.RangedPort{Value: port},
		Protos: proto, Formats: formats}}
	for _, f := range formats {
		if m, ok := rtpmaps[f]; ok {
			md.Attributes = append(md.Attributes, sdp.Attribute{Key: "rtpmap", Value: m})
		}
	}
	md.Attributes = append(md.Attributes, sdp.Attribute{Key: "ptime", Value: "20"})
	if label != "" {
		md.Attributes = append(md.Attributes, sdp.Attribute{Key: "label", Value: label})
	}
	if crypto != "" {
		md.Attributes = append(md.Attributes, sdp.Attribute{Key: "crypto", Value: crypto})
	}
	md.Attributes = append(md.Attributes, sdp.Attribute{Key: dir})
	return md
}

// buildOffer is the SRC's offer: one sendonly G.711 stream per label,
// from its local port. Both codecs are offered: packets are forwarded in
// the payload type each leg uses. With cryptos (over TLS only) each
// stream is SRTP keyed by its own attribute.
func buildOffer(ip netip.Addr, sessID uint64, labels []string, ports []int, cryptos []string) ([]byte, error) {
	sd := sdpSession(ip, sessID)
	for i, l := range labels {
		c := ""
		if cryptos != nil {
			c = cryptos[i]
		}
		sd.MediaDescriptions = append(sd.MediaDescriptions, audioMedia(ports[i], []string{"0", "8"}, l, "sendonly", c))
	}
	return sd.Marshal()
}

// buildAnswer is the SRS's answer to offer: a recvonly stream on ports[i]
// for each m= line i with a port, the others refused with port 0; an
// SRTP stream carries the recorder's a=crypto, cryptos[i].
func buildAnswer(ip netip.Addr, sessID uint64, offer []mediaStream, ports []int, cryptos []string) ([]byte, error) {
	sd := sdpSession(ip, sessID)
	for i, m := range offer {
		if ports[i] == 0 {
			f := m.Formats
			if len(f) == 0 {
				f = []string{"0"}
			}
			sd.MediaDescriptions = append(sd.MediaDescriptions, &sdp.MediaDescription{MediaName: sdp.MediaName{
				Media: m.Media, Port: sdp.RangedPort{Value: 0}, Protos: strings.Split(m.Proto, "/"), Formats: f}})
			continue
		}
		var f []string
		for _, pt := range m.Formats {
			if pt == strconv.Itoa(ptPCMU) || pt == strconv.Itoa(ptPCMA) {
				f = append(f, pt)
			}
		}
		c := ""
		if cryptos != nil {
			c = cryptos[i]
		}
		sd.MediaDescriptions = append(sd.MediaDescriptions, audioMedia(ports[i], f, m.Label, "recvonly", c))
	}
	return sd.Marshal()
}
