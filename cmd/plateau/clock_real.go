//go:build !plateau_fakeclock

package main

import (
	"io"
	"time"
)

// fakeClockBuild is false in every normal build: PLATEAU_FAKE_TIME is
// ignored, and the policy reads the system's clock. Only a binary built with
// -tags plateau_fakeclock (the e2e test of the README's commands) reads it.
const fakeClockBuild = false

// policyClockFromEnv returns nil: the policy reads the system clock.
func policyClockFromEnv(func(string) string, io.Writer) (func() time.Time, error) {
	return nil, nil
}
