package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// webClient is a browser without a browser: a cookie jar, the session's
// CSRF token, and JSON helpers for the consoles' API.
type webClient struct {
	t    *testing.T
	base string
	hc   *http.Client
	csrf string
}

var (
	loginCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	metaCSRF  = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)"`)
)

// webLogin logs ext in through the login form (with its CSRF field) and
// reads the session's token from the console it lands on.
func webLogin(t *testing.T, p *plateau, ext, password string) *webClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	base, tr := p.web("")
	c := &webClient{t: t, base: base, hc: &http.Client{Jar: jar, Timeout: 60 * time.Second, Transport: tr}}
	_, page := c.do("GET", "/login", "", nil)
	m := loginCSRF.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("login page without a csrf field:\n%s", tail(page, 1500))
	}
	form := url.Values{"csrf": {m[1]}, "username": {ext}, "password": {password}}
	res, page := c.do("POST", "/login", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	mm := metaCSRF.FindStringSubmatch(page)
	if res.StatusCode != 200 || mm == nil || res.Request.URL.Path == "/login" {
		t.Fatalf("login %s: %d at %s\n%s", ext, res.StatusCode, res.Request.URL, tail(page, 1500))
	}
	c.csrf = mm[1]
	return c
}

func (c *webClient) do(method, path, ctype string, body io.Reader) (*http.Response, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.csrf != "" && method != "GET" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// api sends JSON (nil: no body) and decodes the answer into out (if not nil).
func (c *webClient) api(method, path string, in, out any) int {
	c.t.Helper()
	var body io.Reader
	ctype := ""
	if in != nil {
		b, _ := json.Marshal(in)
		body, ctype = strings.NewReader(string(b)), "application/json"
	}
	res, text := c.do(method, path, ctype, body)
	if out != nil && text != "" {
		if err := json.Unmarshal([]byte(text), out); err != nil {
			c.t.Fatalf("%s %s: %d %q: %v", method, path, res.StatusCode, text, err)
		}
	}
	return res.StatusCode
}

// campaignID finds a campaign the user sees by name.
func (c *webClient) campaignID(name string) int64 {
	c.t.Helper()
	var cs []struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	}
	if st := c.api("GET", "/api/v1/campaigns", nil, &cs); st != 200 {
		c.t.Fatalf("campaigns: %d", st)
	}
	for _, cp := range cs {
		if cp.Name == name {
			return cp.ID
		}
	}
	c.t.Fatalf("campaign %q not visible: %+v", name, cs)
	return 0
}

func mustCmd(t *testing.T, p *plateau, args ...string) string {
	t.Helper()
	out, err := p.plateauCmd(args...)
	if err != nil {
		t.Fatalf("plateau %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// TestClickToCallFromConsole: the whole preview-dialling path on the real
// binary. A campaign is created, its CSV imported and its numbers approved
// with the CLI (201 imports, 302 approves); operator 101's phone is SIPp
// (it registers, then answers on the same port, checking the auto-answer
// headers, and hangs up); the carrier is SIPp. The operator logs in over
// HTTP, leases the contact, clicks Call; the call connects; the attempt is
// recorded; the disposition is posted; the results count it. A contact
// whose number was never approved never reaches the operator.
func TestClickToCallFromConsole(t *testing.T) {
	carrierPort := freePort(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}})
	const opWeb, supWeb = "operator-web-pw-101", "supervisor-web-pw-201"
	consoleUsers(t, p, opWeb, supWeb)

	dir := t.TempDir()
	write := func(name, text string) string { return writeIn(t, dir, name, text) }
	script := write("script.md", "# Accroche\nBonjour, je vous appelle de la part de **Client SA**.\n- Présenter l'offre\n- Proposer un rendez-vous\n")
	// 02 40 12 34 57 is new: the import proposes it, security approves it.
	calls := write("calls.csv", "company;contact;phone;city;notes;secteur\nCabinet E2E;Mme Essai;02 40 12 34 57;Nantes;Rappeler le matin;architecte\n")
	never := write("never.csv", "company;contact;phone;city;notes\nJamais Approuvé;M. Non;02 40 99 99 99;Rezé;\n")
	mustCmd(t, p, "campaign", "create", "--by", "201", "--client", "Client SA", "--operators", opExt, "--script", script, "e2e-call")
	mustCmd(t, p, "campaign", "create", "--by", "201", "--client", "Client SA", "--operators", opExt, "e2e-never")
	if out := mustCmd(t, p, "campaign", "import", "--by", "201", "--campaign", "e2e-call", calls); !strings.Contains(out, "1") {
		t.Logf("import: %s", out)
	}
	mustCmd(t, p, "campaign", "import", "--by", "201", "--campaign", "e2e-never", never)
	if out := mustCmd(t, p, "allowlist", "approve", "--by", "302", "--campaign", "e2e-call"); !strings.Contains(out, "+33240123457") {
		t.Fatalf("approve --campaign e2e-call: %s", out)
	}
	mustCmd(t, p, "campaign", "activate", "--by", "201", "e2e-call")
	mustCmd(t, p, "campaign", "activate", "--by", "201", "e2e-never")

	// The operator's phone registers from the port it will answer on.
	phonePort := freePort(t)
	if r := runSipp(t, p, "register_auth.xml", []string{opExt + ";" + opPass + ";3600"}, "-p", strconv.Itoa(phonePort)); r.exit != 0 {
		t.Fatalf("register: exit %d\n%s\n%s", r.exit, tail(r.errLog, 2000), tail(r.output, 2000))
	}

	op := webLogin(t, p, opExt, opWeb)
	eventually(t, "the console sees the phone registered", func() (bool, string) {
		var reg struct {
			Registered bool `json:"registered"`
		}
		op.api("GET", "/api/v1/me/registration", nil, &reg)
		return reg.Registered, strconv.FormatBool(reg.Registered)
	})
	if _, page := op.do("GET", "/operator", "", nil); !strings.Contains(page, "<strong>Client SA</strong>") || !strings.Contains(page, "e2e-call") {
		t.Fatalf("operator console lacks the campaign or its script:\n%s", tail(page, 3000))
	}

	// Never approved: never offered.
	if st := op.api("POST", fmt.Sprintf("/api/v1/campaigns/%d/next", op.campaignID("e2e-never")), nil, nil); st != http.StatusNoContent {
		t.Fatalf("next in a campaign whose only number is unapproved: %d, want 204", st)
	}

	campaign := op.campaignID("e2e-call")
	var lease struct {
		Contact struct {
			ID      int64             `json:"id"`
			Number  string            `json:"number"`
			Company string            `json:"company"`
			Custom  map[string]string `json:"custom"`
		} `json:"contact"`
		Script string `json:"script"`
	}
	if st := op.api("POST", fmt.Sprintf("/api/v1/campaigns/%d/next", campaign), nil, &lease); st != 200 {
		t.Fatalf("next: %d", st)
	}
	if lease.Contact.Number != "+33240123457" || lease.Contact.Company != "Cabinet E2E" || lease.Contact.Custom["secteur"] != "architecte" ||
		!strings.Contains(lease.Script, "Accroche") {
		t.Fatalf("lease: %+v", lease)
	}

	phone := startSipp(t, "operator phone", "uas_autoanswer.xml", "-p", strconv.Itoa(phonePort), "-d", "5000")
	carrier := startCarrier(t, carrierPort, "uas_answer.xml")
	time.Sleep(300 * time.Millisecond) // both SIPp listening

	var called struct {
		ID    int64  `json:"id"`
		State string `json:"state"`
	}
	start := time.Now()
	if st := op.api("POST", fmt.Sprintf("/api/v1/contacts/%d/call", lease.Contact.ID), nil, &called); st != http.StatusAccepted {
		t.Fatalf("call: %d %+v\n%s", st, called, tail(p.logs.String(), 3000))
	}
	t.Logf("the operator's phone answered %v after the click", time.Since(start).Round(time.Millisecond))

	// The live call: the operator sees their own; the supervisor sees it
	// on the wallboard's API with its campaign.
	type live struct {
		Call *struct {
			State    string `json:"state"`
			Number   string `json:"number"`
			Campaign string `json:"campaign"`
		} `json:"call"`
		Outcome *struct {
			Outcome   string `json:"outcome"`
			SIPStatus int    `json:"sip_status"`
		} `json:"outcome"`
	}
	eventually(t, "the call connects", func() (bool, string) {
		var l live
		op.api("GET", "/api/v1/me/call", nil, &l)
		if l.Call == nil {
			return false, "no call"
		}
		return l.Call.State == "connected" && l.Call.Number == "+33240123457" && l.Call.Campaign == "e2e-call", fmt.Sprintf("%+v", *l.Call)
	})
	sup := webLogin(t, p, "201", supWeb)
	var board struct {
		Calls []struct {
			Operator string `json:"operator"`
			Campaign string `json:"campaign"`
			State    string `json:"state"`
		} `json:"calls"`
	}
	if st := sup.api("GET", "/api/v1/calls", nil, &board); st != 200 || len(board.Calls) != 1 || board.Calls[0].Operator != opExt || board.Calls[0].Campaign != "e2e-call" {
		t.Errorf("wallboard calls: %d %+v", st, board)
	}
	// The supervisor's phone is not registered: the monitor request says so.
	var merr struct {
		Error string `json:"error"`
	}
	if st := sup.api("POST", "/api/v1/monitor", map[string]string{"operator": opExt, "mode": "listen"}, &merr); st != http.StatusConflict || merr.Error != "monitor_not_registered" {
		t.Errorf("monitor with no supervisor phone: %d %+v", st, merr)
	}
	// An operator cannot monitor.
	if st := op.api("POST", "/api/v1/monitor", map[string]string{"operator": opExt, "mode": "listen"}, nil); st != http.StatusForbidden {
		t.Errorf("operator monitors: %d", st)
	}

	phone.mustSucceed(45 * time.Second)
	carrier.mustSucceed(15 * time.Second)

	eventually(t, "the attempt is recorded and the call gone", func() (bool, string) {
		var l live
		op.api("GET", fmt.Sprintf("/api/v1/me/call?contact=%d", lease.Contact.ID), nil, &l)
		return l.Call == nil && l.Outcome != nil && l.Outcome.Outcome == "answered" && l.Outcome.SIPStatus == 200, fmt.Sprintf("%+v %+v", l.Call, l.Outcome)
	})
	// The dialer holds the next lease until the disposition is entered.
	var owed map[string]any
	if st := op.api("POST", fmt.Sprintf("/api/v1/campaigns/%d/next", campaign), nil, &owed); st != http.StatusConflict || owed["lease"] == nil {
		t.Fatalf("next before the disposition: %d %v", st, owed)
	}
	if st := op.api("POST", fmt.Sprintf("/api/v1/contacts/%d/dispose", lease.Contact.ID),
		map[string]string{"disposition": "appointment set", "notes": "RDV mardi 10 h"}, nil); st != 200 {
		t.Fatalf("dispose: %d", st)
	}
	if st := op.api("POST", fmt.Sprintf("/api/v1/campaigns/%d/next", campaign), nil, nil); st != http.StatusNoContent {
		t.Fatalf("next after the only contact is done: %d", st)
	}

	var res struct {
		Contacts      int            `json:"contacts"`
		Attempts      int            `json:"attempts"`
		Reached       int            `json:"reached"`
		Done          int            `json:"done"`
		ByOutcome     map[string]int `json:"by_outcome"`
		ByDisposition map[string]int `json:"by_disposition"`
	}
	if st := sup.api("GET", fmt.Sprintf("/api/v1/campaigns/%d/results", campaign), nil, &res); st != 200 ||
		res.Contacts != 1 || res.Attempts != 1 || res.Reached != 1 || res.Done != 1 || res.ByOutcome["answered"] != 1 || res.ByDisposition["appointment set"] != 1 {
		t.Fatalf("results: %d %+v", st, res)
	}
	if out := mustCmd(t, p, "campaign", "export", "--campaign", "e2e-call"); !strings.Contains(out, "Cabinet E2E") || !strings.Contains(out, "appointment set") {
		t.Errorf("export: %s", out)
	}
	if got := auditLines(t, p, "dialer.dispose"); !strings.Contains(got, "+33240123457") {
		t.Errorf("audit dialer.dispose:\n%s", got)
	}
	if got := recordingFiles(t, p); len(got[".wav"]) != 1 {
		t.Errorf("recordings: %v", got)
	}
	auditVerify(t, p)
}

// consoleUsers gives operator 101 the web password opWeb and adds
// supervisor 201 (web password supWeb, a SIP password), for the tests that
// drive the consoles.
func consoleUsers(t *testing.T, p *plateau, opWeb, supWeb string) {
	t.Helper()
	mustCmd(t, p, "user", "passwd", "--web-password", opWeb, opExt)
	mustCmd(t, p, "user", "add", "--role", "supervisor", "--name", "Sup", "--web-password", supWeb, "--sip-password", "sup-sip-201", "201")
}

// writeIn writes text to dir/name and returns the path.
func writeIn(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
