package media

import "github.com/pion/rtp"

// eventTracker reports each RFC 4733 telephone-event once: every packet of
// an event carries its start timestamp, and the end packet is repeated.
type eventTracker struct {
	any   bool
	last  uint32
	event byte
	// The timestamp of the last event forwarded, for the marker bit.
	fwdAny bool
	fwdTS  uint32
}

// digit returns the key of pkt's event the first time the event is seen,
// 0 otherwise (repeats, or events that are not 0-9, * or #).
func (t *eventTracker) digit(pkt *rtp.Packet) byte {
	// Some senders (SIPp's canned pcaps) reuse a timestamp across events:
	// a different key is a new event even then.
	if len(pkt.Payload) < 4 || (t.any && pkt.Timestamp == t.last && pkt.Payload[0] == t.event) {
		return 0
	}
	t.any, t.last, t.event = true, pkt.Timestamp, pkt.Payload[0]
	return eventDigit(pkt.Payload[0])
}

// eventDigit maps an RFC 4733 event code to its key.
func eventDigit(ev byte) byte {
	switch {
	case ev <= 9:
		return '0' + ev
	case ev == 10:
		return '*'
	case ev == 11:
		return '#'
	}
	return 0
}
