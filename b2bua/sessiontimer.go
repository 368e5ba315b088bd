package b2bua

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"plateau/media"
)

// Session timers (RFC 4028). A carrier or SBC that sees no refresh within
// the negotiated interval tears the call down, and a dead peer would keep
// a call (and its recording) open until the maximum duration. So on each
// leg that negotiated a timer Plateau either refreshes at half the
// interval (when it is the refresher) or ends the call, BYE on both legs
// and audited, when the peer's refresh does not come in time. A failed
// refresh ends the call the same way.

// sessionTimer is one leg's negotiated timer.
type sessionTimer struct {
	mu        sync.Mutex
	interval  time.Duration
	weRefresh bool
	kick      chan struct{} // a refresh was received or sent: restart
}

func (t *sessionTimer) get() (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.interval, t.weRefresh
}

func (t *sessionTimer) set(interval time.Duration, weRefresh bool) {
	t.mu.Lock()
	t.interval, t.weRefresh = interval, weRefresh
	t.mu.Unlock()
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// sessionExpires is a parsed Session-Expires header (RFC 4028 §4).
type sessionExpires struct {
	Interval  time.Duration
	Refresher string // "uac", "uas" or "" (not said)
}

func (s sessionExpires) String() string {
	v := strconv.Itoa(int(s.Interval / time.Second))
	if s.Refresher != "" {
		v += ";refresher=" + s.Refresher
	}
	return v
}

// maxSessionExpires bounds what a peer may ask: a day.
const maxSessionExpires = 24 * time.Hour

// parseSessionExpires reads "1800;refresher=uac" (or the compact "x").
func parseSessionExpires(v string) (sessionExpires, error) {
	parts := strings.Split(v, ";")
	n, err := strconv.Atoi(strings.TrimSpace(parts[0]))
	if err != nil || n < 1 || time.Duration(n)*time.Second > maxSessionExpires {
		return sessionExpires{}, fmt.Errorf("Session-Expires %q is not a number of seconds from 1 to 86400", v)
	}
	se := sessionExpires{Interval: time.Duration(n) * time.Second}
	for _, p := range parts[1:] {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(k), "refresher") {
			switch r := strings.ToLower(strings.TrimSpace(val)); r {
			case "uac", "uas":
				se.Refresher = r
			default:
				return sessionExpires{}, fmt.Errorf("Session-Expires refresher %q is not uac or uas", val)
			}
		}
	}
	return se, nil
}

func sessionExpiresOf(hs []sip.Header) (sessionExpires, bool) {
	for _, h := range hs {
		if se, err := parseSessionExpires(h.Value()); err == nil {
			return se, true
		}
	}
	return sessionExpires{}, false
}

func requestSessionExpires(req *sip.Request) (sessionExpires, bool) {
	return sessionExpiresOf(append(getHeaders(req, "Session-Expires"), getHeaders(req, "x")...))
}

func responseSessionExpires(res *sip.Response) (sessionExpires, bool) {
	return sessionExpiresOf(append(res.GetHeaders("Session-Expires"), res.GetHeaders("x")...))
}

// uasSessionTimer decides, as the UAS of req (an INVITE or a refresh),
// the timer of the dialog: the interval the UAC asked, the refresher it
// named, else the UAC if it supports timers, else us (RFC 4028 §9). It
// returns the response's headers; ok is false when req asks no timer.
func uasSessionTimer(req *sip.Request) (se sessionExpires, hdrs []sip.Header, ok bool) {
	se, ok = requestSessionExpires(req)
	if !ok {
		return se, nil, false
	}
	supports := hasTag(headerValues(req, "Supported"), "timer") || hasTag(headerValues(req, "k"), "timer")
	if se.Refresher == "" {
		se.Refresher = "uas"
		if supports {
			se.Refresher = "uac"
		}
	}
	hdrs = []sip.Header{sip.NewHeader("Session-Expires", se.String())}
	if supports {
		hdrs = append(hdrs, sip.NewHeader("Require", "timer"))
	}
	return se, hdrs, true
}

// answerUAS answers a leg's initial INVITE (Plateau its UAS) with sdp,
// with the session timer the INVITE asked for, and starts policing it.
func (c *call) answerUAS(l media.Leg, ds *sipgo.DialogServerSession, sdp []byte) error {
	res := sip.NewSDPResponseFromRequest(ds.InviteRequest, sdp)
	se, hdrs, ok := uasSessionTimer(ds.InviteRequest)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if err := ds.WriteResponse(res); err != nil {
		return err
	}
	if ok {
		c.startSessionTimer(l, se.Interval, se.Refresher == "uas")
	}
	return nil
}

// armTrunkSessionTimer reads the timer of an answered trunk leg (Plateau
// its UAC) from the carrier's 2xx.
func (c *call) armTrunkSessionTimer(d *trunkDialog) {
	if d.InviteResponse == nil {
		return
	}
	se, ok := responseSessionExpires(d.InviteResponse)
	if !ok {
		return
	}
	// A 2xx without refresher leaves it to us (RFC 4028 §7.2 requires
	// one; refreshing is the safe side).
	c.startSessionTimer(media.LegOutside, se.Interval, se.Refresher != "uas")
}

// sessionRefreshed handles a refresh request received on leg l (re-INVITE
// or UPDATE) that is being answered with res: the answer carries the
// timer and the leg's timer restarts.
func (c *call) sessionRefreshed(l media.Leg, req *sip.Request, res *sip.Response) {
	se, hdrs, ok := uasSessionTimer(req)
	if !ok {
		return
	}
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	c.startSessionTimer(l, se.Interval, se.Refresher == "uas")
}

// startSessionTimer sets leg l's timer, starting its goroutine the first
// time.
func (c *call) startSessionTimer(l media.Leg, interval time.Duration, weRefresh bool) {
	c.mu.Lock()
	t := c.sessionTimers[l]
	fresh := t == nil
	if fresh {
		t = &sessionTimer{kick: make(chan struct{}, 1)}
		c.sessionTimers[l] = t
	}
	c.mu.Unlock()
	t.set(interval, weRefresh)
	if fresh {
		c.log.Info("session timer", "leg", l, "interval", interval, "we_refresh", weRefresh)
		c.b.wg.Add(1)
		go func() { defer c.b.wg.Done(); c.runSessionTimer(l, t) }()
	}
}

// runSessionTimer refreshes at half the interval or, when the peer
// refreshes, expires at the interval less min(32 s, interval/3) (RFC 4028
// §10), until the call ends.
func (c *call) runSessionTimer(l media.Leg, t *sessionTimer) {
	for {
		interval, we := t.get()
		wait := interval - min(32*time.Second, interval/3)
		if we {
			wait = interval / 2
		}
		timer := time.NewTimer(wait)
		select {
		case <-c.ctx.Done():
			timer.Stop()
			return
		case <-t.kick:
			timer.Stop()
			continue
		case <-timer.C:
		}
		if !we {
			c.log.Warn("session expired: no refresh from the peer", "leg", l, "interval", interval)
			c.end("session_expired")
			return
		}
		if err := c.refreshSession(l, interval); err != nil {
			c.log.Warn("session refresh failed", "leg", l, "err", err)
			c.end("session_refresh_failed")
			return
		}
	}
}

// refreshSession sends one refresh on leg l: UPDATE without a body when
// the peer allows it, else a re-INVITE with our SDP (RFC 4028 §7.4).
func (c *call) refreshSession(l media.Leg, interval time.Duration) error {
	op, out := c.current()
	cur := op
	if l == media.LegOutside {
		cur = out
	}
	if cur == nil {
		return errors.New("no " + l.String() + " leg to refresh")
	}
	leg := cur.d
	useUpdate := peerAllows(leg, "UPDATE")
	for attempt := 0; attempt < 3; attempt++ {
		ctx, cancel := context.WithTimeout(c.ctx, 32*time.Second)
		res, err := c.sendRefresh(ctx, l, leg, interval, useUpdate)
		cancel()
		if err != nil {
			return err
		}
		switch {
		case res.IsSuccess():
			if se, ok := responseSessionExpires(res); ok {
				c.mu.Lock()
				t := c.sessionTimers[l]
				c.mu.Unlock()
				// The refresher stays us unless the answer says uas.
				t.set(se.Interval, se.Refresher != "uas")
			}
			return nil
		case res.StatusCode == 422: // Session Interval Too Small: use its Min-SE
			if h := res.GetHeader("Min-SE"); h != nil {
				if se, err := parseSessionExpires(h.Value()); err == nil && se.Interval > interval {
					interval = se.Interval
					continue
				}
			}
			return fmt.Errorf("refresh answered 422 without a usable Min-SE")
		case res.StatusCode == 491: // glare with the peer's own request: once more
			select {
			case <-c.ctx.Done():
				return c.ctx.Err()
			case <-time.After(time.Second):
			}
			continue
		case useUpdate && (res.StatusCode == 405 || res.StatusCode == 501):
			useUpdate = false
			continue
		default:
			return fmt.Errorf("refresh answered %d %s", res.StatusCode, res.Reason)
		}
	}
	return errors.New("refresh not accepted after 3 attempts")
}

func (c *call) sendRefresh(ctx context.Context, l media.Leg, leg dialogLeg, interval time.Duration, useUpdate bool) (*sip.Response, error) {
	method := sip.UPDATE
	if !useUpdate {
		method = sip.INVITE
	}
	req := sip.NewRequest(method, sip.Uri{})
	req.AppendHeader(sip.NewHeader("Session-Expires", sessionExpires{Interval: interval, Refresher: "uac"}.String()))
	req.AppendHeader(sip.NewHeader("Supported", "timer"))
	if !useUpdate {
		req.SetBody(c.localSDP(l, media.DefaultCodecs(), 101, media.SendRecv))
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	var res *sip.Response
	var err error
	switch d := leg.(type) {
	case *trunkDialog:
		res, err = d.Do(ctx, req)
		if err == nil && !useUpdate && res.IsSuccess() {
			err = d.ackReinvite(req)
		}
	case *sipgo.DialogServerSession:
		target := d.InviteRequest.Contact()
		if target == nil {
			return nil, errors.New("the peer's INVITE had no Contact")
		}
		req.Recipient = *target.Address.Clone()
		res, err = d.Do(ctx, req)
		if err == nil && !useUpdate && res.IsSuccess() {
			ack := sip.NewRequest(sip.ACK, *target.Address.Clone())
			err = d.WriteRequest(ack)
		}
	default:
		return nil, fmt.Errorf("no session refresh on a %T leg", leg)
	}
	if err != nil {
		return nil, err
	}
	if !useUpdate && res.IsSuccess() && len(res.Body()) > 0 {
		if err := c.applyRemote(l, res.Body()); err != nil {
			c.log.Info("refresh answer SDP ignored", "err", err)
		}
	}
	return res, nil
}

// peerAllows reports whether the peer of leg listed method in the Allow
// of its INVITE or answer.
func peerAllows(leg dialogLeg, method string) bool {
	var hs []sip.Header
	switch d := leg.(type) {
	case *trunkDialog:
		if d.InviteResponse != nil {
			hs = d.InviteResponse.GetHeaders("Allow")
		}
	case *sipgo.DialogServerSession:
		hs = getHeaders(d.InviteRequest, "Allow")
	}
	return hasTag(splitValues(hs), method)
}

// ackReinvite acknowledges the 2xx of a re-INVITE sent in the dialog.
func (d *trunkDialog) ackReinvite(reinvite *sip.Request) error {
	ack := sip.NewRequest(sip.ACK, sip.Uri{})
	ack.AppendHeader(&sip.CSeqHeader{SeqNo: reinvite.CSeq().SeqNo, MethodName: sip.ACK})
	d.build(ack)
	if err := sipgo.ClientRequestAddVia(d.client, ack); err != nil {
		return err
	}
	return d.client.WriteRequest(ack, func(*sipgo.Client, *sip.Request) error { return nil })
}

// uasExtensions are the option tags Plateau honours when a peer's INVITE
// requires them of Plateau as its UAS: session timers only (it sends no
// reliable provisionals).
var uasExtensions = []string{"timer"}

// unsupportedRequire lists the INVITE's Require tags Plateau cannot honour
// as its UAS; the INVITE is then answered 420 Bad Extension with them in
// Unsupported (RFC 3261 §8.2.2.3), not silently answered without them.
func unsupportedRequire(req *sip.Request) []string {
	var out []string
	for _, v := range headerValues(req, "Require") { // Proxy-Require is for proxies
		if !hasTag(uasExtensions, v) {
			out = append(out, v)
		}
	}
	return out
}

// refuseUnsupported answers 420 when req requires what Plateau lacks.
func (b *B2BUA) refuseUnsupported(req *sip.Request, tx sip.ServerTransaction) bool {
	bad := unsupportedRequire(req)
	if len(bad) == 0 {
		return false
	}
	b.s.Log().Info("INVITE requires an extension Plateau lacks", "unsupported", bad, "source", req.Source())
	res := sip.NewResponseFromRequest(req, sip.StatusBadExtension, "Bad Extension", nil)
	res.AppendHeader(sip.NewHeader("Unsupported", strings.Join(bad, ", ")))
	b.s.Respond(tx, req, res)
	return true
}
