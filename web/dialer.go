package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"plateau/b2bua"
	"plateau/dialer"
	"plateau/media"
	"plateau/store"
)

// LiveCalls lists the calls in progress (the SIP server's B2BUA) and ends
// one from the console.
type LiveCalls interface {
	Calls() []b2bua.CallInfo
	Hangup(callID, operator string) error
}

// Monitorer rings a supervisor's phone into an operator's live call
// (b2bua.B2BUA.Monitor). It audits the session and its refusals itself.
type Monitorer interface {
	Monitor(ctx context.Context, supervisorExt, operatorExt string, mode media.MonitorMode) (string, error)
}

// queueRoles may take contacts from the preview queue (as the dialer's
// routes allow).
var queueRoles = []store.Role{store.RoleOperator, store.RoleSupervisor}

// consoleRoutes mounts the dialer's JSON API and the consoles' own routes.
// Without a dialer (Deps.Dialer nil) the campaign routes fall through to
// the /api/ catch-all (404) and the consoles say the dialer is off.
//
//	/api/v1/campaigns…, /api/v1/contacts/{id}/skip|release|dispose
//	                                      the dialer's routes and roles (dialer.Service.Routes)
//	POST /api/v1/contacts/{id}/call       operator, supervisor: click-to-call (409 phone_not_registered,
//	                                      phone_no_answer; 403 call_refused with the policy reason)
//	GET  /api/v1/me/call[?contact=ID]     every role: their phone, their own call in progress only,
//	                                      the outcome of their undisposed call to ID
//	GET  /api/v1/me/callbacks             operator, supervisor: the callbacks they promised
//	GET|POST /api/v1/me/pause             operator: their pause (reason) or coming back; while paused,
//	                                      next/open/call answer 409 paused (pauseGuard, apiCall)
//	GET  /api/v1/calls                    supervisor, admin: calls in progress (no numbers)
//	POST /api/v1/monitor                  supervisor, admin: {operator, mode} → 202 {session}
//	GET  /api/v1/training                 supervisor, admin: operators' coaching state
//	POST /api/v1/training/{ext}[/signoff] supervisor, admin: {calls}|{until_signoff} (audited by the store)
//	/supervisor/campaigns[/{id}[/status|/import]], /supervisor/monitor, /supervisor/training…
//	                                      supervisor, admin: the same as HTML forms
func (a *App) consoleRoutes() {
	page := func(pattern string, roles []store.Role, h http.HandlerFunc) {
		a.mux.Handle(pattern, RequireRole(roles...)(h))
	}
	if d := a.deps.Dialer; d != nil {
		dm := http.NewServeMux()
		d.Routes(dm, dialer.HTTPAuth{
			Require: func(roles ...string) func(http.Handler) http.Handler {
				rs := make([]store.Role, len(roles))
				for i, r := range roles {
					rs[i] = store.Role(r)
				}
				return RequireRole(rs...)
			},
			Actor: func(r *http.Request) dialer.Actor {
				if u, ok := CurrentUser(r); ok {
					return actor{u}
				}
				return nil
			},
			Source: clientIP,
		})
		a.mux.Handle("/api/v1/campaigns", dm)
		a.mux.Handle("/api/v1/campaigns/", a.pauseGuard(dm))
		a.mux.Handle("/api/v1/contacts/", a.pauseGuard(dm))
		// Click-to-call: checks the phone first and explains the call
		// path's refusals.
		page("POST /api/v1/contacts/{id}/call", queueRoles, a.apiCall)
		page("GET /api/v1/me/callbacks", queueRoles, a.apiMyCallbacks)
		a.campaignPages()
	}
	page("GET /api/v1/me/call", all, a.apiMyCall)
	page("POST /api/v1/me/call/hangup", all, a.apiHangup)
	page("POST /api/v1/me/pause", []store.Role{store.RoleOperator}, a.apiPause)
	page("GET /api/v1/me/pause", []store.Role{store.RoleOperator}, a.apiPauseState)
	page("GET /api/v1/calls", supervisor, a.apiCalls)
	page("POST /api/v1/monitor", supervisor, a.apiMonitor)
	page("POST /supervisor/monitor", supervisor, a.monitorForm)
	page("GET /api/v1/training", supervisor, a.apiTraining)
	page("POST /api/v1/training/{ext}", supervisor, a.apiTrain)
	page("POST /api/v1/training/{ext}/signoff", supervisor, a.apiSignOff)
	page("POST /supervisor/training", supervisor, a.trainForm)
	page("POST /supervisor/training/{ext}/signoff", supervisor, a.signOffForm)
}

// actor is the dialer's view of the logged-in user.
type actor struct{ u User }

func (a actor) Extension() string { return a.u.Extension }
func (a actor) Role() string      { return string(a.u.Role) }

type sourceKey struct{}

// RequestSource is the web client's address of the request a context
// belongs to ("" outside one): click-to-call puts it in the audit log.
func RequestSource(ctx context.Context) string {
	s, _ := ctx.Value(sourceKey{}).(string)
	return s
}

// liveCall is a call in progress as the consoles show it.
type liveCall struct {
	ID       string    `json:"id"`
	Operator string    `json:"operator"`
	Number   string    `json:"number,omitempty"`
	Display  string    `json:"display,omitempty"` // the number the site's way ("02 40 12 34 56")
	Campaign string    `json:"campaign,omitempty"`
	State    string    `json:"state"` // setup (ringing), connected
	Start    time.Time `json:"start"`
	Answered time.Time `json:"answered,omitzero"`
	Elapsed  int       `json:"elapsed"` // seconds since the answer (or the start while ringing)
}

func (a *App) liveCalls() []b2bua.CallInfo {
	if a.deps.Calls == nil {
		return nil
	}
	return a.deps.Calls.Calls()
}

func (a *App) toLive(c b2bua.CallInfo, withNumber bool) liveCall {
	since := c.Start
	if !c.Answered.IsZero() {
		since = c.Answered
	}
	lc := liveCall{ID: c.ID, Operator: c.Operator, Campaign: c.Campaign, State: c.State, Start: c.Start, Answered: c.Answered,
		Elapsed: max(0, int(a.now().Sub(since)/time.Second))}
	if withNumber {
		lc.Number, lc.Display = c.Number, displayNumber(c.Number, a.region())
	}
	return lc
}

// callOf returns operator's call in progress (the most recent one).
func (a *App) callOf(operator string) (liveCall, bool) {
	var best *b2bua.CallInfo
	for _, c := range a.liveCalls() {
		if c.Operator == operator && (best == nil || c.Start.After(best.Start)) {
			best = &c
		}
	}
	if best == nil {
		return liveCall{}, false
	}
	return a.toLive(*best, true), true
}

// apiMyCall is the operator console's poll: the user's phone, their call
// in progress (never anyone else's), and with ?contact=ID the outcome of
// their last call to that contact while it awaits a disposition.
func (a *App) apiMyCall(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	reg, err := a.myRegistration(r.Context(), u)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	out := map[string]any{"registered": reg.Registered, "call": nil, "at": a.now().In(a.deps.Location).Format("15:04:05")}
	if c, ok := a.callOf(u.Extension); ok {
		out["call"] = c
	}
	if id, err := strconv.ParseInt(r.URL.Query().Get("contact"), 10, 64); err == nil && id > 0 && a.deps.Dialer != nil {
		if o, ok, err := a.deps.Dialer.AwaitingDisposition(r.Context(), u.Extension, id); err != nil {
			a.internal(w, r, err)
			return
		} else if ok {
			out["outcome"] = o
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// apiHangup ends the user's own call in progress (never anyone else's).
func (a *App) apiHangup(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	c, ok := a.callOf(u.Extension)
	if !ok || a.deps.Calls == nil {
		WriteError(w, r, http.StatusNotFound, "no_call", nil)
		return
	}
	if err := a.deps.Calls.Hangup(c.ID, u.Extension); err != nil {
		WriteError(w, r, http.StatusNotFound, "no_call", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// apiCalls lists the calls in progress for the supervisors.
func (a *App) apiCalls(w http.ResponseWriter, r *http.Request) {
	out := []liveCall{}
	for _, c := range a.liveCalls() {
		out = append(out, a.toLive(c, false))
	}
	writeJSON(w, http.StatusOK, map[string]any{"calls": out})
}

// callbackRow is one of the operator's callbacks as their console lists it.
type callbackRow struct {
	ID       int64     `json:"id"` // the contact
	Company  string    `json:"company"`
	Contact  string    `json:"contact"`
	Number   string    `json:"number"` // for display
	Campaign string    `json:"campaign"`
	At       time.Time `json:"at"`
	When     string    `json:"when"`    // site time, e.g. "aujourd'hui 10:30", "mar. 08/12 10:30"
	Due      bool      `json:"due"`     // the time has come
	Overdue  bool      `json:"overdue"` // more than overdueAfter ago
}

// overdueAfter: a callback this late is shown as overdue, not just due.
const overdueAfter = 15 * time.Minute

func (a *App) callbackRows(ctx context.Context, ext, lang string) ([]callbackRow, error) {
	cbs, err := a.deps.Dialer.Callbacks(ctx, ext)
	if err != nil {
		return nil, err
	}
	now := a.now()
	out := make([]callbackRow, 0, len(cbs))
	for _, cb := range cbs {
		out = append(out, callbackRow{ID: cb.Contact.ID, Company: cb.Contact.Company, Contact: cb.Contact.Contact,
			Number: displayNumber(cb.Contact.E164, a.region()), Campaign: cb.Campaign, At: cb.At,
			When: a.siteWhen(lang, cb.At), Due: !cb.At.After(now), Overdue: now.Sub(cb.At) > overdueAfter})
	}
	return out, nil
}

// siteWhen writes an instant on the site's clock for a person: "aujourd'hui
// 10:30", "demain 09:00", else "mar. 08/12 10:30".
func (a *App) siteWhen(lang string, t time.Time) string {
	lt, now := t.In(a.deps.Location), a.now().In(a.deps.Location)
	day := func(x time.Time) string { return x.Format("2006-01-02") }
	switch day(lt) {
	case day(now):
		return T(lang, "when.today", lt.Format("15:04"))
	case day(now.AddDate(0, 0, 1)):
		return T(lang, "when.tomorrow", lt.Format("15:04"))
	}
	return T(lang, "wd."+strconv.Itoa(int(lt.Weekday()))) + " " + lt.Format("02/01 15:04")
}

func (a *App) apiMyCallbacks(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	rows, err := a.callbackRows(r.Context(), u.Extension, langOf(r))
	if err != nil {
		a.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"callbacks": rows})
}

// apiCall is click-to-call: POST /api/v1/contacts/{id}/call. The phone
// must be registered (checked before the contact leaves the queue, so an
// unplugged phone costs no attempt); then the dialer rings it and dials.
// Answers 202 with the contact once the operator's phone answered.
func (a *App) apiCall(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		WriteError(w, r, http.StatusBadRequest, "bad_request", fmt.Errorf("contact id %q", r.PathValue("id")))
		return
	}
	reg, err := a.myRegistration(r.Context(), u)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	if !reg.Registered {
		WriteError(w, r, http.StatusConflict, "phone_not_registered", nil)
		return
	}
	if a.paused(r) {
		WriteError(w, r, http.StatusConflict, "paused", nil)
		return
	}
	ctx := context.WithValue(r.Context(), sourceKey{}, clientIP(r))
	ct, err := a.deps.Dialer.ClickToCall(ctx, u.Extension, id)
	if err == nil {
		writeJSON(w, http.StatusAccepted, ct)
		return
	}
	status, code := callErrorStatus(err)
	if status == http.StatusInternalServerError {
		a.log.Error("click-to-call", "operator", u.Extension, "contact", id, "err", err)
	}
	lang := langOf(r)
	body := map[string]any{"error": code, "message": T(lang, "err."+code), "detail": err.Error()}
	var re *b2bua.RefusedError
	if errors.As(err, &re) {
		body["reason"] = re.Decision.Reason
		if _, ok := catalogue[lang]["reason."+re.Decision.Reason]; ok {
			body["message"] = T(lang, "err."+code) + " " + T(lang, "reason."+re.Decision.Reason)
		}
	}
	// A call that could not start was recorded as failed: the operator
	// now owes a disposition (the console shows the form).
	if _, owed, _ := a.deps.Dialer.AwaitingDisposition(r.Context(), u.Extension, id); owed {
		body["disposition_owed"] = true
	}
	writeJSON(w, status, body)
}

// callErrorStatus maps click-to-call errors to a status and an error code
// (a catalogue key under "err.").
func callErrorStatus(err error) (int, string) {
	var re *b2bua.RefusedError
	switch {
	case errors.As(err, &re):
		return http.StatusForbidden, "call_refused"
	case errors.Is(err, b2bua.ErrNotRegistered):
		return http.StatusConflict, "phone_not_registered"
	case errors.Is(err, b2bua.ErrNoAnswer):
		return http.StatusConflict, "phone_no_answer"
	case errors.Is(err, b2bua.ErrCallsDisabled):
		return http.StatusServiceUnavailable, "calls_disabled"
	case errors.Is(err, dialer.ErrNotFound):
		return http.StatusNotFound, "not_found"
	case errors.Is(err, dialer.ErrNotLeased):
		return http.StatusConflict, "not_leased"
	case errors.Is(err, dialer.ErrForbidden), errors.Is(err, dialer.ErrNotAssigned):
		return http.StatusForbidden, "forbidden"
	}
	return http.StatusInternalServerError, "internal"
}

// monitorRequest is the body of POST /api/v1/monitor.
type monitorRequest struct {
	Operator string `json:"operator"`
	Mode     string `json:"mode"` // listen, whisper, barge
}

// startMonitor asks the SIP server to ring the supervisor into the
// operator's call; it returns the session id, or a status and error code.
func (a *App) startMonitor(ctx context.Context, u User, req monitorRequest) (string, int, string, error) {
	if a.deps.Monitor == nil {
		return "", http.StatusServiceUnavailable, "monitor_unavailable", nil
	}
	mode, err := media.ParseMonitorMode(req.Mode)
	if err != nil || strings.TrimSpace(req.Operator) == "" {
		if err == nil {
			err = errors.New("operator is required")
		}
		return "", http.StatusBadRequest, "bad_request", err
	}
	// Already on this call (« Écouter », then « Chuchoter »): the session
	// changes mode instead of ringing the phone again.
	if m := a.moder(); m != nil {
		for _, s := range m.MonitorSessions() {
			if s.Supervisor == u.Extension && s.Operator == strings.TrimSpace(req.Operator) {
				id, err := m.SetMonitorMode(u.Extension, s.Operator, mode)
				if err != nil {
					break // ended meanwhile: ring as a new session
				}
				return id, http.StatusOK, "", nil
			}
		}
	}
	id, err := a.deps.Monitor.Monitor(ctx, u.Extension, strings.TrimSpace(req.Operator), mode)
	if err == nil {
		return id, http.StatusAccepted, "", nil
	}
	var me *b2bua.MonitorError
	if !errors.As(err, &me) {
		return "", http.StatusInternalServerError, "internal", err
	}
	switch me.Reason {
	case b2bua.ErrRoleForbidden.Reason:
		return "", http.StatusForbidden, "monitor_forbidden", err
	case b2bua.ErrNoActiveCall.Reason:
		return "", http.StatusNotFound, "monitor_no_call", err
	case b2bua.ErrMonitorBusy.Reason:
		return "", http.StatusConflict, "monitor_busy", err
	case b2bua.ErrSupervisorNotRegistered.Reason:
		return "", http.StatusConflict, "monitor_not_registered", err
	}
	return "", http.StatusServiceUnavailable, "monitor_unavailable", err
}

// apiMonitor is POST /api/v1/monitor {operator, mode}: supervisors and
// admins only. 202 {"session", "message"} while the supervisor's phone
// rings; the SIP server audits the session and every refusal.
func (a *App) apiMonitor(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	var req monitorRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	id, status, code, err := a.startMonitor(r.Context(), u, req)
	if code != "" {
		if status == http.StatusInternalServerError {
			a.log.Error("monitor", "supervisor", u.Extension, "operator", req.Operator, "err", err)
			err = nil
		}
		WriteError(w, r, status, code, err)
		return
	}
	msg := T(langOf(r), "sup.monitor_ringing", req.Operator)
	if status == http.StatusOK {
		msg = T(langOf(r), "sup.monitor_mode", T(langOf(r), "mode."+req.Mode), req.Operator)
	}
	writeJSON(w, status, map[string]string{"session": id, "message": msg})
}

// monitorForm is the wallboard's buttons without JavaScript.
func (a *App) monitorForm(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	req := monitorRequest{Operator: r.PostFormValue("operator"), Mode: r.PostFormValue("mode")}
	_, status, code, err := a.startMonitor(r.Context(), u, req)
	lang := langOf(r)
	if code != "" {
		if status == http.StatusInternalServerError {
			a.log.Error("monitor", "supervisor", u.Extension, "operator", req.Operator, "err", err)
		}
		a.showSupervisor(w, r, status, "", T(lang, "err."+code))
		return
	}
	flash := T(lang, "sup.monitor_ringing", req.Operator)
	if status == http.StatusOK {
		flash = T(lang, "sup.monitor_mode", T(lang, "mode."+req.Mode), req.Operator)
	}
	a.showSupervisor(w, r, http.StatusOK, flash, "")
}

// trainingRow is an operator's coaching state for the supervisors.
type trainingRow struct {
	Extension   string    `json:"extension"`
	DisplayName string    `json:"display_name"`
	Status      string    `json:"status"` // training, signed_off, "" (never)
	MaxCalls    int       `json:"max_calls"`
	Calls       int       `json:"calls"`
	StartedBy   string    `json:"started_by,omitempty"`
	StartedAt   time.Time `json:"started_at,omitzero"`
	SignedOffBy string    `json:"signed_off_by,omitempty"`
	SignedOffAt time.Time `json:"signed_off_at,omitzero"`
}

// trainingState lists every operator with their coaching state.
func (a *App) trainingState(ctx context.Context) ([]trainingRow, error) {
	users, err := a.deps.Store.Users(ctx)
	if err != nil {
		return nil, err
	}
	out := []trainingRow{}
	for _, u := range users {
		if u.Role != store.RoleOperator {
			continue
		}
		row := trainingRow{Extension: u.Extension, DisplayName: u.DisplayName}
		t, ok, err := a.deps.Store.TrainingOf(ctx, u.Extension)
		if err != nil {
			return nil, err
		}
		if u.Status != store.StatusActive && (!ok || t.Status != "training") {
			continue // a suspended account is not offered for training
		}
		if ok {
			row.Status, row.MaxCalls, row.Calls, row.StartedBy, row.StartedAt = t.Status, t.MaxCalls, t.Calls, t.StartedBy, t.StartedAt
			row.SignedOffBy, row.SignedOffAt = t.SignedOffBy, t.SignedOffAt
		}
		out = append(out, row)
	}
	return out, nil
}

func (a *App) apiTraining(w http.ResponseWriter, r *http.Request) {
	rows, err := a.trainingState(r.Context())
	if err != nil {
		a.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"operators": rows, "default_calls": a.trainingCalls()})
}

func (a *App) trainingCalls() int {
	if a.deps.TrainingCalls > 0 {
		return a.deps.TrainingCalls
	}
	return 5
}

// train puts ext in training for calls calls (0: until sign-off), as the
// CLI does: only an operator; the store audits it (user.train).
func (a *App) train(ctx context.Context, by User, ext string, calls int) (int, string, error) {
	if calls < 0 || calls > 1000 {
		return http.StatusBadRequest, "bad_training_calls", fmt.Errorf("calls %d", calls)
	}
	op, err := a.deps.Store.User(ctx, ext)
	if errors.Is(err, store.ErrNotFound) {
		return http.StatusNotFound, "not_found", err
	}
	if err != nil {
		return http.StatusInternalServerError, "internal", err
	}
	if op.Role != store.RoleOperator {
		return http.StatusBadRequest, "not_operator", fmt.Errorf("%s is a %s", ext, op.Role)
	}
	if err := a.deps.Store.StartTraining(ctx, ext, by.Extension, calls, a.now()); err != nil {
		return http.StatusInternalServerError, "internal", err
	}
	return http.StatusOK, "", nil
}

func (a *App) signOff(ctx context.Context, by User, ext string) (int, string, error) {
	err := a.deps.Store.SignOff(ctx, ext, by.Extension, a.now())
	switch {
	case errors.Is(err, store.ErrNotInTraining):
		return http.StatusConflict, "not_in_training", err
	case err != nil:
		return http.StatusInternalServerError, "internal", err
	}
	return http.StatusOK, "", nil
}

// apiTrain is POST /api/v1/training/{ext} {"calls": N} or
// {"until_signoff": true}; no body field: the configured default.
func (a *App) apiTrain(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	var body struct {
		Calls        *int `json:"calls"`
		UntilSignoff bool `json:"until_signoff"`
	}
	if r.ContentLength != 0 && !decodeJSON(w, r, &body) {
		return
	}
	n := a.trainingCalls()
	switch {
	case body.UntilSignoff:
		n = 0
	case body.Calls != nil && *body.Calls <= 0:
		WriteError(w, r, http.StatusBadRequest, "bad_training_calls", nil)
		return
	case body.Calls != nil:
		n = *body.Calls
	}
	ext := r.PathValue("ext")
	if status, code, err := a.train(r.Context(), u, ext, n); code != "" {
		a.apiFail(w, r, status, code, err)
		return
	}
	t, _, _ := a.deps.Store.TrainingOf(r.Context(), ext)
	writeJSON(w, http.StatusOK, t)
}

func (a *App) apiSignOff(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	ext := r.PathValue("ext")
	if status, code, err := a.signOff(r.Context(), u, ext); code != "" {
		a.apiFail(w, r, status, code, err)
		return
	}
	t, _, _ := a.deps.Store.TrainingOf(r.Context(), ext)
	writeJSON(w, http.StatusOK, t)
}

func (a *App) trainForm(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	lang := langOf(r)
	ext := r.PostFormValue("operator")
	n := 0
	if r.PostFormValue("until_signoff") == "" {
		v, err := strconv.Atoi(strings.TrimSpace(r.PostFormValue("calls")))
		if err != nil || v <= 0 {
			a.showSupervisor(w, r, http.StatusBadRequest, "", T(lang, "err.bad_training_calls"))
			return
		}
		n = v
	}
	if status, code, err := a.train(r.Context(), u, ext, n); code != "" {
		if status == http.StatusInternalServerError {
			a.log.Error("training", "operator", ext, "err", err)
		}
		a.showSupervisor(w, r, status, "", T(lang, "err."+code))
		return
	}
	a.showSupervisor(w, r, http.StatusOK, T(lang, "sup.training_started", ext), "")
}

func (a *App) signOffForm(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	lang := langOf(r)
	ext := r.PathValue("ext")
	if status, code, err := a.signOff(r.Context(), u, ext); code != "" {
		if status == http.StatusInternalServerError {
			a.log.Error("sign-off", "operator", ext, "err", err)
		}
		a.showSupervisor(w, r, status, "", T(lang, "err."+code))
		return
	}
	a.showSupervisor(w, r, http.StatusOK, T(lang, "sup.signed_off", ext), "")
}

// apiFail writes an API error, logging (not showing) internal ones.
func (a *App) apiFail(w http.ResponseWriter, r *http.Request, status int, code string, err error) {
	if status == http.StatusInternalServerError {
		a.log.Error("web request failed", "path", r.URL.Path, "err", err)
		err = nil
	}
	WriteError(w, r, status, code, err)
}

// decodeJSON reads a small JSON body strictly; false: the 400 is written.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		WriteError(w, r, http.StatusBadRequest, "bad_request", err)
		return false
	}
	return true
}

// operatorCampaigns are the active campaigns ext is assigned to.
func (a *App) operatorCampaigns(ctx context.Context, ext string) ([]dialer.Campaign, error) {
	if a.deps.Dialer == nil {
		return nil, nil
	}
	cs, err := a.deps.Dialer.Campaigns(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(cs, func(c dialer.Campaign) bool { return c.Status != dialer.Active || !c.Assigned(ext) }), nil
}
