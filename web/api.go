package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"plateau/store"
)

func (a *App) apiMe(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	writeJSON(w, http.StatusOK, map[string]any{"extension": u.Extension, "display_name": u.DisplayName,
		"role": string(u.Role), "home": homeOf(u.Role), "lang": langOf(r)})
}

func (a *App) apiMyRegistration(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	reg, err := a.myRegistration(r.Context(), u)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, reg)
}

func (a *App) apiOperators(w http.ResponseWriter, r *http.Request) {
	ops, err := a.operatorsState(r.Context())
	if err != nil {
		a.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"operators": ops})
}

// allowEntry is the JSON form of an allowlist entry.
type allowEntry struct {
	ID         int64      `json:"id"`
	E164       string     `json:"e164"`
	Label      string     `json:"label,omitempty"`
	Campaign   string     `json:"campaign,omitempty"`
	Status     string     `json:"status"`
	ProposedBy string     `json:"proposed_by"`
	ProposedAt time.Time  `json:"proposed_at"`
	DecidedBy  string     `json:"decided_by,omitempty"`
	DecidedAt  *time.Time `json:"decided_at,omitempty"`
	RevokedBy  string     `json:"revoked_by,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	ValidFrom  time.Time  `json:"valid_from"`
	ValidUntil *time.Time `json:"valid_until,omitempty"`
	Note       string     `json:"note,omitempty"`
}

func opt(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func toAllowEntries(es []store.AllowEntry) []allowEntry {
	out := make([]allowEntry, 0, len(es))
	for _, e := range es {
		out = append(out, allowEntry{ID: e.ID, E164: e.E164, Label: e.Label, Campaign: e.Campaign, Status: string(e.Status),
			ProposedBy: e.ProposedBy, ProposedAt: e.ProposedAt, DecidedBy: e.DecidedBy, DecidedAt: opt(e.DecidedAt),
			RevokedBy: e.RevokedBy, RevokedAt: opt(e.RevokedAt), ValidFrom: e.ValidFrom, ValidUntil: opt(e.ValidUntil), Note: e.Note})
	}
	return out
}

func (a *App) apiAllowlist(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.AllowFilter{Status: store.AllowStatus(q.Get("status")), Campaign: q.Get("campaign"), E164: q.Get("number")}
	if f.Status != "" && !store.ValidAllowStatus(f.Status) {
		WriteError(w, r, http.StatusBadRequest, "bad_request", fmt.Errorf("status %q is not proposed, approved, rejected or revoked", f.Status))
		return
	}
	es, err := a.deps.Store.Allowlist(r.Context(), f)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": toAllowEntries(es)})
}

// decisionRequest selects entries: ids, a campaign, or all (exactly one).
type decisionRequest struct {
	IDs      []int64 `json:"ids"`
	Campaign string  `json:"campaign"`
	All      bool    `json:"all"`
	Note     string  `json:"note"`
}

// validityRequest is the body of POST /api/v1/allowlist/{id}/validity.
type validityRequest struct {
	ValidUntil time.Time `json:"valid_until"` // RFC 3339: the entry stops allowing calls then
	Note       string    `json:"note"`
}

// apiAllowlistValidity sets or changes the end of an approved entry
// (store.SetAllowlistValidity: audited allowlist.validity).
func (a *App) apiAllowlistValidity(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		WriteError(w, r, http.StatusNotFound, "not_found", nil)
		return
	}
	var req validityRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	e, err := a.deps.Store.SetAllowlistValidity(r.Context(), a.change2(r, req.Note), id, req.ValidUntil)
	if err != nil {
		status, code := storeError(err)
		if status == http.StatusInternalServerError {
			a.internal(w, r, err)
			return
		}
		WriteError(w, r, status, code, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"entry": toAllowEntries([]store.AllowEntry{e})[0]})
}

func (a *App) apiAllowlistApprove(w http.ResponseWriter, r *http.Request) { a.apiDecide(w, r, true) }
func (a *App) apiAllowlistReject(w http.ResponseWriter, r *http.Request)  { a.apiDecide(w, r, false) }

func (a *App) apiDecide(w http.ResponseWriter, r *http.Request, approve bool) {
	var req decisionRequest
	if err := readJSON(r, &req); err != nil {
		WriteError(w, r, http.StatusBadRequest, "bad_request", err)
		return
	}
	es, err := a.decideAllowlist(r, approve, store.Selection{IDs: req.IDs, Campaign: req.Campaign, All: req.All}, req.Note)
	if err != nil {
		status, code := storeError(err)
		if status == http.StatusInternalServerError {
			a.internal(w, r, err)
			return
		}
		WriteError(w, r, status, code, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": toAllowEntries(es)})
}

// auditRecord is the JSON form of an audit entry.
type auditRecord struct {
	Seq     int64          `json:"seq"`
	Time    time.Time      `json:"time"`
	Kind    string         `json:"kind"`
	Actor   string         `json:"actor,omitempty"`
	Subject string         `json:"subject,omitempty"`
	Outcome string         `json:"outcome,omitempty"`
	Reason  string         `json:"reason,omitempty"`
	Source  string         `json:"source,omitempty"`
	Details map[string]any `json:"details,omitempty"`
	Hash    string         `json:"hash"`
}

func (a *App) apiAudit(w http.ResponseWriter, r *http.Request) {
	f, err := a.auditFilter(r)
	if err != nil {
		WriteError(w, r, http.StatusBadRequest, "bad_filter", err)
		return
	}
	recs, err := a.deps.Audit.List(r.Context(), f)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	out := make([]auditRecord, 0, len(recs))
	for _, rec := range recs {
		e := rec.Entry
		out = append(out, auditRecord{Seq: rec.Seq, Time: rec.Time, Kind: e.Kind, Actor: e.Actor, Subject: e.Subject,
			Outcome: e.Outcome, Reason: e.Reason, Source: e.Source, Details: e.Details, Hash: rec.Hash})
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": out})
}

// apiAuditVerify checks the chain and, with ?head=SEQ:SHA256 (repeatable),
// heads noted earlier.
func (a *App) apiAuditVerify(w http.ResponseWriter, r *http.Request) {
	heads, err := parseHeads(r.URL.Query()["head"])
	if err != nil {
		WriteError(w, r, http.StatusBadRequest, "bad_head", err)
		return
	}
	rep, err := a.deps.Audit.VerifyHeads(r.Context(), heads)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	body := map[string]any{"ok": rep.OK, "entries": rep.Entries, "head": rep.Head, "head_seq": rep.HeadSeq}
	if !rep.OK {
		body["broken_at"], body["problem"] = rep.BrokenAt, rep.Problem
	}
	writeJSON(w, http.StatusOK, body)
}

func (a *App) apiRefused(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, err1 := a.parseDay(q.Get("since"))
	until, err2 := a.parseDay(q.Get("until"))
	if err := errors.Join(err1, err2); err != nil {
		WriteError(w, r, http.StatusBadRequest, "bad_filter", err)
		return
	}
	if !until.IsZero() {
		until = until.AddDate(0, 0, 1)
	}
	calls, err := a.refusedCalls(r.Context(), since, until, 1000)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	if calls == nil {
		calls = []refusedCall{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"refused": calls})
}

// simulateRequest: time is RFC 3339, or "YYYY-MM-DDTHH:MM" in the site's
// time zone; empty means now.
type simulateRequest struct {
	Operator string `json:"operator"`
	Number   string `json:"number"`
	Time     string `json:"time"`
}

func (a *App) apiSimulate(w http.ResponseWriter, r *http.Request) {
	var req simulateRequest
	if err := readJSON(r, &req); err != nil {
		WriteError(w, r, http.StatusBadRequest, "bad_request", err)
		return
	}
	if strings.TrimSpace(req.Operator) == "" || strings.TrimSpace(req.Number) == "" {
		WriteError(w, r, http.StatusBadRequest, "bad_request", errors.New("operator and number are required"))
		return
	}
	at := a.now()
	if req.Time != "" {
		t, err := time.Parse(time.RFC3339, req.Time)
		if err != nil {
			d, c, _ := strings.Cut(req.Time, "T")
			if t, err = a.parseLocal(d, c); err != nil {
				WriteError(w, r, http.StatusBadRequest, "bad_request", fmt.Errorf("time %q: want RFC 3339 or YYYY-MM-DDTHH:MM", req.Time))
				return
			}
		}
		at = t
	}
	writeJSON(w, http.StatusOK, a.simulate(r, strings.TrimSpace(req.Operator), strings.TrimSpace(req.Number), at))
}

func (a *App) apiUsers(w http.ResponseWriter, r *http.Request) {
	users, err := a.deps.Store.Users(r.Context())
	if err != nil {
		a.internal(w, r, err)
		return
	}
	out := make([]userView, 0, len(users))
	for _, u := range users {
		out = append(out, toUserView(u))
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": out})
}

func (a *App) apiUserStatus(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Reason string `json:"reason"`
	}
	if r.ContentLength != 0 && !decodeJSON(w, r, &body) {
		return
	}
	status, code, err := a.setUserStatus(r, r.PathValue("ext"), r.PathValue("action"), body.Reason)
	if code != "" {
		if status == http.StatusInternalServerError {
			a.internal(w, r, err)
			return
		}
		WriteError(w, r, status, code, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"extension": r.PathValue("ext"), "action": r.PathValue("action")})
}

// readJSON decodes a small JSON body strictly.
func readJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("JSON body: %w", err)
	}
	return nil
}
