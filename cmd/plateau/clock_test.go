package main

import (
	"bytes"
	"testing"
	"time"
)

// The fake clock exists only in a binary built with -tags
// plateau_fakeclock: every other build ignores PLATEAU_FAKE_TIME, so no
// environment can move a production server's time windows.
func TestClockFromEnv(t *testing.T) {
	env := func(k string) string {
		if k == "PLATEAU_FAKE_TIME" {
			return "2020-01-04T03:00:00+01:00"
		}
		return ""
	}
	var warn bytes.Buffer
	now, err := clockFromEnv(env, &warn)
	if err != nil {
		t.Fatal(err)
	}
	got := now()
	if fakeClockBuild {
		if got.Year() != 2020 || !bytes.Contains(warn.Bytes(), []byte("TEST BUILD")) {
			t.Errorf("fake clock build: now %v, warning %q", got, warn.String())
		}
		if _, err := clockFromEnv(func(string) string { return "yesterday" }, &warn); err == nil {
			t.Error("a bad PLATEAU_FAKE_TIME was accepted")
		}
		return
	}
	if d := time.Since(got); d < 0 || d > time.Minute || warn.Len() != 0 {
		t.Errorf("normal build: now %v (%v from the system clock), output %q: PLATEAU_FAKE_TIME must be ignored", got, d, warn.String())
	}
}
