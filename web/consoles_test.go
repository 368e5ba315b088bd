package web

import (
	"bufio"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"plateau/store"
)

func TestOperatorConsole(t *testing.T) {
	f := newFixture(t)
	op := f.as("101")
	_, body := op.get("/operator")
	if !strings.Contains(body, "Téléphone non connecté") || !strings.Contains(body, "Le numéroteur n&#39;est pas activé") ||
		strings.Contains(body, "rechargement") {
		t.Fatalf("operator page: %s", body)
	}
	err := f.st.SaveBindings(t.Context(), []store.Binding{{Extension: "101", Contact: "sip:101@10.0.0.7:5062", Source: "10.0.0.7:5062",
		Transport: "UDP", UserAgent: "baresip", ExpiresAt: f.clock.Now().Add(time.Hour)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, body = op.get("/operator")
	if !strings.Contains(body, "Téléphone connecté") || !strings.Contains(body, "baresip") || strings.Contains(body, "UDP") {
		t.Fatalf("registered operator page: %s", body)
	}
	res, body := op.get("/api/v1/me/registration")
	if res.StatusCode != 200 || !strings.Contains(body, `"registered": true`) || !strings.Contains(body, `"extension": "101"`) {
		t.Fatalf("registration: %s", body)
	}
	// Another operator sees only their own state, and no list of others.
	other := f.as("102")
	if _, body := other.get("/api/v1/me/registration"); !strings.Contains(body, `"registered": false`) {
		t.Fatalf("102's registration: %s", body)
	}
	if res, _ := other.get("/api/v1/operators"); res.StatusCode != http.StatusForbidden {
		t.Fatalf("operator lists operators: %d", res.StatusCode)
	}
	if res, _ := other.get("/api/v1/users"); res.StatusCode != http.StatusForbidden {
		t.Fatalf("operator lists users: %d", res.StatusCode)
	}
}

func TestSupervisorConsoleAndStream(t *testing.T) {
	f := newFixture(t)
	err := f.st.SaveBindings(t.Context(), []store.Binding{{Extension: "102", Contact: "sip:102@10.0.0.8", Source: "10.0.0.8:5060",
		Transport: "UDP", UserAgent: "SIPp", ExpiresAt: f.clock.Now().Add(time.Hour)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sup := f.as("201")
	_, body := sup.get("/supervisor")
	if !strings.Contains(body, "Opérateur Deux") || !strings.Contains(body, `data-events="/supervisor/events"`) {
		t.Fatalf("supervisor page: %s", body)
	}
	if strings.Contains(body, "Superviseure</td>") {
		t.Fatal("the operators list shows a supervisor")
	}
	res, body := sup.get("/api/v1/operators")
	if res.StatusCode != 200 || !strings.Contains(body, `"extension": "102"`) || !strings.Contains(body, `"registered": true`) {
		t.Fatalf("operators: %s", body)
	}

	// The stream sends the state at once, then every interval.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+"/supervisor/events", nil)
	sres, err := sup.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer sres.Body.Close()
	if ct := sres.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	sc := bufio.NewScanner(sres.Body)
	var events []string
	for sc.Scan() && len(events) < 2 {
		if line := sc.Text(); strings.HasPrefix(line, "data: ") {
			events = append(events, line)
		}
	}
	if len(events) != 2 || !strings.Contains(events[0], `"extension":"102","display_name":"Opérateur Deux","status":"active","registered":true`) {
		t.Fatalf("events: %v", events)
	}
	// Logging out ends the stream.
	sup.form("/logout", nil)
	for sc.Scan() {
		if sc.Text() == "event: logout" {
			return
		}
	}
	t.Fatal("stream did not end with a logout event")
}

func TestAdminUsers(t *testing.T) {
	f := newFixture(t)
	adm := f.as("401")
	_, body := adm.get("/admin/users")
	if !strings.Contains(body, "Opérateur Un") || strings.Contains(body, "argon2") {
		t.Fatalf("users page: %s", body)
	}
	if res, body := adm.form("/admin/users/101/suspend", nil); res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Indiquez le motif") {
		t.Fatalf("suspend without a reason: %d", res.StatusCode)
	}
	res, body := adm.form("/admin/users/101/suspend", url.Values{"reason": {"Transfert vers un autre établissement"}})
	if res.StatusCode != 200 || !strings.Contains(body, "Poste 101 suspendu") {
		t.Fatalf("suspend: %d", res.StatusCode)
	}
	if u, _ := f.st.User(t.Context(), "101"); u.Status != store.StatusSuspended {
		t.Fatalf("status %s", u.Status)
	}
	res, body = adm.form("/admin/users/101/activate", nil)
	if res.StatusCode != 200 || !strings.Contains(body, "Poste 101 réactivé") {
		t.Fatalf("activate: %d", res.StatusCode)
	}
	for kind, n := range map[string]int{"user.suspend": 1, "user.activate": 1} {
		if recs := f.audited(kind); len(recs) != n || recs[0].Entry.Actor != "401" || recs[0].Entry.Subject != "101" {
			t.Fatalf("%s audited: %+v", kind, recs)
		}
	}
	if r := f.audited("user.suspend")[0].Entry.Reason; r != "Transfert vers un autre établissement" {
		t.Fatalf("suspension reason audited: %q", r)
	}
	if res, body := adm.api("POST", "/api/v1/users/401/suspend", nil); res.StatusCode != http.StatusConflict || !strings.Contains(body, "self_suspend") {
		t.Fatalf("self suspend: %d %s", res.StatusCode, body)
	}
	if res, _ := adm.api("POST", "/api/v1/users/999/suspend", nil); res.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown user: %d", res.StatusCode)
	}
	if res, _ := adm.api("POST", "/api/v1/users/101/delete", nil); res.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown action: %d", res.StatusCode)
	}
	// Security reads the list (no secrets) but cannot suspend.
	sec := f.as("301")
	if res, body := sec.get("/api/v1/users"); res.StatusCode != 200 || strings.Contains(body, "argon2") || !strings.Contains(body, `"web_login": true`) {
		t.Fatalf("security lists users: %d %s", res.StatusCode, body)
	}
	if res, _ := sec.api("POST", "/api/v1/users/101/suspend", nil); res.StatusCode != http.StatusForbidden {
		t.Fatalf("security suspends: %d", res.StatusCode)
	}
}

func TestSecurityHeadersAndStatic(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	res, body := c.get("/static/app.css")
	if res.StatusCode != 200 || !strings.Contains(body, "font-family") {
		t.Fatalf("css: %d", res.StatusCode)
	}
	res, _ = c.get("/login")
	for h, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff"} {
		if res.Header.Get(h) != want {
			t.Errorf("%s: %q", h, res.Header.Get(h))
		}
	}
	if !strings.Contains(res.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Errorf("CSP: %q", res.Header.Get("Content-Security-Policy"))
	}
	if res, _ := c.get("/api/v1/nope"); res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown API route: %d", res.StatusCode)
	}
}
