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

// clockFromEnv starts the clock at PLATEAU_FAKE_TIME (RFC 3339) and lets
// it run at the real pace from there, so timers and durations stay true.
// It says so on every start, loudly.
func clockFromEnv(getenv func(string) string, stderr io.Writer) (func() time.Time, error) {
	v := getenv("PLATEAU_FAKE_TIME")
	if v == "" {
		return time.Now, nil
	}
	start, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return nil, fmt.Errorf("PLATEAU_FAKE_TIME %q is not an RFC 3339 time: %v", v, err)
	}
	offset := time.Until(start)
	fmt.Fprintf(stderr, "plateau: WARNING: TEST BUILD, fake clock: now is %s (PLATEAU_FAKE_TIME); never run this binary in production\n", start.Format(time.RFC3339))
	return func() time.Time { return time.Now().Add(offset) }, nil
}
