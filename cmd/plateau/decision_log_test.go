package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestLogDecision(t *testing.T) {
	tests := []struct {
		name                  string
		kind, outcome, reason string
		details               map[string]any
		want                  []string // substrings of the line; nil: no line
	}{
		{"refused", "policy.decision", "refused", "OUTSIDE_WINDOW",
			map[string]any{"detail": "Sat 2026-12-05 10:40:00 CET is outside the calling hours; calling opens Sun 2026-12-06 07:30 CET"},
			[]string{"level=WARN", `msg="call refused"`, "component=policy", "operator=101", "number=+33240120730", "reason=OUTSIDE_WINDOW", "calling opens Sun 2026-12-06 07:30 CET"}},
		{"allowed", "policy.decision", "allowed", "ALLOWED", nil, []string{"level=INFO", `msg="call allowed"`, "reason=ALLOWED"}},
		{"other audit kinds stay out of the log", "recording.verified", "ok", "", nil, nil},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		logDecision(slog.New(slog.NewTextHandler(&buf, nil)), tt.kind, "101", "+33240120730", tt.outcome, tt.reason, "127.0.0.1:5062", tt.details)
		line := buf.String()
		if tt.want == nil {
			if line != "" {
				t.Errorf("%s: logged %q", tt.name, line)
			}
			continue
		}
		if strings.Count(line, "\n") != 1 {
			t.Errorf("%s: %q is not one line", tt.name, line)
		}
		for _, w := range tt.want {
			if !strings.Contains(line, w) {
				t.Errorf("%s: %q lacks %q", tt.name, line, w)
			}
		}
	}
}
