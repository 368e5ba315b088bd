package b2bua

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"

	"plateau/media"
)

// dialogLeg is what the call needs of either side's dialog, whether
// Plateau is its UAS (the operator calling in) or its UAC (the trunk leg).
type dialogLeg interface {
	Bye(ctx context.Context) error
	Context() context.Context
	ReadBye(req *sip.Request, tx sip.ServerTransaction) error
	ReadRequest(req *sip.Request, tx sip.ServerTransaction) error
}

// call is one bridged call: the operator's leg, the outside leg, the relay
// anchoring their media and the recording.
type call struct {
	b        *B2BUA
	id       string
	kind     string // policy kind of the call's first decision
	operator string
	campaign string
	source   string
	log      *slog.Logger
	start    time.Time

	mu       sync.Mutex
	number   string // E.164 of the current outside party
	permit   Permit // the decision that let the current outside leg out
	op       *leg   // the operator's leg (nil until known)
	out      *leg   // the current outside leg (nil until answered)
	legs     []*leg // every leg the call ever had, for teardown and the leak check
	relay    *media.Relay
	rec      Recording
	answered time.Time
	sdpVer   [2]uint64 // our SDP version per leg (RFC 3264 §8)
	digits   [2][]byte // DTMF keys each side sent, audited at the end
	sessID   [2]uint64
	slots    int  // operator slots this call holds in ActiveCalls
	transfer bool // a REFER is being carried out
	ended    bool

	hangupReason  hangupReason     // the outside party's BYE Reason (reason.go)
	sessionTimers [2]*sessionTimer // RFC 4028, per leg (sessiontimer.go)
	srtp          trunkSRTP        // SDES keys of the outside leg (srtp.go)

	swapped chan struct{} // a transfer replaced the outside leg

	ctx      context.Context // ends when the call ends
	cancel   context.CancelFunc
	endOnce  sync.Once
	endedWhy string
}

func (b *B2BUA) newCall(operator, number, source string) *call {
	id := uuid.NewString()
	ctx, cancel := context.WithCancel(b.s.Context())
	now := b.s.Now()
	return &call{
		b: b, id: id, operator: operator, number: number, source: source,
		log:   b.s.Log().With("call", id, "operator", operator),
		start: now, ctx: ctx, cancel: cancel, swapped: make(chan struct{}, 1),
		sessID: [2]uint64{uint64(now.UnixNano()), uint64(now.UnixNano()) + 1},
	}
}

// addLeg makes l one of the call's legs: in-dialog requests find it by its
// Call-ID from now on, and teardown hangs it up.
func (c *call) addLeg(l *leg) bool {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return false
	}
	c.legs = append(c.legs, l)
	if l.side == media.LegOperator {
		c.op = l
	}
	c.mu.Unlock()
	c.b.register(c, l.callID)
	return true
}

// setOutside makes an answered outside leg the call's current one. It
// reports false when the call ended meanwhile: the caller hangs l up.
func (c *call) setOutside(l *leg, at time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return false
	}
	c.out = l
	if c.answered.IsZero() {
		c.answered = at
	}
	return true
}

// legs returns the operator's and the current outside leg.
func (c *call) current() (op, out *leg) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.op, c.out
}

// localSDP builds our SDP toward one leg with the negotiated codec.
// Toward an SRTP outside leg it carries the negotiated key (srtp.go).
func (c *call) localSDP(l media.Leg, codecs []media.Codec, dtmf uint8, dir media.Direction) []byte {
	return c.buildSDP(l, codecs, dtmf, dir, nil)
}

// buildSDP is localSDP; offer, when set, are the a=crypto values of a new
// INVITE to a trunk (newTrunkOffer) in place of the negotiated key.
func (c *call) buildSDP(l media.Leg, codecs []media.Codec, dtmf uint8, dir media.Direction, offer []string) []byte {
	c.mu.Lock()
	c.sdpVer[l]++
	ver, sess := c.sdpVer[l], c.sessID[l]
	crypto := offer
	if crypto == nil {
		crypto = c.srtpAttrsLocked(l)
	}
	c.mu.Unlock()
	body, err := media.BuildSDP(media.Local{
		Addr: c.b.opts.MediaIP, Port: c.relay.LocalPort(l), Codecs: codecs, DTMFPT: dtmf,
		Direction: dir, SessionID: sess, Version: ver, Crypto: crypto,
	})
	if err != nil {
		// BuildSDP only fails on a programming error (no codec).
		c.log.Error("build sdp", "err", err)
	}
	return body
}

// keyPressed notes a DTMF key (from the relay's reader: it must not block).
// Keys sent in a call may drive a carrier's second-dial service, so the
// sequence is audited with the call.
func (c *call) keyPressed(l media.Leg, digit byte) {
	c.mu.Lock()
	if len(c.digits[l]) < 256 {
		c.digits[l] = append(c.digits[l], digit)
	}
	c.mu.Unlock()
}

// releaseSlot gives back one operator slot the call holds (a transfer's
// reservation, once the replaced leg is gone or the transfer failed).
func (c *call) releaseSlot() {
	c.mu.Lock()
	give := c.slots > 0
	if give {
		c.slots--
	}
	c.mu.Unlock()
	if give {
		c.b.active.remove(c.operator)
	}
}

// end hangs up every leg, stops media, closes the recording, releases the
// call's slots and checks that no outside leg outlives the call. It is
// safe to call from any goroutine, more than once.
func (c *call) end(why string) {
	c.endOnce.Do(func() {
		c.mu.Lock()
		c.ended = true
		c.endedWhy = why
		legs := append([]*leg(nil), c.legs...)
		relay, rec := c.relay, c.rec
		c.mu.Unlock()
		c.cancel()
		byeCtx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), 5*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		for _, l := range legs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.b.recoverCall(nil, "hangup") // the teardown goes on; a leg it could not hang up shows as leaked
				l.hangup(byeCtx, c.log, c.byeHeaders(l)...)
			}()
		}
		wg.Wait()
		if relay != nil {
			relay.Close()
		}
		end := c.b.s.Now()
		if rec != nil {
			if err := rec.Close(end); err != nil {
				c.log.Error("recording close failed", "err", err)
			}
		}
		for _, l := range legs {
			c.b.unregister(l.callID)
		}
		c.mu.Lock()
		slots := c.slots
		c.slots = 0
		opKeys, outKeys := string(c.digits[media.LegOperator]), string(c.digits[media.LegOutside])
		number, answered := c.number, c.answered
		c.mu.Unlock()
		for range slots {
			c.b.active.remove(c.operator)
		}
		actx := context.WithoutCancel(c.ctx)
		// No outside leg may outlive its call: one that could not be hung
		// up is a call nobody records any more.
		for _, l := range legs {
			if l.side == media.LegOutside && l.leaked() {
				c.b.metrics.legsLeaked.Inc()
				c.b.s.Audit(actx, "call.leg_leaked", c.operator, l.number, "leaked", why, c.source,
					map[string]any{"call_id": c.id, "leg_call_id": l.callID, "err": l.errText()})
				c.log.Error("outside leg outlived its call", "leg", l.callID, "number", l.number)
			}
		}
		dur := time.Duration(0)
		if !answered.IsZero() {
			dur = end.Sub(answered)
		}
		if opKeys != "" || outKeys != "" {
			c.b.s.Audit(actx, "call.dtmf", c.operator, number, "sent", "", c.source,
				map[string]any{"call_id": c.id, "operator_keys": opKeys, "outside_keys": outKeys})
		}
		c.b.s.Audit(actx, "call.ended", c.operator, number, "ended", why, c.source,
			c.hangupAudit(map[string]any{"call_id": c.id, "duration_ms": dur.Milliseconds(), "outside_srtp": c.outsideSecure()}))
		c.log.Info("call ended", "why", why, "duration", dur.Round(time.Millisecond))
		// Counted last: whoever watches the metrics sees a call ended once
		// its audit entries are written.
		c.b.metrics.callsActive.Dec()
		c.b.metrics.callsEnded.WithLabelValues(why).Inc()
	})
}

// Timer is a one-shot timer: time.Timer, or a test's fake driven by its
// own clock (CallOptions.NewTimer).
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time { return r.t.C }
func (r realTimer) Stop() bool          { return r.t.Stop() }

func (b *B2BUA) newTimer(d time.Duration) Timer {
	if b.opts.NewTimer != nil {
		return b.opts.NewTimer(d)
	}
	return realTimer{time.NewTimer(d)}
}

// supervise waits for whatever ends an established call: a BYE from either
// side, media failure (recording or inactivity), the maximum duration, the
// end of the time window, or shutdown.
func (c *call) supervise() {
	maxDur := c.b.opts.MaxCallDuration
	if maxDur <= 0 {
		maxDur = 24 * time.Hour
	}
	maxT := c.b.newTimer(maxDur)
	defer maxT.Stop()

	var warnC, closeC <-chan time.Time
	if c.b.windows != nil {
		now := c.b.s.Now()
		if closeAt, ok := windowCloseFor(c.b.windows, c.number, now); ok {
			warnT := c.b.newTimer(closeAt.Add(-c.b.opts.WindowWarning).Sub(now))
			closeT := c.b.newTimer(closeAt.Add(c.b.opts.WindowGrace).Sub(now))
			defer warnT.Stop()
			defer closeT.Stop()
			warnC, closeC = warnT.C(), closeT.C()
		}
	}
	op, out := c.current()
	c.mu.Lock()
	relay := c.relay
	c.mu.Unlock()
	for {
		select {
		case <-op.d.Context().Done():
			c.end("operator_hangup")
			return
		case <-out.d.Context().Done():
			c.end("outside_hangup")
			return
		case <-relay.Done():
			why := "media_ended"
			if err := relay.Err(); err != nil {
				why = mediaEndReason(err)
			}
			c.end(why)
			return
		case <-c.swapped:
			op, out = c.current()
		case <-maxT.C():
			c.end("max_duration")
			return
		case <-warnC:
			warnC = nil
			c.log.Info("window closing: warning tone")
			tone := media.Tone(440, 400*time.Millisecond)
			c.b.goCall(c, "warning_tone", func() { relay.Play(c.ctx, media.LegOperator, tone) })
			c.b.goCall(c, "warning_tone", func() { relay.Play(c.ctx, media.LegOutside, tone) })
		case <-closeC:
			c.end("window_closed")
			return
		case <-c.ctx.Done():
			c.end("shutdown")
			return
		}
	}
}

// announce plays the recording notice to the outside party before the
// operator is heard, then a short tone to the operator. A transfer calls
// it again for each new outside party. In detention mode PlayNotice opens
// the relay's notice gate only once the whole notice reached the current
// party; an interrupted one (hold, a new party meanwhile) is played again.
func (c *call) announce() {
	notice := c.b.opts.Notice
	if n, ok := c.b.opts.CampaignNotices[c.campaign]; ok {
		notice = n
	}
	c.mu.Lock()
	relay := c.relay
	c.mu.Unlock()
	switch {
	case c.b.opts.Detention:
		for attempt := 1; ; attempt++ {
			err := relay.PlayNotice(c.ctx, notice)
			if err == nil {
				break
			}
			if c.ctx.Err() != nil || !errors.Is(err, media.ErrNoticeIncomplete) || attempt >= 10 {
				// The gate stays closed: the operator is not heard outside.
				c.log.Warn("recording notice not played", "err", err, "attempts", attempt)
				return
			}
			select {
			case <-c.ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	case len(notice) > 0:
		if err := relay.Play(c.ctx, media.LegOutside, notice, media.Muted()); err != nil {
			return
		}
	}
	relay.Play(c.ctx, media.LegOperator, media.Tone(880, 150*time.Millisecond))
}

// num is the E.164 number of the current outside party (a transfer
// changes it).
func (c *call) num() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.number
}
