package b2bua

import (
	"plateau/media"
	psip "plateau/sip"
)

// latchTrunkMedia applies trunk t's media_latch to the outside leg before
// an SDP of t is applied to it: a 183's (early media) or the answer's.
// While a transfer's new party rings, the current outside party keeps its
// own trunk's rule (the new party's early media is not bridged); its
// answer (answered) brings t's.
func (c *call) latchTrunkMedia(t *psip.Trunk, answered bool) {
	c.mu.Lock()
	relay, replacing := c.relay, c.out != nil
	c.mu.Unlock()
	if relay == nil || replacing && !answered {
		return
	}
	relay.SetLatch(media.LegOutside, t.MediaLatch)
}
