package web

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"plateau/b2bua"
	"plateau/config"
	"plateau/dialer"
	"plateau/media"
	"plateau/policy"
	"plateau/store"
)

// fakeCalls is the SIP server's list of calls in progress.
type fakeCalls struct {
	mu    sync.Mutex
	calls []b2bua.CallInfo
}

func (f *fakeCalls) Calls() []b2bua.CallInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]b2bua.CallInfo(nil), f.calls...)
}

// Hangup ends a call of the operator's, as the B2BUA does.
func (f *fakeCalls) Hangup(callID, operator string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, c := range f.calls {
		if c.ID == callID && c.Operator == operator {
			f.calls = append(f.calls[:i], f.calls[i+1:]...)
			return nil
		}
	}
	return b2bua.ErrNoSuchCall
}

func (f *fakeCalls) set(cs ...b2bua.CallInfo) {
	f.mu.Lock()
	f.calls = cs
	f.mu.Unlock()
}

// fakeMonitor records monitor requests and answers err.
type fakeMonitor struct {
	mu   sync.Mutex
	got  []string
	err  error
	next string
}

func (m *fakeMonitor) Monitor(_ context.Context, sup, op string, mode media.MonitorMode) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.got = append(m.got, sup+">"+op+":"+mode.String())
	return m.next, m.err
}

// fakeCaller is click-to-call: it records the call and reports outcome
// at once (or returns err).
type fakeCaller struct {
	mu      sync.Mutex
	got     []string
	sources []string
	outcome dialer.Outcome
	status  int
	err     error
}

func (c *fakeCaller) call(ctx context.Context, op, number string, report func(dialer.Outcome, int, string)) error {
	c.mu.Lock()
	c.got = append(c.got, op+">"+number)
	c.sources = append(c.sources, RequestSource(ctx))
	err, o, st := c.err, c.outcome, c.status
	c.mu.Unlock()
	if err != nil {
		return err
	}
	report(o, st, "call-1")
	return nil
}

type consoleFixture struct {
	*fixture
	calls  *fakeCalls
	mon    *fakeMonitor
	caller *fakeCaller
	dial   *dialer.Service
}

func newConsoleFixture(t *testing.T) *consoleFixture {
	t.Helper()
	cf := &consoleFixture{calls: &fakeCalls{}, mon: &fakeMonitor{next: "mon-1"}, caller: &fakeCaller{outcome: dialer.Answered, status: 200}}
	cf.fixture = newFixture(t, func(d *Deps) {
		weekday := [7]bool{false, true, true, true, true, true, false}
		ws, err := policy.NewWindows(d.Location, []config.WeeklyWindow{{Days: weekday, From: 7*60 + 30, To: 18 * 60}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		svc, err := dialer.New(d.Store, ws, "FR", dialer.WithClock(d.Now), dialer.WithCaller(cf.caller.call))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { svc.Close() })
		cf.dial = svc
		d.Dialer, d.Calls, d.Monitor, d.TrainingCalls = svc, cf.calls, cf.mon, 3
	})
	return cf
}

func (f *fixture) by(ext string) store.Change {
	return store.Change{By: ext, Source: "test", At: f.clock.Now()}
}

// campaign creates an active campaign for operator 101 with contacts;
// approved numbers are approved by security officer 302.
func (cf *consoleFixture) campaign(name, csv string, approve bool) dialer.Campaign {
	cf.t.Helper()
	ctx := context.Background()
	c, err := cf.dial.CreateCampaign(ctx, cf.by("201"), dialer.CampaignSpec{Name: name, Client: "Client SA",
		Script: "# Accroche\nBonjour, **Plateau** <script>alert(1)</script>", Operators: []string{"101"}})
	if err != nil {
		cf.t.Fatal(err)
	}
	if _, err := cf.dial.Import(ctx, cf.by("201"), c.ID, []byte(csv)); err != nil {
		cf.t.Fatal(err)
	}
	if approve {
		if _, err := cf.st.ApproveAllowlist(ctx, cf.by("302"), store.Selection{Campaign: name}); err != nil {
			cf.t.Fatal(err)
		}
	}
	if c, err = cf.dial.SetStatus(ctx, cf.by("201"), c.ID, dialer.Active); err != nil {
		cf.t.Fatal(err)
	}
	return c
}

func (cf *consoleFixture) register(ext string) {
	cf.t.Helper()
	err := cf.st.SaveBindings(context.Background(), []store.Binding{{Extension: ext, Contact: "sip:" + ext + "@10.0.0.7:5062",
		Source: "10.0.0.7:5062", Transport: "UDP", UserAgent: "baresip", ExpiresAt: cf.clock.Now().Add(time.Hour)}}, nil)
	if err != nil {
		cf.t.Fatal(err)
	}
}

const csvTwo = "company;contact;phone;city;notes;sector\nCabinet Loire;Mme Roux;02 40 12 34 56;Nantes;Rappeler le matin;architecte\nSyndic Atlantique;M. Blanc;02 40 99 88 77;Saint-Nazaire;;syndic\n"

func TestMonitorAuthorization(t *testing.T) {
	cf := newConsoleFixture(t)
	op := cf.as("101")
	if res, _ := op.api("POST", "/api/v1/monitor", map[string]string{"operator": "102", "mode": "listen"}); res.StatusCode != http.StatusForbidden {
		t.Fatalf("operator starts a monitor: %d", res.StatusCode)
	}
	if res, _ := cf.as("301").api("POST", "/api/v1/monitor", map[string]string{"operator": "102", "mode": "listen"}); res.StatusCode != http.StatusForbidden {
		t.Fatalf("security starts a monitor: %d", res.StatusCode)
	}
	if len(cf.mon.got) != 0 {
		t.Fatalf("the SIP server was asked: %v", cf.mon.got)
	}
	sup := cf.as("201")
	res, body := sup.api("POST", "/api/v1/monitor", map[string]string{"operator": "101", "mode": "whisper"})
	if res.StatusCode != http.StatusAccepted || !strings.Contains(body, `"session": "mon-1"`) || !strings.Contains(body, "décrochez") {
		t.Fatalf("supervisor monitor: %d %s", res.StatusCode, body)
	}
	if cf.mon.got[0] != "201>101:whisper" {
		t.Fatalf("monitor request: %v", cf.mon.got)
	}
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{b2bua.ErrNoActiveCall, http.StatusNotFound, "monitor_no_call"},
		{b2bua.ErrSupervisorNotRegistered, http.StatusConflict, "monitor_not_registered"},
		{b2bua.ErrMonitorBusy, http.StatusConflict, "monitor_busy"},
		{b2bua.ErrRoleForbidden, http.StatusForbidden, "monitor_forbidden"},
		{b2bua.ErrNoMonitoring, http.StatusServiceUnavailable, "monitor_unavailable"},
	} {
		cf.mon.err = tc.err
		res, body := sup.api("POST", "/api/v1/monitor", map[string]string{"operator": "101", "mode": "barge"})
		if res.StatusCode != tc.status || !strings.Contains(body, `"error": "`+tc.code+`"`) {
			t.Errorf("%v: %d %s", tc.err, res.StatusCode, body)
		}
	}
	if res, _ := sup.api("POST", "/api/v1/monitor", map[string]string{"operator": "101", "mode": "shout"}); res.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown mode: %d", res.StatusCode)
	}
	// Without the CSRF token nothing reaches the handler.
	sup.csrf, cf.mon.got = "", nil
	if res, _ := sup.api("POST", "/api/v1/monitor", map[string]string{"operator": "101", "mode": "listen"}); res.StatusCode != http.StatusForbidden || len(cf.mon.got) != 0 {
		t.Errorf("monitor without CSRF: %d %v", res.StatusCode, cf.mon.got)
	}
	// The form (no JavaScript) says the same, localised.
	cf.mon.err = b2bua.ErrNoActiveCall
	sup = cf.as("201")
	res, body = sup.form("/supervisor/monitor", url.Values{"operator": {"101"}, "mode": {"listen"}})
	if res.StatusCode != http.StatusNotFound || !strings.Contains(body, "pas d&#39;appel en cours") {
		t.Errorf("monitor form: %d", res.StatusCode)
	}
}

func TestLiveCallsAreOwn(t *testing.T) {
	cf := newConsoleFixture(t)
	now := cf.clock.Now()
	cf.calls.set(
		b2bua.CallInfo{ID: "a", Operator: "101", Number: "+33240123456", Campaign: "archi", State: "connected", Start: now.Add(-90 * time.Second), Answered: now.Add(-75 * time.Second)},
		b2bua.CallInfo{ID: "b", Operator: "102", Number: "+33240999999", Campaign: "syndics", State: "setup", Start: now.Add(-5 * time.Second)},
	)
	op := cf.as("101")
	res, body := op.get("/api/v1/me/call")
	if res.StatusCode != 200 || !strings.Contains(body, `"number": "+33240123456"`) || !strings.Contains(body, `"elapsed": 75`) {
		t.Fatalf("101's call: %s", body)
	}
	if strings.Contains(body, "+33240999999") || strings.Contains(body, `"b"`) {
		t.Fatalf("101 sees 102's call: %s", body)
	}
	if res, _ := op.get("/api/v1/calls"); res.StatusCode != http.StatusForbidden {
		t.Fatalf("operator lists all calls: %d", res.StatusCode)
	}
	if _, body := cf.as("102").get("/api/v1/me/call"); !strings.Contains(body, `"id": "b"`) || strings.Contains(body, "+33240123456") {
		t.Fatalf("102's call: %s", body)
	}
	res, body = cf.as("201").get("/api/v1/calls")
	if res.StatusCode != 200 || !strings.Contains(body, `"operator": "101"`) || !strings.Contains(body, `"operator": "102"`) || strings.Contains(body, "+3324") {
		t.Fatalf("supervisor calls (no numbers): %s", body)
	}

	// The wallboard stream carries the state, the campaign and the
	// duration, and no count of anything per operator.
	sup := cf.as("201")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, cf.srv.URL+"/supervisor/events", nil)
	sres, err := sup.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer sres.Body.Close()
	sc := bufio.NewScanner(sres.Body)
	var data string
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			data = d
			break
		}
	}
	for _, want := range []string{`"extension":"101","display_name":"Opérateur Un"`, `"state":"in_call","campaign":"archi","elapsed":75`,
		`"state":"ringing","campaign":"syndics"`} {
		if !strings.Contains(data, want) {
			t.Errorf("wallboard event lacks %s: %s", want, data)
		}
	}
	if strings.Contains(data, "+3324") || strings.Contains(data, "count") || strings.Contains(data, "rank") {
		t.Errorf("wallboard shows numbers or counts: %s", data)
	}
	// The page shows the monitor buttons for the operators in a call.
	_, page := sup.get("/supervisor")
	if !strings.Contains(page, `aria-label="Écouter l&#39;appel du poste 101"`) || !strings.Contains(page, "en communication") {
		t.Errorf("supervisor page lacks the monitor buttons")
	}
}

func TestCampaignAuthorization(t *testing.T) {
	cf := newConsoleFixture(t)
	op := cf.as("101")
	spec := map[string]any{"name": "archi", "client": "X", "operators": []string{"101"}}
	if res, _ := op.api("POST", "/api/v1/campaigns", spec); res.StatusCode != http.StatusForbidden {
		t.Fatalf("operator creates a campaign over the API: %d", res.StatusCode)
	}
	if res, _ := op.form("/supervisor/campaigns", url.Values{"name": {"archi"}}); res.StatusCode != http.StatusForbidden {
		t.Fatalf("operator creates a campaign with the form: %d", res.StatusCode)
	}
	if res, _ := op.get("/supervisor/campaigns"); res.StatusCode != http.StatusForbidden {
		t.Fatalf("operator opens the campaign pages: %d", res.StatusCode)
	}
	if res, _ := cf.as("301").form("/supervisor/campaigns", url.Values{"name": {"archi"}}); res.StatusCode != http.StatusForbidden {
		t.Fatalf("security creates a campaign: %d", res.StatusCode)
	}
	if cs, _ := cf.dial.Campaigns(t.Context()); len(cs) != 0 {
		t.Fatalf("campaigns created: %+v", cs)
	}

	sup := cf.as("201")
	res, _ := sup.form("/supervisor/campaigns", url.Values{"name": {"archi-44"}, "client": {"Client SA"},
		"windows": {"mon-fri 09:00-12:00\nmon-fri 14:00-17:30"}, "operators": {"101", "102"}, "script": {"# Bonjour"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("supervisor creates: %d", res.StatusCode)
	}
	c, err := cf.dial.CampaignByName(t.Context(), "archi-44")
	if err != nil || len(c.Windows) != 2 || c.Windows[1].To != "17:30" || len(c.Operators) != 2 || c.Status != dialer.Draft {
		t.Fatalf("created: %+v %v", c, err)
	}
	// A bad window says which line.
	res, body := sup.form("/supervisor/campaigns", url.Values{"name": {"other"}, "windows": {"lundi 9h"}})
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Saisie invalide") || !strings.Contains(body, "ligne 1 (« lundi 9h »)") || strings.Contains(body, "write e.g.") {
		t.Fatalf("bad window: %d", res.StatusCode)
	}

	// Import with a report of the rejected lines.
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("csrf", sup.csrf)
	fw, _ := mw.CreateFormFile("file", "contacts.csv")
	fw.Write([]byte(csvTwo + "Sans numéro;X;pas un numéro;Nantes;;\nCabinet Loire bis;Y;02 40 12 34 56;Nantes;;\n"))
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/supervisor/campaigns/%d/import", cf.srv.URL, c.ID), &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	res, body = sup.do(req)
	if res.StatusCode != 200 || !strings.Contains(body, "2 contacts ajoutés sur 4 lignes, 2 rejetées") ||
		!strings.Contains(body, "numéro invalide") || !strings.Contains(body, "en double dans le fichier") {
		t.Fatalf("import report: %d %s", res.StatusCode, body)
	}
	// Activate, then progress shows on the console (per campaign only).
	if res, _ := sup.form(fmt.Sprintf("/supervisor/campaigns/%d/status", c.ID), url.Values{"status": {"active"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("activate: %d", res.StatusCode)
	}
	if c, _ = cf.dial.Campaign(t.Context(), c.ID); c.Status != dialer.Active {
		t.Fatalf("status %s", c.Status)
	}
	_, body = sup.get("/supervisor")
	if !strings.Contains(body, `href="/supervisor/campaigns/`) || !strings.Contains(body, "archi-44") {
		t.Fatalf("progress missing on the console")
	}
	if res, _ := cf.as("102").form(fmt.Sprintf("/supervisor/campaigns/%d/status", c.ID), url.Values{"status": {"paused"}}); res.StatusCode != http.StatusForbidden {
		t.Fatalf("operator pauses: %d", res.StatusCode)
	}
}

func TestClickToCallFlow(t *testing.T) {
	cf := newConsoleFixture(t)
	c := cf.campaign("archi", csvTwo, true)
	op := cf.as("101")
	_, page := op.get("/operator")
	if !strings.Contains(page, "<h3>Accroche</h3>") || !strings.Contains(page, "<strong>Plateau</strong>") || strings.Contains(page, "<script>alert") {
		t.Fatalf("operator page script: %s", page)
	}
	next := fmt.Sprintf("/api/v1/campaigns/%d/next", c.ID)
	res, body := op.api("POST", next, nil)
	var lease dialer.Lease
	decode(t, body, &lease)
	if res.StatusCode != 200 || lease.Contact.Company != "Cabinet Loire" || lease.Contact.Custom["sector"] != "architecte" {
		t.Fatalf("next: %d %s", res.StatusCode, body)
	}
	call := fmt.Sprintf("/api/v1/contacts/%d/call", lease.Contact.ID)

	// Phone not registered: refused before the contact leaves the queue.
	res, body = op.api("POST", call, nil)
	if res.StatusCode != http.StatusConflict || !strings.Contains(body, "phone_not_registered") || len(cf.caller.got) != 0 {
		t.Fatalf("call without a phone: %d %s", res.StatusCode, body)
	}
	if res, _ := op.api("POST", next, nil); res.StatusCode != 200 {
		t.Fatalf("the contact is not leased any more: %d", res.StatusCode)
	}

	// Another operator cannot call a contact leased to 101.
	cf.register("102")
	if res, _ := cf.as("102").api("POST", call, nil); res.StatusCode != http.StatusForbidden && res.StatusCode != http.StatusConflict {
		t.Fatalf("102 calls 101's contact: %d", res.StatusCode)
	}

	cf.register("101")
	res, body = op.api("POST", call, nil)
	if res.StatusCode != http.StatusAccepted || cf.caller.got[len(cf.caller.got)-1] != "101>+33240123456" {
		t.Fatalf("call: %d %s %v", res.StatusCode, body, cf.caller.got)
	}
	if src := cf.caller.sources[len(cf.caller.sources)-1]; src != "127.0.0.1" {
		t.Errorf("call source %q", src)
	}
	// The outcome is shown with the poll; the next lease waits for the disposition.
	if _, body := op.get(fmt.Sprintf("/api/v1/me/call?contact=%d", lease.Contact.ID)); !strings.Contains(body, `"outcome": "answered"`) {
		t.Fatalf("outcome: %s", body)
	}
	res, body = op.api("POST", next, nil)
	if res.StatusCode != http.StatusConflict || !strings.Contains(body, `"lease"`) {
		t.Fatalf("next with a disposition owed: %d %s", res.StatusCode, body)
	}
	dispose := fmt.Sprintf("/api/v1/contacts/%d/dispose", lease.Contact.ID)
	if res, body := op.api("POST", dispose, map[string]any{"disposition": "interested", "notes": "RDV à fixer"}); res.StatusCode != 200 {
		t.Fatalf("dispose: %d %s", res.StatusCode, body)
	}
	res, body = cf.as("201").get(fmt.Sprintf("/api/v1/campaigns/%d/results", c.ID))
	if res.StatusCode != 200 || !strings.Contains(body, `"attempts":1`) || !strings.Contains(body, `"reached":1`) || !strings.Contains(body, `"interested":1`) {
		t.Fatalf("results: %s", body)
	}

	// The second contact: the call path refuses it (policy): 403 with the
	// reason, and the failed attempt is owed a disposition.
	res, body = op.api("POST", next, nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("second lease: %d %s", res.StatusCode, body)
	}
	decode(t, body, &lease)
	cf.caller.err = fmt.Errorf("click-to-call: %w", &b2bua.RefusedError{Decision: policy.Decision{Reason: policy.ReasonOutsideWindow}})
	res, body = op.api("POST", fmt.Sprintf("/api/v1/contacts/%d/call", lease.Contact.ID), nil)
	if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "hors des heures d&#39;appel") && !strings.Contains(body, "hors des heures d'appel") ||
		!strings.Contains(body, `"disposition_owed": true`) {
		t.Fatalf("refused call: %d %s", res.StatusCode, body)
	}
	cf.caller.err = errors.Join(b2bua.ErrNoAnswer)
	if res, body := op.api("POST", fmt.Sprintf("/api/v1/contacts/%d/call", lease.Contact.ID), nil); res.StatusCode != http.StatusConflict || !strings.Contains(body, "phone_no_answer") {
		t.Fatalf("phone did not answer: %d %s", res.StatusCode, body)
	}

	// A callback comes back on the operator's list.
	at := cf.clock.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	if res, body := op.api("POST", fmt.Sprintf("/api/v1/contacts/%d/dispose", lease.Contact.ID),
		map[string]any{"disposition": "callback", "callback_at": at}); res.StatusCode != 200 {
		t.Fatalf("callback: %d %s", res.StatusCode, body)
	}
	if _, body := op.get("/api/v1/me/callbacks"); !strings.Contains(body, "Syndic Atlantique") {
		t.Fatalf("callbacks: %s", body)
	}
	if _, body := cf.as("102").get("/api/v1/me/callbacks"); strings.Contains(body, "Syndic") {
		t.Fatalf("102 sees 101's callbacks: %s", body)
	}
	if _, page := op.get("/operator"); !strings.Contains(page, "Syndic Atlantique") {
		t.Fatalf("operator page lacks the callback")
	}
}

func TestUnapprovedNumberNeverOffered(t *testing.T) {
	cf := newConsoleFixture(t)
	c := cf.campaign("unapproved", csvTwo, false)
	res, _ := cf.as("101").api("POST", fmt.Sprintf("/api/v1/campaigns/%d/next", c.ID), nil)
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("next with no approved number: %d", res.StatusCode)
	}
	// An operator not assigned to the campaign gets 403.
	if res, _ := cf.as("102").api("POST", fmt.Sprintf("/api/v1/campaigns/%d/next", c.ID), nil); res.StatusCode != http.StatusForbidden {
		t.Fatalf("unassigned operator: %d", res.StatusCode)
	}
}

func TestTrainingRoutes(t *testing.T) {
	cf := newConsoleFixture(t)
	if res, _ := cf.as("101").api("POST", "/api/v1/training/102", map[string]int{"calls": 3}); res.StatusCode != http.StatusForbidden {
		t.Fatalf("operator puts someone in training: %d", res.StatusCode)
	}
	sup := cf.as("201")
	res, body := sup.api("POST", "/api/v1/training/102", map[string]int{"calls": 4})
	if res.StatusCode != 200 || !strings.Contains(body, `"MaxCalls": 4`) {
		t.Fatalf("train: %d %s", res.StatusCode, body)
	}
	if recs := cf.audited("user.train"); len(recs) != 1 || recs[0].Entry.Actor != "201" || recs[0].Entry.Subject != "102" {
		t.Fatalf("audit user.train: %+v", recs)
	}
	if res, _ := sup.api("POST", "/api/v1/training/201", nil); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("train a supervisor: %d", res.StatusCode)
	}
	if res, _ := sup.api("POST", "/api/v1/training/102", map[string]int{"calls": 0}); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("zero calls: %d", res.StatusCode)
	}
	_, body = sup.get("/api/v1/training")
	if !strings.Contains(body, `"status": "training"`) || !strings.Contains(body, `"default_calls": 3`) {
		t.Fatalf("training list: %s", body)
	}
	_, page := sup.get("/supervisor")
	if !strings.Contains(page, "0 appels sur 4") {
		t.Fatalf("the console does not show 102 in training")
	}
	if res, _ := cf.as("101").api("POST", "/api/v1/training/102/signoff", nil); res.StatusCode != http.StatusForbidden {
		t.Fatalf("operator signs off: %d", res.StatusCode)
	}
	if res, body := sup.api("POST", "/api/v1/training/102/signoff", nil); res.StatusCode != 200 || !strings.Contains(body, "signed_off") {
		t.Fatalf("sign off: %d %s", res.StatusCode, body)
	}
	if recs := cf.audited("user.signoff"); len(recs) != 1 || recs[0].Entry.Actor != "201" {
		t.Fatalf("audit user.signoff: %+v", recs)
	}
	if res, _ := sup.api("POST", "/api/v1/training/102/signoff", nil); res.StatusCode != http.StatusConflict {
		t.Fatalf("second sign-off: %d", res.StatusCode)
	}
	// The forms: until sign-off, then sign-off.
	sup = cf.as("201")
	if res, body := sup.form("/supervisor/training", url.Values{"operator": {"101"}, "until_signoff": {"1"}}); res.StatusCode != 200 || !strings.Contains(body, "Le poste 101 est en formation") {
		t.Fatalf("train form: %d", res.StatusCode)
	}
	if tr, ok, _ := cf.st.TrainingOf(t.Context(), "101"); !ok || tr.MaxCalls != 0 || tr.StartedBy != "201" {
		t.Fatalf("training of 101: %+v", tr)
	}
	if res, body := sup.form("/supervisor/training/101/signoff", nil); res.StatusCode != 200 || !strings.Contains(body, "Formation du poste 101 validée") {
		t.Fatalf("sign-off form: %d", res.StatusCode)
	}
}

func TestRenderScript(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Bonjour", "<p>Bonjour</p>\n"},
		{"# Titre\n\nUn **mot** et *un autre*", "<h3>Titre</h3>\n<p>Un <strong>mot</strong> et <em>un autre</em></p>\n"},
		{"- un\n- deux\n\n1. a\n2. b", "<ul>\n<li>un</li>\n<li>deux</li>\n</ul>\n<ol>\n<li>a</li>\n<li>b</li>\n</ol>\n"},
		{"<script>alert(1)</script>", "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>\n"},
		{"**<img src=x onerror=alert(1)>**", "<p><strong>&lt;img src=x onerror=alert(1)&gt;</strong></p>\n"},
		{"[lien](javascript:alert(1)) & \"q\"", "<p>[lien](javascript:alert(1)) &amp; &#34;q&#34;</p>\n"},
		{"#pas un titre\nligne 2", "<p>#pas un titre<br>ligne 2</p>\n"},
		{"## Objections\n- *Trop cher* : **proposer** un essai", "<h4>Objections</h4>\n<ul>\n<li><em>Trop cher</em> : <strong>proposer</strong> un essai</li>\n</ul>\n"},
	} {
		if got := string(renderScript(tc.in)); got != tc.want {
			t.Errorf("renderScript(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzRenderScript(f *testing.F) {
	for _, s := range []string{"# a\n- b **c**", "<b>x</b>", "*_*", "1. <"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := string(renderScript(s))
		// Only our own tags: every '<' starts one of them.
		rest := out
		for _, tag := range []string{"<p>", "</p>", "<br>", "<h3>", "</h3>", "<h4>", "</h4>", "<h5>", "</h5>", "<ul>", "</ul>",
			"<ol>", "</ol>", "<li>", "</li>", "<strong>", "</strong>", "<em>", "</em>"} {
			rest = strings.ReplaceAll(rest, tag, "")
		}
		if strings.Contains(rest, "<") || strings.Contains(rest, ">") {
			t.Fatalf("renderScript(%q) lets markup through: %q", s, out)
		}
	})
}

// The console hangs up the user's own call, never another's.
func TestHangupOwnCall(t *testing.T) {
	cf := newConsoleFixture(t)
	now := cf.clock.Now()
	cf.calls.set(
		b2bua.CallInfo{ID: "a", Operator: "101", State: "connected", Start: now, Answered: now},
		b2bua.CallInfo{ID: "b", Operator: "102", State: "connected", Start: now, Answered: now},
	)
	if res, _ := cf.as("201").api("POST", "/api/v1/me/call/hangup", nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("hang up without a call: %d, want 404", res.StatusCode)
	}
	if res, _ := cf.as("101").api("POST", "/api/v1/me/call/hangup", nil); res.StatusCode != http.StatusNoContent {
		t.Fatalf("hang up own call: %d, want 204", res.StatusCode)
	}
	calls := cf.calls.Calls()
	if len(calls) != 1 || calls[0].ID != "b" {
		t.Errorf("calls after 101 hung up: %+v, want only 102's", calls)
	}
}
