package b2bua

import (
	"context"
	"errors"
	"fmt"
	"time"

	"plateau/policy"
	psip "plateau/sip"
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

// ClickToCall is the entry point of a call placed from the operator
// console: the pipeline rings the operator's registered phone (with
// auto-answer headers, only toward that validated binding), then dials
// the number through the same policy, recording and trunk path as a call
// dialled from the phone. It returns the call id once the operator's phone
// answered; onOutcome reports the outside leg.
func (b *B2BUA) ClickToCall(ctx context.Context, r ClickToCallRequest, onOutcome func(Outcome)) (string, error) {
	if b == nil {
		return "", ErrCallsDisabled
	}
	contacts := b.s.Contacts(r.Operator)
	if len(contacts) == 0 && !b.s.Draining() {
		return "", fmt.Errorf("%w: %s", ErrNotRegistered, r.Operator)
	}
	var bnd psip.Binding
	if len(contacts) > 0 {
		bnd = contacts[0]
	}
	c, err := b.place(&callSpec{
		kind: policy.KindClickToCall, operator: r.Operator, number: r.Number, campaign: r.Campaign, source: r.Source,
		binding: bnd, autoAnswer: true, ringCtx: ctx, async: true, onOutcome: onOutcome,
	})
	var ref *Refusal
	if errors.As(err, &ref) {
		e164, _ := policy.Normalize(r.Number, b.region)
		return "", &RefusedError{ref.decision(e164)}
	}
	if err != nil {
		if errors.Is(err, ErrNoAnswer) {
			return "", err
		}
		return "", fmt.Errorf("%w: %v", ErrNoAnswer, err)
	}
	return c.id, nil
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
func (b *B2BUA) Calls() []CallInfo {
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
func (b *B2BUA) Hangup(callID, operator string) error {
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
