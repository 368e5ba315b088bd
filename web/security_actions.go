package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"plateau/store"
)

// The security desk's own actions, beside deciding on proposals: propose
// a number (with an optional end of validity), revoke an approved one,
// and keep the do-not-call list. The store enforces the rules (two
// persons for an approval, security or admin to revoke or take a number
// off the list) and audits every change in the same transaction.

func (a *App) securityActions() {
	page := func(pattern string, h http.HandlerFunc) {
		a.mux.Handle(pattern, RequireRole(security...)(h))
	}
	page("POST /security/allowlist/propose", a.allowlistProposeForm)
	page("POST /security/allowlist/revoke", a.allowlistRevokeForm)
	page("POST /security/allowlist/{id}/validity", a.allowlistValidityForm)
	page("POST /security/dnc", a.dncAddForm)
	page("POST /security/dnc/remove", a.dncRemoveForm)
}

// typedNumber reads a number as people type it ("02 40 12 34 56",
// "+33 2 40…", "0033…") into E.164, or "" if it is none.
func (a *App) typedNumber(s string) string {
	n := searchNumber(compactNumber(s), a.region())
	if !store.ValidE164(n) {
		return ""
	}
	return n
}

func (a *App) change2(r *http.Request, note string) store.Change {
	u, _ := CurrentUser(r)
	return store.Change{By: u.Extension, Source: "web " + clientIP(r), At: a.now(), Note: strings.TrimSpace(note)}
}

// securityFail shows the allowlist page with the store's refusal.
func (a *App) securityFail(w http.ResponseWriter, r *http.Request, err error) {
	lang := langOf(r)
	if errors.Is(err, store.ErrExists) {
		a.showAllowlist(w, r, http.StatusConflict, "", T(lang, "allowlist.err_exists"))
		return
	}
	status, code := storeError(err)
	if status == http.StatusInternalServerError {
		a.internal(w, r, err)
		return
	}
	a.showAllowlist(w, r, status, "", T(lang, "err."+code))
}

func (a *App) allowlistProposeForm(w http.ResponseWriter, r *http.Request) {
	lang := langOf(r)
	n := a.typedNumber(r.PostFormValue("number"))
	if n == "" {
		a.showAllowlist(w, r, http.StatusBadRequest, "", T(lang, "rec.err_number"))
		return
	}
	p := store.Proposal{E164: n, Label: strings.TrimSpace(r.PostFormValue("label")), Campaign: strings.TrimSpace(r.PostFormValue("campaign")),
		Note: strings.TrimSpace(r.PostFormValue("note"))}
	if s := strings.TrimSpace(r.PostFormValue("valid_until")); s != "" {
		day, err := a.parseDay(s)
		if err != nil {
			a.showAllowlist(w, r, http.StatusBadRequest, "", a.localDetail(lang, err.Error()))
			return
		}
		// Valid through that day, in the site's time zone.
		p.ValidUntil = day.AddDate(0, 0, 1)
		if !p.ValidUntil.After(a.now()) {
			a.showAllowlist(w, r, http.StatusBadRequest, "", T(lang, "allowlist.err_past"))
			return
		}
	}
	if _, err := a.deps.Store.ProposeAllowlist(r.Context(), a.change2(r, ""), []store.Proposal{p}); err != nil {
		a.securityFail(w, r, err)
		return
	}
	a.showAllowlist(w, r, http.StatusOK, T(lang, "allowlist.proposed_one", a.number(n)), "")
}

func (a *App) allowlistRevokeForm(w http.ResponseWriter, r *http.Request) {
	lang := langOf(r)
	n := a.typedNumber(r.PostFormValue("number"))
	if n == "" {
		a.showAllowlist(w, r, http.StatusBadRequest, "", T(lang, "rec.err_number"))
		return
	}
	es, err := a.deps.Store.RevokeAllowlist(r.Context(), a.change2(r, r.PostFormValue("note")), n)
	if err != nil {
		a.securityFail(w, r, err)
		return
	}
	a.showAllowlist(w, r, http.StatusOK, T(lang, "allowlist.revoked_n", a.number(n), len(es)), "")
}

// allowlistValidityForm sets or changes the end of an approved entry: the
// last day it may be called (typed jj/mm/aaaa), valid through that day in
// the site's time zone. A refusal is shown next to that entry's field.
func (a *App) allowlistValidityForm(w http.ResponseWriter, r *http.Request) {
	lang := langOf(r)
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		WriteError(w, r, http.StatusNotFound, "not_found", nil)
		return
	}
	typed := strings.TrimSpace(r.PostFormValue("valid_until"))
	fieldErr := func(status int, msg string) {
		a.showAllowlistWith(w, r, status, "", "", func(d *allowlistData) {
			d.ValidityID, d.ValidityValue, d.ValidityErr = id, typed, msg
		})
	}
	if typed == "" {
		fieldErr(http.StatusBadRequest, T(lang, "allowlist.err_validity_empty"))
		return
	}
	day, err := a.parseDay(typed)
	if err != nil {
		fieldErr(http.StatusBadRequest, a.localDetail(lang, err.Error()))
		return
	}
	until := day.AddDate(0, 0, 1)
	if !until.After(a.now()) {
		fieldErr(http.StatusBadRequest, T(lang, "allowlist.err_past"))
		return
	}
	e, err := a.deps.Store.SetAllowlistValidity(r.Context(), a.change2(r, r.PostFormValue("note")), id, until)
	switch {
	case errors.Is(err, store.ErrValidityPast):
		fieldErr(http.StatusBadRequest, T(lang, "err.validity_past"))
		return
	case errors.Is(err, store.ErrSelfApproval):
		fieldErr(http.StatusForbidden, T(lang, "allowlist.err_extend_own"))
		return
	case err != nil:
		a.securityFail(w, r, err)
		return
	}
	a.showAllowlist(w, r, http.StatusOK, T(lang, "allowlist.validity_done", a.number(e.E164), day.Format("02/01/2006")), "")
}

func (a *App) dncAddForm(w http.ResponseWriter, r *http.Request) {
	lang := langOf(r)
	n := a.typedNumber(r.PostFormValue("number"))
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if n == "" {
		a.showAllowlist(w, r, http.StatusBadRequest, "", T(lang, "rec.err_number"))
		return
	}
	if reason == "" {
		a.showAllowlist(w, r, http.StatusBadRequest, "", T(lang, "dnc.err_reason"))
		return
	}
	if err := a.deps.Store.AddDNC(r.Context(), a.change2(r, ""), n, reason); err != nil {
		if errors.Is(err, store.ErrExists) {
			a.showAllowlist(w, r, http.StatusConflict, "", T(lang, "dnc.err_exists"))
			return
		}
		a.securityFail(w, r, err)
		return
	}
	a.showAllowlist(w, r, http.StatusOK, T(lang, "dnc.added", a.number(n)), "")
}

func (a *App) dncRemoveForm(w http.ResponseWriter, r *http.Request) {
	lang := langOf(r)
	n := a.typedNumber(r.PostFormValue("number"))
	if n == "" {
		a.showAllowlist(w, r, http.StatusBadRequest, "", T(lang, "rec.err_number"))
		return
	}
	if err := a.deps.Store.RemoveDNC(r.Context(), a.change2(r, ""), n); err != nil {
		a.securityFail(w, r, err)
		return
	}
	a.showAllowlist(w, r, http.StatusOK, T(lang, "dnc.removed", a.number(n)), "")
}

// dncRows is the do-not-call list for the page, by number.
func (a *App) dncRows(r *http.Request) []store.DNCEntry {
	es, err := a.deps.Store.DNCList(r.Context())
	if err != nil {
		a.log.Warn("dnc list", "err", err)
		return nil
	}
	return es
}
