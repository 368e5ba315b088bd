package dialer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"plateau/policy"
)

// FuzzImportCSV fuzzes the outside-input half of an import: decoding,
// separator detection, CSV parsing and number normalisation. (The database
// half is checked on the same corpus by TestImportCorpus: under the
// fuzzer's coverage instrumentation the pure-Go SQLite runs a few inputs a
// minute, too slow to fuzz.) Whatever the bytes: an error is
// ErrUnreadableFile; otherwise every field is valid UTF-8, lines are
// increasing and after the header, and a normalised number is E.164.
func FuzzImportCSV(f *testing.F) {
	for _, name := range []string{"bad_rows.csv", "cp1252_semicolon.csv", "no_phone.csv", "not_csv.csv"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := ParseFile(data)
		if err != nil {
			if !errors.Is(err, ErrUnreadableFile) {
				t.Fatalf("error is not ErrUnreadableFile: %v", err)
			}
			return
		}
		last := 1
		for _, r := range file.Records {
			if r.Line <= last {
				t.Fatalf("line %d after line %d", r.Line, last)
			}
			last = r.Line
			for _, s := range []string{r.Phone, r.Company, r.Contact, r.Email, r.City, r.Notes} {
				if !utf8.ValidString(s) {
					t.Fatalf("invalid UTF-8 %q", s)
				}
			}
			for k, v := range r.Custom {
				if !utf8.ValidString(k) || !utf8.ValidString(v) || v == "" {
					t.Fatalf("custom %q=%q", k, v)
				}
			}
			if n, err := policy.Normalize(r.Phone, "FR"); err == nil && !strings.HasPrefix(n, "+") {
				t.Fatalf("normalised %q to %q", r.Phone, n)
			}
		}
	})
}

// TestImportCorpus runs full imports of the fuzz corpus and the fixtures:
// an error is ErrUnreadableFile and leaves nothing behind; otherwise each
// row is added or rejected with a known reason, and importing the same
// bytes again adds nothing.
func TestImportCorpus(t *testing.T) {
	inputs := map[string][]byte{}
	files, _ := filepath.Glob("testdata/*.csv")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		inputs[p] = b
	}
	corpus, _ := filepath.Glob("testdata/fuzz/FuzzImportCSV/*")
	for _, p := range corpus {
		b, _ := os.ReadFile(p)
		_, rest, _ := strings.Cut(string(b), "[]byte(")
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimSpace(rest), ")"))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		inputs[p] = []byte(s)
	}
	if len(corpus) == 0 {
		t.Fatal("no committed fuzz corpus")
	}
	fx := newFixture(t, 1)
	reasons := map[string]bool{RejectInvalidNumber: true, RejectDuplicate: true, RejectInCampaign: true, RejectDNC: true}
	n := 0
	for name, data := range inputs {
		n++
		c, err := fx.svc.CreateCampaign(fx.ctx, fx.by("201"), CampaignSpec{Name: fmt.Sprint("corpus ", n)})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := fx.svc.Import(fx.ctx, fx.by("201"), c.ID, data)
		contacts := fx.count(`SELECT count(*) FROM contacts WHERE campaign_id = ?`, c.ID)
		if err != nil {
			if !errors.Is(err, ErrUnreadableFile) || contacts != 0 {
				t.Errorf("%s: %v, %d contacts left", name, err, contacts)
			}
			continue
		}
		if rep.Added+len(rep.Rejected) != rep.Rows || contacts != rep.Added {
			t.Errorf("%s: rows %d, added %d, rejected %d, stored %d", name, rep.Rows, rep.Added, len(rep.Rejected), contacts)
		}
		for _, r := range rep.Rejected {
			if !reasons[r.Reason] || r.Line < 2 {
				t.Errorf("%s: rejection %+v", name, r)
			}
		}
		if again, err := fx.svc.Import(fx.ctx, fx.by("201"), c.ID, data); err != nil || again.Added != 0 {
			t.Errorf("%s: re-import %+v, %v", name, again, err)
		}
	}
}
