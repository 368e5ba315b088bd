package sip

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/emiago/sipgo/sip"

	"plateau/policy"
)

// Errors of the call-control API used by the web and the dialer.
var (
	ErrRefused       = errors.New("call refused by policy")
	ErrNotRegistered = errors.New("operator phone not registered")
	ErrNoAnswer      = errors.New("operator phone did not answer")
	ErrCallsDisabled = errors.New("call control not enabled")
	ErrNoSuchCall    = errors.New("no such call in progress")
)

// RefusedError carries the policy decision of a refused call.
type RefusedError struct{ Decision policy.Decision }

func (e *RefusedError) Error() string { return "refused: " + e.Decision.Reason }
func (e *RefusedError) Unwrap() error { return ErrRefused }

// ClickToCallRequest is a call placed from the operator console.
type ClickToCallRequest struct {
	Operator string
	Number   string
	Campaign string
	Source   string // the web client's address, for the audit log
}

// Outcome is how the outside leg of a call resolved.
type Outcome struct {
	CallID   string
	Answered bool
	Status   int    // final SIP status of the outside leg (200 when answered)
	Result   string // answered, busy, no_answer, failed, cancelled
}

// ClickToCall rings the operator's registered phone with auto-answer
// headers, then dials the number through the same policy, recording and
// trunk path as a call dialled from the phone. It returns the call id once
// the operator's phone answered; onOutcome reports the outside leg.
func (s *Server) ClickToCall(ctx context.Context, r ClickToCallRequest, onOutcome func(Outcome)) (string, error) {
	b := s.calls
	if b == nil {
		return "", ErrCallsDisabled
	}
	if s.draining.Load() {
		return "", &RefusedError{policy.Decision{Reason: "DRAINING", Rule: "request"}}
	}
	contacts := s.reg.contacts(r.Operator)
	if len(contacts) == 0 {
		return "", fmt.Errorf("%w: %s", ErrNotRegistered, r.Operator)
	}
	d := b.admit(policy.Request{Operator: r.Operator, Number: r.Number, Time: s.now(), Source: r.Source, Kind: policy.KindClickToCall, Campaign: r.Campaign})
	b.auditDecision(r.Operator, r.Number, r.Source, d)
	if !d.Allow {
		s.metrics.callsRefused.WithLabelValues(d.Reason).Inc()
		return "", &RefusedError{d}
	}
	s.metrics.callsActive.Inc()
	c := b.newCall(r.Operator, d.E164, r.Source)
	c.campaign = r.Campaign
	ok := false
	defer func() {
		if !ok {
			c.end("setup_failed")
		}
	}()
	rec, err := b.rec.Start(c.ctx, RecordingInfo{CallID: c.id, Operator: c.operator, Number: c.number, Campaign: r.Campaign, Start: c.start})
	if err != nil {
		d := policy.Decision{Reason: policy.ReasonRecorderUnavailable, Rule: "recorder", Detail: err.Error(), E164: c.number}
		b.auditDecision(r.Operator, r.Number, r.Source, d)
		return "", &RefusedError{d}
	}
	if _, err := b.newRelay(c, rec); err != nil {
		return "", err
	}
	self := sip.Uri{Scheme: "sip", User: r.Operator, Host: s.opts.ExternalAddress}
	cs, err := b.ringOperator(ctx, c, contacts[0], nil,
		sip.NewHeader("Call-Info", "<"+self.String()+">;answer-after=0"),
		sip.NewHeader("Alert-Info", "<http://"+s.opts.ExternalAddress+">;info=alert-autoanswer"))
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoAnswer, err)
	}
	c.mu.Lock()
	c.opLeg = cs
	c.mu.Unlock()
	ok = true
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		out := b.dialOutside(c, cs.Context())
		if onOutcome != nil {
			onOutcome(out)
		}
	}()
	return c.id, nil
}

// dialOutside completes a click-to-call once the operator is on the line.
func (b *b2bua) dialOutside(c *call, opCtx context.Context) Outcome {
	out := Outcome{CallID: c.id}
	cs, status, err := b.dialOut(opCtx, c, c.number, func(res *sip.Response) {
		if res.StatusCode == sip.StatusSessionInProgress {
			c.applyEarlyMedia(res)
		}
	})
	if err != nil {
		out.Status = status
		switch {
		case opCtx.Err() != nil:
			out.Result = "cancelled"
			c.end("operator_hangup")
		case status == sip.StatusBusyHere || status == 600:
			out.Result = "busy"
			c.end("busy")
		case status == sip.StatusRequestTimeout || status == sip.StatusTemporarilyUnavailable || status == sip.StatusRequestTerminated:
			out.Result = "no_answer"
			c.end("no_answer")
		default:
			out.Result = "failed"
			c.end("outside_failed")
		}
		return out
	}
	c.setOutside(cs, b.s.now())
	b.s.metrics.callsAnswered.Inc()
	b.rememberCaller(c.number, c.operator)
	out.Answered, out.Status, out.Result = true, sip.StatusOK, "answered"
	b.wg.Add(2)
	go c.supervise()
	go c.announce()
	return out
}

// CallInfo is a call in progress, for the supervisors' wallboard.
type CallInfo struct {
	ID       string    `json:"id"`
	Operator string    `json:"operator"`
	Number   string    `json:"number"`
	Campaign string    `json:"campaign,omitempty"`
	State    string    `json:"state"` // setup, connected
	Start    time.Time `json:"start"`
	Answered time.Time `json:"answered,omitempty"`
}

// Calls lists the calls in progress.
func (s *Server) Calls() []CallInfo {
	b := s.calls
	if b == nil {
		return nil
	}
	seen := map[*call]bool{}
	var out []CallInfo
	b.mu.Lock()
	for _, c := range b.calls {
		if seen[c] {
			continue
		}
		seen[c] = true
		c.mu.Lock()
		ci := CallInfo{ID: c.id, Operator: c.operator, Number: c.number, Campaign: c.campaign, State: "setup", Start: c.start, Answered: c.answered}
		if !c.answered.IsZero() {
			ci.State = "connected"
		}
		c.mu.Unlock()
		out = append(out, ci)
	}
	b.mu.Unlock()
	return out
}

// Hangup ends an operator's call in progress from the console: BYE on both
// legs, recording closed, audited as call.ended "console_hangup".
func (s *Server) Hangup(callID, operator string) error {
	b := s.calls
	if b == nil {
		return ErrCallsDisabled
	}
	b.mu.Lock()
	var found *call
	for _, c := range b.calls {
		if c.id == callID && c.operator == operator {
			found = c
			break
		}
	}
	b.mu.Unlock()
	if found == nil {
		return fmt.Errorf("%w: %s", ErrNoSuchCall, callID)
	}
	found.end("console_hangup")
	return nil
}
