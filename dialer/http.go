package dialer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"plateau/store"
)

// Actor is the authenticated user of a request, as the web layer knows it.
type Actor interface {
	Extension() string
	Role() string // operator, supervisor, security or admin
}

// HTTPAuth is what the web layer gives the dialer's handlers.
type HTTPAuth struct {
	// Require wraps a handler so that only a logged-in user with one of
	// roles reaches it (session, CSRF on unsafe methods, 401/403 answers
	// are the web layer's). Nil: no wrapping (tests).
	Require func(roles ...string) func(http.Handler) http.Handler
	// Actor returns the request's user, or nil if there is none. Required.
	Actor func(r *http.Request) Actor
	// Source names the request's origin in the audit log (e.g. the client
	// address); nil: r.RemoteAddr.
	Source func(r *http.Request) string
}

// CallFunc starts a click-to-call: ring operator's softphone with
// auto-answer, then dial number through the policy. It returns once the
// call is under way (or refused); report is called once, when the call
// ends, with its outcome. Package sip provides it; cmd/plateau wires it.
type CallFunc func(ctx context.Context, operator, number string, report func(outcome Outcome, sipStatus int, callID string)) error

// WithCaller enables ClickToCall (the web console serves it as
// POST /api/v1/contacts/{id}/call, after checking the operator's phone).
func WithCaller(call CallFunc) Option { return func(s *Service) { s.call = call } }

const (
	roleOperator   = string(store.RoleOperator)
	roleSupervisor = string(store.RoleSupervisor)
	roleSecurity   = string(store.RoleSecurity)
	roleAdmin      = string(store.RoleAdmin)
)

// Routes registers the dialer's JSON API on mux. The roles of each route:
//
//	GET  /api/v1/campaigns                 all roles (operators see the active campaigns they are assigned to)
//	POST /api/v1/campaigns                 supervisor, admin         body CampaignSpec → 201 Campaign
//	GET  /api/v1/campaigns/{id}            all roles (operators: assigned only)
//	PUT  /api/v1/campaigns/{id}            supervisor, admin         body CampaignSpec → Campaign
//	POST /api/v1/campaigns/{id}/status     supervisor, admin         {"status":"active"} → Campaign
//	POST /api/v1/campaigns/{id}/imports    supervisor, admin         multipart field "file" → ImportReport
//	GET  /api/v1/campaigns/{id}/results    supervisor, admin, security → Results
//	GET  /api/v1/campaigns/{id}/export     supervisor, admin, security → text/csv
//	POST /api/v1/campaigns/{id}/next       operator, supervisor      → 200 Lease, 204 nothing due,
//	                                                                   409 {"error","lease"} disposition owed
//	POST /api/v1/contacts/{id}/skip        operator, supervisor      {"reason":"…"} → 204
//	POST /api/v1/contacts/{id}/release     operator, supervisor      → 204
//	POST /api/v1/contacts/{id}/dispose     operator, supervisor      DisposeRequest → Contact
//	POST /api/v1/contacts/{id}/correct     operator (own, within the correction window), supervisor, admin
//	                                                                   DisposeRequest → Contact (audited
//	                                                                   dialer.outcome_corrected)
//	GET  /api/v1/campaigns/{id}/queue      operator, supervisor      → QueueState: why nothing is due
//	POST /api/v1/contacts/{id}/open        operator, supervisor      → Lease of their own callback, due or not
//
// Errors are {"error": "…"} with 400 (invalid input), 403 (role, not
// assigned), 404, 409 (state: not active, outside hours, not leased,
// disposition owed) or 500. Every handler checks the actor's role itself
// as well, so a route mounted without Require still refuses.
func (s *Service) Routes(mux *http.ServeMux, auth HTTPAuth) {
	all := []string{roleOperator, roleSupervisor, roleSecurity, roleAdmin}
	manage := []string{roleSupervisor, roleAdmin}
	read := []string{roleSupervisor, roleAdmin, roleSecurity}
	queue := []string{roleOperator, roleSupervisor}
	h := func(pattern string, roles []string, fn func(w http.ResponseWriter, r *http.Request, a Actor)) {
		var hd http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var a Actor
			if auth.Actor != nil {
				a = auth.Actor(r)
			}
			if a == nil {
				writeErr(w, http.StatusUnauthorized, errors.New("login required"))
				return
			}
			if !slices.Contains(roles, a.Role()) {
				writeErr(w, http.StatusForbidden, fmt.Errorf("%w: role %s", ErrForbidden, a.Role()))
				return
			}
			fn(w, r, a)
		})
		if auth.Require != nil {
			hd = auth.Require(roles...)(hd)
		}
		mux.Handle(pattern, hd)
	}
	change := func(r *http.Request, a Actor) store.Change {
		src := r.RemoteAddr
		if auth.Source != nil {
			src = auth.Source(r)
		}
		return store.Change{By: a.Extension(), Source: src, At: s.now()}
	}

	h("GET /api/v1/campaigns", all, func(w http.ResponseWriter, r *http.Request, a Actor) {
		cs, err := s.Campaigns(r.Context())
		if err != nil {
			writeErr(w, 0, err)
			return
		}
		out := []Campaign{}
		for _, c := range cs {
			if a.Role() != roleOperator || (c.Status == Active && c.Assigned(a.Extension())) {
				out = append(out, c)
			}
		}
		writeJSON(w, http.StatusOK, out)
	})
	h("POST /api/v1/campaigns", manage, func(w http.ResponseWriter, r *http.Request, a Actor) {
		var sp CampaignSpec
		if !readJSON(w, r, &sp) {
			return
		}
		c, err := s.CreateCampaign(r.Context(), change(r, a), sp)
		reply(w, http.StatusCreated, c, err)
	})
	h("GET /api/v1/campaigns/{id}", all, func(w http.ResponseWriter, r *http.Request, a Actor) {
		c, ok := s.campaignFor(w, r, a)
		if ok {
			writeJSON(w, http.StatusOK, c)
		}
	})
	h("PUT /api/v1/campaigns/{id}", manage, func(w http.ResponseWriter, r *http.Request, a Actor) {
		id, ok := pathID(w, r)
		var sp CampaignSpec
		if !ok || !readJSON(w, r, &sp) {
			return
		}
		c, err := s.UpdateCampaign(r.Context(), change(r, a), id, sp)
		reply(w, http.StatusOK, c, err)
	})
	h("POST /api/v1/campaigns/{id}/status", manage, func(w http.ResponseWriter, r *http.Request, a Actor) {
		id, ok := pathID(w, r)
		var body struct {
			Status Status `json:"status"`
			Note   string `json:"note"`
		}
		if !ok || !readJSON(w, r, &body) {
			return
		}
		c := change(r, a)
		c.Note = body.Note
		cp, err := s.SetStatus(r.Context(), c, id, body.Status)
		reply(w, http.StatusOK, cp, err)
	})
	h("POST /api/v1/campaigns/{id}/imports", manage, func(w http.ResponseWriter, r *http.Request, a Actor) {
		id, ok := pathID(w, r)
		if !ok {
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxFileBytes+1<<20)
		file, _, err := r.FormFile("file")
		if err != nil {
			writeErr(w, http.StatusBadRequest, fmt.Errorf("%w: want a multipart form with the CSV in field \"file\": %v", ErrInvalid, err))
			return
		}
		defer file.Close()
		data, err := io.ReadAll(file)
		if err != nil {
			writeErr(w, http.StatusBadRequest, fmt.Errorf("%w: %v", ErrUnreadableFile, err))
			return
		}
		rep, err := s.Import(r.Context(), change(r, a), id, data)
		reply(w, http.StatusOK, rep, err)
	})
	h("GET /api/v1/campaigns/{id}/results", read, func(w http.ResponseWriter, r *http.Request, a Actor) {
		id, ok := pathID(w, r)
		if !ok {
			return
		}
		res, err := s.Results(r.Context(), id)
		reply(w, http.StatusOK, res, err)
	})
	h("GET /api/v1/campaigns/{id}/export", read, func(w http.ResponseWriter, r *http.Request, a Actor) {
		c, ok := s.campaignFor(w, r, a)
		if !ok {
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=\"campaign-%d.csv\"", c.ID))
		if err := s.Export(r.Context(), c.ID, w); err != nil {
			// Headers are gone; the truncated body is all we can do.
			s.log.Error("export", "campaign", c.ID, "err", err)
		}
	})
	h("POST /api/v1/campaigns/{id}/next", queue, func(w http.ResponseWriter, r *http.Request, a Actor) {
		id, ok := pathID(w, r)
		if !ok {
			return
		}
		l, err := s.Next(r.Context(), a.Extension(), id)
		switch {
		case errors.Is(err, ErrNoContact):
			w.WriteHeader(http.StatusNoContent)
		case errors.Is(err, ErrDispositionRequired):
			writeJSON(w, http.StatusConflict, map[string]any{"error": err.Error(), "lease": l})
		default:
			reply(w, http.StatusOK, l, err)
		}
	})
	h("POST /api/v1/contacts/{id}/skip", queue, func(w http.ResponseWriter, r *http.Request, a Actor) {
		id, ok := pathID(w, r)
		var body struct {
			Reason string `json:"reason"`
		}
		if !ok || !readJSON(w, r, &body) {
			return
		}
		reply(w, http.StatusNoContent, nil, s.Skip(r.Context(), change(r, a), id, body.Reason))
	})
	h("POST /api/v1/contacts/{id}/release", queue, func(w http.ResponseWriter, r *http.Request, a Actor) {
		id, ok := pathID(w, r)
		if ok {
			reply(w, http.StatusNoContent, nil, s.Release(r.Context(), a.Extension(), id))
		}
	})
	h("POST /api/v1/contacts/{id}/dispose", queue, func(w http.ResponseWriter, r *http.Request, a Actor) {
		id, ok := pathID(w, r)
		var req DisposeRequest
		if !ok || !readJSON(w, r, &req) {
			return
		}
		ct, err := s.Dispose(r.Context(), change(r, a), id, req)
		reply(w, http.StatusOK, ct, err)
	})
	h("POST /api/v1/contacts/{id}/correct", []string{roleOperator, roleSupervisor, roleAdmin}, func(w http.ResponseWriter, r *http.Request, a Actor) {
		id, ok := pathID(w, r)
		var req DisposeRequest
		if !ok || !readJSON(w, r, &req) {
			return
		}
		ct, err := s.CorrectOutcome(r.Context(), change(r, a), id, req)
		reply(w, http.StatusOK, ct, err)
	})
	h("POST /api/v1/contacts/{id}/open", queue, func(w http.ResponseWriter, r *http.Request, a Actor) {
		id, ok := pathID(w, r)
		if !ok {
			return
		}
		l, err := s.OpenCallback(r.Context(), a.Extension(), id)
		reply(w, http.StatusOK, l, err)
	})
	h("GET /api/v1/campaigns/{id}/queue", queue, func(w http.ResponseWriter, r *http.Request, a Actor) {
		c, ok := s.campaignFor(w, r, a)
		if !ok {
			return
		}
		q, err := s.QueueState(r.Context(), c.ID, a.Extension())
		reply(w, http.StatusOK, q, err)
	})
}

// ClickToCall starts a call to a contact operator holds: the contact
// leaves the queue (BeginCall), the CallFunc dials, and its report records
// the attempt. A call that cannot start is recorded as failed; either way
// the operator then owes a disposition.
func (s *Service) ClickToCall(ctx context.Context, operator string, contactID int64) (Contact, error) {
	if s.call == nil {
		return Contact{}, errors.New("click-to-call is not enabled")
	}
	ct, err := s.BeginCall(ctx, operator, contactID)
	if err != nil {
		return ct, err
	}
	report := func(o Outcome, status int, callID string) {
		// The call outlives the request: record with a context of its own.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := s.RecordAttempt(rctx, Attempt{ContactID: ct.ID, Operator: operator, Outcome: o, SIPStatus: status, CallID: callID}); err != nil {
			s.log.Error("record attempt", "contact", ct.ID, "err", err)
		}
	}
	if err := s.call(ctx, operator, ct.E164, report); err != nil {
		report(Failed, 0, "")
		return ct, fmt.Errorf("call contact %d: %w", ct.ID, err)
	}
	return ct, nil
}

// campaignFor loads the {id} campaign; an operator sees only an active
// campaign assigned to them (others answer 404, not to reveal them).
func (s *Service) campaignFor(w http.ResponseWriter, r *http.Request, a Actor) (Campaign, bool) {
	id, ok := pathID(w, r)
	if !ok {
		return Campaign{}, false
	}
	c, err := s.Campaign(r.Context(), id)
	if err == nil && a.Role() == roleOperator && (c.Status != Active || !c.Assigned(a.Extension())) {
		err = fmt.Errorf("campaign %d: %w", id, ErrNotFound)
	}
	if err != nil {
		writeErr(w, 0, err)
		return c, false
	}
	return c, true
}

func pathID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("%w: id %q is not a positive integer", ErrInvalid, r.PathValue("id")))
		return 0, false
	}
	return id, true
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("%w: JSON body: %v", ErrInvalid, err))
		return false
	}
	return true
}

func reply(w http.ResponseWriter, code int, v any, err error) {
	if err != nil {
		writeErr(w, 0, err)
		return
	}
	if code == http.StatusNoContent {
		w.WriteHeader(code)
		return
	}
	writeJSON(w, code, v)
}

func writeErr(w http.ResponseWriter, code int, err error) {
	if code == 0 {
		code = statusOf(err)
	}
	msg := err.Error()
	if code == http.StatusInternalServerError {
		msg = "internal error" // details go to the log, not to the browser
	}
	out := map[string]string{"error": msg}
	if c := codeOf(err); c != "" {
		out["code"] = c
	}
	// A callback outside the hours says when calling opens next.
	var ch *CallbackHoursError
	if errors.As(err, &ch) && !ch.Next.IsZero() {
		out["next_open"] = ch.Next.Format(time.RFC3339)
	}
	writeJSON(w, code, out)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
