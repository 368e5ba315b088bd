package browser

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"plateau/audit"
	"plateau/auth"
	"plateau/b2bua"
	"plateau/config"
	"plateau/dialer"
	"plateau/policy"
	"plateau/store"
	"plateau/web"
)

// phoneCalls stands for the SIP server: click-to-call puts the operator in
// a connected call that lasts until they hang up from the console.
type phoneCalls struct {
	mu    sync.Mutex
	calls map[string]b2bua.CallInfo
	ends  map[string]func(dialer.Outcome, int, string)
}

func (p *phoneCalls) Calls() []b2bua.CallInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []b2bua.CallInfo
	for _, c := range p.calls {
		out = append(out, c)
	}
	return out
}

func (p *phoneCalls) Hangup(callID, operator string) error {
	p.mu.Lock()
	c, ok := p.calls[operator]
	end := p.ends[operator]
	delete(p.calls, operator)
	p.mu.Unlock()
	if !ok || c.ID != callID {
		return b2bua.ErrNoSuchCall
	}
	end(dialer.Answered, 200, callID)
	return nil
}

func (p *phoneCalls) dial(_ context.Context, op, number string, report func(dialer.Outcome, int, string)) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	p.calls[op] = b2bua.CallInfo{ID: "call-" + op, Operator: op, Number: number, Campaign: "ateliers", State: "connected", Start: now, Answered: now}
	p.ends[op] = report
	return nil
}

// TestOperatorLoopInChromium walks issue 14's operator loop, the error
// pages, session expiry and the admin's user management in Chromium
// (consoles.mjs), with the keyboard where the loop has shortcuts, and
// screenshots the operator console at 1366×768 and 1280×720.
func TestOperatorLoopInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: not in -short")
	}
	chromium, node := browserTools(t, true)
	ctx := context.Background()
	paris, _ := time.LoadLocation("Europe/Paris")
	now := time.Now()
	st := seededStore(t, now, []store.User{
		{Extension: "101", DisplayName: "Opérateur Un", Role: store.RoleOperator},
		{Extension: "201", DisplayName: "Superviseure", Role: store.RoleSupervisor},
		{Extension: "301", DisplayName: "Agent Sécurité", Role: store.RoleSecurity},
		{Extension: "401", DisplayName: "Admin", Role: store.RoleAdmin},
	})
	if err := st.SaveBindings(ctx, []store.Binding{{Extension: "101", Contact: "sip:101@127.0.0.1:5070", Source: "127.0.0.1:5070",
		Transport: "UDP", UserAgent: "baresip", ExpiresAt: now.Add(time.Hour)}}, nil); err != nil {
		t.Fatal(err)
	}
	chain := audit.New(st.DB(), time.Now)
	allWeek := [7]bool{true, true, true, true, true, true, true}
	open, err := policy.NewWindows(paris, []config.WeeklyWindow{{Days: allWeek, From: 0, To: 24 * 60}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	calls := &phoneCalls{calls: map[string]b2bua.CallInfo{}, ends: map[string]func(dialer.Outcome, int, string){}}
	dial, err := dialer.New(st, open, "FR", dialer.WithCaller(calls.dial))
	if err != nil {
		t.Fatal(err)
	}
	defer dial.Close()
	by := func(ext string) store.Change { return store.Change{By: ext, Source: "test", At: time.Now()} }
	// The campaign calls today and tomorrow (Paris), all day: a callback the
	// day after tomorrow falls outside its hours.
	days := []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}
	today := now.In(paris).Weekday()
	camp, err := dial.CreateCampaign(ctx, by("201"), dialer.CampaignSpec{Name: "ateliers", Client: "Menuiseries de l'Ouest",
		Operators: []string{"101"}, Windows: []dialer.Window{{Days: days[today], From: "00:00", To: "24:00"},
			{Days: days[(today+1)%7], From: "00:00", To: "24:00"}},
		Script: "# Accroche\nBonjour {interlocuteur}, je vous appelle pour {entreprise}.\n\n?[Nom du décideur](decideur)\n?[Courriel du décideur](courriel:email)\n"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial.Import(ctx, by("201"), camp.ID, []byte("company;contact;phone;city\n"+
		"Atelier Durand Architectes;Mme Claire Durand;02 40 00 00 07;Nantes\n"+
		"Bâtiment Martin;M. Paul Martin;02 40 00 00 08;Rezé\n"+
		"Syndic Roux;M. Roux;02 40 00 00 09;Saint-Nazaire\n"+
		"Rappel & Fils;M. Rappel;02 40 00 00 10;Nantes\n")); err != nil {
		t.Fatal(err)
	}
	props, err := st.Allowlist(ctx, store.AllowFilter{Status: store.AllowProposed, Campaign: "ateliers"})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, p := range props {
		if p.E164 != "+33240000009" { // Syndic Roux waits for security
			ids = append(ids, p.ID)
		}
	}
	if _, err := st.ApproveAllowlist(ctx, by("301"), store.Selection{IDs: ids}); err != nil {
		t.Fatal(err)
	}
	if _, err := dial.SetStatus(ctx, by("201"), camp.ID, dialer.Active); err != nil {
		t.Fatal(err)
	}
	// 101 promised Rappel & Fils a callback 20 minutes ago: overdue.
	if _, err := st.DB().ExecContext(ctx, `UPDATE contacts SET callback_by = '101', callback_at = ?, due_at = ? WHERE e164 = '+33240000010'`,
		store.FormatTime(now.Add(-20*time.Minute)), store.FormatTime(now.Add(-20*time.Minute))); err != nil {
		t.Fatal(err)
	}
	app, err := web.NewApp(web.Deps{Store: st, Audit: chain, Location: paris, Region: "FR", Realm: "plateau.test",
		Dialer: dial, Calls: calls})
	if err != nil {
		t.Fatal(err)
	}
	srv, spki := serveHTTPS(t, app)

	artifacts, _ := filepath.Abs("artifacts")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(rctx, node, "consoles.mjs")
	cmd.Env = append(os.Environ(), "BASE_URL="+srv.URL, "SPKI="+spki, "ARTIFACTS="+artifacts, "PASSWORD="+password, "CHROMIUM="+chromium)
	outp, err := cmd.CombinedOutput()
	t.Logf("consoles.mjs:\n%s", outp)
	if err != nil {
		t.Fatalf("browser run failed (%v); screenshots in %s", err, artifacts)
	}

	// What the browser did is in the store and the audit log.
	var disp, answers string
	if err := st.DB().QueryRowContext(ctx, `SELECT last_disposition, answers FROM contacts WHERE e164 = '+33240000010'`).Scan(&disp, &answers); err != nil ||
		disp != "not interested" || answers != `{"courriel":"roux@exemple.fr","decideur":"M. Roux"}` {
		t.Errorf("Rappel & Fils after the call and the correction: %q %s %v", disp, answers, err)
	}
	if recs, _ := chain.List(ctx, audit.Filter{Kind: "dialer.outcome_corrected"}); len(recs) != 1 || recs[0].Entry.Details["from"] != "interested" {
		t.Errorf("correction audited: %+v", recs)
	}
	for _, kind := range []string{"operator.pause", "operator.resume"} {
		if recs, _ := chain.List(ctx, audit.Filter{Kind: kind, Actor: "101"}); len(recs) != 1 || recs[0].Entry.Reason != "medical" {
			t.Errorf("%s from the console: %+v", kind, recs)
		}
	}
	var cbBy string
	if err := st.DB().QueryRowContext(ctx, `SELECT callback_by FROM contacts WHERE e164 = '+33240000007'`).Scan(&cbBy); err != nil || cbBy != "101" {
		t.Errorf("Durand's callback: %q %v", cbBy, err)
	}
	if u, err := st.User(ctx, "107"); err != nil || u.Role != store.RoleSupervisor || auth.CheckPassword(u.WebPassword, "nouveau-mdp-107") != nil {
		t.Errorf("user 107 added in the browser: %+v %v", u, err)
	}
	if recs, _ := chain.List(ctx, audit.Filter{Kind: "user.suspend"}); len(recs) != 1 || recs[0].Entry.Reason != "Changement d'atelier" {
		t.Errorf("suspension with its reason: %+v", recs)
	}
	for _, name := range []string{"operator-callbacks", "operator-paused", "operator-incall-1366", "operator-incall-1280", "operator-dispose-1366",
		"operator-empty", "error-404", "login-expired", "admin-users-manage"} {
		fi, err := os.Stat(filepath.Join(artifacts, name+".png"))
		if err != nil || fi.Size() < 5000 {
			t.Errorf("screenshot %s: %v", name, err)
		}
	}
}
