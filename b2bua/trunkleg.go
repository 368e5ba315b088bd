package b2bua

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	psip "plateau/sip"
)

// The trunk leg is Plateau's UAC side toward a carrier. sipgo's
// DialogClientSession.WaitAnswer gives up after 10 responses of any kind
// (a carrier repeating 180, or retransmitting a reliable 183, reaches that
// within seconds) and then neither CANCELs nor ACKs: the called party may
// pick up a call nobody records. So Plateau reads the INVITE client
// transaction itself: any number of provisionals, PRACK for reliable ones
// (RFC 3262), one digest retry, 421 answered when we can, CANCEL on every
// give-up after a provisional, and ACK then BYE for a 2xx that arrives after
// Plateau gave up. A forking carrier or proxy may answer with more than one
// 2xx (different To tags): only the first is the call; each other one is
// acknowledged and hung up at once (RFC 3261 §13.2.2.4), audited, so a
// second called party never stays on an unrecorded line.

const (
	// trunkAllow lists the methods Plateau handles in a trunk dialog.
	trunkAllow = "INVITE, ACK, CANCEL, BYE, OPTIONS, PRACK, UPDATE, REFER, INFO, NOTIFY"
	// maxRequireRetries bounds the 421 loop: each retry may only add
	// extensions, so two are enough for the two we know.
	maxRequireRetries = 2
)

// trunkExtensions are the option tags (RFC 3261 §20.37) the trunk leg
// implements; the INVITE's Supported header lists them and a 421 may only
// require these. timer: session timers as refresher or refreshee
// (sessiontimer.go).
var trunkExtensions = []string{"100rel", "timer"}

// No User-Agent or Server header leaves Plateau: sipgo.WithUserAgent only
// names the default From, and the trunk leg adds none, so a carrier or a
// scanner cannot fingerprint the software or its version.

// TrunkLegError is a trunk leg that did not connect. Status is the SIP
// status that explains it: the carrier's final response, 408 for a ring
// timeout, 487 when Plateau's side cancelled, 0 when the carrier said
// nothing at all (the caller fails over).
type TrunkLegError struct {
	Status int
	Reason string // short code for logs and audit, e.g. EXTENSION_REQUIRED
	Err    error
}

func (e *TrunkLegError) Error() string {
	s := "trunk leg"
	if e.Status != 0 {
		s += " " + strconv.Itoa(e.Status)
	}
	if e.Reason != "" {
		s += " " + e.Reason
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *TrunkLegError) Unwrap() error { return e.Err }

// trunkLegOptions shape one trunk INVITE.
type trunkLegOptions struct {
	Username, Password string
	RingTimeout        time.Duration // answer within this, or CANCEL
	SilenceTimeout     time.Duration // no response at all within this: give up
	OnProvisional      func(*sip.Response)
	// OnLateAnswer is told of a 2xx that arrived after Plateau gave up;
	// it has been acknowledged and is being hung up.
	OnLateAnswer func(*sip.Response)
	// OnForkAnswer is told of a 2xx from another fork (another To tag)
	// than the answer taken, once acknowledged and hung up: byeErr says
	// whether the BYE was accepted.
	OnForkAnswer func(res *sip.Response, byeErr error)
	// Go runs the background work that finishes a given-up INVITE (wait
	// for 487 or a late 2xx); the b2bua tracks it in its WaitGroup.
	Go func(func())
	// Stop ends background work early (shutdown).
	Stop <-chan struct{}
	Log  *slog.Logger
	// Event counts what the leg did (prack, cancel, late_answer, ...).
	Event func(event string)
	// TargetOK says whether a host may receive the dialog's requests
	// (the trunk's addresses and allowed sources); a response naming
	// another one (Contact, first Record-Route) is not followed: the
	// dialog keeps the INVITE's destination and OnTargetRefused is told.
	TargetOK        func(netip.Addr) bool
	OnTargetRefused func(detail string)
	// OnTLSRefused is told when the INVITE could not leave because the
	// TLS connection to the carrier was refused (its certificate): nothing
	// was sent, in clear or otherwise.
	OnTLSRefused func(err error)
}

// bounded is a context for background work: it ends after d or at Stop.
func (o trunkLegOptions) bounded(d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	if o.Stop != nil {
		go func() {
			select {
			case <-o.Stop:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	return ctx, cancel
}

// trunkDialog is the trunk leg's dialog once answered (RFC 3261 §12.1.2):
// the call's outside leg. Its fields mirror sipgo's DialogClientSession so
// that call control reads InviteRequest and InviteResponse alike.
type trunkDialog struct {
	client  *sipgo.Client
	contact sip.ContactHeader

	InviteRequest  *sip.Request
	InviteResponse *sip.Response

	mu         sync.Mutex
	localCSeq  uint32
	remoteCSeq uint32
	target     sip.Uri  // the peer's Contact
	routes     []string // Route values, from Record-Route reversed
	toTag      string
	// A copy of the INVITE's dialog headers as last sent: a PRACK goes
	// out on its own goroutine while the INVITE may be re-sent (digest).
	inv *sip.Request

	// targetOK checks where a response would send the dialog's requests.
	targetOK        func(netip.Addr) bool
	onTargetRefused func(string)
	ctx             context.Context
	cancel          context.CancelFunc
	byeOnce         sync.Once
}

func newTrunkDialog(client *sipgo.Client, contact sip.ContactHeader, invite *sip.Request) *trunkDialog {
	ctx, cancel := context.WithCancel(context.Background())
	d := &trunkDialog{client: client, contact: contact, InviteRequest: invite, ctx: ctx, cancel: cancel}
	if cs := invite.CSeq(); cs != nil {
		d.localCSeq = cs.SeqNo
	}
	return d
}

// Context ends when the dialog ends (BYE either way).
func (d *trunkDialog) Context() context.Context { return d.ctx }

// CallID is the leg's Call-ID.
func (d *trunkDialog) CallID() string { return d.InviteRequest.CallID().Value() }

// ReadBye answers the carrier's BYE and ends the dialog. The INVITE
// transaction is left to end at Timer M (RFC 6026): a forked 2xx may
// still come, and is then acknowledged and hung up.
func (d *trunkDialog) ReadBye(req *sip.Request, tx sip.ServerTransaction) error {
	d.cancel()
	return tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
}

// ReadRequest checks an in-dialog request's CSeq (RFC 3261 §12.2.2): a
// lower one than the last is out of order.
func (d *trunkDialog) ReadRequest(req *sip.Request, tx sip.ServerTransaction) error {
	cs := req.CSeq()
	if cs == nil {
		return sipgo.ErrDialogInvalidCseq
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if cs.SeqNo < d.remoteCSeq {
		return sipgo.ErrDialogInvalidCseq
	}
	d.remoteCSeq = cs.SeqNo
	return nil
}

// Bye hangs up the answered leg once; later calls are no-ops.
func (d *trunkDialog) Bye(ctx context.Context) error { return d.bye(ctx) }

func (d *trunkDialog) bye(ctx context.Context, hdrs ...sip.Header) error {
	if d.ctx.Err() != nil {
		return nil
	}
	var err error
	d.byeOnce.Do(func() {
		defer d.cancel() // the INVITE transaction ends at Timer M (ReadBye)
		var res *sip.Response
		req := sip.NewRequest(sip.BYE, sip.Uri{})
		for _, h := range hdrs {
			req.AppendHeader(h)
		}
		res, err = d.Do(ctx, req)
		if err == nil && res.StatusCode >= 300 {
			err = fmt.Errorf("BYE answered %d", res.StatusCode)
		}
	})
	return err
}

// Do sends an in-dialog request (BYE, re-INVITE, UPDATE, NOTIFY) built
// from the dialog state, and returns its final response.
func (d *trunkDialog) Do(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	d.build(req)
	tx, err := d.client.TransactionRequest(ctx, req, sipgo.ClientRequestAddVia)
	if err != nil {
		return nil, err
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			return res, nil
		case <-tx.Done():
			return nil, fmt.Errorf("%s: %w", req.Method, tx.Err())
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// build fills an in-dialog request's dialog headers (RFC 3261 §12.2.1.1):
// remote target, route set, tags, the next local CSeq.
func (d *trunkDialog) build(req *sip.Request) {
	d.mu.Lock()
	target, routes, toTag, inv := d.target, d.routes, d.toTag, d.inv
	if !req.IsAck() && !req.IsCancel() {
		d.localCSeq++
	}
	seq := d.localCSeq
	d.mu.Unlock()
	req.Recipient = *target.Clone()
	req.SipVersion = inv.SipVersion
	if req.From() == nil {
		req.AppendHeader(sip.HeaderClone(inv.From()))
	}
	if req.To() == nil {
		to := sip.HeaderClone(inv.To()).(*sip.ToHeader)
		if to.Params == nil {
			to.Params = sip.NewParams()
		}
		to.Params.Remove("tag")
		if toTag != "" {
			to.Params.Add("tag", toTag)
		}
		req.AppendHeader(to)
	}
	if req.CallID() == nil {
		req.AppendHeader(sip.HeaderClone(inv.CallID()))
	}
	if req.CSeq() == nil {
		req.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: req.Method})
	}
	if req.MaxForwards() == nil {
		mf := sip.MaxForwardsHeader(70)
		req.AppendHeader(&mf)
	}
	for _, r := range routes {
		req.AppendHeader(sip.NewHeader("Route", r))
	}
	if req.Contact() == nil && !req.IsAck() {
		req.AppendHeader(sip.HeaderClone(&d.contact))
	}
	if req.Body() == nil {
		req.SetBody(nil) // Content-Length: 0, required on TCP
	}
	req.SetTransport(inv.Transport())
	req.Laddr = inv.Laddr // the INVITE's local address, as sipgo's ACK does
}

// learn takes the dialog's remote target, route set and To tag from a
// response that creates or confirms it (a reliable 1xx, the 2xx).
func (d *trunkDialog) learn(res *sip.Response) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.target = d.InviteRequest.Recipient
	if ct := res.Contact(); ct != nil {
		d.target = *ct.Address.Clone()
	}
	rr := res.GetHeaders("Record-Route")
	d.routes = make([]string, 0, len(rr)) // build may still read the old slice
	for i := len(rr) - 1; i >= 0; i-- {
		d.routes = append(d.routes, rr[i].Value())
	}
	if to := res.To(); to != nil && to.Params != nil {
		d.toTag, _ = to.Params.Get("tag")
	}
	if why := d.badTarget(); why != "" { // targetguard.go
		d.target, d.routes = d.InviteRequest.Recipient, nil
		if d.onTargetRefused != nil {
			d.onTargetRefused(why)
		}
	}
}

// dialTrunkLeg sends invite (a complete INVITE: From with tag, To,
// Contact, SDP) and handles its client transaction until the carrier
// answers, refuses, or Plateau gives up. On answer the 2xx is
// acknowledged and the dialog returned; otherwise the error is a
// *TrunkLegError.
func dialTrunkLeg(ctx context.Context, client *sipgo.Client, contact sip.ContactHeader, invite *sip.Request, o trunkLegOptions) (*trunkDialog, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Event == nil {
		o.Event = func(string) {}
	}
	if o.Go == nil {
		o.Go = func(f func()) { go f() }
	}
	if invite.Contact() == nil {
		invite.AppendHeader(sip.HeaderClone(&contact))
	}
	setHeader(invite, "Supported", strings.Join(trunkExtensions, ", "))
	setHeader(invite, "Allow", trunkAllow)
	d := newTrunkDialog(client, contact, invite)
	d.targetOK, d.onTargetRefused = o.TargetOK, o.OnTargetRefused
	l := &legRun{d: d, o: o, lastRSeq: -1, accepted: make(chan struct{})}
	return l.run(ctx)
}

// legRun is one trunk INVITE in progress.
type legRun struct {
	d          *trunkDialog
	o          trunkLegOptions
	tx         sip.ClientTransaction
	heard      bool // any response, even 100: the carrier is there
	provisonal bool // a 1xx other than 100: CANCEL is allowed (RFC 3261 §9.1)
	lastRSeq   int64
	authTried  bool
	required   int // 421 retries

	// The 2xx taken: its To tag and ACK, set by ack, which then closes
	// accepted; forks are the other forks' answers (another2xx).
	fmu         sync.Mutex
	acceptedTag string
	acceptedAck *sip.Request
	forks       map[string]*forkedAnswer // by To tag
	accepted    chan struct{}
	acceptOnce  sync.Once
}

func (l *legRun) send(ctx context.Context) error {
	inv := l.d.InviteRequest
	inv.RemoveHeader("Via")
	tx, err := l.d.client.TransactionRequest(ctx, inv)
	if err != nil {
		return err
	}
	l.tx = tx
	// Every 2xx after the first one (retransmissions, other forks) comes
	// here, not on Responses (RFC 6026 Accepted state).
	tx.OnRetransmission(l.another2xx)
	sent := inv.Clone() // with the Laddr the transport chose
	l.d.mu.Lock()
	l.d.inv = sent
	if cs := inv.CSeq(); cs != nil && cs.SeqNo > l.d.localCSeq {
		l.d.localCSeq = cs.SeqNo
	}
	l.d.mu.Unlock()
	return nil
}

func (l *legRun) run(ctx context.Context) (*trunkDialog, error) {
	if err := l.send(ctx); err != nil {
		if errors.Is(err, psip.ErrTLS) {
			l.o.Event("tls_refused")
			if l.o.OnTLSRefused != nil {
				l.o.OnTLSRefused(err)
			}
			return nil, &TrunkLegError{Status: 0, Reason: "TLS_FAILED", Err: err}
		}
		return nil, &TrunkLegError{Status: 0, Reason: "SEND_FAILED", Err: err}
	}
	ring := time.NewTimer(l.o.RingTimeout)
	defer ring.Stop()
	var silence <-chan time.Time
	if l.o.SilenceTimeout > 0 {
		st := time.NewTimer(l.o.SilenceTimeout)
		defer st.Stop()
		silence = st.C
	}
	for {
		select {
		case res := <-l.tx.Responses():
			d, err, done := l.handle(ctx, res)
			if done {
				return d, err
			}
		case <-l.tx.Done():
			// Timer B or a transport error: nothing more will come.
			if !l.heard {
				return nil, &TrunkLegError{Reason: "NO_RESPONSE", Err: l.tx.Err()}
			}
			return nil, &TrunkLegError{Status: sip.StatusRequestTimeout, Reason: "TRANSACTION_ENDED", Err: l.tx.Err()}
		case <-silence:
			silence = nil
			if !l.heard {
				l.giveUp("silence")
				return nil, &TrunkLegError{Reason: "NO_RESPONSE", Err: errors.New("the carrier sent no response")}
			}
		case <-ring.C:
			l.giveUp("ring_timeout")
			return nil, &TrunkLegError{Status: sip.StatusRequestTimeout, Reason: "RING_TIMEOUT", Err: errors.New("no answer before the ring timeout")}
		case <-ctx.Done():
			l.giveUp("cancelled")
			return nil, &TrunkLegError{Status: sip.StatusRequestTerminated, Reason: "CANCELLED", Err: ctx.Err()}
		}
	}
}

// handle processes one response; done says the INVITE has an outcome.
func (l *legRun) handle(ctx context.Context, res *sip.Response) (*trunkDialog, error, bool) {
	l.heard = true
	switch {
	case res.IsProvisional():
		if res.StatusCode == sip.StatusTrying {
			return nil, nil, false
		}
		l.provisonal = true
		if l.reliable(res) {
			if !l.prack(ctx, res) {
				return nil, nil, false // a retransmission or out of order: not relayed again
			}
		}
		if l.o.OnProvisional != nil {
			l.o.OnProvisional(res)
		}
		return nil, nil, false
	case res.IsSuccess():
		d := l.d
		d.InviteResponse = res
		d.learn(res)
		if err := l.ack(res); err != nil {
			l.o.Log.Warn("ack trunk", "err", err)
		}
		return d, nil, true
	}
	switch res.StatusCode {
	case sip.StatusUnauthorized, sip.StatusProxyAuthRequired:
		if l.authTried || l.o.Password == "" {
			return nil, &TrunkLegError{Status: int(res.StatusCode), Reason: "AUTH_FAILED", Err: errors.New("the carrier refused the trunk credentials")}, true
		}
		l.authTried = true
		if err := l.authorize(res); err != nil {
			return nil, &TrunkLegError{Status: int(res.StatusCode), Reason: "AUTH_FAILED", Err: err}, true
		}
		l.o.Event("auth_retry")
		return l.resend(ctx)
	case sip.StatusExtensionRequired:
		missing, unsupported := l.requiredByPeer(res)
		if len(unsupported) > 0 || len(missing) == 0 || l.required >= maxRequireRetries {
			return nil, &TrunkLegError{Status: int(res.StatusCode), Reason: "EXTENSION_REQUIRED",
				Err: fmt.Errorf("the carrier requires %q, which Plateau does not support", strings.Join(unsupported, ", "))}, true
		}
		l.required++
		req := l.d.InviteRequest
		have := headerValues(req, "Require")
		req.RemoveHeader("Require")
		req.AppendHeader(sip.NewHeader("Require", strings.Join(append(have, missing...), ", ")))
		l.o.Event("extension_retry")
		return l.resend(ctx)
	}
	return nil, &TrunkLegError{Status: int(res.StatusCode), Reason: "REFUSED", Err: fmt.Errorf("the carrier answered %d %s", res.StatusCode, res.Reason)}, true
}

// resend sends the INVITE again as a new transaction, with a higher CSeq
// (RFC 3261 §8.1.3.5, §22.2).
func (l *legRun) resend(ctx context.Context) (*trunkDialog, error, bool) {
	if cs := l.d.InviteRequest.CSeq(); cs != nil {
		l.d.mu.Lock()
		cs.SeqNo = max(cs.SeqNo, l.d.localCSeq) + 1 // above any PRACK sent meanwhile
		l.d.mu.Unlock()
	}
	l.heard, l.provisonal, l.lastRSeq = false, false, -1
	if err := l.send(ctx); err != nil {
		return nil, &TrunkLegError{Reason: "SEND_FAILED", Err: err}, true
	}
	return nil, nil, false
}

func (l *legRun) authorize(res *sip.Response) error {
	req := l.d.InviteRequest
	h, err := digestAnswer(res, sip.INVITE, req.Recipient.Addr(), l.o.Username, l.o.Password)
	if err != nil {
		return err
	}
	req.RemoveHeader(h.Name())
	req.AppendHeader(h)
	return nil
}

// requiredByPeer splits a 421's Require into the extensions we support and
// have not yet required, and those we do not support.
func (l *legRun) requiredByPeer(res *sip.Response) (missing, unsupported []string) {
	have := map[string]bool{}
	for _, v := range headerValues(l.d.InviteRequest, "Require") {
		have[strings.ToLower(v)] = true
	}
	for _, v := range responseHeaderValues(res, "Require") {
		tag := strings.ToLower(v)
		switch {
		case !isTrunkExtension(tag):
			unsupported = append(unsupported, v)
		case !have[tag]:
			missing = append(missing, tag)
		}
	}
	return missing, unsupported
}

func isTrunkExtension(tag string) bool {
	for _, e := range trunkExtensions {
		if e == tag {
			return true
		}
	}
	return false
}

// reliable reports a reliable provisional (RFC 3262 §4): Require: 100rel
// and an RSeq.
func (l *legRun) reliable(res *sip.Response) bool {
	if res.GetHeader("RSeq") == nil {
		return false
	}
	for _, v := range responseHeaderValues(res, "Require") {
		if strings.EqualFold(v, "100rel") {
			return true
		}
	}
	return false
}

// prack acknowledges a reliable provisional. It reports whether the
// response is new: a retransmission (same RSeq) or one out of order is
// not processed again (RFC 3262 §4); the PRACK's own transaction
// retransmits on UDP.
func (l *legRun) prack(ctx context.Context, res *sip.Response) bool {
	rseq, err := strconv.ParseUint(strings.TrimSpace(res.GetHeader("RSeq").Value()), 10, 32)
	if err != nil {
		l.o.Log.Info("reliable provisional with a bad RSeq ignored", "rseq", res.GetHeader("RSeq").Value())
		return false
	}
	if !rseqInOrder(l.lastRSeq, rseq) {
		return false
	}
	l.lastRSeq = int64(rseq)
	d := l.d
	d.learn(res) // the early dialog: PRACK goes to the 1xx's Contact and route set
	req := sip.NewRequest(sip.PRACK, sip.Uri{})
	req.AppendHeader(sip.NewHeader("RAck", fmt.Sprintf("%d %d INVITE", rseq, d.InviteRequest.CSeq().SeqNo)))
	// The PRACK's answer is not waited for here: responses to the INVITE
	// keep coming meanwhile, and a lost PRACK only makes the carrier
	// retransmit the 1xx.
	l.o.Event("prack")
	l.o.Go(func() {
		pctx, cancel := l.o.bounded(32 * time.Second)
		defer cancel()
		pres, err := d.Do(pctx, req)
		switch {
		case err != nil:
			l.o.Log.Info("PRACK failed", "err", err)
		case pres.StatusCode >= 300:
			l.o.Log.Info("PRACK refused", "status", pres.StatusCode)
		}
	})
	return true
}

// rseqInOrder applies RFC 3262 §4: the first reliable provisional may
// carry any RSeq, each later one must be exactly one higher; anything else
// (a retransmission, one out of order) is not processed.
func rseqInOrder(last int64, rseq uint64) bool {
	return last < 0 || int64(rseq) == last+1
}

// ack acknowledges the 2xx taken, directly on the transport (RFC 3261
// §13.2.2.4); another2xx sends the ACK again for each retransmission.
func (l *legRun) ack(res *sip.Response) error {
	tmpl, err := l.d.writeAck()
	l.fmu.Lock()
	l.acceptedTag, l.acceptedAck = toTagOf(res), tmpl
	l.fmu.Unlock()
	l.acceptOnce.Do(func() { close(l.accepted) })
	return err
}

// writeAck sends the ACK of d's 2xx and returns a copy to resend.
func (d *trunkDialog) writeAck() (*sip.Request, error) {
	ack := sip.NewRequest(sip.ACK, sip.Uri{})
	ack.AppendHeader(&sip.CSeqHeader{SeqNo: d.InviteRequest.CSeq().SeqNo, MethodName: sip.ACK})
	d.build(ack)
	ack.Laddr = d.InviteRequest.Laddr
	if err := sipgo.ClientRequestAddVia(d.client, ack); err != nil {
		return nil, err
	}
	tmpl := ack.Clone()
	return tmpl, d.client.WriteRequest(ack, func(*sipgo.Client, *sip.Request) error { return nil })
}

func (d *trunkDialog) resendAck(tmpl *sip.Request) {
	if tmpl != nil {
		d.client.WriteRequest(tmpl.Clone(), func(*sipgo.Client, *sip.Request) error { return nil })
	}
}

func toTagOf(res *sip.Response) string {
	if to := res.To(); to != nil && to.Params != nil {
		tag, _ := to.Params.Get("tag")
		return tag
	}
	return ""
}

// maxForks bounds the other forks' answers one INVITE may get: a hostile
// carrier sending 2xx after 2xx must not make Plateau start BYE after BYE.
const maxForks = 16

// forkedAnswer is a 2xx from another fork, once acknowledged.
type forkedAnswer struct {
	ack *sip.Request // nil until sent
}

// another2xx handles a 2xx after the one taken (sipgo passes those to the
// transaction's retransmission hook, on its own goroutine): the same To
// tag is a retransmission, answered with the same ACK; another To tag is
// another fork's answer, acknowledged and hung up at once.
func (l *legRun) another2xx(res *sip.Response) {
	if !res.IsSuccess() || !l.waitAccepted() {
		return
	}
	tag := toTagOf(res)
	l.fmu.Lock()
	if tag == l.acceptedTag {
		tmpl := l.acceptedAck
		l.fmu.Unlock()
		l.d.resendAck(tmpl)
		return
	}
	f, seen := l.forks[tag]
	full := !seen && len(l.forks) >= maxForks
	if !seen && !full {
		if l.forks == nil {
			l.forks = map[string]*forkedAnswer{}
		}
		f = &forkedAnswer{}
		l.forks[tag] = f
	}
	var tmpl *sip.Request
	if seen {
		tmpl = f.ack
	}
	l.fmu.Unlock()
	switch {
	case seen:
		l.d.resendAck(tmpl) // nil while the first ACK is being built
	case full:
		l.o.Log.Warn("more forked answers than Plateau hangs up: ignored", "max", maxForks)
	default:
		l.o.Go(func() { l.hangUpFork(res, f) })
	}
}

// waitAccepted waits until the 2xx taken has been acknowledged (sipgo may
// hand a second 2xx to the hook while the first is being handled).
func (l *legRun) waitAccepted() bool {
	select {
	case <-l.accepted:
		return true
	default:
	}
	t := time.NewTimer(32 * time.Second)
	defer t.Stop()
	select {
	case <-l.accepted:
		return true
	case <-l.o.Stop:
	case <-t.C:
	}
	return false
}

// hangUpFork acknowledges another fork's 2xx in its own dialog (its To
// tag, Contact and route set) and sends BYE in that dialog.
func (l *legRun) hangUpFork(res *sip.Response, f *forkedAnswer) {
	d := l.d
	fd := newTrunkDialog(d.client, d.contact, d.InviteRequest)
	fd.targetOK, fd.onTargetRefused = d.targetOK, d.onTargetRefused
	d.mu.Lock()
	fd.inv = d.inv
	d.mu.Unlock()
	fd.InviteResponse = res
	fd.learn(res)
	tmpl, err := fd.writeAck()
	if err != nil {
		l.o.Log.Warn("ack forked answer", "err", err)
	}
	l.fmu.Lock()
	f.ack = tmpl
	l.fmu.Unlock()
	l.o.Event("fork_answer")
	ctx, cancel := l.o.bounded(32 * time.Second)
	defer cancel()
	byeErr := fd.Bye(ctx)
	if byeErr != nil {
		l.o.Log.Warn("bye forked answer", "err", byeErr)
	}
	l.o.Log.Warn("another fork answered: acknowledged and hung up", "to_tag", toTagOf(res), "bye_err", byeErr)
	if l.o.OnForkAnswer != nil {
		l.o.OnForkAnswer(res, byeErr)
	}
}

// giveUp ends an INVITE Plateau no longer wants. After a provisional it
// sends CANCEL (RFC 3261 §9.1); in every case it keeps reading the
// transaction in the background until its final response, so that a 2xx
// racing the CANCEL (or arriving after silence) is acknowledged and hung
// up rather than left ringing into an unrecorded call.
func (l *legRun) giveUp(why string) {
	tx, d, o := l.tx, l.d, l.o
	var once sync.Once
	cancel := func() {
		once.Do(func() {
			o.Event("cancel")
			cctx, stop := o.bounded(32 * time.Second)
			defer stop()
			res, err := d.client.Do(cctx, newCancel(d.InviteRequest), func(*sipgo.Client, *sip.Request) error { return nil })
			switch {
			case err != nil:
				o.Log.Info("CANCEL failed", "err", err)
			case res.StatusCode != sip.StatusOK:
				o.Log.Info("CANCEL refused", "status", res.StatusCode)
			}
		})
	}
	provisional := l.provisonal
	o.Log.Info("trunk INVITE given up", "why", why, "provisional", provisional)
	o.Go(func() {
		answered := false
		defer func() {
			if !answered { // an accepted INVITE ends at Timer M: forks may follow
				tx.Terminate()
			}
		}()
		var wg sync.WaitGroup
		defer wg.Wait()
		sendCancel := func() {
			wg.Add(1)
			go func() { defer wg.Done(); cancel() }()
		}
		if provisional {
			sendCancel()
		}
		// 64*T1 after the CANCEL a UAS that never answers 487 is given up
		// on (RFC 3261 §9.1).
		limit := time.NewTimer(64 * sip.T1)
		defer limit.Stop()
		for {
			select {
			case res := <-tx.Responses():
				switch {
				case res.IsProvisional():
					if res.StatusCode != sip.StatusTrying {
						sendCancel() // once only, whatever the count
					}
				case res.IsSuccess():
					answered = true
					l.lateAnswer(res)
					return
				default:
					return // 487 or any final refusal: done
				}
			case <-tx.Done():
				return
			case <-limit.C:
				return
			case <-o.Stop:
				return
			}
		}
	})
}

// lateAnswer acknowledges a 2xx that came after Plateau gave up and hangs
// it up at once: the called party must not stay on an unrecorded line.
func (l *legRun) lateAnswer(res *sip.Response) {
	d := l.d
	d.InviteResponse = res
	d.learn(res)
	if err := l.ack(res); err != nil {
		l.o.Log.Warn("ack late answer", "err", err)
	}
	l.o.Event("late_answer")
	if l.o.OnLateAnswer != nil {
		l.o.OnLateAnswer(res)
	}
	ctx, cancel := l.o.bounded(32 * time.Second)
	defer cancel()
	if err := d.Bye(ctx); err != nil {
		l.o.Log.Warn("bye late answer", "err", err)
	}
}

// newCancel builds a CANCEL for invite (RFC 3261 §9.1): same Request-URI,
// top Via, From, To, Call-ID and CSeq number, and Route.
func newCancel(invite *sip.Request) *sip.Request {
	c := sip.NewRequest(sip.CANCEL, *invite.Recipient.Clone())
	c.SipVersion = invite.SipVersion
	c.AppendHeader(sip.HeaderClone(invite.Via()))
	mf := sip.MaxForwardsHeader(70)
	c.AppendHeader(&mf)
	c.AppendHeader(sip.HeaderClone(invite.From()))
	c.AppendHeader(sip.HeaderClone(invite.To()))
	c.AppendHeader(sip.HeaderClone(invite.CallID()))
	c.AppendHeader(&sip.CSeqHeader{SeqNo: invite.CSeq().SeqNo, MethodName: sip.CANCEL})
	sip.CopyHeaders("Route", invite, c)
	c.SetBody(nil)
	c.SetTransport(invite.Transport())
	c.SetSource(invite.Source())
	c.SetDestination(invite.Destination())
	c.Laddr = invite.Laddr
	return c
}

// setHeader replaces every header name of req with one value.
func setHeader(req *sip.Request, name, value string) {
	req.RemoveHeader(name)
	req.AppendHeader(sip.NewHeader(name, value))
}

func responseHeaderValues(res *sip.Response, name string) []string {
	return splitValues(res.GetHeaders(name))
}

// trunkLegOptions wires a trunk INVITE of call c to the b2bua: ring and
// silence timeouts, the trunk's credentials, metrics, and the audit of a
// late answer.
func (b *B2BUA) trunkLegOptions(c *call, t *psip.Trunk, onProvisional func(*sip.Response)) trunkLegOptions {
	ring := t.RingTimeout
	if ring <= 0 {
		ring = b.opts.RingTimeout
	}
	return trunkLegOptions{
		Username: t.Username, Password: t.Password,
		RingTimeout: ring, SilenceTimeout: b.opts.TrunkTimeout,
		OnProvisional: onProvisional,
		OnLateAnswer: func(res *sip.Response) {
			c.log.Warn("answer after Plateau gave up: acknowledged and hung up", "trunk", t.Name)
			b.s.Audit(context.WithoutCancel(c.ctx), "call.late_answer", c.operator, c.number, "hung_up", "ANSWERED_AFTER_GIVE_UP", c.source,
				map[string]any{"call_id": c.id, "trunk": t.Name, "sip_call_id": res.CallID().Value()})
		},
		OnForkAnswer: func(res *sip.Response, byeErr error) {
			// A second called party answered the same INVITE (a forking
			// carrier or proxy): never bridged nor recorded, hung up.
			outcome, details := "hung_up", map[string]any{"call_id": c.id, "trunk": t.Name, "sip_call_id": res.CallID().Value(), "to_tag": toTagOf(res)}
			if byeErr != nil {
				outcome, details["err"] = "leaked", byeErr.Error()
				b.metrics.legsLeaked.Inc()
			}
			b.s.Audit(context.WithoutCancel(c.ctx), "call.fork_answer", c.operator, c.number, outcome, "FORKED_ANSWER", c.source, details)
		},
		Go: func(f func()) {
			b.wg.Add(1)
			go func() { defer b.wg.Done(); f() }()
		},
		Stop:     b.s.Context().Done(),
		Log:      c.log.With("leg", "trunk", "trunk", t.Name),
		Event:    func(e string) { b.metrics.trunkLegEvents.WithLabelValues(e).Inc() },
		TargetOK: b.trunkPeer(t, trunkAddr(t)),
		OnTargetRefused: func(detail string) {
			b.egressRefused(c, "trunk "+t.Name, "carrier's dialog target not followed: "+detail)
		},
		OnTLSRefused: func(err error) {
			c.log.Warn("trunk TLS refused: the call does not leave", "trunk", t.Name, "err", err)
			b.s.Audit(context.WithoutCancel(c.ctx), "trunk.tls_refused", c.operator, t.Name, "refused", "TLS_FAILED", c.source,
				map[string]any{"call_id": c.id, "trunk": t.Name, "detail": err.Error()})
		},
	}
}

// trunkFailureHeaders explains to the operator's phone a trunk failure
// that its status alone would hide: a carrier requiring an extension
// Plateau lacks answers the operator 503 with Reason
// SIP;cause=421;text="EXTENSION_REQUIRED" (and the log names it).
func trunkFailureHeaders(err error) []sip.Header {
	var le *TrunkLegError
	switch {
	case !errors.As(err, &le):
		return nil
	case le.Status == sip.StatusExtensionRequired:
		return []sip.Header{sip.NewHeader("Reason", `SIP;cause=421;text="`+le.Reason+`"`)}
	case le.Reason == "TLS_FAILED":
		// The carrier's certificate was refused: say so, the 503 alone
		// would read as a carrier outage.
		return []sip.Header{sip.NewHeader("Reason", `SIP;cause=503;text="TLS_FAILED"`)}
	}
	return nil
}
