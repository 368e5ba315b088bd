package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"plateau/audit"
	"plateau/auth"
	"plateau/store"
)

// The admin's user management in the console (issue 14), admin only and
// behind CSRF like the rest: add a user, reset a web or SIP password
// (stored as the CLI stores them: auth.NewSecrets, the SIP one only as
// digest HA1 values), change a role, suspend with a reason. Every change
// is audited (user.add, user.password, user.role, user.suspend).
//
//	POST /api/v1/users                      {extension, name, role, web_password, sip_password} → 201 user
//	POST /api/v1/users/{ext}/password       {web_password, sip_password} (one at least) → 204
//	POST /api/v1/users/{ext}/role           {role} → 200 user
//	POST /api/v1/users/{ext}/suspend        {reason} (required) → 200
//	/admin/users, /admin/users/{ext}/password|role|suspend|activate: the same as HTML forms

// userChange is an admin's request about a user; its failure carries a
// status and an error code (a catalogue key under "err.").
type userFailure struct {
	status int
	code   string
	err    error
}

func (f *userFailure) Error() string {
	if f.err != nil {
		return f.code + ": " + f.err.Error()
	}
	return f.code
}

func userErr(status int, code string, err error) *userFailure { return &userFailure{status, code, err} }

type newUserRequest struct {
	Extension   string `json:"extension"`
	Name        string `json:"name"`
	Role        string `json:"role"`
	WebPassword string `json:"web_password"`
	SIPPassword string `json:"sip_password"`
}

func (a *App) addUser(ctx context.Context, by User, src string, req newUserRequest) *userFailure {
	req.Extension, req.Name = strings.TrimSpace(req.Extension), strings.TrimSpace(req.Name)
	switch {
	case !store.ValidExtension(req.Extension):
		return userErr(http.StatusBadRequest, "bad_extension", fmt.Errorf("extension %q", req.Extension))
	case !store.ValidRole(store.Role(req.Role)):
		return userErr(http.StatusBadRequest, "bad_role", fmt.Errorf("role %q", req.Role))
	case utf8.RuneCountInString(req.Name) > 100:
		return userErr(http.StatusBadRequest, "bad_name", nil)
	case req.WebPassword == "" && req.SIPPassword == "":
		return userErr(http.StatusBadRequest, "no_password", nil)
	}
	sec, f := a.secrets(req.Extension, req.SIPPassword, req.WebPassword)
	if f != nil {
		return f
	}
	name := req.Name
	if name == "" {
		name = req.Extension
	}
	u := store.User{Extension: req.Extension, DisplayName: name, Role: store.Role(req.Role), HA1MD5: sec.HA1MD5,
		HA1SHA256: sec.HA1SHA256, WebPassword: sec.WebHash, Status: store.StatusActive}
	rec := audit.Entry{Kind: "user.add", Actor: by.Extension, Subject: req.Extension, Source: src,
		Details: map[string]any{"role": req.Role, "web_login": sec.WebHash != "", "sip": sec.HA1MD5 != ""}}
	if err := a.deps.Store.AddUser(ctx, u, a.now()); err != nil {
		if errors.Is(err, store.ErrExists) {
			return userErr(http.StatusConflict, "user_exists", err)
		}
		rec.Outcome, rec.Reason = "failed", err.Error()
		a.audit(ctx, rec)
		return userErr(http.StatusInternalServerError, "internal", err)
	}
	rec.Outcome = "ok"
	a.audit(ctx, rec)
	return nil
}

// secrets derives the stored forms of new passwords the CLI's way.
func (a *App) secrets(ext, sipPass, webPass string) (auth.Secrets, *userFailure) {
	if sipPass != "" && a.deps.Realm == "" {
		return auth.Secrets{}, userErr(http.StatusServiceUnavailable, "no_realm", nil)
	}
	if len(sipPass) > 256 || len(webPass) > 1024 {
		return auth.Secrets{}, userErr(http.StatusBadRequest, "bad_password", nil)
	}
	sec, err := auth.NewSecrets(ext, a.deps.Realm, sipPass, webPass)
	if err != nil {
		return sec, userErr(http.StatusBadRequest, "bad_password", err)
	}
	return sec, nil
}

func (a *App) resetPassword(ctx context.Context, by User, src, ext, sipPass, webPass string) *userFailure {
	if sipPass == "" && webPass == "" {
		return userErr(http.StatusBadRequest, "no_password", nil)
	}
	if _, err := a.deps.Store.User(ctx, ext); err != nil {
		return userErr(http.StatusNotFound, "not_found", err)
	}
	sec, f := a.secrets(ext, sipPass, webPass)
	if f != nil {
		return f
	}
	var which []string
	if sec.HA1MD5 != "" {
		which = append(which, "sip")
	}
	if sec.WebHash != "" {
		which = append(which, "web")
	}
	rec := audit.Entry{Kind: "user.password", Actor: by.Extension, Subject: ext, Source: src, Details: map[string]any{"changed": which}}
	if err := a.deps.Store.SetSecrets(ctx, ext, sec.HA1MD5, sec.HA1SHA256, sec.WebHash, a.now()); err != nil {
		rec.Outcome, rec.Reason = "failed", err.Error()
		a.audit(ctx, rec)
		return userErr(http.StatusInternalServerError, "internal", err)
	}
	rec.Outcome = "ok"
	a.audit(ctx, rec)
	if sec.WebHash != "" {
		// A new web password ends the sessions opened with the old one.
		_ = a.sessions.DeleteUserSessions(ctx, ext)
		a.locks.unlock(ext)
	}
	return nil
}

func (a *App) changeRole(ctx context.Context, by User, src, ext, role string) *userFailure {
	if !store.ValidRole(store.Role(role)) {
		return userErr(http.StatusBadRequest, "bad_role", fmt.Errorf("role %q", role))
	}
	if ext == by.Extension {
		// An admin demoting themselves could leave nobody to undo it.
		return userErr(http.StatusConflict, "self_role", nil)
	}
	cur, err := a.deps.Store.User(ctx, ext)
	if err != nil {
		return userErr(http.StatusNotFound, "not_found", err)
	}
	if string(cur.Role) == role {
		return nil
	}
	rec := audit.Entry{Kind: "user.role", Actor: by.Extension, Subject: ext, Source: src, Details: map[string]any{"from": string(cur.Role), "to": role}}
	if err := a.deps.Store.SetUserRole(ctx, ext, store.Role(role), a.now()); err != nil {
		rec.Outcome, rec.Reason = "failed", err.Error()
		a.audit(ctx, rec)
		return userErr(http.StatusInternalServerError, "internal", err)
	}
	rec.Outcome = "ok"
	a.audit(ctx, rec)
	// The sessions were opened under the old role: close them.
	_ = a.sessions.DeleteUserSessions(ctx, ext)
	return nil
}

func webSource(r *http.Request) string { return "web " + clientIP(r) }

func (f *userFailure) write(a *App, w http.ResponseWriter, r *http.Request) {
	a.apiFail(w, r, f.status, f.code, f.err)
}

func (a *App) apiAddUser(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	var req newUserRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if f := a.addUser(r.Context(), u, webSource(r), req); f != nil {
		f.write(a, w, r)
		return
	}
	nu, _ := a.deps.Store.User(r.Context(), strings.TrimSpace(req.Extension))
	writeJSON(w, http.StatusCreated, toUserView(nu))
}

func (a *App) apiResetPassword(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	var req struct {
		WebPassword string `json:"web_password"`
		SIPPassword string `json:"sip_password"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	if f := a.resetPassword(r.Context(), u, webSource(r), r.PathValue("ext"), req.SIPPassword, req.WebPassword); f != nil {
		f.write(a, w, r)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *App) apiChangeRole(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	var req struct {
		Role string `json:"role"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	ext := r.PathValue("ext")
	if f := a.changeRole(r.Context(), u, webSource(r), ext, req.Role); f != nil {
		f.write(a, w, r)
		return
	}
	nu, _ := a.deps.Store.User(r.Context(), ext)
	writeJSON(w, http.StatusOK, toUserView(nu))
}

func (a *App) addUserForm(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	req := newUserRequest{Extension: r.PostFormValue("extension"), Name: r.PostFormValue("name"), Role: r.PostFormValue("role"),
		WebPassword: r.PostFormValue("web_password"), SIPPassword: r.PostFormValue("sip_password")}
	f := a.addUser(r.Context(), u, webSource(r), req)
	if f == nil || f.status == http.StatusInternalServerError {
		a.userFormDone(w, r, f, T(langOf(r), "users.done_add", strings.TrimSpace(req.Extension)))
		return
	}
	// The error goes next to its field; what was typed stays (not the
	// passwords).
	field := map[string]string{"bad_extension": "extension", "user_exists": "extension", "bad_role": "role", "bad_name": "name",
		"no_password": "web_password", "bad_password": "web_password", "no_realm": "sip_password"}[f.code]
	if field == "sip_password" && a.deps.Realm == "" {
		field = "web_password"
	}
	req.WebPassword, req.SIPPassword = "", ""
	a.showUsersForm(w, r, f.status, "", "", usersData{Form: req, FieldErr: map[string]string{field: T(langOf(r), "err."+f.code)}})
}

func (a *App) passwordForm(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	ext := r.PathValue("ext")
	f := a.resetPassword(r.Context(), u, webSource(r), ext, r.PostFormValue("sip_password"), r.PostFormValue("web_password"))
	a.userFormDone(w, r, f, T(langOf(r), "users.done_password", ext))
}

func (a *App) roleForm(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	ext := r.PathValue("ext")
	f := a.changeRole(r.Context(), u, webSource(r), ext, r.PostFormValue("role"))
	a.userFormDone(w, r, f, T(langOf(r), "users.done_role", ext))
}

func (a *App) userFormDone(w http.ResponseWriter, r *http.Request, f *userFailure, done string) {
	switch {
	case f == nil:
		a.showUsers(w, r, http.StatusOK, done, "")
	case f.status == http.StatusInternalServerError:
		a.internal(w, r, f.err)
	default:
		a.showUsers(w, r, f.status, "", T(langOf(r), "err."+f.code))
	}
}
