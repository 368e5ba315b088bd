package sip

import (
	"context"
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
	b        *b2bua
	id       string
	operator string
	number   string // E.164
	campaign string
	source   string
	log      *slog.Logger
	start    time.Time

	mu        sync.Mutex
	opLeg     dialogLeg
	outLeg    dialogLeg
	opCallID  string
	outCallID string
	relay     *media.Relay
	rec       Recording
	answered  time.Time
	sdpVer    [2]uint64 // our SDP version per leg (RFC 3264 §8)
	digits    [2][]byte // DTMF keys each side sent, audited at the end
	sessID    [2]uint64

	hangupReason  hangupReason     // the outside party's BYE Reason (reason.go)
	sessionTimers [2]*sessionTimer // RFC 4028, per leg (sessiontimer.go)

	swapped chan struct{} // a transfer replaced the outside leg

	ctx      context.Context // ends when the call ends
	cancel   context.CancelFunc
	endOnce  sync.Once
	endedWhy string
}

func (b *b2bua) newCall(operator, number, source string) *call {
	id := uuid.NewString()
	ctx, cancel := context.WithCancel(b.s.ctx)
	now := b.s.now()
	return &call{
		b: b, id: id, operator: operator, number: number, source: source,
		log:   b.s.log.With("call", id, "operator", operator),
		start: now, ctx: ctx, cancel: cancel, swapped: make(chan struct{}, 1),
		sessID: [2]uint64{uint64(now.UnixNano()), uint64(now.UnixNano()) + 1},
	}
}

// setOutside makes an answered trunk leg the call's outside leg.
func (c *call) setOutside(cs *trunkDialog, at time.Time) {
	c.mu.Lock()
	c.outLeg = cs
	c.outCallID = cs.InviteRequest.CallID().Value()
	if c.answered.IsZero() {
		c.answered = at
	}
	c.mu.Unlock()
	c.armTrunkSessionTimer(cs)
}

// localSDP builds our SDP toward one leg with the negotiated codec.
func (c *call) localSDP(l media.Leg, codecs []media.Codec, dtmf uint8, dir media.Direction) []byte {
	c.mu.Lock()
	c.sdpVer[l]++
	ver, sess := c.sdpVer[l], c.sessID[l]
	c.mu.Unlock()
	body, err := media.BuildSDP(media.Local{
		Addr: c.b.opts.MediaIP, Port: c.relay.LocalPort(l), Codecs: codecs, DTMFPT: dtmf,
		Direction: dir, SessionID: sess, Version: ver,
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

// end hangs up both legs, stops media, closes the recording and releases
// the call's slot. It is safe to call from any goroutine, more than once.
func (c *call) end(why string) {
	c.endOnce.Do(func() {
		c.mu.Lock()
		c.endedWhy = why
		op, out, relay, rec := c.opLeg, c.outLeg, c.relay, c.rec
		c.mu.Unlock()
		c.cancel()
		byeCtx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), 5*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		for _, l := range []dialogLeg{op, out} {
			if l == nil || l.Context().Err() != nil {
				continue // that side already hung up
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := byeWith(byeCtx, l, c.byeHeaders(l)...); err != nil {
					c.log.Debug("bye failed", "err", err)
				}
			}()
		}
		wg.Wait()
		if relay != nil {
			relay.Close()
		}
		end := c.b.s.now()
		if rec != nil {
			if err := rec.Close(end); err != nil {
				c.log.Error("recording close failed", "err", err)
			}
		}
		c.b.unregister(c.opCallID, c.outCallID)
		c.b.active.remove(c.operator)
		c.b.s.metrics.callsActive.Dec()
		c.b.s.metrics.callsEnded.WithLabelValues(why).Inc()
		dur := time.Duration(0)
		if !c.answered.IsZero() {
			dur = end.Sub(c.answered)
		}
		c.mu.Lock()
		opKeys, outKeys := string(c.digits[media.LegOperator]), string(c.digits[media.LegOutside])
		c.mu.Unlock()
		if opKeys != "" || outKeys != "" {
			c.b.s.audit.Audit(context.WithoutCancel(c.ctx), "call.dtmf", c.operator, c.number, "sent", "", c.source,
				map[string]any{"call_id": c.id, "operator_keys": opKeys, "outside_keys": outKeys})
		}
		c.b.s.audit.Audit(context.WithoutCancel(c.ctx), "call.ended", c.operator, c.number, "ended", why, c.source,
			c.hangupAudit(map[string]any{"call_id": c.id, "duration_ms": dur.Milliseconds()}))
		c.log.Info("call ended", "why", why, "duration", dur.Round(time.Millisecond))
	})
}

// supervise waits for whatever ends an established call: a BYE from either
// side, media failure (recording or inactivity), the maximum duration, the
// end of the time window, or shutdown.
func (c *call) supervise() {
	defer c.b.wg.Done()
	maxDur := c.b.opts.MaxCallDuration
	if maxDur <= 0 {
		maxDur = 24 * time.Hour
	}
	maxT := time.NewTimer(maxDur)
	defer maxT.Stop()

	var warnC, closeC <-chan time.Time
	if c.b.windows != nil {
		now := c.b.s.now()
		if closeAt, ok := c.b.windows.NextClose(now); ok {
			warnT := time.NewTimer(closeAt.Add(-c.b.opts.WindowWarning).Sub(now))
			closeT := time.NewTimer(closeAt.Add(c.b.opts.WindowGrace).Sub(now))
			defer warnT.Stop()
			defer closeT.Stop()
			warnC, closeC = warnT.C, closeT.C
		}
	}
	c.mu.Lock()
	op, out, relay := c.opLeg, c.outLeg, c.relay
	c.mu.Unlock()
	for {
		select {
		case <-op.Context().Done():
			c.end("operator_hangup")
			return
		case <-out.Context().Done():
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
			c.mu.Lock()
			op, out = c.opLeg, c.outLeg
			c.mu.Unlock()
		case <-maxT.C:
			c.end("max_duration")
			return
		case <-warnC:
			warnC = nil
			c.log.Info("window closing: warning tone")
			tone := media.Tone(440, 400*time.Millisecond)
			go c.relay.Play(c.ctx, media.LegOperator, tone)
			go c.relay.Play(c.ctx, media.LegOutside, tone)
		case <-closeC:
			c.end("window_closed")
			return
		case <-c.ctx.Done():
			c.end("shutdown")
			return
		}
	}
}
