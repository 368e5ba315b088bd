package dialer

import (
	"bytes"
	"context"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type testActor struct{ ext, role string }

func (a testActor) Extension() string { return a.ext }
func (a testActor) Role() string      { return a.role }

func TestHTTPAPI(t *testing.T) {
	f := newFixture(t, 2)
	called := ""
	f.svc.call = func(ctx context.Context, op, number string, report func(Outcome, int, string)) error {
		called = op + ">" + number
		report(Answered, 200, "call-1")
		return nil
	}
	mux := http.NewServeMux()
	f.svc.Routes(mux, HTTPAuth{Actor: func(r *http.Request) Actor {
		ext := r.Header.Get("X-Test-User")
		role := map[string]string{"101": "operator", "102": "operator", "201": "supervisor", "301": "security"}[ext]
		if role == "" {
			return nil
		}
		return testActor{ext, role}
	}})
	do := func(user, method, path, ctype string, body []byte) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest(method, path, bytes.NewReader(body))
		if user != "" {
			r.Header.Set("X-Test-User", user)
		}
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w
	}
	want := func(w *httptest.ResponseRecorder, code int) {
		t.Helper()
		if w.Code != code {
			t.Fatalf("status %d, want %d: %s", w.Code, code, w.Body)
		}
	}
	spec := `{"name":"Archi","client":"ACME","script":"# Hello","operators":["101"]}`
	want(do("", "POST", "/api/v1/campaigns", "", []byte(spec)), http.StatusUnauthorized)
	want(do("101", "POST", "/api/v1/campaigns", "", []byte(spec)), http.StatusForbidden)
	want(do("301", "POST", "/api/v1/campaigns", "", []byte(spec)), http.StatusForbidden)
	w := do("201", "POST", "/api/v1/campaigns", "", []byte(spec))
	want(w, http.StatusCreated)
	var c Campaign
	json.Unmarshal(w.Body.Bytes(), &c)
	if c.ID == 0 || len(c.Dispositions) != 8 || c.Status != Draft {
		t.Fatalf("created %+v", c)
	}
	want(do("201", "POST", "/api/v1/campaigns/1/status", "", []byte(`{"status":"active"}`)), http.StatusOK)

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", "list.csv")
	fw.Write([]byte("company;phone\nA;0240000001\nB;0240000002\nC;bad\n"))
	mw.Close()
	want(do("101", "POST", "/api/v1/campaigns/1/imports", mw.FormDataContentType(), body.Bytes()), http.StatusForbidden)
	w = do("201", "POST", "/api/v1/campaigns/1/imports", mw.FormDataContentType(), body.Bytes())
	want(w, http.StatusOK)
	var rep ImportReport
	json.Unmarshal(w.Body.Bytes(), &rep)
	if rep.Added != 2 || rep.Proposed != 2 || len(rep.Rejected) != 1 || rep.Rejected[0].Line != 4 {
		t.Fatalf("report %+v", rep)
	}
	want(do("101", "POST", "/api/v1/campaigns/1/next", "", nil), http.StatusNoContent) // not approved yet
	f.approve(c)
	want(do("102", "POST", "/api/v1/campaigns/1/next", "", nil), http.StatusForbidden) // not assigned
	want(do("301", "POST", "/api/v1/campaigns/1/next", "", nil), http.StatusForbidden)
	w = do("101", "POST", "/api/v1/campaigns/1/next", "", nil)
	want(w, http.StatusOK)
	var l Lease
	json.Unmarshal(w.Body.Bytes(), &l)
	if l.Script != "# Hello" || l.Contact.E164 != "+33240000001" {
		t.Fatalf("lease %+v", l)
	}
	if _, err := f.svc.ClickToCall(context.Background(), "101", 1); err != nil {
		t.Fatal(err)
	}
	if called != "101>+33240000001" {
		t.Fatalf("called %q", called)
	}
	w = do("101", "POST", "/api/v1/campaigns/1/next", "", nil)
	want(w, http.StatusConflict) // disposition owed
	want(do("101", "POST", "/api/v1/contacts/1/dispose", "", []byte(`{"disposition":"nope"}`)), http.StatusBadRequest)
	want(do("101", "POST", "/api/v1/contacts/1/dispose", "", []byte(`{"disposition":"interested","notes":"RDV"}`)), http.StatusOK)
	want(do("101", "POST", "/api/v1/campaigns/1/next", "", nil), http.StatusOK)
	want(do("101", "POST", "/api/v1/contacts/2/skip", "", []byte(`{"reason":"closed"}`)), http.StatusNoContent)
	w = do("101", "POST", "/api/v1/contacts/2/release", "", nil)
	want(w, http.StatusConflict)
	// Errors carry a stable code that the consoles translate.
	if !strings.Contains(w.Body.String(), `"code":"not_leased"`) {
		t.Errorf("release of an unleased contact: %s, want code not_leased", w.Body)
	}

	want(do("101", "GET", "/api/v1/campaigns/1/results", "", nil), http.StatusForbidden)
	w = do("301", "GET", "/api/v1/campaigns/1/results", "", nil)
	want(w, http.StatusOK)
	if strings.Contains(w.Body.String(), "101") {
		t.Errorf("results mention an operator: %s", w.Body)
	}
	w = do("301", "GET", "/api/v1/campaigns/1/export", "", nil)
	want(w, http.StatusOK)
	if !strings.Contains(w.Body.String(), "+33240000001,,,1,interested,RDV,") {
		t.Errorf("export: %s", w.Body)
	}
	w = do("102", "GET", "/api/v1/campaigns", "", nil)
	want(w, http.StatusOK)
	if strings.TrimSpace(w.Body.String()) != "[]" {
		t.Errorf("unassigned operator sees %s", w.Body)
	}
	want(do("102", "GET", "/api/v1/campaigns/1", "", nil), http.StatusNotFound)
	want(do("201", "GET", "/api/v1/campaigns/x", "", nil), http.StatusBadRequest)
}
