package web

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"plateau/audit"
	"plateau/policy"
	"plateau/store"
)

// storeError maps the store's refusals to a status and a catalogue code,
// so the officer reads the rule in their language, not a Go error.
func storeError(err error) (int, string) {
	switch {
	case errors.Is(err, store.ErrSelfApproval):
		return http.StatusForbidden, "self_approval"
	case errors.Is(err, store.ErrNotApprover):
		return http.StatusForbidden, "not_approver"
	case errors.Is(err, store.ErrNotProposed):
		return http.StatusConflict, "not_proposed"
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, "not_found"
	case errors.Is(err, store.ErrNoSelection):
		return http.StatusBadRequest, "no_selection"
	case errors.Is(err, store.ErrInvalidE164):
		return http.StatusBadRequest, "invalid_e164"
	case errors.Is(err, store.ErrUserInactive):
		return http.StatusForbidden, "user_inactive"
	case errors.Is(err, store.ErrNotApproved):
		return http.StatusConflict, "not_approved"
	case errors.Is(err, store.ErrValidityPast):
		return http.StatusBadRequest, "validity_past"
	}
	return http.StatusInternalServerError, "internal"
}

// decideAllowlist approves or rejects a selection as the current user.
func (a *App) decideAllowlist(r *http.Request, approve bool, sel store.Selection, note string) ([]store.AllowEntry, error) {
	u, _ := CurrentUser(r)
	c := store.Change{By: u.Extension, Source: "web " + clientIP(r), At: a.now(), Note: note}
	if approve {
		return a.deps.Store.ApproveAllowlist(r.Context(), c, sel)
	}
	if sel.All || sel.Campaign != "" {
		// RejectAllowlist takes ids: resolve the selection first.
		es, err := a.deps.Store.Allowlist(r.Context(), store.AllowFilter{Status: store.AllowProposed, Campaign: sel.Campaign})
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			sel.IDs = append(sel.IDs, e.ID)
		}
		if len(sel.IDs) == 0 {
			return nil, fmt.Errorf("reject: %w", store.ErrNoSelection)
		}
	}
	return a.deps.Store.RejectAllowlist(r.Context(), c, sel.IDs)
}

type allowlistData struct {
	DNC      []store.DNCEntry
	Proposed []store.AllowEntry
	History  []store.AllowEntry
	Status   string
	Statuses []string
	// A refused validity end: the entry, what was typed and why, shown
	// next to that entry's field.
	ValidityID    int64
	ValidityValue string
	ValidityErr   string
}

func (a *App) allowlistPage(w http.ResponseWriter, r *http.Request) {
	a.showAllowlist(w, r, http.StatusOK, "", "")
}

func (a *App) showAllowlist(w http.ResponseWriter, r *http.Request, status int, flash, errMsg string) {
	a.showAllowlistWith(w, r, status, flash, errMsg, nil)
}

// showAllowlistWith renders the page after fix has set the field errors.
func (a *App) showAllowlistWith(w http.ResponseWriter, r *http.Request, status int, flash, errMsg string, fix func(*allowlistData)) {
	ctx := r.Context()
	proposed, err := a.deps.Store.Allowlist(ctx, store.AllowFilter{Status: store.AllowProposed})
	if err != nil {
		a.internal(w, r, err)
		return
	}
	st := r.URL.Query().Get("status")
	if !store.ValidAllowStatus(store.AllowStatus(st)) {
		st = ""
	}
	hist, err := a.deps.Store.Allowlist(ctx, store.AllowFilter{Status: store.AllowStatus(st)})
	if err != nil {
		a.internal(w, r, err)
		return
	}
	// Newest first, the proposals already have their own table.
	var h []store.AllowEntry
	for i := len(hist) - 1; i >= 0 && len(h) < 500; i-- {
		if st != "" || hist[i].Status != store.AllowProposed {
			h = append(h, hist[i])
		}
	}
	d := allowlistData{DNC: a.dncRows(r), Proposed: proposed, History: h, Status: st,
		Statuses: []string{"approved", "rejected", "revoked", "proposed"}}
	if fix != nil {
		fix(&d)
	}
	v := a.newView(r, "allowlist.title", d)
	v.Flash, v.Error = flash, errMsg
	a.render(w, r, status, "allowlist", v)
}

func (a *App) allowlistDecide(w http.ResponseWriter, r *http.Request) {
	lang := langOf(r)
	var sel store.Selection
	if r.PostFormValue("scope") == "all" {
		sel.All = true
	} else {
		for _, s := range r.PostForm["id"] {
			id, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				a.showAllowlist(w, r, http.StatusBadRequest, "", T(lang, "err.bad_request"))
				return
			}
			sel.IDs = append(sel.IDs, id)
		}
	}
	action := r.PostFormValue("action")
	// A row's own buttons decide on that row alone, whatever is ticked.
	for _, one := range []string{"approve", "reject"} {
		if s := r.PostFormValue(one + "_one"); s != "" {
			id, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				a.showAllowlist(w, r, http.StatusBadRequest, "", T(lang, "err.bad_request"))
				return
			}
			action, sel = one, store.Selection{IDs: []int64{id}}
		}
	}
	approve := action == "approve"
	if !approve && action != "reject" {
		a.showAllowlist(w, r, http.StatusBadRequest, "", T(lang, "err.bad_request"))
		return
	}
	// A selection (all, or ticked rows) decides on others' proposals and
	// leaves the officer's own, saying so: the two-person rule is the
	// store's, which refuses a whole selection holding one. A row's own
	// button on one's own proposal still gets the store's refusal.
	own := 0
	if sel.All || len(sel.IDs) > 1 {
		var err error
		if sel, own, err = a.othersProposals(r, sel); err != nil {
			a.internal(w, r, err)
			return
		}
		if len(sel.IDs) == 0 {
			msg := T(lang, "allowlist.nothing_selected")
			if own > 0 {
				msg = T(lang, "allowlist.only_own", own)
			}
			a.showAllowlist(w, r, http.StatusBadRequest, "", msg)
			return
		}
	}
	es, err := a.decideAllowlist(r, approve, sel, strings.TrimSpace(r.PostFormValue("note")))
	if err != nil {
		status, code := storeError(err)
		if status == http.StatusInternalServerError {
			a.internal(w, r, err)
			return
		}
		a.showAllowlist(w, r, status, "", T(lang, "err."+code))
		return
	}
	key := "allowlist.approved_n"
	if !approve {
		key = "allowlist.rejected_n"
	}
	flash := T(lang, key, len(es))
	if own > 0 {
		flash += " " + T(lang, "allowlist.own_left", own)
	}
	a.showAllowlist(w, r, http.StatusOK, flash, "")
}

// othersProposals narrows a selection to the pending proposals of other
// people, counting the current user's own it left out.
func (a *App) othersProposals(r *http.Request, sel store.Selection) (store.Selection, int, error) {
	u, _ := CurrentUser(r)
	proposed, err := a.deps.Store.Allowlist(r.Context(), store.AllowFilter{Status: store.AllowProposed})
	if err != nil {
		return sel, 0, err
	}
	asked := map[int64]bool{}
	for _, id := range sel.IDs {
		asked[id] = true
	}
	out, own := store.Selection{IDs: []int64{}}, 0
	for _, e := range proposed {
		if !sel.All && !asked[e.ID] {
			continue
		}
		delete(asked, e.ID)
		if e.ProposedBy == u.Extension {
			own++
			continue
		}
		out.IDs = append(out.IDs, e.ID)
	}
	// Ticked ids no longer proposed go to the store, which names them.
	for id := range asked {
		out.IDs = append(out.IDs, id)
	}
	return out, own, nil
}

// allowlistCSV exports the whole allowlist history (every state), audited.
func (a *App) allowlistCSV(w http.ResponseWriter, r *http.Request) {
	es, err := a.deps.Store.Allowlist(r.Context(), store.AllowFilter{})
	if err != nil {
		a.internal(w, r, err)
		return
	}
	u, _ := CurrentUser(r)
	a.audit(r.Context(), audit.Entry{Kind: "allowlist.export", Actor: u.Extension, Outcome: "ok",
		Source: "web " + clientIP(r), Details: map[string]any{"entries": len(es)}})
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="allowlist-%s.csv"`, a.now().In(a.deps.Location).Format("2006-01-02")))
	cw := csv.NewWriter(w)
	cw.Write([]string{"id", "number", "label", "campaign", "status", "proposed_by", "proposed_at", "decided_by",
		"decided_at", "revoked_by", "revoked_at", "valid_from", "valid_until", "note"})
	lt := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.In(a.deps.Location).Format(time.RFC3339)
	}
	for _, e := range es {
		cw.Write([]string{strconv.FormatInt(e.ID, 10), e.E164, csvText(e.Label), csvText(e.Campaign), string(e.Status),
			csvText(e.ProposedBy), lt(e.ProposedAt), csvText(e.DecidedBy), lt(e.DecidedAt), csvText(e.RevokedBy),
			lt(e.RevokedAt), lt(e.ValidFrom), lt(e.ValidUntil), csvText(e.Note)})
	}
	cw.Flush()
}

// csvText defuses spreadsheet formulas in free text (as the CLI's export
// does); numbers are E.164 and left alone.
func csvText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// auditFilter reads kind, actor, subject, since and until (dates in the
// site's time zone, until inclusive), limit and offset.
func (a *App) auditFilter(r *http.Request) (audit.Filter, error) {
	q := r.URL.Query()
	f := audit.Filter{Kind: strings.TrimSpace(q.Get("kind")), Actor: strings.TrimSpace(q.Get("actor")),
		Subject: strings.TrimSpace(q.Get("subject")), Limit: 50}
	var err error
	if f.Since, err = a.parseDay(q.Get("since")); err != nil {
		return f, err
	}
	if f.Until, err = a.parseDay(q.Get("until")); err != nil {
		return f, err
	}
	if !f.Until.IsZero() {
		f.Until = f.Until.AddDate(0, 0, 1)
	}
	if s := q.Get("limit"); s != "" {
		if f.Limit, err = strconv.Atoi(s); err != nil || f.Limit < 1 || f.Limit > 1000 {
			return f, fmt.Errorf("limit %q: want 1 to 1000", s)
		}
	}
	if s := q.Get("offset"); s != "" {
		if f.Offset, err = strconv.Atoi(s); err != nil || f.Offset < 0 {
			return f, fmt.Errorf("offset %q: want 0 or more", s)
		}
	}
	return f, nil
}

func (a *App) parseDay(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	// The date picker sends 2006-01-02; a date typed the French way
	// (no picker, or pasted) is 02/01/2006.
	for _, layout := range []string{"2006-01-02", "02/01/2006", "2/1/2006"} {
		if t, err := time.ParseInLocation(layout, s, a.deps.Location); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("date %q: want DD/MM/YYYY", s)
}

type auditData struct {
	Records    []audit.Record
	Report     audit.Report
	Heads      string // noted heads to check, as typed
	HeadsOK    bool   // every noted head is still in the chain
	Kind       string
	Actor      string
	Subject    string
	Since      string
	Until      string
	Kinds      []string
	Offset     int
	Limit      int
	PrevOffset int
	NextOffset int
	HasNext    bool
}

func (a *App) auditPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := auditData{Kind: q.Get("kind"), Actor: q.Get("actor"), Subject: q.Get("subject"), Since: q.Get("since"),
		Until: q.Get("until"), Kinds: a.auditKindChoices(r.Context(), langOf(r))}
	v := a.newView(r, "audit.title", &d)
	f, err := a.auditFilter(r)
	status := http.StatusOK
	if err != nil {
		v.Error, status = v.T("err.bad_filter")+" "+v.LocalDetail(err.Error()), http.StatusBadRequest
	} else {
		f.Limit++ // one more tells whether there is a next page
		if d.Records, err = a.deps.Audit.List(r.Context(), f); err != nil {
			a.internal(w, r, err)
			return
		}
		f.Limit--
		if len(d.Records) > f.Limit {
			d.Records, d.HasNext = d.Records[:f.Limit], true
		}
		d.Offset, d.Limit, d.NextOffset, d.PrevOffset = f.Offset, f.Limit, f.Offset+f.Limit, max(f.Offset-f.Limit, 0)
	}
	d.Heads = strings.TrimSpace(q.Get("heads"))
	heads, herr := parseHeads(strings.Fields(d.Heads))
	if herr != nil {
		v.Error, status = v.T("err.bad_head")+" "+herr.Error(), http.StatusBadRequest
	}
	if d.Report, err = a.deps.Audit.VerifyHeads(r.Context(), heads); err != nil {
		a.internal(w, r, err)
		return
	}
	d.HeadsOK = len(heads) > 0 && d.Report.OK
	a.render(w, r, status, "audit", v)
}

// parseHeads reads heads noted from `plateau audit verify` or this page,
// each SEQ:SHA256.
func parseHeads(in []string) ([]audit.Head, error) {
	var heads []audit.Head
	for _, s := range in {
		h, err := audit.ParseHead(s)
		if err != nil {
			return nil, err
		}
		heads = append(heads, h)
	}
	return heads, nil
}

// refusedCall is one refused policy decision.
type refusedCall struct {
	Time     time.Time `json:"time"`
	Operator string    `json:"operator"`
	Number   string    `json:"number"`
	Dialled  string    `json:"dialled,omitempty"`
	Reason   string    `json:"reason"`
	Rule     string    `json:"rule,omitempty"`
	Detail   string    `json:"detail,omitempty"`
	Source   string    `json:"source,omitempty"`
}

// refusedCalls reads policy.decision entries with outcome refused, newest
// first, up to limit, scanning at most maxScan entries of the window.
func (a *App) refusedCalls(ctx context.Context, since, until time.Time, limit int) ([]refusedCall, error) {
	const page, maxScan = 500, 50000
	var out []refusedCall
	for off := 0; off < maxScan && len(out) < limit; off += page {
		recs, err := a.deps.Audit.List(ctx, audit.Filter{Kind: "policy.decision", Since: since, Until: until, Limit: page, Offset: off})
		if err != nil {
			return nil, err
		}
		for _, rec := range recs {
			if rec.Entry.Outcome != "refused" || len(out) >= limit {
				continue
			}
			str := func(k string) string { s, _ := rec.Entry.Details[k].(string); return s }
			out = append(out, refusedCall{Time: rec.Time, Operator: rec.Entry.Actor, Number: rec.Entry.Subject,
				Dialled: str("dialled"), Reason: rec.Entry.Reason, Rule: str("rule"), Detail: str("detail"), Source: rec.Entry.Source})
		}
		if len(recs) < page {
			break
		}
	}
	return out, nil
}

type refusedData struct {
	Calls        []refusedCall
	Since, Until string
}

func (a *App) refusedPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := refusedData{Since: q.Get("since"), Until: q.Get("until")}
	v := a.newView(r, "refused.title", &d)
	since, err1 := a.parseDay(d.Since)
	until, err2 := a.parseDay(d.Until)
	if err := errors.Join(err1, err2); err != nil {
		v.Error = v.T("err.bad_filter") + " " + err.Error()
		a.render(w, r, http.StatusBadRequest, "refused", v)
		return
	}
	if !until.IsZero() {
		until = until.AddDate(0, 0, 1)
	}
	calls, err := a.refusedCalls(r.Context(), since, until, 500)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	d.Calls = calls
	a.render(w, r, http.StatusOK, "refused", v)
}

// simulation is the simulator's answer.
type simulation struct {
	Operator string    `json:"operator"`
	Number   string    `json:"number"`
	At       time.Time `json:"at"`
	Allow    bool      `json:"allow"`
	Reason   string    `json:"reason"`
	Rule     string    `json:"rule"`
	Detail   string    `json:"detail,omitempty"`
	E164     string    `json:"e164,omitempty"`
	// LiveFacts: the concurrency limits and the recorder are read as they
	// are now, whatever the simulated time.
	LiveFacts string `json:"live_facts"`
}

// simulate asks the policy engine, as if the call were dialled at at. The
// engine only reads; the simulation itself is audited.
func (a *App) simulate(r *http.Request, op, number string, at time.Time) simulation {
	d := a.deps.Policy.Decide(r.Context(), policy.Request{Operator: op, Number: number, Time: at,
		Source: "web-simulator", Kind: policy.KindOutbound})
	u, _ := CurrentUser(r)
	outcome := "refused"
	if d.Allow {
		outcome = "allowed"
	}
	a.audit(r.Context(), audit.Entry{Kind: "policy.simulate", Actor: u.Extension, Subject: number, Outcome: outcome,
		Reason: d.Reason, Source: "web " + clientIP(r), Details: map[string]any{"operator": op, "at": at.UTC().Format(time.RFC3339), "rule": d.Rule}})
	return simulation{Operator: op, Number: number, At: at, Allow: d.Allow, Reason: d.Reason, Rule: d.Rule,
		Detail: d.Detail, E164: d.E164, LiveFacts: T(langOf(r), "simulate.live_facts")}
}

type simulateData struct {
	Operator, Number, Date, Time string
	Result                       *simulation
	Operators                    []store.User
}

func (a *App) simulatePage(w http.ResponseWriter, r *http.Request) {
	now := a.now().In(a.deps.Location)
	d := simulateData{Date: now.Format("2006-01-02"), Time: now.Format("15:04")}
	v := a.newView(r, "simulate.title", &d)
	if users, err := a.deps.Store.Users(r.Context()); err == nil {
		for _, u := range users {
			if u.Role == store.RoleOperator {
				d.Operators = append(d.Operators, u)
			}
		}
	}
	if r.Method != http.MethodPost {
		a.render(w, r, http.StatusOK, "simulate", v)
		return
	}
	d.Operator = strings.TrimSpace(r.PostFormValue("operator"))
	d.Number = strings.TrimSpace(r.PostFormValue("number"))
	d.Date, d.Time = r.PostFormValue("date"), r.PostFormValue("time")
	at, err := a.parseLocal(d.Date, d.Time)
	if err != nil || d.Operator == "" || d.Number == "" {
		v.Error = v.T("simulate.invalid")
		a.render(w, r, http.StatusBadRequest, "simulate", v)
		return
	}
	// The field is the téléopérateur's: another role's extension (a
	// supervisor's may call out) would answer a question nobody asked.
	if u, err := a.deps.Store.User(r.Context(), d.Operator); err == nil && u.Role != store.RoleOperator {
		v.Error = v.T("simulate.not_operator", d.Operator, v.RoleName(u.Role))
		a.render(w, r, http.StatusBadRequest, "simulate", v)
		return
	}
	res := a.simulate(r, d.Operator, d.Number, at)
	d.Result = &res
	a.render(w, r, http.StatusOK, "simulate", v)
}

// parseLocal reads a date (YYYY-MM-DD) and a time (HH:MM or HH:MM:SS) in
// the site's time zone.
func (a *App) parseLocal(date, clock string) (time.Time, error) {
	date, clock = strings.TrimSpace(date), strings.TrimSpace(clock)
	layout := "2006-01-02 15:04"
	if strings.Count(clock, ":") == 2 {
		layout += ":05"
	}
	return time.ParseInLocation(layout, date+" "+clock, a.deps.Location)
}

func (a *App) internal(w http.ResponseWriter, r *http.Request, err error) {
	a.log.Error("web request failed", "path", r.URL.Path, "err", err)
	WriteError(w, r, http.StatusInternalServerError, "internal", nil)
}
