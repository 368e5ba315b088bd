package web

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"plateau/store"
)

// registration is a user's softphone state, from the registrar's bindings.
type registration struct {
	Extension   string     `json:"extension"`
	DisplayName string     `json:"display_name,omitempty"`
	Status      string     `json:"status,omitempty"` // account: active, suspended
	Registered  bool       `json:"registered"`
	Contacts    int        `json:"contacts"`
	UserAgent   string     `json:"user_agent,omitempty"`
	Transport   string     `json:"transport,omitempty"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
}

func toRegistration(u store.User, bs []store.Binding) registration {
	reg := registration{Extension: u.Extension, DisplayName: u.DisplayName, Status: string(u.Status),
		Registered: len(bs) > 0, Contacts: len(bs)}
	for _, b := range bs {
		if reg.ExpiresAt == nil || b.ExpiresAt.After(*reg.ExpiresAt) {
			t := b.ExpiresAt
			reg.ExpiresAt, reg.UserAgent, reg.Transport = &t, b.UserAgent, b.Transport
		}
	}
	return reg
}

func (a *App) myRegistration(ctx context.Context, u User) (registration, error) {
	su, err := a.deps.Store.User(ctx, u.Extension)
	if err != nil {
		return registration{}, err
	}
	bs, err := a.deps.Store.Bindings(ctx, u.Extension, a.now())
	if err != nil {
		return registration{}, err
	}
	return toRegistration(su, bs), nil
}

// operatorsState lists operators with their registration state. Only the
// operator role: the wallboard is about the people on the phones.
func (a *App) operatorsState(ctx context.Context) ([]registration, error) {
	users, err := a.deps.Store.Users(ctx)
	if err != nil {
		return nil, err
	}
	bs, err := a.deps.Store.Bindings(ctx, "", a.now())
	if err != nil {
		return nil, err
	}
	byExt := map[string][]store.Binding{}
	for _, b := range bs {
		byExt[b.Extension] = append(byExt[b.Extension], b)
	}
	out := []registration{}
	for _, u := range users {
		if u.Role == store.RoleOperator {
			out = append(out, toRegistration(u, byExt[u.Extension]))
		}
	}
	return out, nil
}

type operatorData struct {
	Reg            registration
	DialerOn       bool
	Campaigns      []opCampaign
	Callbacks      []callbackRow
	Call           *liveCall
	Labels         map[string]string // the console script's strings
	TZ             string            // the site's time zone, for the script's dates
	Region         string            // the site's region, for the numbers
	CorrectMinutes int               // how long the operator may correct an outcome
	Pausable       bool              // an operator may declare a pause (POST /api/v1/me/pause)
	PauseReasons   []string
	Pause          string // the current pause's reason, "" if none
}

// opCampaign is an active campaign of the operator, its script rendered.
type opCampaign struct {
	ID     int64
	Name   string
	Client string
	Script template.HTML
}

func (a *App) operatorPage(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	ctx := r.Context()
	reg, err := a.myRegistration(ctx, u)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	lang := langOf(r)
	d := operatorData{Reg: reg, DialerOn: a.deps.Dialer != nil, Labels: labels(lang, "op.", "disp.", "outcome.", "reason.", "reg.", "session.", "pause."),
		TZ: a.deps.Location.String(), Region: a.region(), PauseReasons: pauseReasons, Pausable: u.Role == store.RoleOperator}
	if p, ok := a.pauses.get(u.Extension); ok {
		d.Pause = p.Reason
	}
	cs, err := a.operatorCampaigns(ctx, u.Extension)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	for _, c := range cs {
		d.Campaigns = append(d.Campaigns, opCampaign{ID: c.ID, Name: c.Name, Client: c.Client, Script: renderScript(c.Script)})
	}
	if a.deps.Dialer != nil {
		d.CorrectMinutes = int(a.deps.Dialer.CorrectionWindow() / time.Minute)
		if d.Callbacks, err = a.callbackRows(ctx, u.Extension, lang); err != nil {
			a.internal(w, r, err)
			return
		}
	}
	if c, ok := a.callOf(u.Extension); ok {
		d.Call = &c
	}
	a.render(w, r, http.StatusOK, "operator", a.newView(r, "operator.title", d))
}

type supervisorData struct {
	Operators     []wallRow
	Interval      int // seconds
	DialerOn      bool
	MonitorOn     bool
	Campaigns     []campaignRow
	Training      []trainingRow
	TrainingCalls int
	Labels        map[string]string
}

// wallRow is one operator on the wallboard: the phone, and the call in
// progress if any. Nothing is counted per operator.
type wallRow struct {
	registration
	State       string     `json:"state"` // off, available, ringing, in_call, wrap_up, paused, suspended
	PauseReason string     `json:"pause_reason,omitempty"`
	Campaign    string     `json:"campaign,omitempty"`
	Elapsed     int        `json:"elapsed"` // seconds in the current state (not for available, off, suspended)
	Listeners   []listener `json:"listeners,omitempty"`
}

// wallboard joins the operators' registrations with the calls in progress.
func (a *App) wallboard(ctx context.Context) ([]wallRow, error) {
	ops, err := a.operatorsState(ctx)
	if err != nil {
		return nil, err
	}
	calls := map[string]liveCall{}
	for _, c := range a.liveCalls() {
		if cur, ok := calls[c.Operator]; !ok || c.Start.After(cur.Start) {
			calls[c.Operator] = a.toLive(c, false)
		}
	}
	wrapping, listening, now := a.wrapping(ctx), a.listeners(), a.now()
	out := make([]wallRow, 0, len(ops))
	for _, o := range ops {
		row := wallRow{registration: o}
		if c, ok := calls[o.Extension]; ok {
			row.State, row.Campaign, row.Elapsed = "ringing", c.Campaign, c.Elapsed
			if c.State == "connected" {
				row.State = "in_call"
			}
			row.Listeners = listening[o.Extension]
		}
		a.floorState(&row, wrapping, now)
		out = append(out, row)
	}
	return out, nil
}

func (a *App) supervisorPage(w http.ResponseWriter, r *http.Request) {
	a.showSupervisor(w, r, http.StatusOK, "", "")
}

// showSupervisor renders the supervisor console with a flash or an error
// (the forms' answers).
func (a *App) showSupervisor(w http.ResponseWriter, r *http.Request, status int, flash, errMsg string) {
	ctx := r.Context()
	ops, err := a.wallboard(ctx)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	d := supervisorData{Operators: ops, Interval: max(1, int(a.deps.StreamInterval.Round(time.Second)/time.Second)),
		DialerOn: a.deps.Dialer != nil, MonitorOn: a.deps.Monitor != nil, TrainingCalls: a.trainingCalls(),
		Labels: labels(langOf(r), "sup.", "wall.", "reg.", "status.", "pause.", "mode.")}
	if d.Campaigns, err = a.campaignRows(ctx); err != nil {
		a.internal(w, r, err)
		return
	}
	if d.Training, err = a.trainingState(ctx); err != nil {
		a.internal(w, r, err)
		return
	}
	v := a.newView(r, "supervisor.title", d)
	v.Flash, v.Error = flash, errMsg
	a.render(w, r, status, "supervisor", v)
}

// supervisorEvents streams the wallboard as Server-Sent Events ("event:
// operators", data {"at": site time, "operators": [...]}) every
// StreamInterval, re-checking the session each time so a logout or
// suspension ends the stream.
func (a *App) supervisorEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		WriteError(w, r, http.StatusInternalServerError, "internal", nil)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	tick := time.NewTicker(a.deps.StreamInterval)
	defer tick.Stop()
	for {
		ops, err := a.wallboard(r.Context())
		if err != nil {
			a.log.Warn("supervisor stream", "err", err)
			return
		}
		b, _ := json.Marshal(map[string]any{"at": a.now().In(a.deps.Location).Format("15:04:05"), "operators": ops})
		if _, err := fmt.Fprintf(w, "event: operators\ndata: %s\n\n", b); err != nil {
			return
		}
		fl.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
		if s, _ := a.loadSession(r); s == nil {
			fmt.Fprint(w, "event: logout\ndata: {}\n\n")
			fl.Flush()
			return
		}
	}
}

// labels picks the catalogue entries under prefixes, for a page's script
// (embedded as JSON data, never as code).
func labels(lang string, prefixes ...string) map[string]string {
	out := map[string]string{}
	for k := range catalogue[languages[0]] {
		for _, p := range prefixes {
			if strings.HasPrefix(k, p) {
				out[k] = T(lang, k)
			}
		}
	}
	return out
}
