package b2bua

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"

	"plateau/media"
)

// leg is one dialog of a call and who may speak in it. In-dialog requests
// (BYE, re-INVITE, UPDATE, INFO, REFER, ACK) are matched on the Call-ID,
// both tags and the transport source: knowing a Call-ID (it travels in
// clear on the LAN) is not enough to hang up a call or move its media.
type leg struct {
	side   media.Leg
	d      dialogLeg
	callID string
	number string // outside legs: the E.164 number this leg reached

	// peerOK reports whether a request from this host may belong to the
	// leg's peer: the address the INVITE came from or was sent to, a
	// trunk's allowed sources, a phone's binding.
	peerOK func(netip.Addr) bool

	mu        sync.Mutex
	localTag  string
	remoteTag string
	answered  bool  // a 2xx was sent or received: the leg is up
	byeSent   bool  // we tried to hang it up
	byeErr    error // and how that went
	peerBye   bool  // the peer hung up
	replaced  bool  // a transfer swapped another outside party in
}

// uasLeg is a leg whose INVITE Plateau received (answered by ds).
func uasLeg(side media.Leg, ds *sipgo.DialogServerSession, peerOK func(netip.Addr) bool) *leg {
	l := &leg{side: side, d: ds, peerOK: peerOK}
	if id := ds.InviteRequest.CallID(); id != nil {
		l.callID = id.Value()
	}
	if f := ds.InviteRequest.From(); f != nil {
		l.remoteTag, _ = f.Params.Get("tag")
	}
	if t := ds.InviteRequest.To(); t != nil {
		l.localTag, _ = t.Params.Get("tag") // ReadInvite added ours
	}
	return l
}

// uacLeg is a leg whose INVITE Plateau sent; the remote tag is known once
// answered (setAnswered).
func uacLeg(side media.Leg, cs *sipgo.DialogClientSession, peerOK func(netip.Addr) bool) *leg {
	l := &leg{side: side, d: cs, peerOK: peerOK}
	if id := cs.InviteRequest.CallID(); id != nil {
		l.callID = id.Value()
	}
	if f := cs.InviteRequest.From(); f != nil {
		l.localTag, _ = f.Params.Get("tag")
	}
	return l
}

// trunkDialogLeg is an answered outside leg toward a trunk (trunkleg.go).
func trunkDialogLeg(d *trunkDialog, peerOK func(netip.Addr) bool) *leg {
	l := &leg{side: media.LegOutside, d: d, peerOK: peerOK, callID: d.CallID()}
	if f := d.InviteRequest.From(); f != nil {
		l.localTag, _ = f.Params.Get("tag")
	}
	return l
}

// setAnswered marks the leg up; for a UAC leg it learns the remote tag
// from the 2xx.
func (l *leg) setAnswered() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.answered = true
	var res *sip.Response
	switch d := l.d.(type) {
	case *sipgo.DialogClientSession:
		res = d.InviteResponse
	case *trunkDialog:
		res = d.InviteResponse
	}
	if res != nil {
		if t := res.To(); t != nil {
			l.remoteTag, _ = t.Params.Get("tag")
		}
	}
}

func (l *leg) isAnswered() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.answered
}

// matches reports whether req belongs to this leg's dialog and comes from
// its peer: From carries the peer's tag, To ours (RFC 3261 §12.2.2), and
// the transport source is one the peer may use.
func (l *leg) matches(req *sip.Request, src netip.Addr) (tagsOK, sourceOK bool) {
	l.mu.Lock()
	local, remote := l.localTag, l.remoteTag
	l.mu.Unlock()
	var from, to string
	if f := req.From(); f != nil && f.Params != nil {
		from, _ = f.Params.Get("tag")
	}
	if t := req.To(); t != nil && t.Params != nil {
		to, _ = t.Params.Get("tag")
	}
	tagsOK = remote != "" && local != "" && from == remote && to == local
	sourceOK = src.IsValid() && l.peerOK != nil && l.peerOK(src)
	return tagsOK, sourceOK
}

// hangup sends BYE on an answered leg (once) and notes the outcome; an
// unanswered UAC leg is cancelled by its ring context instead.
func (l *leg) hangup(ctx context.Context, log *slog.Logger, hdrs ...sip.Header) {
	l.mu.Lock()
	if !l.answered || l.byeSent || l.peerBye {
		l.mu.Unlock()
		return
	}
	l.byeSent = true
	l.mu.Unlock()
	err := byeWith(ctx, l.d, hdrs...)
	if err != nil {
		log.Debug("bye failed", "leg", l.callID, "err", err)
	}
	l.mu.Lock()
	l.byeErr = err
	l.mu.Unlock()
}

// peerHungUp notes a BYE from the peer.
func (l *leg) peerHungUp() {
	l.mu.Lock()
	l.peerBye = true
	l.mu.Unlock()
}

// leaked reports whether an answered leg may still be up: neither side
// hung it up successfully.
func (l *leg) leaked() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.answered || l.peerBye {
		return false
	}
	return !l.byeSent || l.byeErr != nil
}

func (l *leg) errText() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.byeErr != nil:
		return l.byeErr.Error()
	case !l.byeSent:
		return "never hung up"
	}
	return ""
}

// hostIs accepts one host.
func hostIs(a netip.Addr) func(netip.Addr) bool {
	a = a.Unmap()
	return func(h netip.Addr) bool { return a.IsValid() && h.Unmap() == a }
}

// legOf finds which of c's legs req belongs to, checking tags and source.
// It returns a refusal reason when the Call-ID is the call's but the
// request is not from that leg's peer.
func (c *call) legOf(req *sip.Request) (*leg, error) {
	id := req.CallID()
	if id == nil {
		return nil, errNoDialog
	}
	c.mu.Lock()
	legs := c.legs
	c.mu.Unlock()
	src, _ := c.b.s.RequestHost(req)
	for _, l := range legs {
		if l.callID != id.Value() {
			continue
		}
		tagsOK, srcOK := l.matches(req, src)
		switch {
		case tagsOK && srcOK:
			return l, nil
		case !srcOK:
			return nil, errWrongSource
		default:
			continue // another leg may share the Call-ID (forking); else 481
		}
	}
	return nil, errNoDialog
}

var (
	errNoDialog    = errors.New("no such dialog")
	errWrongSource = errors.New("in-dialog request from a host that is not the dialog's peer")
)

// redial follows a new INVITE of a leg not yet answered (a retry after 422
// Session Interval Too Small): same Call-ID and local tag, a new
// transaction and dialog session.
func (l *leg) redial(cs *sipgo.DialogClientSession) {
	l.mu.Lock()
	l.d = cs
	l.mu.Unlock()
}

// phoneINVITE builds the INVITEs of a leg toward a phone Plateau rings
// (operator, supervisor). A retry keeps the Call-ID and From tag and
// takes the next CSeq (RFC 3261 §8.1.3.5, RFC 4028 §7.4), so the leg's
// Call-ID registered with the call stays right.
type phoneINVITE struct {
	target sip.Uri
	from   sip.FromHeader
	to     sip.ToHeader
	callID sip.CallIDHeader
	seq    uint32
}

func phoneInvite(target sip.Uri, fromName, fromUser, toUser, host string) *phoneINVITE {
	p := &phoneINVITE{
		target: target,
		from:   sip.FromHeader{DisplayName: fromName, Address: sip.Uri{Scheme: "sip", User: fromUser, Host: host}, Params: sip.NewParams()},
		to:     sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: toUser, Host: host}},
		callID: sip.CallIDHeader(uuid.NewString()),
	}
	p.from.Params.Add("tag", sip.GenerateTagN(16))
	return p
}

// next is the next INVITE, with body and a session timer offer of interval.
func (p *phoneINVITE) next(body []byte, interval time.Duration) *sip.Request {
	p.seq++
	req := sip.NewRequest(sip.INVITE, *p.target.Clone())
	req.AppendHeader(sip.HeaderClone(&p.from))
	req.AppendHeader(sip.HeaderClone(&p.to))
	id := p.callID
	req.AppendHeader(&id)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: p.seq, MethodName: sip.INVITE})
	offerSessionTimer(req, interval)
	req.SetBody(body)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	return req
}
