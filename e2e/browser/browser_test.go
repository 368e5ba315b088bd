// Package browser drives the web consoles in headless Chromium (Debian's
// /usr/bin/chromium, through playwright-core from npm, installed by make
// deps) and saves a screenshot of each console in artifacts/.
package browser

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"plateau/audit"
	"plateau/auth"
	"plateau/b2bua"
	"plateau/certs"
	"plateau/config"
	"plateau/dialer"
	"plateau/media"
	"plateau/policy"
	"plateau/store"
	"plateau/web"
)

const password = "browser-test-pw"

// need skips when a tool is missing, unless CI is set: CI must run these.
func need(t *testing.T, what, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found at %s (make deps installs it)", what, path)
		}
		t.Skipf("%s not found at %s: run make deps (CI fails instead of skipping)", what, path)
	}
}

// browserTools finds Chromium, node and the npm packages the walks need
// (axe-core too when axe), or skips/fails the test as need does.
func browserTools(t *testing.T, axe bool) (chromium, node string) {
	t.Helper()
	chromium = os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	need(t, "chromium", chromium)
	node, err := exec.LookPath("node")
	if err != nil {
		node = "/usr/bin/node"
	}
	need(t, "node", node)
	need(t, "playwright-core (npm ci in e2e/browser)", "node_modules/playwright-core/package.json")
	if axe {
		need(t, "axe-core (npm ci in e2e/browser)", "node_modules/axe-core/axe.min.js")
	}
	return chromium, node
}

// seededStore opens a fresh database with users, all with the test's web
// password; it is closed when the test ends.
func seededStore(t *testing.T, now time.Time, users []store.User) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "plateau.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	hash, err := auth.HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		u.WebPassword = hash
		if err := st.AddUser(ctx, u, now); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

type operators struct{ st *store.Store }

func (o operators) Operator(ctx context.Context, ext string) (policy.Operator, bool, error) {
	u, err := o.st.User(ctx, ext)
	if err != nil {
		return policy.Operator{}, false, nil
	}
	return policy.Operator{Extension: u.Extension, Role: string(u.Role), Active: u.Status == store.StatusActive}, true, nil
}

type idle struct{}

// liveCalls is the SIP server's calls in progress: operator 102 in a call.
type liveCalls struct{ start time.Time }

func (l liveCalls) Calls() []b2bua.CallInfo {
	return []b2bua.CallInfo{{ID: "call-102", Operator: "102", Number: "+33240000009", Campaign: "menuiseries", State: "connected",
		Start: l.start, Answered: l.start.Add(4 * time.Second)}}
}

// Hangup is refused: the browser test never hangs up 102's call.
func (l liveCalls) Hangup(callID, operator string) error { return b2bua.ErrNoSuchCall }

// monitor stands for the SIP server ringing the supervisor's phone.
type monitor struct{ got chan string }

func (m monitor) Monitor(_ context.Context, sup, op string, mode media.MonitorMode) (string, error) {
	m.got <- sup + ">" + op + ":" + mode.String()
	return "mon-1", nil
}

// answered stands for click-to-call: the operator's phone answered and
// the contact too.
func answered(_ context.Context, op, number string, report func(dialer.Outcome, int, string)) error {
	go report(dialer.Answered, 200, "call-101")
	return nil
}

func (idle) Active(context.Context, string) (int, int, error) { return 0, 0, nil }
func (idle) Ready() error                                     { return nil }

func TestConsolesInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: not in -short")
	}
	chromium, node := browserTools(t, false)
	ctx := context.Background()
	paris, _ := time.LoadLocation("Europe/Paris")
	now := time.Now()
	st := seededStore(t, now, []store.User{
		{Extension: "101", DisplayName: "Opérateur Un", Role: store.RoleOperator},
		{Extension: "102", DisplayName: "Opérateur Deux", Role: store.RoleOperator},
		{Extension: "201", DisplayName: "Superviseure", Role: store.RoleSupervisor},
		{Extension: "301", DisplayName: "Agent Sécurité Un", Role: store.RoleSecurity},
		{Extension: "302", DisplayName: "Agent Sécurité Deux", Role: store.RoleSecurity},
		{Extension: "401", DisplayName: "Admin", Role: store.RoleAdmin},
	})
	propose := func(by string, ps ...store.Proposal) {
		if _, err := st.ProposeAllowlist(ctx, store.Change{By: by, Source: "test", At: now}, ps); err != nil {
			t.Fatal(err)
		}
	}
	propose("301", store.Proposal{E164: "+33240000001", Label: "Cabinet d'architectes Loire", Campaign: "archi-44"},
		store.Proposal{E164: "+33240000002", Label: "Syndic Atlantique", Campaign: "syndics"})
	propose("302", store.Proposal{E164: "+33240000003", Label: "Bâtiment Martin", Campaign: "archi-44"})
	if err := st.SaveBindings(ctx, []store.Binding{{Extension: "101", Contact: "sip:101@127.0.0.1:5070", Source: "127.0.0.1:5070",
		Transport: "UDP", UserAgent: "baresip", ExpiresAt: now.Add(time.Hour)}}, nil); err != nil {
		t.Fatal(err)
	}
	chain := audit.New(st.DB(), time.Now)
	chain.Append(ctx, audit.Entry{Kind: "policy.decision", Actor: "102", Subject: "+33612345678", Outcome: "refused",
		Reason: policy.ReasonNotAllowlisted, Source: "127.0.0.1", Details: map[string]any{"rule": "allowlist",
			"detail": "+33612345678 is not approved on the allowlist", "dialled": "0612345678"}})

	weekdays := [7]bool{false, true, true, true, true, true, false}
	ws, err := policy.NewWindows(paris, []config.WeeklyWindow{{Days: weekdays, From: 7*60 + 30, To: 18 * 60}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	engine, err := policy.New(policy.Config{Region: "FR", Windows: ws}, policy.Deps{Operators: operators{st},
		Allowlist: st, DoNotCall: st, Calls: idle{}, Recorder: idle{}})
	if err != nil {
		t.Fatal(err)
	}
	// The dialer calls all week here (the browser runs whenever the tests
	// do); "menuiseries" is active for 101 with one approved contact.
	allWeek := [7]bool{true, true, true, true, true, true, true}
	open, err := policy.NewWindows(paris, []config.WeeklyWindow{{Days: allWeek, From: 0, To: 24 * 60}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	dial, err := dialer.New(st, open, "FR", dialer.WithCaller(answered))
	if err != nil {
		t.Fatal(err)
	}
	defer dial.Close()
	by := func(ext string) store.Change { return store.Change{By: ext, Source: "test", At: time.Now()} }
	camp, err := dial.CreateCampaign(ctx, by("201"), dialer.CampaignSpec{Name: "menuiseries", Client: "Menuiseries de l'Ouest",
		Operators: []string{"101"}, Script: "# Accroche\nBonjour, je suis **téléconseiller** pour les Menuiseries de l'Ouest.\n\n" +
			"## Questions\n- Avez-vous des chantiers de rénovation prévus ?\n- Qui choisit les menuiseries ?\n\n" +
			"## Objections\n1. *Pas le temps* : proposer un rappel.\n2. *Déjà un fournisseur* : proposer un devis comparatif."})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial.Import(ctx, by("201"), camp.ID, []byte("company;contact;phone;city;notes;effectif\n"+
		"Atelier Durand Architectes;Mme Claire Durand;02 40 00 00 07;Nantes;Préfère être appelée avant 11 h;12\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ApproveAllowlist(ctx, by("302"), store.Selection{Campaign: "menuiseries"}); err != nil {
		t.Fatal(err)
	}
	if _, err := dial.SetStatus(ctx, by("201"), camp.ID, dialer.Active); err != nil {
		t.Fatal(err)
	}
	mon := monitor{got: make(chan string, 4)}
	app, err := web.NewApp(web.Deps{Store: st, Audit: chain, Policy: engine, Location: paris, StreamInterval: time.Second,
		Dialer: dial, Calls: liveCalls{start: time.Now().Add(-95 * time.Second)}, Monitor: mon})
	if err != nil {
		t.Fatal(err)
	}
	srv, spki := serveHTTPS(t, app)

	artifacts, _ := filepath.Abs("artifacts")
	os.RemoveAll(artifacts)
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(rctx, node, "run.mjs")
	cmd.Env = append(os.Environ(), "BASE_URL="+srv.URL, "SPKI="+spki, "ARTIFACTS="+artifacts, "PASSWORD="+password, "CHROMIUM="+chromium)
	outp, err := cmd.CombinedOutput()
	t.Logf("run.mjs:\n%s", outp)
	if err != nil {
		t.Fatalf("browser run failed (%v); screenshots in %s", err, artifacts)
	}

	// What the browser did is in the store and the audit log.
	approved, _ := st.Allowlist(ctx, store.AllowFilter{Status: store.AllowApproved})
	approved = slices.DeleteFunc(approved, func(e store.AllowEntry) bool { return e.Campaign == "menuiseries" })
	if len(approved) != 1 || approved[0].E164 != "+33240000001" || approved[0].DecidedBy != "302" {
		t.Fatalf("approved: %+v", approved)
	}
	proposed, _ := st.Allowlist(ctx, store.AllowFilter{Status: store.AllowProposed})
	if len(proposed) != 2 {
		t.Fatalf("still proposed: %+v", proposed)
	}
	recs, _ := chain.List(ctx, audit.Filter{Kind: "allowlist.approve"})
	recs = slices.DeleteFunc(recs, func(r audit.Record) bool { return r.Entry.Subject == "+33240000007" })
	// One's own proposal offers no approve button any more (a crafted form
	// is still refused and audited: web TestAllowlistPage).
	if len(recs) != 1 || recs[0].Entry.Outcome != "ok" {
		t.Fatalf("allowlist.approve audit: %+v", recs)
	}
	// The supervisor clicked Listen on 102's call; the operator called
	// their contact and entered the outcome.
	select {
	case got := <-mon.got:
		if got != "201>102:listen" {
			t.Errorf("monitor request %q", got)
		}
	default:
		t.Error("the Listen button asked for no monitor session")
	}
	res, err := dial.Results(ctx, camp.ID)
	if err != nil || res.Attempts != 1 || res.ByDisposition["interested"] != 1 {
		t.Errorf("results after the browser's call: %+v %v", res, err)
	}
	for _, name := range []string{"login", "security-allowlist", "security-audit", "security-refused", "security-simulator",
		"supervisor", "supervisor-campaigns", "supervisor-campaign", "operator", "operator-preview", "operator-dispose", "admin-users-en"} {
		fi, err := os.Stat(filepath.Join(artifacts, name+".png"))
		if err != nil || fi.Size() < 5000 {
			t.Errorf("screenshot %s: %v", name, err)
		}
	}
}

// serveHTTPS serves h over HTTPS with the project's TLS policy
// (certs.ServerConfig) and a fresh self-signed certificate, as plateau
// serve does with http.tls; spki is the certificate's key pin, which
// Chromium is told to trust (--ignore-certificate-errors-spki-list)
// rather than to ignore every certificate error.
func serveHTTPS(t *testing.T, h http.Handler) (srv *httptest.Server, spki string) {
	t.Helper()
	dir := t.TempDir()
	certPEM, keyPEM, err := certs.SelfSigned([]string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "https.crt"), filepath.Join(dir, "https.key")
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	pair, err := certs.Load(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv = httptest.NewUnstartedServer(h)
	srv.TLS = certs.ServerConfig(pair, nil)
	// httptest would otherwise put its own certificate first, and a
	// client without SNI (an IP address) would get it.
	srv.TLS.Certificates = []tls.Certificate{*pair.Certificate()}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	sum := sha256.Sum256(pair.Certificate().Leaf.RawSubjectPublicKeyInfo)
	return srv, base64.StdEncoding.EncodeToString(sum[:])
}
