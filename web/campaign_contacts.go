package web

import (
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"plateau/audit"
	"plateau/dialer"
	"plateau/store"
)

// The supervisor's contact list of a campaign (who was skipped and why,
// why a contact is not offered, outcome corrections, callback
// reassignment) and the client export a French client opens in a
// spreadsheet. Nothing here ranks operators: the list names who holds a
// callback because the supervisor must reassign it, not to compare people.

func (a *App) contactPages() {
	page := func(pattern string, h http.HandlerFunc) {
		a.mux.Handle(pattern, RequireRole(supervisor...)(h))
	}
	page("GET /supervisor/campaigns/{id}/contacts", a.contactsPage)
	page("POST /supervisor/campaigns/{id}/contacts/{cid}/correct", a.contactCorrectForm)
	page("POST /supervisor/campaigns/{id}/contacts/{cid}/callback", a.contactReassignForm)
	page("GET /supervisor/campaigns/{id}/export.csv", a.clientExport)
}

type contactsData struct {
	Campaign dialer.Campaign
	Rows     []dialer.ContactRow
	Filter   string // "", blocked, skipped, callbacks, done
	Filters  []string
	Takers   []string // active operators of the campaign, for a callback
}

func (a *App) contactsPage(w http.ResponseWriter, r *http.Request) {
	a.showContacts(w, r, http.StatusOK, "", "")
}

func (a *App) showContacts(w http.ResponseWriter, r *http.Request, status int, flash, errMsg string) {
	id, ok := pathCampaign(w, r)
	if !ok {
		return
	}
	c, err := a.deps.Dialer.Campaign(r.Context(), id)
	if errors.Is(err, dialer.ErrNotFound) {
		WriteError(w, r, http.StatusNotFound, "not_found", nil)
		return
	}
	if err != nil {
		a.internal(w, r, err)
		return
	}
	rows, err := a.deps.Dialer.ContactList(r.Context(), id)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	f := r.URL.Query().Get("show")
	keep := func(cr dialer.ContactRow) bool {
		switch f {
		case "blocked":
			return cr.Blocked != ""
		case "skipped":
			return cr.SkipReason != ""
		case "callbacks":
			return cr.CallbackBy != "" && cr.State == "open"
		case "done":
			return cr.State == "done"
		}
		return true
	}
	rows = slices.DeleteFunc(rows, func(cr dialer.ContactRow) bool { return !keep(cr) })
	// A callback goes to an active operator of the campaign.
	var active []string
	if us, err := a.deps.Store.Users(r.Context()); err == nil {
		for _, u := range us {
			if u.Status == store.StatusActive && c.Assigned(u.Extension) {
				active = append(active, u.Extension)
			}
		}
	}
	d := contactsData{Campaign: c, Rows: rows, Filter: f, Filters: []string{"blocked", "skipped", "callbacks", "done"}, Takers: active}
	v := a.newView(r, "contacts.title", d)
	v.Flash, v.Error = flash, errMsg
	a.render(w, r, status, "campaign_contacts", v)
}

func pathContact(r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("cid"), 10, 64)
	return id, err == nil && id > 0
}

// contactCorrectForm is the supervisor's outcome correction (the dialer's
// CorrectOutcome: audited, refused while the contact is being called).
func (a *App) contactCorrectForm(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	lang := langOf(r)
	cid, ok := pathContact(r)
	if !ok {
		WriteError(w, r, http.StatusNotFound, "not_found", nil)
		return
	}
	req := dialer.DisposeRequest{Disposition: r.PostFormValue("disposition"), Notes: r.PostFormValue("notes")}
	if s := strings.TrimSpace(r.PostFormValue("callback_at")); s != "" {
		t, err := time.ParseInLocation("2006-01-02T15:04", s, a.deps.Location)
		if err != nil {
			a.showContacts(w, r, http.StatusBadRequest, "", T(lang, "contacts.err_callback_time"))
			return
		}
		req.CallbackAt = t
	}
	if _, err := a.deps.Dialer.CorrectOutcome(r.Context(), a.change(r, u), cid, req); err != nil {
		st, msg := a.contactError(r, err)
		a.showContacts(w, r, st, "", msg)
		return
	}
	a.showContacts(w, r, http.StatusOK, T(lang, "contacts.corrected", a.Disp(lang, req.Disposition)), "")
}

func (a *App) contactReassignForm(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	cid, ok := pathContact(r)
	if !ok {
		WriteError(w, r, http.StatusNotFound, "not_found", nil)
		return
	}
	to := r.PostFormValue("operator")
	if _, err := a.deps.Dialer.ReassignCallback(r.Context(), a.change(r, u), cid, to); err != nil {
		st, msg := a.contactError(r, err)
		a.showContacts(w, r, st, "", msg)
		return
	}
	a.showContacts(w, r, http.StatusOK, T(langOf(r), "contacts.reassigned", to), "")
}

// contactError maps the dialer's refusals of a correction or reassignment
// to a status and a message.
func (a *App) contactError(r *http.Request, err error) (int, string) {
	lang := langOf(r)
	switch {
	case errors.Is(err, dialer.ErrCorrectionClosed):
		return http.StatusConflict, T(lang, "contacts.err_busy")
	case errors.Is(err, dialer.ErrDNCLocked):
		return http.StatusConflict, T(lang, "contacts.err_dnc")
	case errors.Is(err, dialer.ErrUnknownDisposition):
		return http.StatusBadRequest, T(lang, "op.code.unknown_disposition")
	case errors.Is(err, dialer.ErrCallbackOutsideHours):
		return http.StatusBadRequest, T(lang, "contacts.err_callback_time")
	}
	return a.dialerError(r, err)
}

// Disp localises a disposition name outside a template.
func (a *App) Disp(lang, name string) string {
	if _, ok := catalogue[lang]["disp."+name]; ok {
		return T(lang, "disp."+name)
	}
	return name
}

// blockedLabel says in lang why a contact is not offered.
func blockedLabel(lang string, cr dialer.ContactRow) string {
	switch cr.Blocked {
	case dialer.BlockedNotApproved:
		if cr.Allowlist == "" {
			return T(lang, "contacts.blocked_not_proposed")
		}
		return T(lang, "contacts.blocked_allowlist", T(lang, "status."+cr.Allowlist))
	case "":
		return ""
	}
	return T(lang, "contacts.blocked_"+string(cr.Blocked))
}

// Blocked is blockedLabel for templates.
func (v *view) Blocked(cr dialer.ContactRow) string { return blockedLabel(v.Lang, cr) }

// clientExport is the client's file: ';'-separated UTF-8 with a BOM (what
// a French spreadsheet opens without an import wizard), French headers and
// outcome labels, numbers written the national way, the file's own
// columns, the script's answers and why a contact was not reached. The
// API's export (GET /api/v1/campaigns/{id}/export) keeps its plain CSV.
// Audited: it carries personal data out of the building.
func (a *App) clientExport(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	lang := langOf(r)
	id, ok := pathCampaign(w, r)
	if !ok {
		return
	}
	c, err := a.deps.Dialer.Campaign(r.Context(), id)
	if errors.Is(err, dialer.ErrNotFound) {
		WriteError(w, r, http.StatusNotFound, "not_found", nil)
		return
	}
	if err != nil {
		a.internal(w, r, err)
		return
	}
	rows, err := a.deps.Dialer.ContactList(r.Context(), id)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	a.audit(r.Context(), audit.Entry{Kind: "campaign.export", Actor: u.Extension, Subject: c.Name, Outcome: "ok",
		Source: "web " + clientIP(r), Details: map[string]any{"campaign": c.ID, "contacts": len(rows)}})
	var custom []string
	seen := map[string]bool{}
	for _, cr := range rows {
		for k := range cr.Custom {
			if !seen[k] {
				seen[k] = true
				custom = append(custom, k)
			}
		}
	}
	sort.Strings(custom)
	fields := dialer.ScriptFields(c.Script)
	header := []string{}
	for _, k := range []string{"company", "contact", "phone", "email", "city", "state", "attempts", "disposition", "notes",
		"callback", "not_reached"} {
		header = append(header, T(lang, "export."+k))
	}
	header = append(header, custom...)
	for _, f := range fields {
		header = append(header, f.Label)
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=\"campagne-%d.csv\"", c.ID))
	w.Write([]byte("\ufeff"))
	cw := csv.NewWriter(w)
	cw.Comma = ';'
	cw.UseCRLF = true
	cw.Write(header)
	for _, cr := range rows {
		var cb string
		if !cr.CallbackAt.IsZero() {
			cb = cr.CallbackAt.In(a.deps.Location).Format("02/01/2006 15:04")
		}
		why := blockedLabel(lang, cr)
		if cr.SkipReason != "" {
			why = strings.TrimSpace(why + " " + T(lang, "export.skipped", cr.SkipReason))
		}
		disp := ""
		if cr.LastDisposition != "" {
			disp = a.Disp(lang, cr.LastDisposition)
		}
		rec := []string{cell(cr.Company), cell(cr.Contact.Contact), a.number(cr.E164), cell(cr.Email), cell(cr.City),
			T(lang, "contacts.state_"+cr.State), strconv.Itoa(cr.Attempts), cell(disp), cell(cr.LastNotes), cb, cell(why)}
		for _, k := range custom {
			rec = append(rec, cell(cr.Custom[k]))
		}
		for _, f := range fields {
			rec = append(rec, cell(cr.Answers[f.Name]))
		}
		cw.Write(rec)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		a.log.Error("client export", "campaign", c.ID, "err", err)
	}
}

// cell defuses spreadsheet formulas in free text (imported files and
// notes end up in the client's spreadsheet), as the API's export does.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
