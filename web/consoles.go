package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
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
	Reg registration
}

func (a *App) operatorPage(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	reg, err := a.myRegistration(r.Context(), u)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	a.render(w, r, http.StatusOK, "operator", a.newView(r, "operator.title", operatorData{Reg: reg}))
}

type supervisorData struct {
	Operators []registration
	Interval  int // seconds
}

func (a *App) supervisorPage(w http.ResponseWriter, r *http.Request) {
	ops, err := a.operatorsState(r.Context())
	if err != nil {
		a.internal(w, r, err)
		return
	}
	a.render(w, r, http.StatusOK, "supervisor", a.newView(r, "supervisor.title",
		supervisorData{Operators: ops, Interval: max(1, int(a.deps.StreamInterval.Round(time.Second)/time.Second))}))
}

// supervisorEvents streams the operators' state as Server-Sent Events
// ("event: operators", data {"at": site time, "operators": [...]}) every StreamInterval, re-checking the
// session each time so a logout or suspension ends the stream.
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
		ops, err := a.operatorsState(r.Context())
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
