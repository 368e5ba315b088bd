package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"plateau/dialer"
	"plateau/store"
)

// The supervisors' campaign pages: plain HTML forms over the dialer
// (create, edit, import a CSV with its report, activate/pause/finish) and
// each campaign's progress. Counts are per campaign, never per operator.

func (a *App) campaignPages() {
	page := func(pattern string, roles []store.Role, h http.HandlerFunc) {
		a.mux.Handle(pattern, RequireRole(roles...)(h))
	}
	page("GET /supervisor/campaigns", supervisor, a.campaignsPage)
	page("POST /supervisor/campaigns", supervisor, a.campaignCreateForm)
	page("GET /supervisor/campaigns/{id}", supervisor, a.campaignPage)
	page("POST /supervisor/campaigns/{id}", supervisor, a.campaignUpdateForm)
	page("POST /supervisor/campaigns/{id}/status", supervisor, a.campaignStatusForm)
	page("POST /supervisor/campaigns/{id}/import", supervisor, a.campaignImportForm)
	a.contactPages()
}

// campaignRow is a campaign with its progress.
type campaignRow struct {
	dialer.Campaign
	Results dialer.Results
}

func (a *App) campaignRows(ctx context.Context) ([]campaignRow, error) {
	if a.deps.Dialer == nil {
		return nil, nil
	}
	cs, err := a.deps.Dialer.Campaigns(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]campaignRow, 0, len(cs))
	for _, c := range cs {
		res, err := a.deps.Dialer.Results(ctx, c.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, campaignRow{Campaign: c, Results: res})
	}
	return out, nil
}

// campaignForm is the create/edit form's fields, as typed.
type campaignForm struct {
	Name, Client, Script, Windows string
	Dispositions                  string // one per line (campaign_dispositions.go)
	Operators                     []string
	lang                          string
}

func formOf(c dialer.Campaign, lang string) campaignForm {
	ws := make([]string, len(c.Windows))
	for i, w := range c.Windows {
		ws[i] = showDays(w.Days, lang) + " " + w.From + "-" + w.To
	}
	return campaignForm{Name: c.Name, Client: c.Client, Script: c.Script, Windows: strings.Join(ws, "\n"), Operators: c.Operators,
		Dispositions: dispositionsText(c.Dispositions, lang), lang: lang}
}

func readCampaignForm(r *http.Request) campaignForm {
	r.ParseForm()
	return campaignForm{Name: r.PostFormValue("name"), Client: r.PostFormValue("client"), Script: r.PostFormValue("script"),
		Windows: r.PostFormValue("windows"), Operators: r.PostForm["operators"], Dispositions: r.PostFormValue("dispositions"), lang: langOf(r)}
}

// spec turns the form into a campaign spec; windows are one per line,
// "mon-fri 09:00-12:00". base keeps what the form does not edit.
func (f campaignForm) spec(base dialer.CampaignSpec) (dialer.CampaignSpec, error) {
	sp := base
	sp.Name, sp.Client, sp.Script, sp.Operators = strings.TrimSpace(f.Name), strings.TrimSpace(f.Client), f.Script, f.Operators
	sp.Windows = []dialer.Window{}
	for i, line := range strings.Split(f.Windows, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		w, ok := parseWindowLine(line)
		if !ok {
			return sp, fmt.Errorf("%w: windows line %d %q: write e.g. mon-fri 09:00-12:00", dialer.ErrInvalid, i+1, line)
		}
		sp.Windows = append(sp.Windows, w)
	}
	ds, err := parseDispositions(f.Dispositions, f.lang)
	if err != nil {
		return sp, err
	}
	sp.Dispositions = ds // none: the defaults
	return sp, nil
}

type campaignsData struct {
	Detail    bool // false: the list page
	Campaigns []campaignRow
	Form      campaignForm
	Operators []store.User
}

type campaignData struct {
	Detail    bool // true: one campaign's page
	Row       campaignRow
	Form      campaignForm
	Operators []store.User
	Report    *dialer.ImportReport
	Statuses  []dialer.Status
}

// operatorUsers lists the operators a campaign form offers: the active
// ones, plus the suspended ones already on the campaign (keep), shown
// marked and still ticked, so saving the form while someone is suspended
// does not silently take them off the campaign.
func (a *App) operatorUsers(ctx context.Context, keep []string) ([]store.User, error) {
	us, err := a.deps.Store.Users(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(us, func(u store.User) bool {
		return u.Role != store.RoleOperator || (u.Status != store.StatusActive && !slices.Contains(keep, u.Extension))
	}), nil
}

func (a *App) showCampaigns(w http.ResponseWriter, r *http.Request, status int, form campaignForm, errMsg string) {
	rows, err := a.campaignRows(r.Context())
	if err != nil {
		a.internal(w, r, err)
		return
	}
	ops, err := a.operatorUsers(r.Context(), nil)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	v := a.newView(r, "camp.title", campaignsData{Campaigns: rows, Form: form, Operators: ops})
	v.Error = errMsg
	a.render(w, r, status, "campaigns", v)
}

func (a *App) campaignsPage(w http.ResponseWriter, r *http.Request) {
	// A new campaign starts with the site's calling hours.
	var hours string
	if a.deps.Dialer != nil {
		hours = siteHoursText(a.deps.Dialer.SiteWindows(), langOf(r))
	}
	a.showCampaigns(w, r, http.StatusOK, campaignForm{Windows: hours, Dispositions: dispositionsText(dialer.DefaultDispositions(), langOf(r))}, "")
}

func (a *App) campaignCreateForm(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	f := readCampaignForm(r)
	sp, err := f.spec(dialer.CampaignSpec{})
	var c dialer.Campaign
	if err == nil {
		c, err = a.deps.Dialer.CreateCampaign(r.Context(), a.change(r, u), sp)
	}
	if err != nil {
		status, msg := a.dialerError(r, err)
		a.showCampaigns(w, r, status, f, msg)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/supervisor/campaigns/%d?done=created", c.ID), http.StatusSeeOther)
}

func (a *App) change(r *http.Request, u User) store.Change {
	return store.Change{By: u.Extension, Source: clientIP(r), At: a.now()}
}

// dialerError maps a dialer error to a status and a localised message
// with the dialer's detail (which names the field to fix).
func (a *App) dialerError(r *http.Request, err error) (int, string) {
	lang := langOf(r)
	detail := err.Error()
	switch {
	case errors.Is(err, dialer.ErrInvalid), errors.Is(err, dialer.ErrUnreadableFile):
		return http.StatusBadRequest, T(lang, "camp.err_invalid") + " " + a.localDetail(lang, detail)
	case errors.Is(err, dialer.ErrExists):
		return http.StatusConflict, T(lang, "camp.err_exists")
	case errors.Is(err, dialer.ErrNotFound):
		return http.StatusNotFound, T(lang, "err.not_found")
	case errors.Is(err, dialer.ErrForbidden):
		return http.StatusForbidden, T(lang, "err.forbidden")
	}
	a.log.Error("campaign", "path", r.URL.Path, "err", err)
	return http.StatusInternalServerError, T(lang, "err.internal")
}

func (a *App) showCampaign(w http.ResponseWriter, r *http.Request, status int, id int64, form *campaignForm, rep *dialer.ImportReport, flash, errMsg string) {
	ctx := r.Context()
	c, err := a.deps.Dialer.Campaign(ctx, id)
	if errors.Is(err, dialer.ErrNotFound) {
		WriteError(w, r, http.StatusNotFound, "not_found", nil)
		return
	}
	if err != nil {
		a.internal(w, r, err)
		return
	}
	res, err := a.deps.Dialer.Results(ctx, id)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	f := formOf(c, langOf(r))
	if form != nil {
		f = *form
	}
	ops, err := a.operatorUsers(ctx, c.Operators)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	d := campaignData{Detail: true, Row: campaignRow{Campaign: c, Results: res}, Form: f, Operators: ops, Report: rep,
		Statuses: []dialer.Status{dialer.Active, dialer.Paused, dialer.Finished}}
	v := a.newView(r, "camp.detail_title", d)
	v.Flash, v.Error = flash, errMsg
	a.render(w, r, status, "campaigns", v)
}

func pathCampaign(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		WriteError(w, r, http.StatusNotFound, "not_found", nil)
		return 0, false
	}
	return id, true
}

func (a *App) campaignPage(w http.ResponseWriter, r *http.Request) {
	id, ok := pathCampaign(w, r)
	if !ok {
		return
	}
	flash := ""
	switch done := r.URL.Query().Get("done"); done {
	case "created", "updated", "status":
		flash = T(langOf(r), "camp.done_"+done)
	}
	a.showCampaign(w, r, http.StatusOK, id, nil, nil, flash, "")
}

func (a *App) campaignUpdateForm(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	id, ok := pathCampaign(w, r)
	if !ok {
		return
	}
	f := readCampaignForm(r)
	cur, err := a.deps.Dialer.Campaign(r.Context(), id)
	var sp dialer.CampaignSpec
	if err == nil {
		sp, err = f.spec(cur.CampaignSpec)
	}
	if err == nil {
		_, err = a.deps.Dialer.UpdateCampaign(r.Context(), a.change(r, u), id, sp)
	}
	if err != nil {
		status, msg := a.dialerError(r, err)
		a.showCampaign(w, r, status, id, &f, nil, "", msg)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/supervisor/campaigns/%d?done=updated", id), http.StatusSeeOther)
}

func (a *App) campaignStatusForm(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	id, ok := pathCampaign(w, r)
	if !ok {
		return
	}
	if _, err := a.deps.Dialer.SetStatus(r.Context(), a.change(r, u), id, dialer.Status(r.PostFormValue("status"))); err != nil {
		status, msg := a.dialerError(r, err)
		a.showCampaign(w, r, status, id, nil, nil, "", msg)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/supervisor/campaigns/%d?done=status", id), http.StatusSeeOther)
}

// campaignImportForm takes the CSV upload and shows the import report.
func (a *App) campaignImportForm(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	id, ok := pathCampaign(w, r)
	if !ok {
		return
	}
	lang := langOf(r)
	file, _, err := r.FormFile("file")
	if err != nil {
		a.showCampaign(w, r, http.StatusBadRequest, id, nil, nil, "", T(lang, "camp.err_no_file"))
		return
	}
	defer file.Close()
	data, err := io.ReadAll(io.LimitReader(file, dialer.MaxFileBytes+1))
	if err != nil {
		a.showCampaign(w, r, http.StatusBadRequest, id, nil, nil, "", T(lang, "camp.err_no_file"))
		return
	}
	rep, err := a.deps.Dialer.Import(r.Context(), a.change(r, u), id, data)
	if err != nil {
		status, msg := a.dialerError(r, err)
		a.showCampaign(w, r, status, id, nil, nil, "", msg)
		return
	}
	a.showCampaign(w, r, http.StatusOK, id, nil, &rep, T(lang, "camp.imported", rep.Added, rep.Rows, len(rep.Rejected)), "")
}

// Checked reports whether a form's list holds s (checkboxes).
func (v *view) Checked(list []string, s string) bool { return slices.Contains(list, s) }

// Disp localises a disposition name (the default ones); a campaign's own
// names show as written.
func (v *view) Disp(name string) string {
	if _, ok := catalogue[v.Lang]["disp."+name]; ok {
		return v.T("disp." + name)
	}
	return name
}

// RejectReason localises an import rejection reason.
func (v *view) RejectReason(reason string) string {
	if _, ok := catalogue[v.Lang]["reject."+reason]; ok {
		return v.T("reject." + reason)
	}
	return reason
}
