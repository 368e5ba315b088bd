package policy

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

type fakeOps map[string]Operator

func (f fakeOps) Operator(_ context.Context, ext string) (Operator, bool, error) {
	if ext == "boom" {
		return Operator{}, false, errors.New("database is locked")
	}
	op, ok := f[ext]
	return op, ok, nil
}

type fakeAllow struct {
	numbers map[string]bool
	err     error
}

func (f fakeAllow) IsApproved(_ context.Context, e164 string, _ time.Time) (bool, error) {
	return f.numbers[e164], f.err
}

type fakeDNC struct {
	numbers map[string]bool
	err     error
}

func (f fakeDNC) IsListed(_ context.Context, e164 string) (bool, error) {
	return f.numbers[e164], f.err
}

type fakeCalls struct {
	byOp map[string]int
	site int
	err  error
}

func (f fakeCalls) Active(_ context.Context, ext string) (int, int, error) {
	return f.byOp[ext], f.site, f.err
}

type fakeRec struct{ err error }

func (f fakeRec) Ready() error { return f.err }

const approved = "+33240123456"

func testDeps() Deps {
	return Deps{
		Operators: fakeOps{
			"101": {Extension: "101", Role: "operator", Active: true},
			"102": {Extension: "102", Role: "operator", Active: true},
			"103": {Extension: "103", Role: "operator", Active: false},
			"201": {Extension: "201", Role: "supervisor", Active: true},
			"301": {Extension: "301", Role: "security", Active: true},
			"900": {Extension: "900", Role: "admin", Active: true},
		},
		Allowlist: fakeAllow{numbers: map[string]bool{approved: true, "+33612345678": true}},
		DoNotCall: fakeDNC{numbers: map[string]bool{"+33612345678": true}},
		Calls:     fakeCalls{byOp: map[string]int{"102": 1}, site: 10},
		Recorder:  fakeRec{},
	}
}

func newEngine(t *testing.T, mod func(*Config, *Deps)) *Engine {
	t.Helper()
	cfg := Config{Region: "FR", Windows: siteWindows(t), PerSite: 20}
	deps := testDeps()
	if mod != nil {
		mod(&cfg, &deps)
	}
	e, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestDecide(t *testing.T) {
	open := "2026-11-27 09:00:00" // a Friday morning
	tests := []struct {
		name     string
		mod      func(*Config, *Deps)
		req      Request
		when     string
		reason   string
		rule     string
		e164     string
		inDetail string
	}{
		{name: "allowed", req: Request{Operator: "101", Number: "02 40 12 34 56"}, reason: ReasonAllowed, rule: RuleAll, e164: approved},
		{name: "allowed +33 spaced", req: Request{Operator: "101", Number: "+33 2 40 12 34 56"}, reason: ReasonAllowed, e164: approved},
		{name: "allowed 0033", req: Request{Operator: "101", Number: "0033240123456"}, reason: ReasonAllowed, e164: approved},
		{name: "allowed e164", req: Request{Operator: "101", Number: "+33240123456"}, reason: ReasonAllowed, e164: approved},
		{name: "supervisor may call", req: Request{Operator: "201", Number: approved}, reason: ReasonAllowed},
		{name: "click-to-call", req: Request{Operator: "101", Number: approved, Kind: KindClickToCall}, reason: ReasonAllowed},
		{name: "refer", req: Request{Operator: "101", Number: "0240000000", Kind: KindRefer}, reason: ReasonNotAllowlisted},
		{name: "inbound from unapproved", req: Request{Operator: "101", Number: "+33240000000", Kind: KindInbound}, reason: ReasonNotAllowlisted},
		{name: "unknown kind", req: Request{Operator: "101", Number: approved, Kind: "fax"}, reason: ReasonPolicyError, rule: RuleRequest},
		{name: "unknown operator", req: Request{Operator: "999", Number: approved}, reason: ReasonOperatorSuspended, rule: RuleOperator},
		{name: "suspended operator", req: Request{Operator: "103", Number: approved}, reason: ReasonOperatorSuspended, rule: RuleOperator},
		{name: "security may not call", req: Request{Operator: "301", Number: approved}, reason: ReasonRoleForbidden, rule: RuleOperator},
		{name: "admin may not call", req: Request{Operator: "900", Number: approved}, reason: ReasonRoleForbidden},
		{name: "operator only config", mod: func(c *Config, _ *Deps) { c.CallerRoles = []string{"operator"} },
			req: Request{Operator: "201", Number: approved}, reason: ReasonRoleForbidden},
		{name: "garbage number", req: Request{Operator: "101", Number: "call me"}, reason: ReasonInvalidNumber, rule: RuleNumber},
		{name: "short number", req: Request{Operator: "101", Number: "3615"}, reason: ReasonInvalidNumber},
		{name: "long number", req: Request{Operator: "101", Number: "02401234567890"}, reason: ReasonInvalidNumber},
		{name: "empty number", req: Request{Operator: "101", Number: ""}, reason: ReasonInvalidNumber},
		{name: "dnc beats allowlist", req: Request{Operator: "101", Number: "06 12 34 56 78"}, reason: ReasonDNC, rule: RuleDNC, e164: "+33612345678"},
		{name: "not allowlisted", req: Request{Operator: "101", Number: "02 40 00 00 00"}, reason: ReasonNotAllowlisted, rule: RuleAllowlist, e164: "+33240000000"},
		{name: "07:29:59 refused", when: "2026-11-27 07:29:59", req: Request{Operator: "101", Number: approved}, reason: ReasonOutsideWindow, rule: RuleWindow},
		{name: "07:30:00 allowed", when: "2026-11-27 07:30:00", req: Request{Operator: "101", Number: approved}, reason: ReasonAllowed},
		{name: "11:59:59 allowed", when: "2026-11-27 11:59:59", req: Request{Operator: "101", Number: approved}, reason: ReasonAllowed},
		{name: "12:00:00 refused", when: "2026-11-27 12:00:00", req: Request{Operator: "101", Number: approved}, reason: ReasonOutsideWindow},
		{name: "lunch refused", when: "2026-11-27 13:00:00", req: Request{Operator: "101", Number: approved}, reason: ReasonOutsideWindow},
		{name: "afternoon allowed", when: "2026-11-27 13:30:00", req: Request{Operator: "101", Number: approved}, reason: ReasonAllowed},
		{name: "saturday refused", when: "2026-11-28 09:00:00", req: Request{Operator: "101", Number: approved}, reason: ReasonOutsideWindow},
		{name: "holiday refused", when: "2026-12-25 09:00:00", req: Request{Operator: "101", Number: approved}, reason: ReasonOutsideWindow, inDetail: "holiday"},
		{name: "DST spring 07:29:59", when: "2026-03-29 07:29:59", req: Request{Operator: "101", Number: approved}, reason: ReasonOutsideWindow},
		{name: "DST spring 07:30", when: "2026-03-29 07:30:00", req: Request{Operator: "101", Number: approved}, reason: ReasonAllowed},
		{name: "DST autumn 07:29:59", when: "2026-10-25 07:29:59", req: Request{Operator: "101", Number: approved}, reason: ReasonOutsideWindow},
		{name: "DST autumn 07:30", when: "2026-10-25 07:30:00", req: Request{Operator: "101", Number: approved}, reason: ReasonAllowed},
		{name: "operator busy", req: Request{Operator: "102", Number: approved}, reason: ReasonLimitReached, rule: RuleLimits},
		{name: "own reservation counted", req: Request{Operator: "102", Number: approved, Reserved: true}, reason: ReasonAllowed},
		{name: "reservation beside a call", mod: func(_ *Config, d *Deps) { d.Calls = fakeCalls{byOp: map[string]int{"102": 2}, site: 10} },
			req: Request{Operator: "102", Number: approved, Reserved: true}, reason: ReasonLimitReached},
		// A transfer reserves a slot for its new outside leg beside the
		// call it replaces: both are counted, the replaced one discounted.
		{name: "transfer's reservation beside its call", mod: func(_ *Config, d *Deps) { d.Calls = fakeCalls{byOp: map[string]int{"102": 2}, site: 10} },
			req: Request{Operator: "102", Number: approved, Kind: KindRefer, Reserved: true}, reason: ReasonAllowed},
		{name: "transfer beside another call", mod: func(_ *Config, d *Deps) { d.Calls = fakeCalls{byOp: map[string]int{"102": 3}, site: 10} },
			req: Request{Operator: "102", Number: approved, Kind: KindRefer, Reserved: true}, reason: ReasonLimitReached},
		{name: "operator limit 2", mod: func(c *Config, _ *Deps) { c.PerOperator = 2 },
			req: Request{Operator: "102", Number: approved}, reason: ReasonAllowed},
		{name: "site full", mod: func(c *Config, _ *Deps) { c.PerSite = 10 },
			req: Request{Operator: "101", Number: approved}, reason: ReasonLimitReached, inDetail: "site"},
		{name: "no site limit", mod: func(c *Config, _ *Deps) { c.PerSite = 0 },
			req: Request{Operator: "101", Number: approved}, reason: ReasonAllowed},
		{name: "recorder down", mod: func(_ *Config, d *Deps) { d.Recorder = fakeRec{errors.New("disk almost full")} },
			req: Request{Operator: "101", Number: approved}, reason: ReasonRecorderUnavailable, rule: RuleRecorder, inDetail: "disk almost full"},
		// Every lookup failing denies with POLICY_ERROR and its text.
		{name: "operators fail", req: Request{Operator: "boom", Number: approved}, reason: ReasonPolicyError, rule: RuleOperator, inDetail: "database is locked"},
		{name: "dnc fails", mod: func(_ *Config, d *Deps) { d.DoNotCall = fakeDNC{err: errors.New("dnc gone")} },
			req: Request{Operator: "101", Number: approved}, reason: ReasonPolicyError, rule: RuleDNC, inDetail: "dnc gone"},
		{name: "allowlist fails", mod: func(_ *Config, d *Deps) {
			d.Allowlist = fakeAllow{numbers: map[string]bool{approved: true}, err: errors.New("allowlist gone")}
		}, req: Request{Operator: "101", Number: approved}, reason: ReasonPolicyError, rule: RuleAllowlist, inDetail: "allowlist gone"},
		{name: "calls fail", mod: func(_ *Config, d *Deps) { d.Calls = fakeCalls{err: errors.New("registry gone")} },
			req: Request{Operator: "101", Number: approved}, reason: ReasonPolicyError, rule: RuleLimits, inDetail: "registry gone"},
		{name: "no time", when: "zero", req: Request{Operator: "101", Number: approved}, reason: ReasonPolicyError, rule: RuleRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, tt.mod)
			req := tt.req
			if req.Kind == "" {
				req.Kind = KindOutbound
			}
			switch tt.when {
			case "":
				req.Time = at(t, open)
			case "zero":
			default:
				req.Time = at(t, tt.when)
			}
			d := e.Decide(context.Background(), req)
			if d.Reason != tt.reason || d.Allow != (tt.reason == ReasonAllowed) {
				t.Fatalf("got %+v, want reason %s", d, tt.reason)
			}
			if tt.rule != "" && d.Rule != tt.rule {
				t.Errorf("rule %q, want %q", d.Rule, tt.rule)
			}
			if tt.e164 != "" && d.E164 != tt.e164 {
				t.Errorf("E164 %q, want %q", d.E164, tt.e164)
			}
			if !strings.Contains(d.Detail, tt.inDetail) {
				t.Errorf("detail %q does not mention %q", d.Detail, tt.inDetail)
			}
			if !d.Allow && d.Detail == "" {
				t.Error("refusal without detail")
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	ws := siteWindows(t)
	deps := testDeps()
	bad := []struct {
		name string
		cfg  Config
		deps Deps
	}{
		{"no region", Config{Windows: ws}, deps},
		{"no windows", Config{Region: "FR"}, deps},
		{"negative limit", Config{Region: "FR", Windows: ws, PerSite: -1}, deps},
		{"missing dep", Config{Region: "FR", Windows: ws}, Deps{Operators: deps.Operators}},
	}
	for _, tt := range bad {
		if _, err := New(tt.cfg, tt.deps); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: got %v, want ErrInvalidConfig", tt.name, err)
		}
	}
}
