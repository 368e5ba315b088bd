package web

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"plateau/audit"
	"plateau/b2bua"
	"plateau/media"
	"plateau/store"
)

// The wallboard's real states. An operator is, in this order of
// precedence: suspended (the account), in a call or being rung, in
// wrap-up (the call's outcome is owed), paused with a reason they gave
// (a workshop's absences: a visit, the infirmary, a movement, training),
// phone off (not registered), or available. Pauses are held in memory:
// a restart ends them (operators set them again); each change is audited.

// pauseReasons are the absences an operator may declare.
var pauseReasons = []string{"visit", "medical", "movement", "training"}

type pause struct {
	Reason string
	Since  time.Time
}

// pauseBook holds the operators' pauses; its zero value is ready.
type pauseBook struct {
	mu sync.Mutex
	m  map[string]pause
}

func (p *pauseBook) get(ext string) (pause, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.m[ext]
	return v, ok
}

func (p *pauseBook) set(ext string, v pause, on bool) (pause, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]pause{}
	}
	old, had := p.m[ext]
	if on {
		p.m[ext] = v
	} else {
		delete(p.m, ext)
	}
	return old, had
}

// MonitorModer is the SIP server's live monitoring beyond ringing a
// supervisor in: the sessions in progress and switching one's mode.
type MonitorModer interface {
	MonitorSessions() []b2bua.MonitorInfo
	SetMonitorMode(supervisorExt, operatorExt string, mode media.MonitorMode) (string, error)
}

func (a *App) moder() MonitorModer {
	m, _ := a.deps.Monitor.(MonitorModer)
	return m
}

// listener is a supervisor on an operator's call.
type listener struct {
	Supervisor string `json:"supervisor"`
	Mode       string `json:"mode"`
}

// floorState works out the state of an operator row with no call.
func (a *App) floorState(row *wallRow, wrapping map[string]time.Time, now time.Time) {
	switch {
	case row.Status != string(store.StatusActive):
		row.State = "suspended"
	case row.State == "ringing" || row.State == "in_call":
	case !wrapping[row.Extension].IsZero():
		row.State, row.Elapsed = "wrap_up", int(now.Sub(wrapping[row.Extension]).Seconds())
	default:
		if p, ok := a.pauses.get(row.Extension); ok {
			row.State, row.PauseReason, row.Elapsed = "paused", p.Reason, int(now.Sub(p.Since).Seconds())
		} else if !row.Registered {
			row.State = "off"
		} else {
			row.State = "available"
		}
	}
}

// wrapping is who owes a disposition (none without the dialer).
func (a *App) wrapping(ctx context.Context) map[string]time.Time {
	if a.deps.Dialer == nil {
		return nil
	}
	w, err := a.deps.Dialer.Wrapping(ctx)
	if err != nil {
		a.log.Warn("wallboard: wrap-up", "err", err)
	}
	return w
}

// listeners groups the monitoring sessions by operator.
func (a *App) listeners() map[string][]listener {
	m := a.moder()
	if m == nil {
		return nil
	}
	out := map[string][]listener{}
	for _, s := range m.MonitorSessions() {
		out[s.Operator] = append(out[s.Operator], listener{Supervisor: s.Supervisor, Mode: s.Mode})
	}
	return out
}

// pauseRequest is the body of POST /api/v1/me/pause: a reason to pause,
// "" to come back.
type pauseRequest struct {
	Reason string `json:"reason"`
}

// apiPause is POST /api/v1/me/pause: an operator declares an absence (one
// of pauseReasons) or comes back (""). Audited operator.pause /
// operator.resume. 200 {"reason", "since"}.
func (a *App) apiPause(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	var req pauseRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.Reason != "" && !slices.Contains(pauseReasons, req.Reason) {
		WriteError(w, r, http.StatusBadRequest, "bad_pause_reason", nil)
		return
	}
	now := a.now()
	old, had := a.pauses.set(u.Extension, pause{Reason: req.Reason, Since: now}, req.Reason != "")
	kind, reason := "operator.pause", req.Reason
	if req.Reason == "" {
		kind, reason = "operator.resume", old.Reason
	}
	if req.Reason != "" || had {
		details := map[string]any{}
		if had {
			details["previous"], details["previous_since"] = old.Reason, old.Since.UTC().Format(time.RFC3339)
		}
		a.audit(r.Context(), audit.Entry{Kind: kind, Actor: u.Extension, Subject: u.Extension, Outcome: "ok", Reason: reason,
			Source: "web " + clientIP(r), Details: details})
	}
	body := map[string]any{"reason": req.Reason}
	if req.Reason != "" {
		body["since"] = now
	}
	writeJSON(w, http.StatusOK, body)
}

// apiPauseState is GET /api/v1/me/pause: the operator's own pause, so
// that the console shows it again after a reload. 200 {"reason", "since"}
// ({"reason": ""} when not paused).
func (a *App) apiPauseState(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	body := map[string]any{"reason": ""}
	if p, ok := a.pauses.get(u.Extension); ok {
		body["reason"], body["since"] = p.Reason, p.Since
	}
	writeJSON(w, http.StatusOK, body)
}

// paused reports whether the request's user declared an absence: a paused
// operator takes no contact and places no call until they come back (the
// console disables its buttons; this is the server's side of it).
func (a *App) paused(r *http.Request) bool {
	u, ok := CurrentUser(r)
	if !ok {
		return false
	}
	_, on := a.pauses.get(u.Extension)
	return on
}

// pauseGuard refuses, while the user is paused, the dialer's requests
// that hand them a contact (POST …/campaigns/{id}/next, …/contacts/{id}/open)
// with 409 "paused"; everything else (an outcome owed, a release) passes.
func (a *App) pauseGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && a.paused(r) {
			p := strings.TrimSuffix(r.URL.Path, "/")
			if (strings.HasPrefix(p, "/api/v1/campaigns/") && strings.HasSuffix(p, "/next")) ||
				(strings.HasPrefix(p, "/api/v1/contacts/") && strings.HasSuffix(p, "/open")) {
				WriteError(w, r, http.StatusConflict, "paused", nil)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
