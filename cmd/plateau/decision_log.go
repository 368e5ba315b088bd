package main

import (
	"log/slog"
)

// logDecision writes a call's policy decision to the log as it is audited,
// so the terminal of `plateau serve` (make run) shows why a call was
// refused, not only the audit log. Refusals are warnings: someone tried.
func logDecision(log *slog.Logger, kind, actor, subject, outcome, reason, source string, details map[string]any) {
	if kind != "policy.decision" || log == nil {
		return
	}
	attrs := []any{"component", "policy", "operator", actor, "number", subject, "reason", reason, "source", source}
	if outcome != "refused" {
		log.Info("call allowed", attrs...)
		return
	}
	if d, ok := details["detail"].(string); ok && d != "" {
		attrs = append(attrs, "detail", d)
	}
	log.Warn("call refused", attrs...)
}
