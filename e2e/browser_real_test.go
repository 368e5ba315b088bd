package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// needBrowser finds chromium, node and playwright-core (make deps), skipping
// when one is missing unless CI is set, where the test fails instead.
func needBrowser(t *testing.T) (chromium, node string) {
	t.Helper()
	missing := func(what string) {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found (CI is set; run make deps)", what)
		}
		t.Skipf("%s not found: run make deps (CI fails instead of skipping)", what)
	}
	chromium = os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		missing("chromium at " + chromium)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node")
	}
	if _, err := os.Stat(filepath.Join(repoRoot, "e2e", "browser", "node_modules", "playwright-core", "package.json")); err != nil {
		missing("playwright-core (npm ci in e2e/browser)")
	}
	return chromium, node
}

// TestBrowserMainPath: issue 7's main path in headless Chromium against the
// real binary. Operator 101's phone and the carrier are SIPp. In the
// browser (e2e/browser/run_real.mjs) the supervisor opens the wallboard,
// the operator previews the campaign's contact and clicks Call; the phone
// auto-answers, the carrier answers, the console shows the live call and
// the wallboard shows 101 in it; the phone hangs up, the operator enters
// the outcome; security officer 301 approves a number 302 proposed.
// Screenshots go to e2e/browser/artifacts/ (gitignored). The store is
// checked afterwards.
func TestBrowserMainPath(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: not in -short")
	}
	chromium, node := needBrowser(t)
	carrierPort := freePort(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}})
	const opWeb, supWeb, secWeb = "operator-web-pw-101", "supervisor-web-pw-201", "sec-301-password"
	const number, proposed = "+33240123458", "+33240111111"
	consoleUsers(t, p, opWeb, supWeb)

	dir := t.TempDir()
	write := func(name, text string) string { return writeIn(t, dir, name, text) }
	script := write("script.md", "# Accroche\nBonjour, je vous appelle de la part de **Client SA**.\n- Présenter l'offre\n")
	calls := write("calls.csv", "company;contact;phone;city;notes\nCabinet Navigateur;Mme Essai;02 40 12 34 58;Nantes;Rappeler le matin\n")
	mustCmd(t, p, "campaign", "create", "--by", "201", "--client", "Client SA", "--operators", opExt, "--script", script, "e2e-browser")
	mustCmd(t, p, "campaign", "import", "--by", "201", "--campaign", "e2e-browser", calls)
	if out := mustCmd(t, p, "allowlist", "approve", "--by", "302", "--campaign", "e2e-browser"); !strings.Contains(out, number) {
		t.Fatalf("approve --campaign e2e-browser: %s", out)
	}
	mustCmd(t, p, "campaign", "activate", "--by", "201", "e2e-browser")
	// 302 proposes; 301 approves it in the browser.
	mustCmd(t, p, "allowlist", "add", "--by", "302", proposed)

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

	artifacts := filepath.Join(repoRoot, "e2e", "browser", "artifacts")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "run_real.mjs")
	cmd.Dir = filepath.Join(repoRoot, "e2e", "browser")
	cmd.Env = append(os.Environ(), "BASE_URL="+op.base, "SPKI="+spkiPin(t, filepath.Join(p.dataDir, "tls", "https.crt")), "ARTIFACTS="+artifacts, "CHROMIUM="+chromium,
		"OP_EXT="+opExt, "OP_PASSWORD="+opWeb, "SUP_EXT=201", "SUP_PASSWORD="+supWeb, "SEC_EXT=301", "SEC_PASSWORD="+secWeb,
		"CAMPAIGN=e2e-browser", "COMPANY=Cabinet Navigateur", "NUMBER="+number, "PROPOSED="+proposed)
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		io.Copy(io.Discard, stdout)
	}()
	var log strings.Builder
	var phone, carrier *sippProc
	for line := range lines {
		fmt.Fprintln(&log, line)
		if line == "ready-to-call" && phone == nil {
			// SIPp starts only now: its run is bounded in time.
			phone = startSipp(t, "operator phone", "uas_autoanswer.xml", "-p", strconv.Itoa(phonePort), "-d", "20000")
			carrier = startCarrier(t, carrierPort, "uas_answer.xml")
			time.Sleep(300 * time.Millisecond) // both SIPp listening (UDP retransmits anyway)
			io.WriteString(stdin, "go\n")
		}
	}
	stdin.Close()
	err = cmd.Wait()
	t.Logf("run_real.mjs:\n%s%s", log.String(), stderr.String())
	if err != nil {
		t.Fatalf("browser run failed (%v, context: %v); screenshots in %s\nplateau:\n%s", err, ctx.Err(), artifacts, tail(p.logs.String(), 3000))
	}
	if phone == nil {
		t.Fatal("run_real.mjs never got to the call")
	}
	phone.mustSucceed(45 * time.Second)
	carrier.mustSucceed(15 * time.Second)

	// What the browser did is in the store.
	sup := webLogin(t, p, "201", supWeb)
	var res struct {
		Attempts      int            `json:"attempts"`
		Reached       int            `json:"reached"`
		Done          int            `json:"done"`
		ByOutcome     map[string]int `json:"by_outcome"`
		ByDisposition map[string]int `json:"by_disposition"`
	}
	if st := sup.api("GET", fmt.Sprintf("/api/v1/campaigns/%d/results", sup.campaignID("e2e-browser")), nil, &res); st != 200 ||
		res.Attempts != 1 || res.Reached != 1 || res.Done != 1 || res.ByOutcome["answered"] != 1 || res.ByDisposition["interested"] != 1 {
		t.Errorf("results after the browser's call: %d %+v", st, res)
	}
	if got := auditLines(t, p, "allowlist.approve"); !strings.Contains(got, proposed) || !strings.Contains(got, "301") {
		t.Errorf("audit allowlist.approve lacks 301 approving %s:\n%s", proposed, got)
	}
	auditVerify(t, p)
}
