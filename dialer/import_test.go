package dialer

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestImportBadRows(t *testing.T) {
	f := newFixture(t, 1)
	c := f.campaign("Archi Ouest", "101")
	if err := f.st.AddDNC(f.ctx, f.by("301"), "+33251000001", "asked"); err != nil {
		t.Fatal(err)
	}
	rep, err := f.svc.Import(f.ctx, f.by("201"), c.ID, readFixture(t, "bad_rows.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Encoding != "utf-8" || rep.Separator != "," || rep.Rows != 9 || rep.Added != 5 || rep.Proposed != 5 {
		t.Errorf("report = %+v", rep)
	}
	want := []struct {
		line   int
		reason string
	}{{3, RejectInvalidNumber}, {5, RejectDuplicate}, {9, RejectInvalidNumber}, {13, RejectDNC}}
	if len(rep.Rejected) != len(want) {
		t.Fatalf("rejected = %+v", rep.Rejected)
	}
	for i, w := range want {
		if r := rep.Rejected[i]; r.Line != w.line || r.Reason != w.reason {
			t.Errorf("rejected[%d] = %+v, want line %d %s", i, r, w.line, w.reason)
		}
	}
	if !strings.Contains(rep.Rejected[1].Detail, "line 2") {
		t.Errorf("duplicate detail = %q", rep.Rejected[1].Detail)
	}
	// Known columns, custom fields, a quoted multi-line field.
	var contact, notes, custom string
	if err := f.st.DB().QueryRow(`SELECT contact, notes, custom FROM contacts WHERE e164 = '+33145678910'`).Scan(&contact, &notes, &custom); err != nil {
		t.Fatal(err)
	}
	if contact != "Jean\nDupont" || notes != "notes over\ntwo lines" || custom != `{"Sector":"architecture"}` {
		t.Errorf("multi-line row: %q %q %q", contact, notes, custom)
	}
	if n := f.count(`SELECT count(*) FROM allowlist WHERE status = 'proposed' AND proposed_by = '201' AND campaign = ?`, c.Name); n != 5 {
		t.Errorf("proposals = %d, want 5", n)
	}
	if n := f.count(`SELECT count(*) FROM audit_log WHERE kind = 'campaign.import'`); n != 1 {
		t.Errorf("import audit entries = %d", n)
	}
}

func TestImportWindows1252Semicolon(t *testing.T) {
	f := newFixture(t, 1)
	c := f.campaign("Sud", "101")
	rep, err := f.svc.Import(f.ctx, f.by("201"), c.ID, readFixture(t, "cp1252_semicolon.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Encoding != "windows-1252" || rep.Separator != ";" || rep.Added != 2 {
		t.Fatalf("report = %+v", rep)
	}
	if len(rep.Rejected) != 2 || rep.Rejected[0].Line != 4 || rep.Rejected[0].Reason != RejectDuplicate ||
		rep.Rejected[1].Line != 5 || rep.Rejected[1].Reason != RejectInvalidNumber {
		t.Errorf("rejected = %+v", rep.Rejected)
	}
	var company, contact, city, notes, custom string
	if err := f.st.DB().QueryRow(`SELECT company, contact, city, notes, custom FROM contacts WHERE e164 = '+33467280000'`).
		Scan(&company, &contact, &city, &notes, &custom); err != nil {
		t.Fatal(err)
	}
	if company != "Béton & Fils" || contact != "François Bézier" || city != "Béziers" || notes != "Dirigeant : M. Cœur" ||
		custom != `{"Région":"Occitanie"}` {
		t.Errorf("decoded row: %q %q %q %q %q", company, contact, city, notes, custom)
	}
	if n := f.count(`SELECT count(*) FROM contacts WHERE company = 'Société Générale' AND city = 'Paris La Défense'`); n != 1 {
		t.Errorf("Société Générale not decoded")
	}
}

func TestImportIdempotent(t *testing.T) {
	f := newFixture(t, 1)
	c := f.campaign("Archi", "101")
	data := readFixture(t, "bad_rows.csv")
	first := f.importCSV(c, string(data))
	snapshot := func() [4]int {
		return [4]int{f.count(`SELECT count(*) FROM contacts`), f.count(`SELECT count(*) FROM allowlist`),
			f.count(`SELECT count(*) FROM audit_log`), f.count(`SELECT count(*) FROM dnc`)}
	}
	before := snapshot()
	f.clk.Add(3600e9)
	again := f.importCSV(c, string(data))
	if after := snapshot(); after != before {
		t.Errorf("re-import changed the database: %v -> %v", before, after)
	}
	if again.Added != 0 || again.Proposed != 0 || len(again.Rejected) != len(first.Rejected)+first.Added {
		t.Errorf("re-import report = %+v", again)
	}
	// Once approved, importing the numbers into another campaign proposes nothing.
	f.approve(c)
	other := f.campaign("Archi 2", "101")
	if rep := f.importCSV(other, string(data)); rep.Added != 6 || rep.Proposed != 0 {
		t.Errorf("approved numbers in another campaign: %+v", rep)
	}
}

func TestImportUnreadable(t *testing.T) {
	f := newFixture(t, 1)
	c := f.campaign("X", "101")
	for name, data := range map[string][]byte{
		"no phone column": readFixture(t, "no_phone.csv"),
		"bad quoting":     readFixture(t, "not_csv.csv"),
		"binary":          {0x89, 'P', 'N', 'G', 0, 0, 1, 2},
		"empty":           {},
		"bom only":        []byte("\xef\xbb\xbf\r\n"),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := f.svc.Import(f.ctx, f.by("201"), c.ID, data)
			if !errors.Is(err, ErrUnreadableFile) {
				t.Fatalf("err = %v, want ErrUnreadableFile", err)
			}
		})
	}
	if n := f.count(`SELECT count(*) FROM contacts`) + f.count(`SELECT count(*) FROM allowlist`); n != 0 {
		t.Errorf("an unreadable file left %d rows", n)
	}
}

func TestImportNeedsManager(t *testing.T) {
	f := newFixture(t, 1)
	c := f.campaign("X", "101")
	for _, by := range []string{"101", "301", "999"} {
		if _, err := f.svc.Import(f.ctx, f.by(by), c.ID, []byte("phone\n0240123456\n")); !errors.Is(err, ErrForbidden) {
			t.Errorf("import by %s: %v, want ErrForbidden", by, err)
		}
	}
}

func TestParseFileHeaders(t *testing.T) {
	for _, tc := range []struct {
		in, phone, company string
		sep                rune
	}{
		{"Téléphone;Société\n02 40 12 34 56;A\n", "02 40 12 34 56", "A", ';'},
		{"TEL.,Raison sociale\n0240123456,B\n", "0240123456", "B", ','},
		{"numéro\tentreprise\n0240123456\tC\n", "0240123456", "C", '\t'},
		{"phone\n0240123456\n", "0240123456", "", ','},
	} {
		f, err := ParseFile([]byte(tc.in))
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		if f.Separator != tc.sep || len(f.Records) != 1 || f.Records[0].Phone != tc.phone || f.Records[0].Company != tc.company {
			t.Errorf("%q: %+v", tc.in, f)
		}
	}
}
