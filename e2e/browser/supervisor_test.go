package browser

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"plateau/audit"
	"plateau/b2bua"
	"plateau/config"
	"plateau/dialer"
	"plateau/policy"
	"plateau/recordings"
	"plateau/store"
	"plateau/web"
)

// TestSupervisorAndSecurityInChromium walks issue 14's supervisor and
// security desk in Chromium (supervisor.mjs): a campaign saved while an
// operator is suspended keeps them, French hours, the contact list with a
// callback reassigned, the recordings page (a comment does not reset the
// player, the list stays beside it, the French number filter), approving
// every proposal but one's own, the French audit log and the listening
// sessions; screenshots at 1366×768, axe-core on each page.
func TestSupervisorAndSecurityInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: not in -short")
	}
	chromium, node := browserTools(t, true)
	ctx := context.Background()
	paris, _ := time.LoadLocation("Europe/Paris")
	now := time.Now()
	st := seededStore(t, now, []store.User{
		{Extension: "101", DisplayName: "Opérateur Un", Role: store.RoleOperator},
		{Extension: "102", DisplayName: "Opérateur Deux", Role: store.RoleOperator},
		{Extension: "103", DisplayName: "Opérateur Trois", Role: store.RoleOperator},
		{Extension: "201", DisplayName: "Superviseure", Role: store.RoleSupervisor},
		{Extension: "301", DisplayName: "Agent Sécurité Un", Role: store.RoleSecurity},
		{Extension: "302", DisplayName: "Agent Sécurité Deux", Role: store.RoleSecurity},
	})
	if err := st.SaveBindings(ctx, []store.Binding{{Extension: "101", Contact: "sip:101@127.0.0.1:5070", Source: "127.0.0.1:5070",
		Transport: "UDP", UserAgent: "baresip", ExpiresAt: now.Add(time.Hour)}}, nil); err != nil {
		t.Fatal(err)
	}
	chain := audit.New(st.DB(), time.Now)
	// The site: every day 07:30-19:00 (a French form shows it).
	allWeek := [7]bool{true, true, true, true, true, true, true}
	site, err := policy.NewWindows(paris, []config.WeeklyWindow{{Days: allWeek, From: 7*60 + 30, To: 19 * 60}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	calls := &phoneCalls{calls: map[string]b2bua.CallInfo{}, ends: map[string]func(dialer.Outcome, int, string){}}
	dial, err := dialer.New(st, site, "FR", dialer.WithCaller(calls.dial))
	if err != nil {
		t.Fatal(err)
	}
	defer dial.Close()
	by := func(ext string) store.Change { return store.Change{By: ext, Source: "test", At: time.Now()} }
	camp, err := dial.CreateCampaign(ctx, by("201"), dialer.CampaignSpec{Name: "ateliers", Client: "Menuiseries de l'Ouest",
		Operators: []string{"101", "102"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial.Import(ctx, by("201"), camp.ID, []byte("société;interlocuteur;téléphone;ville;secteur\n"+
		"Atelier Durand;Mme Durand;02 40 00 00 07;Nantes;architecte\n"+
		"Bâtiment Martin;M. Martin;02 40 00 00 08;Rezé;BTP\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ApproveAllowlist(ctx, by("301"), store.Selection{Campaign: "ateliers"}); err != nil {
		t.Fatal(err)
	}
	// Proposals waiting: two of 301's, one of 302's own.
	for _, p := range []struct{ by, n string }{{"301", "+33240000021"}, {"301", "+33240000022"}, {"302", "+33240000023"}} {
		if _, err := st.ProposeAllowlist(ctx, by(p.by), []store.Proposal{{E164: p.n, Label: "fournisseur"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := dial.SetStatus(ctx, by("201"), camp.ID, dialer.Active); err != nil {
		t.Fatal(err)
	}
	// 102 promised Durand a callback tomorrow at 10:00, then went to the
	// infirmary; 101 skipped Martin.
	tomorrow := now.In(paris).AddDate(0, 0, 1)
	cb := time.Date(tomorrow.Year(), tomorrow.Month(), tomorrow.Day(), 10, 0, 0, 0, paris)
	if _, err := st.DB().ExecContext(ctx, `UPDATE contacts SET callback_by = '102', callback_at = ?, due_at = ?, last_disposition = 'callback' WHERE e164 = '+33240000007'`,
		store.FormatTime(cb), store.FormatTime(cb)); err != nil {
		t.Fatal(err)
	}
	if _, err := chain.Append(ctx, audit.Entry{Kind: "dialer.skip", Actor: "101", Subject: "+33240000008", Outcome: "ok",
		Reason: "déjà client chez un concurrent", Source: "test", Details: map[string]any{"contact": contactID(t, st, "+33240000008"), "campaign": camp.ID}}); err != nil {
		t.Fatal(err)
	}
	// An hour ago 101 entered « intéressé » for Martin; the supervisor
	// corrects it from the contact list.
	martin := contactID(t, st, "+33240000008")
	if _, err := st.DB().ExecContext(ctx, `INSERT INTO attempts (contact_id, campaign_id, operator, at, outcome, sip_status, disposition, disposed_at)
		VALUES (?, ?, '101', ?, 'answered', 200, 'interested', ?)`, martin, camp.ID, store.FormatTime(now.Add(-65*time.Minute)), store.FormatTime(now.Add(-time.Hour))); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB().ExecContext(ctx, `UPDATE contacts SET last_disposition = 'interested', attempts = 1 WHERE id = ?`, martin); err != nil {
		t.Fatal(err)
	}
	// 102 is suspended after being put on the campaign.
	if err := st.SetUserStatus(ctx, "102", store.StatusSuspended, now); err != nil {
		t.Fatal(err)
	}
	// Recordings: one 40 s conversation (an appointment), one busy call
	// (0:00).
	dir := t.TempDir()
	idx := recordings.NewDBIndex(st.DB())
	addRecording(t, st, idx, dir, "rec-rdv", "+33240000007", "appointment set", now.Add(-2*time.Hour), 8000*40)
	addRecording(t, st, idx, dir, "rec-busy", "+33240000008", "", now.Add(-time.Hour), 0)

	app, err := web.NewApp(web.Deps{Store: st, Audit: chain, Location: paris, Region: "FR", Realm: "plateau.test",
		Dialer: dial, Calls: calls, Recordings: idx, RecordingsDir: dir})
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
	cmd := exec.CommandContext(rctx, node, "supervisor.mjs")
	cmd.Env = append(os.Environ(), "BASE_URL="+srv.URL, "SPKI="+spki, "ARTIFACTS="+artifacts, "PASSWORD="+password, "CHROMIUM="+chromium)
	outp, err := cmd.CombinedOutput()
	t.Logf("supervisor.mjs:\n%s", outp)
	if err != nil {
		t.Fatalf("browser run failed (%v); screenshots in %s", err, artifacts)
	}

	// What the browser did is in the store.
	c, err := dial.Campaign(ctx, camp.ID)
	if err != nil || len(c.Operators) != 2 || c.Operators[1] != "102" || len(c.Windows) != 1 || c.Windows[0].Days != "mon-fri" || c.Windows[0].From != "07:30" {
		t.Errorf("campaign after the browser saved it: %+v %v", c, err)
	}
	var cbBy string
	if err := st.DB().QueryRowContext(ctx, `SELECT callback_by FROM contacts WHERE e164 = '+33240000007'`).Scan(&cbBy); err != nil || cbBy != "101" {
		t.Errorf("Durand's callback: %q %v", cbBy, err)
	}
	var martinDisp string
	if err := st.DB().QueryRowContext(ctx, `SELECT last_disposition FROM contacts WHERE id = ?`, martin).Scan(&martinDisp); err != nil || martinDisp != "not interested" {
		t.Errorf("Martin's outcome after the supervisor's correction: %q %v", martinDisp, err)
	}
	if recs, _ := chain.List(ctx, audit.Filter{Kind: "dialer.outcome_corrected", Actor: "201"}); len(recs) != 1 || recs[0].Entry.Details["from"] != "interested" {
		t.Errorf("the supervisor's correction audited: %+v", recs)
	}
	if es, _ := st.Allowlist(ctx, store.AllowFilter{E164: "+33240000007"}); len(es) != 1 || es[0].ValidUntil.IsZero() ||
		es[0].ValidUntil.Sub(now) < 29*24*time.Hour || es[0].ValidUntil.Sub(now) > 32*24*time.Hour {
		t.Errorf("Durand's validity end set in the browser: %+v", es)
	}
	if recs, _ := chain.List(ctx, audit.Filter{Kind: "allowlist.validity", Actor: "302"}); len(recs) != 1 {
		t.Errorf("validity end audited: %+v", recs)
	}
	if es, _ := st.Allowlist(ctx, store.AllowFilter{Status: store.AllowProposed}); len(es) != 1 || es[0].E164 != "+33240000023" {
		t.Errorf("proposals left: %+v", es)
	}
	for _, name := range []string{"wallboard-1366", "campaign-1366", "contacts-1366", "recordings-1366", "allowlist-1366", "allowlist-validity-error", "audit-1366", "recordings-security-1366"} {
		fi, err := os.Stat(filepath.Join(artifacts, name+".png"))
		if err != nil || fi.Size() < 5000 {
			t.Errorf("screenshot %s: %v", name, err)
		}
	}
}

func contactID(t *testing.T, st *store.Store, e164 string) int64 {
	t.Helper()
	var id int64
	if err := st.DB().QueryRow(`SELECT id FROM contacts WHERE e164 = ?`, e164).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// addRecording writes a closed recording (8 kHz 16-bit stereo WAV, a
// 440 Hz tone on the operator's side) as the recorder leaves it.
func addRecording(t *testing.T, st *store.Store, idx *recordings.DBIndex, dir, id, number, disposition string, start time.Time, frames int) {
	t.Helper()
	b := make([]byte, 44+frames*4)
	le := binary.LittleEndian
	copy(b[0:], "RIFF")
	le.PutUint32(b[4:], uint32(36+frames*4))
	copy(b[8:], "WAVEfmt ")
	le.PutUint32(b[16:], 16)
	le.PutUint16(b[20:], 1)
	le.PutUint16(b[22:], 2)
	le.PutUint32(b[24:], 8000)
	le.PutUint32(b[28:], 32000)
	le.PutUint16(b[32:], 4)
	le.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	le.PutUint32(b[40:], uint32(frames*4))
	for i := range frames {
		le.PutUint16(b[44+i*4:], uint16(int16(8000*math.Sin(2*math.Pi*440*float64(i)/8000))))
	}
	path := recordings.Path(dir, id, start)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel(dir, path)
	sum := sha256.Sum256(b)
	end := start.Add(time.Duration(frames) * time.Second / 8000)
	rec := recordings.Record{ID: id, CallIDs: []string{"call-" + id}, Operator: "101", Number: number, Campaign: "ateliers",
		Start: start, Path: filepath.ToSlash(rel)}
	ctx := context.Background()
	if err := idx.Begin(ctx, rec, start, audit.Entry{Kind: "recording.started", Actor: "system", Subject: id}); err != nil {
		t.Fatal(err)
	}
	if err := idx.Finish(ctx, id, end, recordings.Final{State: recordings.StateClosed, End: end, DurationMS: int64(frames) / 8,
		SHA256: hex.EncodeToString(sum[:]), Audit: audit.Entry{Kind: "recording.closed", Actor: "system", Subject: id}}); err != nil {
		t.Fatal(err)
	}
	if disposition != "" {
		if _, err := st.DB().Exec(`UPDATE recordings SET disposition = ? WHERE id = ?`, disposition, id); err != nil {
			t.Fatal(err)
		}
	}
}
