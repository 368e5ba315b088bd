package web

import (
	"errors"
	"net/http"
	"strings"

	"plateau/audit"
	"plateau/store"
)

// userView is a user as the consoles show it: never any secret.
type userView struct {
	Extension   string `json:"extension"`
	DisplayName string `json:"display_name"`
	Role        string `json:"role"`
	Status      string `json:"status"`
	WebLogin    bool   `json:"web_login"` // has a web password
}

func toUserView(u store.User) userView {
	return userView{Extension: u.Extension, DisplayName: u.DisplayName, Role: string(u.Role), Status: string(u.Status),
		WebLogin: u.WebPassword != ""}
}

var errSelfSuspend = errors.New("an admin may not suspend their own account")

// setUserStatus suspends or reactivates a user, audited with the reason
// given (required to suspend: the audit log must say why); a suspension
// also ends the user's web sessions.
func (a *App) setUserStatus(r *http.Request, ext, action, reason string) (int, string, error) {
	u, _ := CurrentUser(r)
	var st store.Status
	switch action {
	case "suspend":
		st = store.StatusSuspended
	case "activate":
		st = store.StatusActive
	default:
		return http.StatusNotFound, "not_found", nil
	}
	if st == store.StatusSuspended && ext == u.Extension {
		return http.StatusConflict, "self_suspend", errSelfSuspend
	}
	ctx := r.Context()
	if _, err := a.deps.Store.User(ctx, ext); errors.Is(err, store.ErrNotFound) {
		return http.StatusNotFound, "not_found", err
	}
	reason = strings.TrimSpace(reason)
	if st == store.StatusSuspended && reason == "" {
		return http.StatusBadRequest, "reason_required", nil
	}
	if len(reason) > 500 {
		return http.StatusBadRequest, "reason_too_long", nil
	}
	rec := audit.Entry{Kind: "user." + action, Actor: u.Extension, Subject: ext, Source: "web " + clientIP(r), Reason: reason}
	if err := a.deps.Store.SetUserStatus(ctx, ext, st, a.now()); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return http.StatusNotFound, "not_found", err
		}
		rec.Outcome, rec.Reason = "failed", err.Error()
		a.audit(ctx, rec)
		return http.StatusInternalServerError, "internal", err
	}
	rec.Outcome = "ok"
	a.audit(ctx, rec)
	if st == store.StatusSuspended {
		_ = a.sessions.DeleteUserSessions(ctx, ext)
		// A suspension takes effect now: the user's calls and monitor
		// sessions in progress end too (b2bua.B2BUA.EndCallsOf).
		if e, ok := a.deps.Calls.(interface{ EndCallsOf(ext, why string) int }); ok {
			e.EndCallsOf(ext, "user_suspended")
		}
	} else {
		a.locks.unlock(ext)
	}
	return http.StatusOK, "", nil
}

type usersData struct {
	Users []userView
	Roles []string
	Realm bool // a SIP password can be set here
	// The add form as typed (never the passwords) and its error, shown
	// next to the field it is about.
	Form     newUserRequest
	FieldErr map[string]string
}

func (a *App) usersPage(w http.ResponseWriter, r *http.Request) {
	a.showUsers(w, r, http.StatusOK, "", "")
}

func (a *App) showUsers(w http.ResponseWriter, r *http.Request, status int, flash, errMsg string) {
	a.showUsersForm(w, r, status, flash, errMsg, usersData{Form: newUserRequest{Role: "operator"}})
}

func (a *App) showUsersForm(w http.ResponseWriter, r *http.Request, status int, flash, errMsg string, d usersData) {
	users, err := a.deps.Store.Users(r.Context())
	if err != nil {
		a.internal(w, r, err)
		return
	}
	d.Roles, d.Realm = []string{"operator", "supervisor", "security", "admin"}, a.deps.Realm != ""
	for _, u := range users {
		d.Users = append(d.Users, toUserView(u))
	}
	v := a.newView(r, "users.title", d)
	v.Flash, v.Error = flash, errMsg
	a.render(w, r, status, "users", v)
}

func (a *App) userStatusForm(w http.ResponseWriter, r *http.Request) {
	ext, action := r.PathValue("ext"), r.PathValue("action")
	status, code, err := a.setUserStatus(r, ext, action, r.PostFormValue("reason"))
	lang := langOf(r)
	switch {
	case status == http.StatusInternalServerError:
		a.internal(w, r, err)
	case code != "":
		a.showUsers(w, r, status, "", T(lang, "err."+code))
	default:
		a.showUsers(w, r, http.StatusOK, T(lang, "users.done_"+action, ext), "")
	}
}
