package main

import (
	"context"
	"time"

	"plateau/b2bua"
	"plateau/policy"
)

// policyAt is the policy engine as serve's call control uses it: in a
// normal build, the engine itself; in a test build given PLATEAU_FAKE_TIME
// (clock_fake.go), the engine asked at the fake clock's time.
func policyAt(engine b2bua.Decider, e *env) b2bua.Decider {
	if e.policyNow == nil {
		return engine
	}
	return shiftedDecider{engine, e.policyNow}
}

type shiftedDecider struct {
	b2bua.Decider
	now func() time.Time
}

func (d shiftedDecider) Decide(ctx context.Context, r policy.Request) policy.Decision {
	r.Time = d.now()
	return d.Decider.Decide(ctx, r)
}
