package media

import (
	"math"
	"time"

	"github.com/zaf/g711"
)

// SampleRate is the only audio clock we handle: G.711 and RFC 4733 events.
const SampleRate = 8000

// FrameSamples is one 20 ms packet of G.711 at 8 kHz.
const FrameSamples = SampleRate / 50

// Encoding is an audio encoding the relay understands.
type Encoding uint8

// The encodings Plateau offers and relays; anything else is refused (488).
const (
	PCMU Encoding = iota + 1 // G.711 µ-law, static payload type 0
	PCMA                     // G.711 A-law, static payload type 8
)

// String returns the rtpmap encoding name.
func (e Encoding) String() string {
	switch e {
	case PCMU:
		return "PCMU"
	case PCMA:
		return "PCMA"
	}
	return "unknown"
}

// Codec returns e with its static payload type.
func (e Encoding) Codec() Codec {
	switch e {
	case PCMU:
		return Codec{Encoding: PCMU, PayloadType: 0}
	case PCMA:
		return Codec{Encoding: PCMA, PayloadType: 8}
	}
	return Codec{}
}

// Codec is an encoding bound to the payload type a peer uses for it: a peer
// may map PCMU to a dynamic type with rtpmap, so the pair travels together.
type Codec struct {
	Encoding    Encoding
	PayloadType uint8
}

// DefaultCodecs is what Plateau supports, in preference order.
func DefaultCodecs() []Codec { return []Codec{PCMU.Codec(), PCMA.Codec()} }

// String is "PCMU/0".
func (c Codec) String() string {
	return c.Encoding.String() + "/" + itoa(int(c.PayloadType))
}

func itoa(n int) string {
	var b [8]byte
	i := len(b)
	if n == 0 {
		return "0"
	}
	for n > 0 && i > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// Direction is an SDP media direction attribute, from the point of view of
// whoever wrote the SDP. The zero value is sendrecv, the SDP default.
type Direction uint8

// SDP directions (RFC 4566 §6, RFC 3264 §8.4 for hold).
const (
	SendRecv Direction = iota
	SendOnly
	RecvOnly
	Inactive
)

// String returns the attribute name.
func (d Direction) String() string {
	switch d {
	case SendOnly:
		return "sendonly"
	case RecvOnly:
		return "recvonly"
	case Inactive:
		return "inactive"
	}
	return "sendrecv"
}

// Receives reports whether a peer that wrote d wants to receive media: a
// peer that says sendonly or inactive has put us on hold.
func (d Direction) Receives() bool { return d == SendRecv || d == RecvOnly }

// Leg identifies one side of an anchored call.
type Leg uint8

// The two legs of a call. The values index arrays; keep them 0 and 1.
const (
	LegOperator Leg = 0
	LegOutside  Leg = 1
)

// Other returns the opposite leg.
func (l Leg) Other() Leg { return 1 - l&1 }

// String is used as a log attribute value.
func (l Leg) String() string {
	if l == LegOperator {
		return "operator"
	}
	return "outside"
}

// encodeFrame encodes pcm into dst (len(dst) >= len(pcm)) without allocating.
func encodeFrame(e Encoding, dst []byte, pcm []int16) {
	if e == PCMA {
		for i, s := range pcm {
			dst[i] = g711.EncodeAlawFrame(s)
		}
		return
	}
	for i, s := range pcm {
		dst[i] = g711.EncodeUlawFrame(s)
	}
}

// decodeFrame decodes payload into dst (len(dst) >= len(payload)).
func decodeFrame(e Encoding, dst []int16, payload []byte) {
	if e == PCMA {
		for i, b := range payload {
			dst[i] = g711.DecodeAlawFrame(b)
		}
		return
	}
	for i, b := range payload {
		dst[i] = g711.DecodeUlawFrame(b)
	}
}

// transcodeInto writes payload (encoded with from) into dst encoded with to.
func transcodeInto(from, to Encoding, dst, payload []byte) {
	switch {
	case from == PCMU && to == PCMA:
		for i, b := range payload {
			dst[i] = g711.Ulaw2AlawFrame(b)
		}
	case from == PCMA && to == PCMU:
		for i, b := range payload {
			dst[i] = g711.Alaw2UlawFrame(b)
		}
	default:
		copy(dst, payload)
	}
}

// Tone returns a sine of freq Hz lasting dur at 8 kHz, about -10 dBFS so a
// warning beep is audible without clipping when mixed with speech. The first
// and last 5 ms are ramped to avoid clicks.
func Tone(freq float64, dur time.Duration) []int16 {
	n := int(dur * SampleRate / time.Second)
	if n <= 0 {
		return nil
	}
	out := make([]int16, n)
	const amp = 10000.0
	ramp := SampleRate / 200
	for i := range out {
		g := 1.0
		if i < ramp {
			g = float64(i) / float64(ramp)
		} else if n-1-i < ramp {
			g = float64(n-1-i) / float64(ramp)
		}
		out[i] = int16(amp * g * math.Sin(2*math.Pi*freq*float64(i)/SampleRate))
	}
	return out
}
