package web

import (
	"bytes"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"plateau/audit"
	"plateau/dialer"
	"plateau/store"
)

// A campaign saved while one of its operators is suspended keeps them:
// the form lists them ticked and marked, and the dialer accepts keeping a
// suspended operator already on the campaign (never adding one).
func TestCampaignKeepsSuspendedOperator(t *testing.T) {
	cf := newConsoleFixture(t)
	c, err := cf.dial.CreateCampaign(t.Context(), cf.by("201"), dialer.CampaignSpec{Name: "archi", Operators: []string{"101", "102"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := cf.st.SetUserStatus(t.Context(), "102", store.StatusSuspended, cf.clock.Now()); err != nil {
		t.Fatal(err)
	}
	sup := cf.as("201")
	path := fmt.Sprintf("/supervisor/campaigns/%d", c.ID)
	_, body := sup.get(path)
	if !strings.Contains(body, `id="c-op-102" name="operators" value="102" checked`) || !strings.Contains(body, "suspendu, reste sur la campagne") {
		t.Fatalf("suspended operator not listed ticked and marked:\n%s", body)
	}
	if strings.Contains(body, `id="c-op-103"`) {
		t.Fatal("a suspended operator not on the campaign is offered")
	}
	// The supervisor saves the form as shown (both boxes ticked).
	res, body := sup.form(path, url.Values{"name": {"archi renamed"}, "windows": {""}, "operators": {"101", "102"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d %s", res.StatusCode, body)
	}
	got, _ := cf.dial.Campaign(t.Context(), c.ID)
	if !slices.Equal(got.Operators, []string{"101", "102"}) {
		t.Fatalf("operators after save: %v", got.Operators)
	}
	// Adding a suspended operator is still refused.
	res, _ = sup.form(path, url.Values{"name": {"archi"}, "operators": {"101", "102", "103"}})
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("adding suspended 103: %d", res.StatusCode)
	}
	got, _ = cf.dial.Campaign(t.Context(), c.ID)
	if slices.Contains(got.Operators, "103") {
		t.Fatalf("103 added: %v", got.Operators)
	}
}

// The recordings page: the outcome is a select of localised names that
// matches what dispositions wrote; a number is typed the French way; calls
// without conversation are hidden unless asked.
func TestRecordingsPageFilters(t *testing.T) {
	rf := newRecFixture(t)
	if _, err := rf.st.DB().Exec(`UPDATE recordings SET disposition = 'appointment set' WHERE id = 'rec-101'`); err != nil {
		t.Fatal(err)
	}
	rf.addRecording("rec-busy", "101", 0, false, false) // 0:00: a busy call
	sup := rf.as("201")
	_, body := sup.get("/recordings")
	if !strings.Contains(body, `<option value="appointment set">rendez-vous pris</option>`) {
		t.Fatalf("no outcome select with French labels:\n%s", body)
	}
	if strings.Contains(body, "rec-busy") {
		t.Fatal("a call without conversation is listed by default")
	}
	_, body = sup.get("/recordings?all=1")
	if !strings.Contains(body, "rec-busy") {
		t.Fatal("all=1 does not list the call without conversation")
	}
	_, body = sup.get("/recordings?disposition=" + url.QueryEscape("appointment set"))
	if !strings.Contains(body, "rec-101") || strings.Contains(body, "rec-102") || !strings.Contains(body, "<td>rendez-vous pris</td>") {
		t.Fatalf("outcome filter:\n%s", body)
	}
	res, body := sup.get("/recordings?number=" + url.QueryEscape("02 40 12 34 56"))
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "rec-101") || !strings.Contains(body, "rec-102") {
		t.Fatalf("national number: %d", res.StatusCode)
	}
	res, body = sup.get("/recordings?number=" + url.QueryEscape("02 40 12 34 5x"))
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "écrivez-le par exemple 02 40 12 34 56 ou") {
		t.Fatalf("bad number: %d", res.StatusCode)
	}
}

func TestCampaignHoursFrench(t *testing.T) {
	for _, c := range []struct {
		in   string
		want dialer.Window
		ok   bool
	}{
		{"lun-ven 07:30-12:00", dialer.Window{Days: "mon-fri", From: "07:30", To: "12:00"}, true},
		{"mon-fri 09:00-12:00", dialer.Window{Days: "mon-fri", From: "09:00", To: "12:00"}, true},
		{"lundi-vendredi 7h30-12h", dialer.Window{Days: "mon-fri", From: "07:30", To: "12:00"}, true},
		{"Lun,Mer,sam 14:00 à 17:30", dialer.Window{Days: "mon,wed,sat", From: "14:00", To: "17:30"}, true},
		{"sam 9:00–11:00", dialer.Window{Days: "sat", From: "09:00", To: "11:00"}, true},
		{"lundi", dialer.Window{}, false},
	} {
		got, ok := parseWindowLine(c.in)
		if ok != c.ok || got != c.want {
			t.Errorf("%q: %+v %v, want %+v %v", c.in, got, ok, c.want, c.ok)
		}
	}
	if got := showDays("mon-fri,sun", "fr"); got != "lun-ven,dim" {
		t.Errorf("showDays: %q", got)
	}
}

// A new campaign's form starts with the site's hours, in French; French
// hours are accepted, and an error names the line in French.
func TestCampaignFormFrenchHours(t *testing.T) {
	cf := newConsoleFixture(t) // the site calls mon-fri 07:30-18:00
	sup := cf.as("201")
	_, body := sup.get("/supervisor/campaigns")
	if !strings.Contains(body, ">lun-ven 07:30-18:00</textarea>") {
		t.Fatalf("new campaign not pre-filled with the site's hours:\n%s", body)
	}
	res, body := sup.form("/supervisor/campaigns", url.Values{"name": {"ateliers"}, "windows": {"lun-ven 07:30-12:00\nlun-jeu 14h-17h30"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("French hours refused: %d %s", res.StatusCode, body)
	}
	c, err := cf.dial.CampaignByName(t.Context(), "ateliers")
	if err != nil || len(c.Windows) != 2 || c.Windows[0] != (dialer.Window{Days: "mon-fri", From: "07:30", To: "12:00"}) ||
		c.Windows[1] != (dialer.Window{Days: "mon-thu", From: "14:00", To: "17:30"}) {
		t.Fatalf("stored: %+v %v", c.Windows, err)
	}
	_, body = sup.get(fmt.Sprintf("/supervisor/campaigns/%d", c.ID))
	if !strings.Contains(body, "lun-ven 07:30-12:00\nlun-jeu 14:00-17:30</textarea>") {
		t.Fatal("the edit form does not show the hours in French")
	}
	res, body = sup.form("/supervisor/campaigns", url.Values{"name": {"autre"}, "windows": {"lun-dimanch 07:30-12:00"}})
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "« dimanch » n&#39;est pas un jour (lun, mar") {
		t.Fatalf("bad day: %d %s", res.StatusCode, body)
	}
}

// « Approuver toutes les propositions » approves the others' and leaves
// one's own, saying so; one's own rows cannot be ticked.
func TestAllowlistApproveAllLeavesOwn(t *testing.T) {
	f := newFixture(t)
	theirs := f.propose("301", "+33240000001", "+33240000002", "+33240000005")
	mine := f.propose("302", "+33240000003")
	c := f.as("302")
	_, body := c.get("/security/allowlist")
	ownBox := fmt.Sprintf(`<input type="checkbox" disabled id="p%d"`, mine[0])
	if !strings.Contains(body, ownBox) || strings.Contains(body, fmt.Sprintf(`name="id" value="%d"`, mine[0])) {
		t.Fatalf("own row can be ticked:\n%s", body)
	}
	// Ticked rows holding one's own (a crafted form): others' decided.
	res, body := c.form("/security/allowlist/decide", url.Values{"action": {"approve"},
		"id": {fmt.Sprint(theirs[2]), fmt.Sprint(mine[0])}})
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "1 numéro(s) approuvé(s). 1 de vos propres propositions") {
		t.Fatalf("ticked with own: %d %s", res.StatusCode, body)
	}
	res, body = c.form("/security/allowlist/decide", url.Values{"scope": {"all"}, "action": {"approve"}})
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "2 numéro(s) approuvé(s). 1 de vos propres propositions laissée(s)") {
		t.Fatalf("approve all: %d %s", res.StatusCode, body)
	}
	es, err := f.st.Allowlist(t.Context(), store.AllowFilter{Status: store.AllowProposed})
	if err != nil || len(es) != 1 || es[0].ID != mine[0] {
		t.Fatalf("still proposed: %+v %v", es, err)
	}
	res, body = c.form("/security/allowlist/decide", url.Values{"scope": {"all"}, "action": {"approve"}})
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "que vos propres propositions (1)") {
		t.Fatalf("only own left: %d", res.StatusCode)
	}
	// The other officer approves it.
	if res, _ := f.as("301").form("/security/allowlist/decide", url.Values{"scope": {"all"}, "action": {"approve"}}); res.StatusCode != http.StatusOK {
		t.Fatalf("other officer: %d", res.StatusCode)
	}
}

// Security sees, from any page, how many proposals wait for them.
func TestNavPendingCount(t *testing.T) {
	f := newFixture(t)
	f.propose("301", "+33240000001", "+33240000002")
	f.propose("302", "+33240000003")
	_, body := f.as("302").get("/security/audit")
	if !strings.Contains(body, `<span class="badge pending">2 en attente</span>`) {
		t.Fatalf("302 nav:\n%s", body)
	}
	_, body = f.as("301").get("/security/audit")
	if !strings.Contains(body, `<span class="badge pending">1 en attente</span>`) {
		t.Fatal("301 nav lacks its count")
	}
}

// The contact list says who was skipped and why and what is not offered;
// the supervisor reassigns a callback and corrects an outcome; the client
// export is a French spreadsheet's CSV with the file's own columns and
// the reasons a contact was not reached.
func TestCampaignContactsAndClientExport(t *testing.T) {
	cf := newConsoleFixture(t)
	ctx := t.Context()
	c := cf.campaign("archi", csvTwo+"Notaires Réunis;Me Gris;02 40 55 66 77;Nantes;;notaire\n", true)
	sp := c.CampaignSpec
	sp.Operators = []string{"101", "102"}
	if _, err := cf.dial.UpdateCampaign(ctx, cf.by("201"), c.ID, sp); err != nil {
		t.Fatal(err)
	}
	if err := cf.st.AddDNC(ctx, cf.by("301"), "+33240998877", "demande du client"); err != nil {
		t.Fatal(err)
	}
	a, err := cf.dial.Next(ctx, "101", c.ID)
	if err != nil {
		t.Fatal(err)
	}
	cb := cf.clock.Now().Add(4 * time.Hour) // 14:00
	if _, err := cf.dial.Dispose(ctx, cf.by("101"), a.Contact.ID, dialer.DisposeRequest{Disposition: "callback", CallbackAt: cb}); err != nil {
		t.Fatal(err)
	}
	b, err := cf.dial.Next(ctx, "101", c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := cf.dial.Skip(ctx, cf.by("101"), b.Contact.ID, "déjà client"); err != nil {
		t.Fatal(err)
	}
	sup := cf.as("201")
	base := fmt.Sprintf("/supervisor/campaigns/%d", c.ID)
	_, body := sup.get(base + "/contacts")
	for _, want := range []string{"liste rouge", "passé par 101", "« déjà client »", "02 40 12 34 56", "à rappeler", `name="operator"`} {
		if !strings.Contains(body, want) {
			t.Errorf("contacts page lacks %q", want)
		}
	}
	if res, _ := cf.as("101").get(base + "/contacts"); res.StatusCode != http.StatusForbidden {
		t.Fatalf("operator sees the contact list: %d", res.StatusCode)
	}
	// Reassign the callback to 102; a reassignment to someone off the
	// campaign is refused.
	path := fmt.Sprintf("%s/contacts/%d/callback", base, a.Contact.ID)
	if res, _ := sup.form(path, url.Values{"operator": {"103"}}); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("reassign to 103: %d", res.StatusCode)
	}
	res, body := sup.form(path, url.Values{"operator": {"102"}})
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "Rappel confié au poste 102") {
		t.Fatalf("reassign: %d", res.StatusCode)
	}
	if recs, _ := cf.audit.List(ctx, audit.Filter{Kind: "dialer.callback_reassigned"}); len(recs) != 1 || recs[0].Entry.Details["to"] != "102" {
		t.Fatalf("reassignment audit: %+v", recs)
	}
	// Correct the outcome.
	res, body = sup.form(fmt.Sprintf("%s/contacts/%d/correct", base, a.Contact.ID), url.Values{"disposition": {"appointment set"}, "notes": {"RDV jeudi"}})
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "Issue corrigée : rendez-vous pris") {
		t.Fatalf("correct: %d %s", res.StatusCode, body)
	}
	// The client export.
	res, body = sup.get(base + "/export.csv")
	if res.StatusCode != 200 || !strings.HasPrefix(body, "\ufeffSociété;Contact;Téléphone;Courriel;Ville;État;Appels;Dernière issue;Notes;Rappel le;Motif de non-appel;sector") {
		t.Fatalf("export header: %d %q", res.StatusCode, body[:min(len(body), 200)])
	}
	for _, want := range []string{"Cabinet Loire;Mme Roux;02 40 12 34 56;;Nantes;terminé;0;rendez-vous pris;RDV jeudi;;;architecte\r\n",
		"liste rouge", "passé : déjà client"} {
		if !strings.Contains(body, want) {
			t.Errorf("export lacks %q:\n%s", want, body)
		}
	}
	if recs, _ := cf.audit.List(ctx, audit.Filter{Kind: "campaign.export"}); len(recs) != 1 || recs[0].Entry.Actor != "201" {
		t.Fatalf("export audit: %+v", recs)
	}
}

// An Excel workbook imports through the campaign page; a broken one gets
// a French message.
func TestCampaignImportXLSX(t *testing.T) {
	cf := newConsoleFixture(t)
	c, err := cf.dial.CreateCampaign(t.Context(), cf.by("201"), dialer.CampaignSpec{Name: "archi", Operators: []string{"101"}})
	if err != nil {
		t.Fatal(err)
	}
	wb := excelize.NewFile()
	sh := wb.GetSheetName(0)
	for i, r := range [][]any{{"Société", "Téléphone", "Secteur"}, {"Cabinet Loire", "02 40 12 34 56", "architecte"},
		{"Syndic Atlantique", "0240998877", "syndic"}, {"Sans numéro", "?", ""}} {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		wb.SetSheetRow(sh, cell, &r)
	}
	var xb bytes.Buffer
	if err := wb.Write(&xb); err != nil {
		t.Fatal(err)
	}
	sup := cf.as("201")
	upload := func(name string, data []byte) (int, string) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		mw.WriteField("csrf", sup.csrf)
		fw, _ := mw.CreateFormFile("file", name)
		fw.Write(data)
		mw.Close()
		req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/supervisor/campaigns/%d/import", cf.srv.URL, c.ID), &buf)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		res, body := sup.do(req)
		return res.StatusCode, body
	}
	st, body := upload("contacts.xlsx", xb.Bytes())
	if st != 200 || !strings.Contains(body, "2 contacts ajoutés sur 3 lignes, 1 rejetées") || !strings.Contains(body, "(classeur Excel, première feuille)") {
		t.Fatalf("xlsx import: %d %s", st, body)
	}
	st, body = upload("cassé.xlsx", append([]byte("PK\x03\x04"), make([]byte, 64)...))
	if st != http.StatusBadRequest || !strings.Contains(body, "ce classeur Excel est illisible") {
		t.Fatalf("broken xlsx: %d %s", st, body)
	}
	_, body = sup.get(fmt.Sprintf("/supervisor/campaigns/%d", c.ID))
	if !strings.Contains(body, "Société, Interlocuteur") {
		t.Fatal("the import hint does not list the French column names")
	}
}

// The simulator's téléopérateur field refuses another role's extension.
func TestSimulatorOperatorsOnly(t *testing.T) {
	f := newFixture(t)
	c := f.as("301")
	res, body := c.form("/security/simulate", url.Values{"operator": {"201"}, "number": {"+33240123456"}, "date": {"2026-03-02"}, "time": {"10:00"}})
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "n&#39;est pas celui d&#39;un téléopérateur (rôle : superviseur") || strings.Contains(body, "Autorisé") {
		t.Fatalf("supervisor's extension: %d %s", res.StatusCode, body)
	}
	if strings.Contains(body, `<option value="201">`) {
		t.Fatal("the operator list offers a supervisor")
	}
	res, _ = c.form("/security/simulate", url.Values{"operator": {"101"}, "number": {"+33240123456"}, "date": {"2026-03-02"}, "time": {"10:00"}})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("operator: %d", res.StatusCode)
	}
}

// The audit log reads in French: kinds and outcomes labelled, the kind
// filter a list of labels, details one per line, 50 rows a page, dates
// typed jj/mm/aaaa.
func TestAuditPageFrench(t *testing.T) {
	f := newFixture(t)
	for i := range 60 {
		f.propose("301", fmt.Sprintf("+332400001%02d", i))
	}
	c := f.as("302")
	_, body := c.get("/security/audit?kind=allowlist.propose")
	for _, want := range []string{`<option value="allowlist.propose" selected>liste blanche : proposition</option>`,
		`<span title="allowlist.propose">liste blanche : proposition</span>`, `<td>réussi</td>`, `<dl class="audit-details">`,
		`placeholder="jj/mm/aaaa"`, `02 40 00 01 59`} {
		if !strings.Contains(body, want) {
			t.Errorf("audit page lacks %q", want)
		}
	}
	if n := strings.Count(body, `<span title="allowlist.propose">`); n != 50 {
		t.Errorf("%d rows on the first page, want 50", n)
	}
	_, body = c.get("/security/audit?kind=allowlist.propose&since=02/03/2026&until=02/03/2026")
	if n := strings.Count(body, `<span title="allowlist.propose">`); n != 50 {
		t.Errorf("French dates: %d rows", n)
	}
	res, body := c.get("/security/audit?since=31/02/2026")
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "écrivez-la jj/mm/aaaa") {
		t.Fatalf("bad date: %d", res.StatusCode)
	}
}

// One listening (the page, the waveform, a dozen Range requests) is one
// row of the recording access log; another person's, another row.
func TestRecordingAccessSessions(t *testing.T) {
	rf := newRecFixture(t)
	sup := rf.as("201")
	sup.get("/recordings?id=rec-102")
	sup.get("/api/v1/recordings/rec-102/waveform")
	for i := range 12 {
		req, _ := http.NewRequest(http.MethodGet, rf.srv.URL+"/api/v1/recordings/rec-102/audio", nil)
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", i*1000))
		sup.do(req)
	}
	rf.as("401").get("/api/v1/recordings/rec-102")
	rf.clock.Add(15 * time.Minute) // a later listening is another session
	sup.get("/api/v1/recordings/rec-102")
	sec := rf.as("301")
	_, body := sec.get("/security/recordings")
	if n := strings.Count(body, `<td class="num">rec-102</td>`); n != 3 {
		t.Fatalf("%d session rows for rec-102, want 3:\n%s", n, body)
	}
	if !strings.Contains(body, "14 (dont 12 morceaux d&#39;audio)") || !strings.Contains(body, "consultation, forme d&#39;onde, écoute") {
		t.Fatalf("session row:\n%s", body)
	}
	_, body = sec.get("/security/recordings?group=0")
	if n := strings.Count(body, `<td class="num">rec-102</td>`); n < 16 {
		t.Fatalf("raw view: %d rows", n)
	}
}

// Security proposes (with an end of validity), revokes and keeps the
// do-not-call list from the page; numbers typed the French way.
func TestSecurityDeskActions(t *testing.T) {
	f := newFixture(t)
	c := f.as("301")
	res, body := c.form("/security/allowlist/propose", url.Values{"number": {"02 40 12 34 56"}, "label": {"fournisseur bois"}, "valid_until": {"31/03/2026"}})
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "02 40 12 34 56 proposé") {
		t.Fatalf("propose: %d %s", res.StatusCode, body)
	}
	es, _ := f.st.Allowlist(t.Context(), store.AllowFilter{E164: "+33240123456"})
	paris, _ := time.LoadLocation("Europe/Paris")
	if len(es) != 1 || es[0].ProposedBy != "301" || !es[0].ValidUntil.Equal(time.Date(2026, 4, 1, 0, 0, 0, 0, paris)) {
		t.Fatalf("proposal: %+v", es)
	}
	if res, _ := c.form("/security/allowlist/propose", url.Values{"number": {"02 40 12 34 56"}}); res.StatusCode != http.StatusConflict {
		t.Fatalf("again: %d", res.StatusCode)
	}
	if res, _ := c.form("/security/allowlist/propose", url.Values{"number": {"02 40 99 99 99"}, "valid_until": {"01/01/2020"}}); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("past end: %d", res.StatusCode)
	}
	if res, _ := f.as("201").form("/security/allowlist/propose", url.Values{"number": {"02 40 99 99 99"}}); res.StatusCode != http.StatusForbidden {
		t.Fatalf("supervisor proposes here: %d", res.StatusCode)
	}
	// 302 approves; 301 revokes.
	if _, err := f.st.ApproveAllowlist(t.Context(), f.by("302"), store.Selection{All: true}); err != nil {
		t.Fatal(err)
	}
	_, body = c.get("/security/allowlist")
	if !strings.Contains(body, `action="/security/allowlist/revoke"`) {
		t.Fatal("no revoke button on an approved number")
	}
	res, body = c.form("/security/allowlist/revoke", url.Values{"number": {"+33240123456"}, "note": {"fin du contrat"}})
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "révoqué (1 autorisation(s))") {
		t.Fatalf("revoke: %d %s", res.StatusCode, body)
	}
	// Do-not-call list.
	if res, _ := c.form("/security/dnc", url.Values{"number": {"02 40 55 55 55"}}); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("no reason: %d", res.StatusCode)
	}
	res, body = c.form("/security/dnc", url.Values{"number": {"02 40 55 55 55"}, "reason": {"plainte du client"}})
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "02 40 55 55 55 ajouté à la liste rouge") || !strings.Contains(body, "plainte du client") {
		t.Fatalf("dnc add: %d", res.StatusCode)
	}
	if listed, _ := f.st.IsListed(t.Context(), "+33240555555"); !listed {
		t.Fatal("not listed")
	}
	res, _ = c.form("/security/dnc/remove", url.Values{"number": {"+33240555555"}})
	if listed, _ := f.st.IsListed(t.Context(), "+33240555555"); res.StatusCode != http.StatusOK || listed {
		t.Fatalf("dnc remove: %d listed %v", res.StatusCode, listed)
	}
	for _, k := range []string{"allowlist.propose", "allowlist.revoke", "dnc.add", "dnc.remove"} {
		if recs, _ := f.audit.List(t.Context(), audit.Filter{Kind: k, Actor: "301"}); len(recs) == 0 {
			t.Errorf("no %s audited", k)
		}
	}
}

// The supervisor edits a campaign's outcomes and retry rules in French;
// the default ones keep their stored names.
func TestCampaignDispositionsForm(t *testing.T) {
	cf := newConsoleFixture(t)
	sup := cf.as("201")
	_, body := sup.get("/supervisor/campaigns")
	if !strings.Contains(body, "occupé ; nouvel essai ; 15 min ; 3") || !strings.Contains(body, "rendez-vous pris ; terminé") {
		t.Fatal("new campaign form lacks the default outcomes in French")
	}
	res, body := sup.form("/supervisor/campaigns", url.Values{"name": {"ateliers"},
		"dispositions": {"rendez-vous pris ; terminé\noccupé ; nouvel essai ; 30 min ; 5\nmessagerie ; nouvel essai ; 2 h ; 2\nà rappeler ; rappel\nne plus appeler ; liste rouge"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("create: %d %s", res.StatusCode, body)
	}
	c, err := cf.dial.CampaignByName(t.Context(), "ateliers")
	if err != nil || len(c.Dispositions) != 5 {
		t.Fatalf("%+v %v", c.Dispositions, err)
	}
	want := []dialer.Disposition{{Name: "appointment set", Action: dialer.ActionDone},
		{Name: "busy", Action: dialer.ActionRetry, RetryAfter: dialer.Duration(30 * time.Minute), MaxAttempts: 5},
		{Name: "messagerie", Action: dialer.ActionRetry, RetryAfter: dialer.Duration(2 * time.Hour), MaxAttempts: 2},
		{Name: "callback", Action: dialer.ActionCallback}, {Name: "do not call", Action: dialer.ActionDNC}}
	for i, d := range want {
		if c.Dispositions[i] != d {
			t.Errorf("disposition %d: %+v, want %+v", i, c.Dispositions[i], d)
		}
	}
	_, body = sup.get(fmt.Sprintf("/supervisor/campaigns/%d", c.ID))
	if !strings.Contains(body, "occupé ; nouvel essai ; 30 min ; 5\nmessagerie ; nouvel essai ; 2 h ; 2") {
		t.Fatal("edit form does not show the outcomes back")
	}
	res, body = sup.form(fmt.Sprintf("/supervisor/campaigns/%d", c.ID), url.Values{"name": {"ateliers"}, "dispositions": {"occupé ; nouvel essai ; bientôt ; 3"}})
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "issues, ligne 1") {
		t.Fatalf("bad line: %d", res.StatusCode)
	}
}
