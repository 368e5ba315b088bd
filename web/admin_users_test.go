package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"plateau/auth"
	"plateau/store"
)

// TestAdminManagesUsers: an admin adds a user, resets the web and SIP
// passwords (the SIP one stored only as HA1, as the CLI does), changes a
// role; each is audited; nobody else may, and CSRF is required.
func TestAdminManagesUsers(t *testing.T) {
	f := newFixture(t, func(d *Deps) { d.Realm = "plateau.test" })
	adm := f.as("401")
	ctx := t.Context()

	for _, tt := range []struct {
		body   map[string]string
		status int
		code   string
	}{
		{map[string]string{"extension": "1", "role": "operator", "web_password": "long-enough-1"}, 400, "bad_extension"},
		{map[string]string{"extension": "12a", "role": "operator", "web_password": "long-enough-1"}, 400, "bad_extension"},
		{map[string]string{"extension": "105", "role": "root", "web_password": "long-enough-1"}, 400, "bad_role"},
		{map[string]string{"extension": "105", "role": "operator"}, 400, "no_password"},
		{map[string]string{"extension": "105", "role": "operator", "web_password": "short"}, 400, "bad_password"},
		{map[string]string{"extension": "101", "role": "operator", "web_password": "long-enough-1"}, 409, "user_exists"},
		{map[string]string{"extension": "105", "name": "Nouvel Opérateur", "role": "operator", "web_password": "long-enough-1", "sip_password": "sip-secret-105"}, 201, ""},
	} {
		res, body := adm.api("POST", "/api/v1/users", tt.body)
		if res.StatusCode != tt.status || (tt.code != "" && !strings.Contains(body, `"error": "`+tt.code+`"`)) {
			t.Errorf("add %v: %d %s", tt.body, res.StatusCode, body)
		}
	}
	u, err := f.st.User(ctx, "105")
	if err != nil || u.Role != store.RoleOperator || u.HA1MD5 != auth.HA1MD5("105", "plateau.test", "sip-secret-105") ||
		u.HA1SHA256 != auth.HA1SHA256("105", "plateau.test", "sip-secret-105") || auth.CheckPassword(u.WebPassword, "long-enough-1") != nil {
		t.Fatalf("added user: %+v %v", u, err)
	}
	if f.client().tryLogin("105", "long-enough-1").StatusCode != http.StatusSeeOther {
		t.Fatal("the new user cannot log in")
	}

	// Reset: the operator's open session ends with the old password.
	op := f.as("101")
	if res, body := adm.api("POST", "/api/v1/users/101/password", map[string]string{"web_password": "new-password-101", "sip_password": "new-sip"}); res.StatusCode != 204 {
		t.Fatalf("reset: %d %s", res.StatusCode, body)
	}
	u, _ = f.st.User(ctx, "101")
	if u.HA1MD5 != auth.HA1MD5("101", "plateau.test", "new-sip") || auth.CheckPassword(u.WebPassword, "new-password-101") != nil {
		t.Fatalf("reset not stored: %+v", u)
	}
	if res, _ := op.get("/api/v1/me"); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("old session survived the reset: %d", res.StatusCode)
	}
	if res, _ := adm.api("POST", "/api/v1/users/101/password", map[string]string{}); res.StatusCode != 400 {
		t.Fatalf("empty reset: %d", res.StatusCode)
	}

	// Role: not one's own; audited with from/to.
	if res, body := adm.api("POST", "/api/v1/users/102/role", map[string]string{"role": "supervisor"}); res.StatusCode != 200 || !strings.Contains(body, `"role": "supervisor"`) {
		t.Fatalf("role: %d %s", res.StatusCode, body)
	}
	if res, _ := adm.api("POST", "/api/v1/users/401/role", map[string]string{"role": "operator"}); res.StatusCode != http.StatusConflict {
		t.Fatalf("own role: %d", res.StatusCode)
	}
	if res, _ := adm.api("POST", "/api/v1/users/102/role", map[string]string{"role": "god"}); res.StatusCode != 400 {
		t.Fatalf("bad role: %d", res.StatusCode)
	}
	for kind, want := range map[string]string{"user.add": "105", "user.password": "101", "user.role": "102"} {
		recs := f.audited(kind)
		if len(recs) != 1 || recs[0].Entry.Actor != "401" || recs[0].Entry.Subject != want || recs[0].Entry.Outcome != "ok" {
			t.Errorf("%s audited: %+v", kind, recs)
		}
	}
	if d := f.audited("user.role")[0].Entry.Details; d["from"] != "operator" || d["to"] != "supervisor" {
		t.Errorf("role audit details: %v", d)
	}
	var leaked int
	if err := f.st.DB().QueryRowContext(ctx, `SELECT count(*) FROM audit_log WHERE details LIKE '%new-sip%' OR details LIKE '%long-enough%'`).Scan(&leaked); err != nil || leaked != 0 {
		t.Errorf("passwords in the audit log: %d %v", leaked, err)
	}

	// Only admins, and only with the CSRF token.
	sup := f.as("201")
	for _, path := range []string{"/api/v1/users", "/api/v1/users/101/password", "/api/v1/users/101/role"} {
		if res, _ := sup.api("POST", path, map[string]string{"role": "admin"}); res.StatusCode != http.StatusForbidden {
			t.Errorf("supervisor POST %s: %d", path, res.StatusCode)
		}
	}
	noCSRF := *adm
	noCSRF.csrf = ""
	if res, _ := noCSRF.api("POST", "/api/v1/users/102/role", map[string]string{"role": "operator"}); res.StatusCode != http.StatusForbidden {
		t.Errorf("no CSRF: %d", res.StatusCode)
	}

	// The HTML forms.
	res, body := adm.form("/admin/users", url.Values{"extension": {"106"}, "role": {"security"}, "web_password": {"long-enough-6"}})
	if res.StatusCode != 200 || !strings.Contains(body, "Poste 106 ajouté") {
		t.Fatalf("add form: %d %s", res.StatusCode, body)
	}
	if res, body := adm.form("/admin/users/106/role", url.Values{"role": {"supervisor"}}); res.StatusCode != 200 || !strings.Contains(body, "Rôle du poste 106 modifié") {
		t.Fatalf("role form: %d %s", res.StatusCode, body)
	}
	if res, body := adm.form("/admin/users/106/password", url.Values{"web_password": {"x"}}); res.StatusCode != 400 || !strings.Contains(body, "8 caractères") {
		t.Fatalf("password form, short: %d %s", res.StatusCode, body)
	}
	// An add-form error sits next to its field, with what was typed kept
	// (never the password).
	res, body = adm.form("/admin/users", url.Values{"extension": {"10x"}, "name": {"Léa"}, "role": {"security"}, "web_password": {"long-enough-7"}})
	if res.StatusCode != 400 || !strings.Contains(body, `<span class="field-error" id="new-extension-error">Poste invalide`) ||
		!strings.Contains(body, `value="10x"`) || !strings.Contains(body, `value="Léa"`) || !strings.Contains(body, `value="security" selected`) ||
		strings.Contains(body, "long-enough-7") || !strings.Contains(body, `aria-invalid="true"`) {
		t.Fatalf("add form error: %d %s", res.StatusCode, body)
	}
}

// TestAdminSIPPasswordNeedsRealm: without the realm, no SIP password is
// set from the console (fail closed), and the page says how instead.
func TestAdminSIPPasswordNeedsRealm(t *testing.T) {
	f := newFixture(t)
	adm := f.as("401")
	if res, body := adm.api("POST", "/api/v1/users/101/password", map[string]string{"sip_password": "x-sip"}); res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "no_realm") {
		t.Fatalf("SIP reset without realm: %d %s", res.StatusCode, body)
	}
	if _, body := adm.get("/admin/users"); strings.Contains(body, `name="sip_password"`) || !strings.Contains(body, "plateau user passwd") {
		t.Fatal("the page offers a SIP password without a realm")
	}
}
