package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"plateau/policy"
)

// The fake clock exists only in a binary built with -tags
// plateau_fakeclock: every other build ignores PLATEAU_FAKE_TIME, so no
// environment can move a production server's time windows.
func TestClockFromEnv(t *testing.T) {
	getenv := func(k string) string {
		if k == "PLATEAU_FAKE_TIME" {
			return "2020-01-04T03:00:00+01:00"
		}
		return ""
	}
	var warn bytes.Buffer
	now, err := policyClockFromEnv(getenv, &warn)
	if err != nil {
		t.Fatal(err)
	}
	if fakeClockBuild {
		if now == nil || now().Year() != 2020 || !bytes.Contains(warn.Bytes(), []byte("TEST BUILD")) {
			t.Errorf("fake clock build: warning %q", warn.String())
		}
		if _, err := policyClockFromEnv(func(string) string { return "yesterday" }, &warn); err == nil {
			t.Error("a bad PLATEAU_FAKE_TIME was accepted")
		}
		return
	}
	if now != nil || warn.Len() != 0 {
		t.Errorf("normal build: a policy clock (output %q): PLATEAU_FAKE_TIME must be ignored", warn.String())
	}
	// And serve's policy is the engine itself, not a wrapper.
	var d fakeDecider
	if got := policyAt(d, &env{}); got != (fakeDecider{}) {
		t.Errorf("policyAt without a policy clock = %T, want the engine", got)
	}
}

type fakeDecider struct{}

func (fakeDecider) Decide(context.Context, policy.Request) policy.Decision { return policy.Decision{} }

// The shifted decider asks the engine at the policy clock's time.
func TestPolicyAtShiftsOnlyTheTime(t *testing.T) {
	var seen policy.Request
	rec := recordingDecider{&seen}
	at := time.Date(2026, 12, 7, 7, 30, 0, 0, time.UTC)
	d := policyAt(rec, &env{policyNow: func() time.Time { return at }})
	d.Decide(context.Background(), policy.Request{Operator: "101", Number: "+33240123456", Time: time.Now(), Kind: policy.KindOutbound})
	if !seen.Time.Equal(at) || seen.Operator != "101" || seen.Number != "+33240123456" {
		t.Errorf("engine asked %+v", seen)
	}
}

type recordingDecider struct{ seen *policy.Request }

func (r recordingDecider) Decide(_ context.Context, req policy.Request) policy.Decision {
	*r.seen = req
	return policy.Decision{}
}
