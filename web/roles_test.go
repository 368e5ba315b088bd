package web

import (
	"net/http"
	"testing"

	"plateau/store"
)

func storeFilterProposed() store.AllowFilter { return store.AllowFilter{Status: store.AllowProposed} }

// TestRoleMatrix checks every route against every role: least privilege.
func TestRoleMatrix(t *testing.T) {
	f := newFixture(t)
	clients := map[string]*client{"operator": f.as("101"), "supervisor": f.as("201"), "security": f.as("301"),
		"admin": f.as("401"), "anonymous": f.client()}
	type route struct {
		method, path string
		body         any
		allowed      []string
	}
	routes := []route{
		{"GET", "/api/v1/me", nil, []string{"operator", "supervisor", "security", "admin"}},
		{"GET", "/api/v1/me/registration", nil, []string{"operator", "supervisor", "security", "admin"}},
		{"GET", "/api/v1/allowlist", nil, []string{"security", "admin"}},
		{"POST", "/api/v1/allowlist/approve", map[string]any{"ids": []int{424242}}, []string{"security", "admin"}},
		{"POST", "/api/v1/allowlist/reject", map[string]any{"ids": []int{424242}}, []string{"security", "admin"}},
		{"GET", "/api/v1/allowlist/export", nil, []string{"security", "admin"}},
		{"GET", "/api/v1/audit", nil, []string{"security", "admin"}},
		{"GET", "/api/v1/audit/verify", nil, []string{"security", "admin"}},
		{"GET", "/api/v1/reports/refused", nil, []string{"security", "admin"}},
		{"POST", "/api/v1/policy/simulate", map[string]any{"operator": "101", "number": "+33240000001"}, []string{"security", "admin"}},
		{"GET", "/api/v1/users", nil, []string{"security", "admin"}},
		{"POST", "/api/v1/users/999/activate", nil, []string{"admin"}},
		{"GET", "/api/v1/operators", nil, []string{"supervisor", "admin"}},
		{"GET", "/operator", nil, []string{"operator"}},
		{"GET", "/supervisor", nil, []string{"supervisor", "admin"}},
		{"GET", "/security/allowlist", nil, []string{"security", "admin"}},
		{"GET", "/security/allowlist.csv", nil, []string{"security", "admin"}},
		{"GET", "/security/audit", nil, []string{"security", "admin"}},
		{"GET", "/security/refused", nil, []string{"security", "admin"}},
		{"GET", "/security/simulate", nil, []string{"security", "admin"}},
		{"GET", "/admin/users", nil, []string{"admin"}},
	}
	for _, rt := range routes {
		for role, c := range clients {
			allowed := false
			for _, a := range rt.allowed {
				allowed = allowed || a == role
			}
			res, body := c.api(rt.method, rt.path, rt.body)
			switch {
			case role == "anonymous":
				if res.StatusCode != http.StatusUnauthorized && res.StatusCode != http.StatusSeeOther {
					t.Errorf("%s %s anonymous: %d", rt.method, rt.path, res.StatusCode)
				}
			case allowed:
				if res.StatusCode == http.StatusForbidden || res.StatusCode == http.StatusUnauthorized {
					t.Errorf("%s %s as %s: %d %s", rt.method, rt.path, role, res.StatusCode, body)
				}
			default:
				if res.StatusCode != http.StatusForbidden {
					t.Errorf("%s %s as %s: %d, want 403", rt.method, rt.path, role, res.StatusCode)
				}
			}
		}
	}
}

// TestNavShowsOnlyWhatTheRoleMayDo: the links in the layout follow the role.
func TestNavShowsOnlyWhatTheRoleMayDo(t *testing.T) {
	f := newFixture(t)
	for ext, want := range map[string]map[string]bool{
		"101": {"/operator": true, "/supervisor": false, "/security/allowlist": false, "/admin/users": false},
		"201": {"/operator": false, "/supervisor": true, "/security/allowlist": false, "/admin/users": false},
		"301": {"/operator": false, "/supervisor": false, "/security/allowlist": true, "/security/simulate": true, "/admin/users": false},
		"401": {"/supervisor": true, "/security/allowlist": true, "/admin/users": true},
	} {
		c := f.as(ext)
		res, _ := c.get("/")
		_, body := c.get(res.Header.Get("Location"))
		for href, shown := range want {
			if got := containsAttr(body, `href="`+href+`"`); got != shown {
				t.Errorf("%s: link %s shown=%v, want %v", ext, href, got, shown)
			}
		}
	}
}

func containsAttr(body, attr string) bool {
	for i := 0; i+len(attr) <= len(body); i++ {
		if body[i:i+len(attr)] == attr {
			return true
		}
	}
	return false
}
