package dialer

import (
	"bytes"
	"errors"
	"testing"

	"github.com/xuri/excelize/v2"
)

// workbook builds an .xlsx as a client's spreadsheet would be: French
// headers, a phone typed as a number with a "00 00 00 00 00" format (so
// it keeps its 0), one as text, a blank row, a custom column.
func workbook(t testing.TB) []byte {
	t.Helper()
	wb := excelize.NewFile()
	defer wb.Close()
	sh := wb.GetSheetName(0)
	rows := [][]any{
		{"Société", "Interlocuteur", "Téléphone", "Ville", "Secteur"},
		{"Cabinet Loire", "Mme Roux", 240123456, "Nantes", "architecte"},
		{},
		{"Syndic Atlantique", "M. Blanc", "02 40 99 88 77", "Saint-Nazaire", "syndic"},
		{"Sans numéro", "X", "pas un numéro", "Nantes", ""},
	}
	for i, r := range rows {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := wb.SetSheetRow(sh, cell, &r); err != nil {
			t.Fatal(err)
		}
	}
	fmtID := "00 00 00 00 00"
	style, err := wb.NewStyle(&excelize.Style{CustomNumFmt: &fmtID})
	if err != nil {
		t.Fatal(err)
	}
	if err := wb.SetCellStyle(sh, "C2", "C2", style); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := wb.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestParseXLSX(t *testing.T) {
	f, err := ParseFile(workbook(t))
	if err != nil {
		t.Fatal(err)
	}
	if f.Encoding != "xlsx" || len(f.Records) != 3 {
		t.Fatalf("%+v", f)
	}
	r := f.Records[0]
	if r.Line != 2 || r.Company != "Cabinet Loire" || r.Contact != "Mme Roux" || r.Phone != "02 40 12 34 56" || r.City != "Nantes" || r.Custom["Secteur"] != "architecte" {
		t.Fatalf("row 2: %+v", r)
	}
	if f.Records[1].Line != 4 || f.Records[1].Phone != "02 40 99 88 77" {
		t.Fatalf("row 4: %+v", f.Records[1])
	}
	for _, bad := range [][]byte{[]byte("PK\x03\x04garbage"), []byte("PK\x03\x04")} {
		if _, err := ParseFile(bad); !errors.Is(err, ErrUnreadableFile) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
}

// An imported workbook goes through the same import as a CSV.
func TestImportXLSX(t *testing.T) {
	f := newFixture(t, 1)
	c := f.campaign("C", "101")
	rep, err := f.svc.Import(f.ctx, f.by("201"), c.ID, workbook(t))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rows != 3 || rep.Added != 2 || len(rep.Rejected) != 1 || rep.Rejected[0].Line != 5 || rep.Encoding != "xlsx" {
		t.Fatalf("%+v", rep)
	}
}

// FuzzParseXLSX: no workbook, however built, panics or hangs the parser
// (excelize runs behind a recover; the zip is bounded).
func FuzzParseXLSX(f *testing.F) {
	f.Add(workbook(f))
	f.Add([]byte("PK\x03\x04"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if !isXLSX(data) {
			return
		}
		file, err := parseXLSX(data)
		if err == nil && file == nil {
			t.Fatal("nil file without error")
		}
		if err != nil && !errors.Is(err, ErrUnreadableFile) {
			t.Fatalf("error not ErrUnreadableFile: %v", err)
		}
	})
}
