// Package policy decides whether a call may be placed: operator status and
// role, number validity, do-not-call list, allowlist, time windows,
// concurrency limits and recorder readiness, in that order.
//
// The rules do no I/O of their own: every fact comes through the small
// interfaces in Deps, declared here by their consumer, so that Decide is
// testable at 07:29:59 and 07:30:00 with fakes. Any lookup error denies the
// call (fail closed) with POLICY_ERROR.
package policy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"plateau/config"
)

// Reason codes, sent as the text of the RFC 3326 Reason header of a 403 and
// written to the audit log. They are part of the interface contract.
const (
	ReasonAllowed             = "ALLOWED"
	ReasonOperatorSuspended   = "OPERATOR_SUSPENDED"
	ReasonRoleForbidden       = "ROLE_FORBIDDEN"
	ReasonInvalidNumber       = "INVALID_NUMBER"
	ReasonDNC                 = "DNC"
	ReasonNotAllowlisted      = "NOT_ALLOWLISTED"
	ReasonOutsideWindow       = "OUTSIDE_WINDOW"
	ReasonLimitReached        = "LIMIT_REACHED"
	ReasonRecorderUnavailable = "RECORDER_UNAVAILABLE"
	ReasonPolicyError         = "POLICY_ERROR"
)

// Rule names, in evaluation order; Decision.Rule says which one decided.
const (
	RuleRequest   = "request"
	RuleOperator  = "operator"
	RuleNumber    = "number"
	RuleDNC       = "dnc"
	RuleAllowlist = "allowlist"
	RuleWindow    = "window"
	RuleLimits    = "limits"
	RuleRecorder  = "recorder"
	RuleAll       = "all" // every rule passed
)

// Kind is how a call came about.
type Kind string

const (
	KindOutbound    Kind = "outbound"      // dialled on the operator's softphone
	KindInbound     Kind = "inbound"       // from the trunk to an operator
	KindRefer       Kind = "refer"         // transfer target of a REFER
	KindClickToCall Kind = "click-to-call" // from the operator console
)

// Request is one call attempt as the B2BUA sees it.
type Request struct {
	Operator string    // extension of the operator's leg
	Number   string    // the outside number, raw as typed or received
	Time     time.Time // when the decision is asked
	Source   string    // signalling source address, for the audit log
	Kind     Kind
	Campaign string // optional
	// Reserved says the caller counted this call in Calls before asking,
	// so that concurrent requests cannot all pass a limit: the counts then
	// include the request itself.
	Reserved bool
}

// Decision is the answer, allowed or not, with why.
type Decision struct {
	Allow  bool
	Reason string // one of the Reason constants
	Rule   string // one of the Rule constants
	Detail string // human-readable; the error text for POLICY_ERROR
	E164   string // the normalised number, once known
	// Opens is when calling opens next for this number, on an
	// OUTSIDE_WINDOW refusal (zero if no window ever opens).
	Opens time.Time
	// Closes is when the window of an allowed call closes (its number's
	// hours): the B2BUA warns before it and ends the call at it.
	Closes time.Time
}

// Operator is what the policy needs to know of a user.
type Operator struct {
	Extension string
	Role      string // operator, supervisor, security, admin
	Active    bool
}

// Operators looks users up; found is false for an unknown extension.
type Operators interface {
	Operator(ctx context.Context, ext string) (op Operator, found bool, err error)
}

// Allowlist answers whether an E.164 number is approved at a given instant
// (exact match, within the entry's validity).
type Allowlist interface {
	IsApproved(ctx context.Context, e164 string, at time.Time) (bool, error)
}

// DoNotCall answers whether a number must never be called.
type DoNotCall interface {
	IsListed(ctx context.Context, e164 string) (bool, error)
}

// Calls counts calls in progress, for one operator and for the whole site.
type Calls interface {
	Active(ctx context.Context, ext string) (operator, site int, err error)
}

// Recorder reports whether recordings can start; a nil error means ready.
type Recorder interface {
	Ready() error
}

// Deps are the engine's sources of facts. All are required.
type Deps struct {
	Operators Operators
	Allowlist Allowlist
	DoNotCall DoNotCall
	Calls     Calls
	Recorder  Recorder
}

// Config holds the rules' parameters.
type Config struct {
	Region  string  // default region for national numbers, e.g. "FR"
	Windows Windows // from NewWindows
	// NumberWindows replace Windows for some numbers (E.164 keys).
	NumberWindows map[string]Windows
	// PerOperator is the concurrent call limit of one operator; 0 means 1.
	PerOperator int
	// PerSite is the site's concurrent call limit; 0 means no site limit.
	PerSite int
	// CallerRoles may place outside calls; empty means operator and
	// supervisor. Security and admin accounts administer, they do not call.
	CallerRoles []string
}

// ConfigFrom builds the policy configuration from the site configuration.
func ConfigFrom(c *config.Config) (Config, error) {
	loc, err := time.LoadLocation(c.Site.Timezone)
	if err != nil {
		return Config{}, fmt.Errorf("%w: site.timezone: %v", ErrInvalidConfig, err)
	}
	weekly := make([]config.WeeklyWindow, 0, len(c.Policy.Windows))
	for i, w := range c.Policy.Windows {
		ww, err := w.Parse()
		if err != nil {
			return Config{}, fmt.Errorf("%w: policy.windows[%d]: %v", ErrInvalidConfig, i, err)
		}
		weekly = append(weekly, ww)
	}
	ws, err := NewWindows(loc, weekly, c.Policy.Holidays)
	if err != nil {
		return Config{}, err
	}
	byNumber := map[string]Windows{}
	for i, nw := range c.Policy.NumberWindows {
		key := fmt.Sprintf("policy.number_windows[%d]", i)
		var weekly []config.WeeklyWindow
		for j, w := range nw.Windows {
			ww, err := w.Parse()
			if err != nil {
				return Config{}, fmt.Errorf("%w: %s.windows[%d]: %v", ErrInvalidConfig, key, j, err)
			}
			weekly = append(weekly, ww)
		}
		nws, err := NewWindows(loc, weekly, nw.Holidays)
		if err != nil {
			return Config{}, fmt.Errorf("%s: %w", key, err)
		}
		for j, n := range nw.Numbers {
			// The allowlist matches exact E.164 strings: a number written
			// otherwise would silently never match.
			e164, err := Normalize(n, c.Site.DefaultRegion)
			if err != nil || e164 != n {
				return Config{}, fmt.Errorf("%w: %s.numbers[%d]: %q is not a valid E.164 number", ErrInvalidConfig, key, j, n)
			}
			byNumber[e164] = nws
		}
	}
	return Config{
		Region:        c.Site.DefaultRegion,
		Windows:       ws,
		NumberWindows: byNumber,
		PerOperator:   c.Policy.Limits.PerOperator,
		PerSite:       c.Policy.Limits.PerSite,
	}, nil
}

// Engine applies the rules. It holds no mutable state and is safe for
// concurrent use.
type Engine struct {
	cfg  Config
	deps Deps
}

// New checks the configuration and dependencies and returns an engine.
func New(cfg Config, deps Deps) (*Engine, error) {
	if cfg.Region == "" {
		return nil, fmt.Errorf("%w: no default region", ErrInvalidConfig)
	}
	if cfg.Windows.loc == nil {
		return nil, fmt.Errorf("%w: windows not built with NewWindows", ErrInvalidConfig)
	}
	if cfg.PerOperator < 0 || cfg.PerSite < 0 {
		return nil, fmt.Errorf("%w: negative limit", ErrInvalidConfig)
	}
	if cfg.PerOperator == 0 {
		cfg.PerOperator = 1
	}
	if len(cfg.CallerRoles) == 0 {
		cfg.CallerRoles = []string{"operator", "supervisor"}
	}
	cfg.CallerRoles = slices.Clone(cfg.CallerRoles)
	for n, w := range cfg.NumberWindows {
		if w.loc == nil {
			return nil, fmt.Errorf("%w: windows of %s not built with NewWindows", ErrInvalidConfig, n)
		}
	}
	if deps.Operators == nil || deps.Allowlist == nil || deps.DoNotCall == nil || deps.Calls == nil || deps.Recorder == nil {
		return nil, fmt.Errorf("%w: every dependency (operators, allowlist, dnc, calls, recorder) is required", ErrInvalidConfig)
	}
	return &Engine{cfg: cfg, deps: deps}, nil
}

// Windows returns the engine's time windows; the B2BUA uses NextClose to
// warn before and end calls at the end of a window.
func (e *Engine) Windows() Windows { return e.cfg.Windows }

// WindowsFor returns the calling hours of an E.164 number: its own when
// policy.number_windows lists it, else the site's.
func (e *Engine) WindowsFor(e164 string) Windows {
	if w, ok := e.cfg.NumberWindows[e164]; ok {
		return w
	}
	return e.cfg.Windows
}

// NextCloseFor is when the window of a call to e164 in progress at t
// closes (the number's own hours if it has some); ok is false outside.
func (e *Engine) NextCloseFor(e164 string, t time.Time) (time.Time, bool) {
	return e.WindowsFor(e164).NextClose(t)
}

// NextClose is when the site's window containing t closes (policy.windows,
// for numbers without hours of their own).
func (e *Engine) NextClose(t time.Time) (time.Time, bool) { return e.cfg.Windows.NextClose(t) }

// Region is the default region used to normalise numbers.
func (e *Engine) Region() string { return e.cfg.Region }

func deny(reason, rule, detail, e164 string) Decision {
	return Decision{Reason: reason, Rule: rule, Detail: detail, E164: e164}
}

func lookupFailed(rule, e164 string, err error) Decision {
	return deny(ReasonPolicyError, rule, fmt.Sprintf("%s lookup failed: %v", rule, err), e164)
}

// Decide applies the rules in order and returns the first refusal, or an
// allowed decision. Lookups happen only when the earlier rules passed, so a
// refused call costs no more queries than needed.
func (e *Engine) Decide(ctx context.Context, r Request) Decision {
	switch r.Kind {
	case KindOutbound, KindInbound, KindRefer, KindClickToCall:
	default:
		return deny(ReasonPolicyError, RuleRequest, fmt.Sprintf("unknown call kind %q", r.Kind), "")
	}
	if r.Time.IsZero() {
		return deny(ReasonPolicyError, RuleRequest, "request has no time", "")
	}

	op, found, err := e.deps.Operators.Operator(ctx, r.Operator)
	if err != nil {
		return lookupFailed(RuleOperator, "", err)
	}
	switch {
	case !found:
		return deny(ReasonOperatorSuspended, RuleOperator, fmt.Sprintf("unknown extension %q", r.Operator), "")
	case !op.Active:
		return deny(ReasonOperatorSuspended, RuleOperator, fmt.Sprintf("extension %s is suspended", r.Operator), "")
	case !slices.Contains(e.cfg.CallerRoles, op.Role):
		return deny(ReasonRoleForbidden, RuleOperator, fmt.Sprintf("role %s may not place outside calls (allowed: %s)", op.Role, strings.Join(e.cfg.CallerRoles, ", ")), "")
	}

	e164, err := Normalize(r.Number, e.cfg.Region)
	if err != nil {
		return deny(ReasonInvalidNumber, RuleNumber, err.Error(), "")
	}

	listed, err := e.deps.DoNotCall.IsListed(ctx, e164)
	if err != nil {
		return lookupFailed(RuleDNC, e164, err)
	}
	if listed {
		return deny(ReasonDNC, RuleDNC, e164+" is on the do-not-call list", e164)
	}

	approved, err := e.deps.Allowlist.IsApproved(ctx, e164, r.Time)
	if err != nil {
		return lookupFailed(RuleAllowlist, e164, err)
	}
	if !approved {
		return deny(ReasonNotAllowlisted, RuleAllowlist, e164+" is not approved on the allowlist", e164)
	}

	ws := e.WindowsFor(e164)
	closes, open := ws.NextClose(r.Time)
	if !open {
		lt := r.Time.In(ws.loc)
		detail := lt.Format("Mon 2006-01-02 15:04:05 MST") + " is outside the calling hours"
		if ws.IsHoliday(r.Time) {
			detail = lt.Format(time.DateOnly) + " is a holiday"
		}
		d := deny(ReasonOutsideWindow, RuleWindow, detail, e164)
		if next, ok := ws.NextOpen(r.Time); ok {
			d.Opens = next
			d.Detail += "; calling opens " + FormatOpens(next.In(ws.loc))
		} else {
			d.Detail += "; no calling hours are configured"
		}
		return d
	}

	mine, site, err := e.deps.Calls.Active(ctx, r.Operator)
	if err != nil {
		return lookupFailed(RuleLimits, e164, err)
	}
	if r.Reserved {
		// The counts include this request's own reservation.
		mine, site = mine-1, site-1
	}
	if r.Kind == KindRefer {
		// A transfer replaces the outside party of a call already counted:
		// that call's slot is not a new call.
		mine, site = mine-1, site-1
	}
	if mine >= e.cfg.PerOperator {
		return deny(ReasonLimitReached, RuleLimits, fmt.Sprintf("extension %s has %d call(s) in progress (limit %d)", r.Operator, mine, e.cfg.PerOperator), e164)
	}
	if e.cfg.PerSite > 0 && site >= e.cfg.PerSite {
		return deny(ReasonLimitReached, RuleLimits, fmt.Sprintf("site has %d calls in progress (limit %d)", site, e.cfg.PerSite), e164)
	}

	// The recorder's error is its state, not a failed lookup: a call that
	// cannot be recorded is never placed.
	if err := e.deps.Recorder.Ready(); err != nil {
		return deny(ReasonRecorderUnavailable, RuleRecorder, err.Error(), e164)
	}

	return Decision{Allow: true, Reason: ReasonAllowed, Rule: RuleAll, E164: e164, Closes: closes}
}

// FormatOpens writes when calling opens, on the site's clock, the way a
// refusal says it: "Mon 2026-12-07 07:30 CET".
func FormatOpens(t time.Time) string { return t.Format("Mon 2006-01-02 15:04 MST") }
