package web

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"plateau/audit"
	"plateau/store"
)

func TestAllowlistApproveAPI(t *testing.T) {
	f := newFixture(t)
	ids := f.propose("301", "+33240000001", "+33240000002")
	own := f.propose("302", "+33240000003")

	// A supervisor cannot approve: 403 before the store is asked.
	sup := f.as("201")
	if res, body := sup.api("POST", "/api/v1/allowlist/approve", map[string]any{"ids": ids}); res.StatusCode != http.StatusForbidden || !strings.Contains(body, `"error": "forbidden"`) {
		t.Fatalf("supervisor approves: %d %s", res.StatusCode, body)
	}
	// The proposer cannot approve their own, and is told why, in French.
	sec := f.as("302")
	res, body := sec.api("POST", "/api/v1/allowlist/approve", map[string]any{"ids": own})
	if res.StatusCode != http.StatusForbidden || !strings.Contains(body, `"error": "self_approval"`) ||
		!strings.Contains(body, "Règle des deux personnes") {
		t.Fatalf("self approval: %d %s", res.StatusCode, body)
	}
	if recs := f.audited("allowlist.approve"); len(recs) != 1 || recs[0].Entry.Outcome != "refused" || recs[0].Entry.Actor != "302" {
		t.Fatalf("refused self-approval audited: %+v", recs)
	}
	// Nor in bulk: "all" includes their own, so nothing is approved.
	if res, body := sec.api("POST", "/api/v1/allowlist/approve", map[string]any{"all": true}); res.StatusCode != http.StatusForbidden {
		t.Fatalf("bulk with own: %d %s", res.StatusCode, body)
	}
	// Someone else's: approved, audited with the web source.
	res, body = sec.api("POST", "/api/v1/allowlist/approve", map[string]any{"ids": ids, "note": "vérifié"})
	if res.StatusCode != 200 {
		t.Fatalf("approve: %d %s", res.StatusCode, body)
	}
	var out struct{ Entries []allowEntry }
	decode(t, body, &out)
	if len(out.Entries) != 2 || out.Entries[0].Status != "approved" || out.Entries[0].DecidedBy != "302" {
		t.Fatalf("approved: %+v", out)
	}
	if ok, _ := f.st.IsApproved(t.Context(), "+33240000001", f.clock.Now()); !ok {
		t.Fatal("not approved in the store")
	}
	if recs := f.audited("allowlist.approve"); recs[0].Entry.Outcome != "ok" || !strings.HasPrefix(recs[0].Entry.Source, "web ") {
		t.Fatalf("approval audit: %+v", recs[0].Entry)
	}
	// English on request.
	req := "/api/v1/allowlist/approve?lang=en"
	if _, body := sec.api("POST", req, map[string]any{"ids": own}); !strings.Contains(body, "Two-person rule") {
		t.Fatalf("English message: %s", body)
	}
	// Already decided.
	if res, body := sec.api("POST", "/api/v1/allowlist/approve", map[string]any{"ids": ids[:1]}); res.StatusCode != http.StatusConflict || !strings.Contains(body, "not_proposed") {
		t.Fatalf("twice: %d %s", res.StatusCode, body)
	}
	// Bad bodies.
	if res, _ := sec.api("POST", "/api/v1/allowlist/approve", map[string]any{"idz": 1}); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown field: %d", res.StatusCode)
	}
	if res, _ := sec.api("POST", "/api/v1/allowlist/approve", map[string]any{}); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("empty selection: %d", res.StatusCode)
	}
}

func TestAllowlistRejectAndList(t *testing.T) {
	f := newFixture(t)
	ids := f.propose("101", "+33240000001", "+33240000002")
	sec := f.as("301")
	if res, body := sec.api("POST", "/api/v1/allowlist/reject", map[string]any{"ids": ids[:1], "note": "inconnu"}); res.StatusCode != 200 {
		t.Fatalf("reject: %d %s", res.StatusCode, body)
	}
	if res, body := sec.api("POST", "/api/v1/allowlist/reject", map[string]any{"all": true}); res.StatusCode != 200 || !strings.Contains(body, "+33240000002") {
		t.Fatalf("reject all: %d %s", res.StatusCode, body)
	}
	res, body := sec.get("/api/v1/allowlist?status=rejected")
	var out struct{ Entries []allowEntry }
	decode(t, body, &out)
	if res.StatusCode != 200 || len(out.Entries) != 2 || out.Entries[0].Note != "inconnu" {
		t.Fatalf("list: %d %s", res.StatusCode, body)
	}
	if res, _ := sec.get("/api/v1/allowlist?status=bogus"); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad status: %d", res.StatusCode)
	}
}

func TestAllowlistPage(t *testing.T) {
	f := newFixture(t)
	theirs := f.propose("301", "+33240000001", "+33240000002", "+33240000004")
	mine := f.propose("302", "+33240000003")
	c := f.as("302")
	_, body := c.get("/security/allowlist")
	for _, want := range []string{"Propositions en attente (4)", "&#43;33240000001", `class="mine"`, "(vous)", `name="approve_one"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// One by one, own: refused with the French rule, nothing changed.
	res, body := c.form("/security/allowlist/decide", url.Values{"approve_one": {strconv.FormatInt(mine[0], 10)}})
	if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "vous avez proposé ce numéro") {
		t.Fatalf("own one: %d", res.StatusCode)
	}
	// One by one, someone else's.
	res, body = c.form("/security/allowlist/decide", url.Values{"approve_one": {strconv.FormatInt(theirs[0], 10)}})
	if res.StatusCode != 200 || !strings.Contains(body, "1 numéro(s) approuvé(s)") {
		t.Fatalf("approve one: %d", res.StatusCode)
	}
	// The row's own button wins over ticked boxes.
	res, body = c.form("/security/allowlist/decide", url.Values{"reject_one": {strconv.FormatInt(theirs[1], 10)},
		"id": {strconv.FormatInt(mine[0], 10)}})
	if res.StatusCode != 200 || !strings.Contains(body, "1 proposition(s) refusée(s)") {
		t.Fatalf("reject one: %d", res.StatusCode)
	}
	// Selection.
	res, body = c.form("/security/allowlist/decide", url.Values{"action": {"approve"}, "id": {strconv.FormatInt(theirs[2], 10)}})
	if res.StatusCode != 200 || !strings.Contains(body, "1 numéro(s) approuvé(s)") {
		t.Fatalf("approve selection: %d", res.StatusCode)
	}
	res, body = c.form("/security/allowlist/decide", url.Values{"action": {"approve"}})
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Rien n") {
		t.Fatalf("empty selection: %d", res.StatusCode)
	}
	_, body = c.get("/security/allowlist")
	if !strings.Contains(body, "Propositions en attente (1)") || !strings.Contains(body, "approuvé") {
		t.Fatalf("after decisions: %s", body)
	}
}

func TestAllowlistCSV(t *testing.T) {
	f := newFixture(t)
	_, err := f.st.ProposeAllowlist(t.Context(), store.Change{By: "301", Source: "test", At: f.clock.Now()},
		[]store.Proposal{{E164: "+33240000001", Label: "=HYPERLINK(\"x\")", Campaign: "archi"}})
	if err != nil {
		t.Fatal(err)
	}
	res, body := f.as("302").get("/security/allowlist.csv")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(res.Header.Get("Content-Disposition"), "allowlist-2026-03-02.csv") {
		t.Fatalf("csv: %d %v", res.StatusCode, res.Header)
	}
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil || len(rows) != 2 || rows[0][1] != "number" || rows[1][1] != "+33240000001" || rows[1][2] != `'=HYPERLINK("x")` {
		t.Fatalf("csv rows: %q %v", rows, err)
	}
	if recs := f.audited("allowlist.export"); len(recs) != 1 || recs[0].Entry.Actor != "302" {
		t.Fatalf("export audit: %+v", recs)
	}
}

func TestAuditSearchAndVerify(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for i, e := range []audit.Entry{
		{Kind: "policy.decision", Actor: "101", Subject: "+33240000001", Outcome: "refused", Reason: "NOT_ALLOWLISTED",
			Source: "10.0.0.5", Details: map[string]any{"rule": "allowlist", "detail": "+33240000001 is not approved on the allowlist", "dialled": "0240000001"}},
		{Kind: "policy.decision", Actor: "102", Subject: "+33240000002", Outcome: "allowed", Reason: "ALLOWED"},
		{Kind: "policy.decision", Actor: "102", Subject: "+33240000009", Outcome: "refused", Reason: "OUTSIDE_WINDOW",
			Details: map[string]any{"rule": "window"}},
	} {
		f.clock.Add(time1(i))
		if _, err := f.audit.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	c := f.as("301")
	res, body := c.get("/api/v1/audit?kind=policy.decision&actor=102")
	var out struct{ Entries []auditRecord }
	decode(t, body, &out)
	if res.StatusCode != 200 || len(out.Entries) != 2 || out.Entries[0].Subject != "+33240000009" {
		t.Fatalf("search: %d %s", res.StatusCode, body)
	}
	if _, body := c.get("/api/v1/audit?since=2026-03-03"); !strings.Contains(body, `"entries": []`) {
		t.Fatalf("since tomorrow: %s", body)
	}
	if _, body := c.get("/api/v1/audit?until=2026-03-02&kind=policy.decision"); strings.Contains(body, `"entries": []`) {
		t.Fatalf("until today (inclusive): %s", body)
	}
	if res, _ := c.get("/api/v1/audit?since=31/02/2026"); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad date: %d", res.StatusCode)
	}
	// A date typed the French way is the same day.
	if _, body := c.get("/api/v1/audit?since=03/03/2026"); !strings.Contains(body, `"entries": []`) {
		t.Fatalf("since tomorrow, French: %s", body)
	}
	_, body = c.get("/security/audit?kind=policy.decision")
	if !strings.Contains(body, "Chaîne d&#39;audit intacte") || !strings.Contains(body, "numéro non autorisé") ||
		!strings.Contains(body, "décision de la politique d&#39;appel") || strings.Contains(body, ">NOT_ALLOWLISTED<") {
		t.Fatalf("audit page: %s", body)
	}
	// Refused-calls report: only refusals, with who, what and why.
	res, body = c.get("/api/v1/reports/refused")
	var rep struct{ Refused []refusedCall }
	decode(t, body, &rep)
	if res.StatusCode != 200 || len(rep.Refused) != 2 || rep.Refused[1].Operator != "101" || rep.Refused[1].Reason != "NOT_ALLOWLISTED" ||
		rep.Refused[1].Dialled != "0240000001" || rep.Refused[1].Rule != "allowlist" {
		t.Fatalf("refused: %s", body)
	}
	_, body = c.get("/security/refused")
	if !strings.Contains(body, "numéro non autorisé") || !strings.Contains(body, "hors des heures d&#39;appel") {
		t.Fatalf("refused page: %s", body)
	}

	// The head shown can be checked later, on the page and in the API.
	res, body = c.get("/api/v1/audit/verify")
	var v struct {
		Head    string `json:"head"`
		HeadSeq int64  `json:"head_seq"`
	}
	decode(t, body, &v)
	if res.StatusCode != 200 || v.HeadSeq == 0 {
		t.Fatalf("verify: %d %s", res.StatusCode, body)
	}
	head := fmt.Sprintf("%d:%s", v.HeadSeq, v.Head)
	if _, body = c.get("/security/audit"); !strings.Contains(body, "<code>"+head+"</code>") {
		t.Fatalf("audit page does not show the head %s: %s", head, body)
	}
	if _, body = c.get("/security/audit?heads=" + head); !strings.Contains(body, "toujours présentes dans la chaîne : "+head) {
		t.Fatalf("noted head on an intact chain: %s", body)
	}
	if res, body = c.get("/security/audit?heads=3:abc"); res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Tête notée invalide") {
		t.Fatalf("bad noted head: %d %s", res.StatusCode, body)
	}
	if res, _ = c.get("/api/v1/audit/verify?head=3"); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("API with a bad head: %d", res.StatusCode)
	}
	db := f.st.DB()
	if _, err := db.Exec(`DROP TRIGGER audit_log_no_delete`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM audit_log WHERE seq = ?`, v.HeadSeq); err != nil {
		t.Fatal(err)
	}
	res, body = c.get("/api/v1/audit/verify?head=" + head)
	if res.StatusCode != 200 || !strings.Contains(body, `"ok": false`) || !strings.Contains(body, "deleted") {
		t.Fatalf("verify with the noted head after deleting the newest entry: %s", body)
	}
	if _, body = c.get("/security/audit?heads=" + head); !strings.Contains(body, "entries were deleted") {
		t.Fatalf("audit page with the noted head after deletion: %s", body)
	}

	// Tamper with entry 2: verify names it.
	if _, err := db.Exec(`DROP TRIGGER audit_log_no_update`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE audit_log SET reason = 'DNC' WHERE seq = 2`); err != nil {
		t.Fatal(err)
	}
	res, body = c.get("/api/v1/audit/verify")
	if res.StatusCode != 200 || !strings.Contains(body, `"ok": false`) || !strings.Contains(body, `"broken_at": 2`) {
		t.Fatalf("verify: %s", body)
	}
	if _, body = c.get("/security/audit"); !strings.Contains(body, "rompue à l&#39;entrée 2") {
		t.Fatalf("audit page after tampering: %s", body)
	}
}

func time1(i int) time.Duration { return time.Duration(i+1) * time.Minute }

func TestPolicySimulator(t *testing.T) {
	f := newFixture(t)
	ids := f.propose("301", "+33240000001")
	if _, err := f.st.ApproveAllowlist(t.Context(), store.Change{By: "302", Source: "test", At: f.clock.Now()}, store.Selection{IDs: ids}); err != nil {
		t.Fatal(err)
	}
	c := f.as("301")
	cases := []struct {
		op, number, at string
		allow          bool
		reason, rule   string
	}{
		{"101", "02 40 00 00 01", "2026-03-09T07:29:59", false, "OUTSIDE_WINDOW", "window"},
		{"101", "+33240000001", "2026-03-09T07:30", true, "ALLOWED", "all"},
		{"101", "+33240000002", "2026-03-09T10:00", false, "NOT_ALLOWLISTED", "allowlist"},
		{"103", "+33240000001", "2026-03-09T10:00", false, "OPERATOR_SUSPENDED", "operator"},
		{"101", "+33240000001", "2026-03-08T10:00", false, "OUTSIDE_WINDOW", "window"}, // Sunday
		{"101", "+33240000001", "2026-03-09T09:00:00+01:00", true, "ALLOWED", "all"},
	}
	for _, tc := range cases {
		res, body := c.api("POST", "/api/v1/policy/simulate", map[string]any{"operator": tc.op, "number": tc.number, "time": tc.at})
		var s simulation
		decode(t, body, &s)
		if res.StatusCode != 200 || s.Allow != tc.allow || s.Reason != tc.reason || s.Rule != tc.rule || s.LiveFacts == "" {
			t.Errorf("%s %s at %s: %d %s", tc.op, tc.number, tc.at, res.StatusCode, body)
		}
	}
	if res, _ := c.api("POST", "/api/v1/policy/simulate", map[string]any{"operator": "101", "number": "1", "time": "lundi"}); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad time: %d", res.StatusCode)
	}
	if recs := f.audited("policy.simulate"); len(recs) != len(cases) || recs[0].Entry.Actor != "301" {
		t.Fatalf("simulations audited: %d", len(recs))
	}
	// The form, Monday at 07:29: the deciding rule and the live-facts note.
	res, body := c.form("/security/simulate", url.Values{"operator": {"101"}, "number": {"0240000001"}, "date": {"2026-03-09"}, "time": {"07:29"}})
	if strings.Contains(body, "OUTSIDE_WINDOW") || strings.Contains(body, "is outside") {
		t.Error("simulator page shows a raw code or English detail")
	}
	for _, want := range []string{"Appel refusé", "hors des heures d&#39;appel", "lun. 09/03/2026 à 07:29 : hors des heures d&#39;appel", "heures d&#39;appel", "état de l&#39;enregistreur sont ceux de maintenant", "09/03/2026 07:29:00"} {
		if !strings.Contains(body, want) {
			t.Errorf("simulator page lacks %q", want)
		}
	}
	if res.StatusCode != 200 {
		t.Fatalf("form: %d", res.StatusCode)
	}
	if res, body := c.form("/security/simulate", url.Values{"operator": {"101"}, "number": {""}, "date": {"x"}, "time": {"y"}}); res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Indiquez un poste") {
		t.Fatalf("invalid form: %d", res.StatusCode)
	}
}
