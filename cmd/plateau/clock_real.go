//go:build !plateau_fakeclock

package main

import (
	"io"
	"time"
)

// fakeClockBuild is false in every normal build: PLATEAU_FAKE_TIME is
// ignored, and the clock is the system's. Only a binary built with
// -tags plateau_fakeclock (the e2e test of the README's commands) reads it.
const fakeClockBuild = false

// clockFromEnv returns the process clock: the system's.
func clockFromEnv(func(string) string, io.Writer) (func() time.Time, error) {
	return time.Now, nil
}
