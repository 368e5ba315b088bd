package b2bua

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	psip "plateau/sip"

	"plateau/media"
)

// Session timers (RFC 4028). A carrier or SBC that sees no refresh within
// the negotiated interval tears the call down, and a dead peer would keep
// a call (and its recording) open until the maximum duration. So on each
// leg that negotiated a timer Plateau either refreshes at half the
// interval (when it is the refresher) or ends the call, BYE on both legs
// and audited, when the peer's refresh does not come in time. A failed
// refresh ends the call the same way.
//
// Plateau is the UAS of the legs that called in (an operator dialling out,
// a carrier calling in): it answers the timer the INVITE asked (answerUAS).
// It is the UAC of the legs it places: toward the trunk (the carrier's 2xx
// decides, armUACSessionTimer) and toward phones it rings itself (inbound
// calls, click-to-call, supervisors' monitor legs), where its INVITE
// offers a timer (offerSessionTimer), retries once per 422 with the
// phone's Min-SE (ringPhone), and follows the phone's 2xx. A phone that
// does not support timers answers without Session-Expires: no timer.
// One timer implementation (sessionTimer.run) serves every leg.

const (
	// offeredSessionExpires is the interval Plateau asks of phones it
	// rings: RFC 4028's recommended 30 minutes.
	offeredSessionExpires = 30 * time.Minute
	// minSE is the smallest interval Plateau accepts in a request it
	// answers, and says so in its INVITEs (RFC 4028 §4: at least 90 s).
	minSE = 90 * time.Second
	// max422Retries bounds the INVITE retries after 422 Session Interval
	// Too Small: each must ask a larger interval.
	max422Retries = 2
)

// sessionLeg is what a session timer refreshes and ends: one leg of a
// call, or a supervisor's monitor leg.
type sessionLeg struct {
	name   string          // for logs: operator, outside, supervisor
	ctx    context.Context // ends with the session
	log    *slog.Logger
	dialog func() (dialogLeg, error) // the leg's current dialog
	offer  func() []byte             // our SDP for a re-INVITE refresh
	answer func([]byte) error        // applies a re-INVITE refresh's answer
	end    func(why string)          // ends the session (audited by its owner)
	floor  time.Duration             // the shortest interval run (sip.min_session_expires)
	spawn  func(func())              // runs the timer's goroutine, tracked
}

// sessionTimer is one leg's negotiated timer.
type sessionTimer struct {
	sl sessionLeg

	mu        sync.Mutex
	interval  time.Duration
	weRefresh bool
	kick      chan struct{} // a refresh was received or sent: restart
}

func newSessionTimer(sl sessionLeg) *sessionTimer {
	return &sessionTimer{sl: sl, kick: make(chan struct{}, 1)}
}

func (t *sessionTimer) get() (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.interval, t.weRefresh
}

// set runs the timer at interval, never below the floor: whatever a peer
// wrote (Session-Expires: 1 in an INVITE, a 2xx or a refresh's answer),
// Plateau neither refreshes nor expects refreshes more often than the
// floor allows (RFC 4028 §4: no interval below Min-SE).
func (t *sessionTimer) set(interval time.Duration, weRefresh bool) {
	interval = max(interval, t.sl.floor, time.Second)
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
	interval, err := psip.ParseSeconds(parts[0], maxSessionExpires)
	if err != nil {
		return sessionExpires{}, fmt.Errorf("Session-Expires: %w", err)
	}
	se := sessionExpires{Interval: interval}
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
// An interval below floor is raised to floor, and the answer says so: a
// request asking Session-Expires: 1 would otherwise have Plateau refresh
// twice a second, or end the call unless the phone refreshes as often.
// (RFC 4028 §9 lets a UAS refuse it with 422 instead; raising it keeps
// the call and its recording, and a compliant UAC follows the answer.)
func uasSessionTimer(req *sip.Request, floor time.Duration) (se sessionExpires, hdrs []sip.Header, ok bool) {
	se, ok = requestSessionExpires(req)
	if !ok {
		return se, nil, false
	}
	se.Interval = max(se.Interval, floor)
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
	se, hdrs, ok := uasSessionTimer(ds.InviteRequest, c.b.opts.MinSessionExpires)
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
	c.armUACSessionTimer(media.LegOutside, d.InviteResponse)
}

// armUACSessionTimer reads the timer of leg l, answered with res to an
// INVITE Plateau sent: refresher=uac is Plateau, uas is the peer. A 2xx
// without Session-Expires means no timer (RFC 4028 §7.2): a phone or a
// carrier without timer support just works without.
func (c *call) armUACSessionTimer(l media.Leg, res *sip.Response) {
	if interval, weRefresh, ok := uacSessionTimer(res); ok {
		c.startSessionTimer(l, interval, weRefresh)
	}
}

// uacSessionTimer reads the timer a 2xx to Plateau's INVITE set, if any.
func uacSessionTimer(res *sip.Response) (interval time.Duration, weRefresh, ok bool) {
	if res == nil {
		return 0, false, false
	}
	se, ok := responseSessionExpires(res)
	if !ok {
		return 0, false, false
	}
	// A 2xx without refresher leaves it to us (RFC 4028 §7.2 requires
	// one; refreshing is the safe side).
	return se.Interval, se.Refresher != "uas", true
}

// offerSessionTimer asks for a session timer in an INVITE Plateau sends
// to a phone (RFC 4028 §7.1): the phone picks the refresher.
func offerSessionTimer(req *sip.Request, interval time.Duration) {
	setHeader(req, "Supported", "timer")
	setHeader(req, "Session-Expires", sessionExpires{Interval: interval}.String())
	setHeader(req, "Min-SE", strconv.Itoa(int(min(minSE, interval)/time.Second)))
}

// retryInterval reads a 422 Session Interval Too Small (RFC 4028 §6): the
// phone's Min-SE, when it is a usable interval larger than asked.
func retryInterval(res *sip.Response, asked time.Duration) (time.Duration, bool) {
	h := res.GetHeader("Min-SE")
	if h == nil {
		return 0, false
	}
	se, err := parseSessionExpires(h.Value())
	if err != nil || se.Interval <= asked {
		return 0, false
	}
	return se.Interval, true
}

// ringPhone sends a phone INVITE built by newInvite (which must keep the
// Call-ID, From tag and a CSeq above the last for a retry) and waits for
// its answer. A 422 is retried with the phone's Min-SE, at most
// max422Retries times; each dialog sent is passed to onDialog first (the
// caller's leg follows it), which may refuse it (the call ended).
func ringPhone(ctx context.Context, send func(interval time.Duration) (*sipgo.DialogClientSession, error), onDialog func(*sipgo.DialogClientSession) bool, opts sipgo.AnswerOptions) (*sipgo.DialogClientSession, error) {
	interval := offeredSessionExpires
	for attempt := 0; ; attempt++ {
		cs, err := send(interval)
		if err != nil {
			return nil, err
		}
		if !onDialog(cs) {
			return nil, context.Canceled
		}
		err = cs.WaitAnswer(ctx, opts)
		var de *sipgo.ErrDialogResponse
		if err != nil && errors.As(err, &de) && de.Res.StatusCode == 422 && attempt < max422Retries {
			if next, ok := retryInterval(de.Res, interval); ok {
				interval = next
				continue
			}
		}
		if err != nil {
			return nil, err
		}
		return cs, nil
	}
}

// sessionRefreshed handles a refresh request received on leg l (re-INVITE
// or UPDATE) that is being answered with res: the answer carries the
// timer and the leg's timer restarts.
func (c *call) sessionRefreshed(l media.Leg, req *sip.Request, res *sip.Response) {
	se, hdrs, ok := uasSessionTimer(req, c.b.opts.MinSessionExpires)
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
		t = newSessionTimer(c.sessionLeg(l))
		c.sessionTimers[l] = t
	}
	c.mu.Unlock()
	t.set(interval, weRefresh)
	if fresh {
		t.start()
	}
}

// sessionLeg is leg l of c for its session timer.
func (c *call) sessionLeg(l media.Leg) sessionLeg {
	return sessionLeg{
		name: l.String(), ctx: c.ctx, log: c.log,
		dialog: func() (dialogLeg, error) {
			op, out := c.current()
			cur := op
			if l == media.LegOutside {
				cur = out
			}
			if cur == nil {
				return nil, errors.New("no " + l.String() + " leg to refresh")
			}
			return cur.d, nil
		},
		offer:  func() []byte { return c.localSDP(l, media.DefaultCodecs(), 101, media.SendRecv) },
		answer: func(body []byte) error { return c.applyRemote(l, body) },
		end:    c.end,
		floor:  c.b.opts.MinSessionExpires,
		spawn:  func(f func()) { c.b.goCall(c, "session_timer", f) },
	}
}

// armSessionTimer reads the timer of the supervisor's answered leg (a
// phone Plateau rang: its 2xx decides).
func (m *monitorSession) armSessionTimer(l *leg) {
	cs, ok := l.d.(*sipgo.DialogClientSession)
	if !ok {
		return
	}
	if interval, weRefresh, ok := uacSessionTimer(cs.InviteResponse); ok {
		m.startSessionTimer(interval, weRefresh)
	}
}

// sessionRefreshed handles a refresh (re-INVITE or UPDATE) from the
// supervisor's phone being answered with res, as for a call's leg.
func (m *monitorSession) sessionRefreshed(req *sip.Request, res *sip.Response) {
	se, hdrs, ok := uasSessionTimer(req, m.b.opts.MinSessionExpires)
	if !ok {
		return
	}
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	m.startSessionTimer(se.Interval, se.Refresher == "uas")
}

// startSessionTimer sets the supervisor leg's timer, starting it the
// first time; it runs until the session ends (end stops it).
func (m *monitorSession) startSessionTimer(interval time.Duration, weRefresh bool) {
	m.mu.Lock()
	select {
	case <-m.done:
		m.mu.Unlock()
		return
	default:
	}
	t := m.timer
	fresh := t == nil
	if fresh {
		ctx, stop := context.WithCancel(m.b.s.Context())
		m.timerStop = stop
		t = newSessionTimer(m.sessionLeg(ctx))
		m.timer = t
	}
	m.mu.Unlock()
	t.set(interval, weRefresh)
	if fresh {
		t.start()
	}
}

// sessionLeg is the supervisor's leg for its session timer: a refresh
// answer's SDP passes the same media check as the INVITE's.
func (m *monitorSession) sessionLeg(ctx context.Context) sessionLeg {
	leg := func() *leg {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.leg
	}
	return sessionLeg{
		name: "supervisor", ctx: ctx, log: m.log,
		dialog: func() (dialogLeg, error) {
			if l := leg(); l != nil {
				return l.d, nil
			}
			return nil, errors.New("no supervisor leg to refresh")
		},
		offer: func() []byte { return m.localSDP(media.DefaultCodecs(), 101) },
		answer: func(body []byte) error {
			remote, codec, err := negotiate(body)
			if err != nil {
				return err
			}
			if err := m.b.monitorMediaAllowed(m, leg(), remote); err != nil { // mediaguard.go
				return err
			}
			return m.media.SetRemote(remote.Addr, codec, remote.DTMFPT)
		},
		end:   m.end,
		floor: m.b.opts.MinSessionExpires,
		spawn: func(f func()) { m.b.goCall(nil, "monitor_session_timer", f) },
	}
}

func (t *sessionTimer) start() {
	interval, we := t.get()
	t.sl.log.Info("session timer", "leg", t.sl.name, "interval", interval, "we_refresh", we)
	t.sl.spawn(t.run)
}

// run refreshes at half the interval or, when the peer refreshes, expires
// at the interval less min(32 s, interval/3) (RFC 4028 §10), until the
// session ends.
func (t *sessionTimer) run() {
	for {
		interval, we := t.get()
		wait := interval - min(32*time.Second, interval/3)
		if we {
			wait = interval / 2
		}
		timer := time.NewTimer(wait)
		select {
		case <-t.sl.ctx.Done():
			timer.Stop()
			return
		case <-t.kick:
			timer.Stop()
			continue
		case <-timer.C:
		}
		if !we {
			t.sl.log.Warn("session expired: no refresh from the peer", "leg", t.sl.name, "interval", interval)
			t.sl.end("session_expired")
			return
		}
		if err := t.refresh(interval); err != nil {
			t.sl.log.Warn("session refresh failed", "leg", t.sl.name, "err", err)
			t.sl.end("session_refresh_failed")
			return
		}
	}
}

// refresh sends one refresh on the leg: UPDATE without a body when the
// peer allows it, else a re-INVITE with our SDP (RFC 4028 §7.4).
func (t *sessionTimer) refresh(interval time.Duration) error {
	leg, err := t.sl.dialog()
	if err != nil {
		return err
	}
	ctx := t.sl.ctx
	useUpdate := peerAllows(leg, "UPDATE")
	for attempt := 0; attempt < 3; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, 32*time.Second)
		res, err := t.sendRefresh(rctx, leg, interval, useUpdate)
		cancel()
		if err != nil {
			return err
		}
		switch {
		case res.IsSuccess():
			if se, ok := responseSessionExpires(res); ok {
				// The refresher stays us unless the answer says uas.
				t.set(se.Interval, se.Refresher != "uas")
			}
			return nil
		case res.StatusCode == 422: // Session Interval Too Small: use its Min-SE
			if next, ok := retryInterval(res, interval); ok {
				interval = next
				continue
			}
			return fmt.Errorf("refresh answered 422 without a usable Min-SE")
		case res.StatusCode == 491: // glare with the peer's own request: once more
			select {
			case <-ctx.Done():
				return ctx.Err()
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

func (t *sessionTimer) sendRefresh(ctx context.Context, leg dialogLeg, interval time.Duration, useUpdate bool) (*sip.Response, error) {
	method := sip.UPDATE
	if !useUpdate {
		method = sip.INVITE
	}
	req := sip.NewRequest(method, sip.Uri{})
	req.AppendHeader(sip.NewHeader("Session-Expires", sessionExpires{Interval: interval, Refresher: "uac"}.String()))
	req.AppendHeader(sip.NewHeader("Supported", "timer"))
	if !useUpdate {
		req.SetBody(t.sl.offer())
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
	case *sipgo.DialogClientSession:
		// A phone Plateau rang: requests go to its 2xx's Contact (checked
		// by checkPhoneAnswer, targetguard.go).
		if d.InviteResponse == nil || d.InviteResponse.Contact() == nil {
			return nil, errors.New("the phone's answer had no Contact")
		}
		req.Recipient = *d.InviteResponse.Contact().Address.Clone()
		res, err = d.Do(ctx, req)
		if err == nil && !useUpdate && res.IsSuccess() {
			err = ackClientReinvite(d, req)
		}
	default:
		return nil, fmt.Errorf("no session refresh on a %T leg", leg)
	}
	if err != nil {
		return nil, err
	}
	if !useUpdate && res.IsSuccess() && len(res.Body()) > 0 {
		if err := t.sl.answer(res.Body()); err != nil {
			t.sl.log.Info("refresh answer SDP ignored", "err", err)
		}
	}
	return res, nil
}

// ackClientReinvite acknowledges the 2xx of a re-INVITE sent in a dialog
// Plateau started (sipgo's WriteRequest would renumber the ACK's CSeq with
// the dialog's latest): same Request-URI, dialog headers and route set,
// the re-INVITE's CSeq number, a new Via branch (RFC 3261 §13.2.2.4).
func ackClientReinvite(d *sipgo.DialogClientSession, reinvite *sip.Request) error {
	ack := sip.NewRequest(sip.ACK, *reinvite.Recipient.Clone())
	ack.SipVersion = reinvite.SipVersion
	for _, name := range []string{"From", "To", "Call-ID", "Route"} {
		sip.CopyHeaders(name, reinvite, ack)
	}
	ack.AppendHeader(&sip.CSeqHeader{SeqNo: reinvite.CSeq().SeqNo, MethodName: sip.ACK})
	mf := sip.MaxForwardsHeader(70)
	ack.AppendHeader(&mf)
	ack.SetBody(nil)
	ack.SetTransport(reinvite.Transport())
	ack.SetDestination(reinvite.Destination())
	ack.Laddr = reinvite.Laddr
	return d.UA.Client.WriteRequest(ack, sipgo.ClientRequestAddVia)
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
	case *sipgo.DialogClientSession:
		if d.InviteResponse != nil {
			hs = d.InviteResponse.GetHeaders("Allow")
		}
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
