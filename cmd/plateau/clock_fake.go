//go:build plateau_fakeclock

package main

import (
	"fmt"
	"io"
	"time"
)

// fakeClockBuild: this binary was built with -tags plateau_fakeclock, for
// the e2e test that runs the README's commands at a closed and an open
// hour. A production build (make build) cannot read PLATEAU_FAKE_TIME: the
// time windows are a safety rule, and an environment variable must never
// move them.
const fakeClockBuild = true

// policyClockFromEnv returns the clock the call policy reads: it starts
// at PLATEAU_FAKE_TIME (RFC 3339) and runs at the real pace from there.
// Only the policy's decisions (time windows) see it; media, recordings and
// the audit log keep the system clock, whose timestamps must agree with
// each other. It says so on every start, loudly.
func policyClockFromEnv(getenv func(string) string, stderr io.Writer) (func() time.Time, error) {
	v := getenv("PLATEAU_FAKE_TIME")
	if v == "" {
		return nil, nil
	}
	start, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return nil, fmt.Errorf("PLATEAU_FAKE_TIME %q is not an RFC 3339 time: %v", v, err)
	}
	offset := time.Until(start)
	fmt.Fprintf(stderr, "plateau: WARNING: TEST BUILD, fake policy clock: now is %s for the time windows (PLATEAU_FAKE_TIME); never run this binary in production\n", start.Format(time.RFC3339))
	return func() time.Time { return time.Now().Add(offset) }, nil
}
