package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"plateau/store"
)

// cliFixture writes a minimal configuration with a temporary data_dir and
// the users a two-person workflow needs, and returns a runner.
type cliFixture struct {
	t    *testing.T
	cfg  string
	dir  string
	now  time.Time
	last struct{ stdout, stderr string }
}

func newCLI(t *testing.T) *cliFixture {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notice.wav"), []byte("RIFF"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "plateau.yaml")
	yaml := "site: {timezone: Europe/Paris, default_region: FR}\n" +
		"data_dir: " + strconv.Quote(filepath.Join(dir, "data")) + "\n" +
		"recordings: {notice_prompt: notice.wav}\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &cliFixture{t: t, cfg: cfg, dir: dir, now: time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)}
	for _, u := range [][]string{{"101", "operator"}, {"201", "supervisor"}, {"301", "security"}, {"302", "security"}} {
		f.ok("user", "add", "--role", u[1], u[0])
	}
	return f
}

func (f *cliFixture) run(args ...string) int {
	f.t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdout: &out, stderr: &errb, stdin: strings.NewReader(""), now: func() time.Time { return f.now }}
	// -c goes right after the subcommand's verb, as a user would type it.
	full := append([]string{}, args[:2]...)
	full = append(full, "-c", f.cfg)
	full = append(full, args[2:]...)
	code := run(context.Background(), e, full)
	f.last.stdout, f.last.stderr = out.String(), errb.String()
	return code
}

func (f *cliFixture) ok(args ...string) string {
	f.t.Helper()
	if code := f.run(args...); code != 0 {
		f.t.Fatalf("plateau %s: exit %d: %s", strings.Join(args, " "), code, f.last.stderr)
	}
	return f.last.stdout
}

func (f *cliFixture) fails(wantCode int, wantErr string, args ...string) {
	f.t.Helper()
	code := f.run(args...)
	if code != wantCode || !strings.Contains(f.last.stderr, wantErr) {
		f.t.Fatalf("plateau %s: exit %d, stderr %q; want exit %d mentioning %q", strings.Join(args, " "), code, f.last.stderr, wantCode, wantErr)
	}
	if n := strings.Count(strings.TrimSpace(f.last.stderr), "\n"); n != 0 {
		f.t.Errorf("error takes %d lines: %q", n+1, f.last.stderr)
	}
}

func (f *cliFixture) store() *store.Store {
	f.t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(f.dir, "data", "plateau.db"))
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { st.Close() })
	return st
}

func TestCLIAllowlistWorkflow(t *testing.T) {
	f := newCLI(t)
	out := f.ok("allowlist", "add", "--by", "301", "--label", "Cabinet A", "--campaign", "archi",
		"--valid-until", "2026-12-31", "02 40 12 34 56", "+33 6 12 34 56 78", "0033299001122")
	for _, want := range []string{"proposed #1 +33240123456 (campaign archi)", "#2 +33612345678", "#3 +33299001122", "approve --by EXT 1 2 3"} {
		if !strings.Contains(out, want) {
			t.Errorf("add output lacks %q:\n%s", want, out)
		}
	}
	// The same number in another spelling is the same entry.
	f.fails(2, "already proposed", "allowlist", "add", "--by", "101", "--campaign", "archi", "+33240123456")

	f.fails(2, "two-person rule", "allowlist", "approve", "--by", "301", "1")  // the proposer
	f.fails(2, "security officer", "allowlist", "approve", "--by", "101", "1") // an operator
	f.fails(2, "security officer", "allowlist", "approve", "--by", "201", "1") // a supervisor
	f.fails(2, "entry 99", "allowlist", "approve", "--by", "301", "1", "2", "99")
	f.fails(2, "not an entry id", "allowlist", "approve", "--by", "301", "1", "x")
	f.fails(2, "one of", "allowlist", "approve", "--by", "301")
	f.fails(2, "one of", "allowlist", "approve", "--by", "301", "--all", "1")
	if out := f.ok("allowlist", "list", "--status", "approved"); strings.Count(out, "\n") != 1 {
		t.Fatalf("half-applied approve:\n%s", out)
	}

	// Flags may follow the ids.
	out = f.ok("allowlist", "approve", "1", "2", "--by", "302")
	if !strings.Contains(out, "approved #1 +33240123456") || !strings.Contains(out, "approved #2") {
		t.Errorf("approve output:\n%s", out)
	}
	f.ok("allowlist", "reject", "--by", "302", "--note", "not a business", "3")

	st := f.store()
	ctx := context.Background()
	if ok, _ := st.IsApproved(ctx, "+33240123456", f.now); !ok {
		t.Error("approved number not approved")
	}
	// --valid-until 2026-12-31 is inclusive, in Paris time.
	paris, _ := time.LoadLocation("Europe/Paris")
	if ok, _ := st.IsApproved(ctx, "+33240123456", time.Date(2026, 12, 31, 23, 59, 0, 0, paris)); !ok {
		t.Error("not valid on its last day")
	}
	if ok, _ := st.IsApproved(ctx, "+33240123456", time.Date(2027, 1, 1, 0, 0, 0, 0, paris)); ok {
		t.Error("valid after its last day")
	}

	out = f.ok("allowlist", "list")
	for _, want := range []string{"+33240123456", "Cabinet A", "approved", "rejected", "2027-01-01T00:00:00+01:00"} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}

	f.ok("allowlist", "revoke", "--by", "301", "02 40 12 34 56")
	f.fails(2, "no approved entry", "allowlist", "revoke", "--by", "301", "02 40 12 34 56")

	csvPath := filepath.Join(f.dir, "export.csv")
	f.ok("allowlist", "export", "-o", csvPath)
	b, err := os.ReadFile(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil || len(recs) != 4 {
		t.Fatalf("csv: %v\n%s", err, b)
	}
	if got := strings.Join(recs[0], ","); got != "number,label,campaign,status,proposed_by,proposed_at,approved_by,approved_at,valid_from,valid_until" {
		t.Errorf("header %s", got)
	}
	if r := recs[1]; r[0] != "+33240123456" || r[3] != "revoked" || r[4] != "301" || r[6] != "302" || r[5] != "2026-11-27T09:00:00+01:00" {
		t.Errorf("row 1: %v", r)
	}
	if r := recs[3]; r[3] != "rejected" || r[6] != "" {
		t.Errorf("rejected row: %v", r)
	}

	// Every change and the three refused approvals are in the chain:
	// 3 proposals, 3 refusals, 2 approvals, 1 rejection, 1 revocation.
	out = f.ok("audit", "verify")
	if !strings.HasPrefix(out, "audit chain ok: 10 entries\n") {
		t.Errorf("verify: %s", out)
	}
	out = f.ok("audit", "list", "--kind", "allowlist.approve")
	if strings.Count(out, "allowlist.approve") != 5 || !strings.Contains(out, "refused") {
		t.Errorf("audit list:\n%s", out)
	}
}

func TestCLIAllowlistBadInput(t *testing.T) {
	f := newCLI(t)
	f.fails(2, "not a valid number", "allowlist", "add", "--by", "101", "02 40 12 34 56", "12345")
	f.fails(2, "want --by", "allowlist", "add", "02 40 12 34 56")
	f.fails(2, "YYYY-MM-DD", "allowlist", "add", "--by", "101", "--valid-until", "31/12/2026", "02 40 12 34 56")
	f.fails(2, "unknown or suspended", "allowlist", "add", "--by", "999", "02 40 12 34 56")
	f.fails(2, "--status", "allowlist", "list", "--status", "pending")
	f.fails(2, "unknown subcommand", "allowlist", "frobnicate")
	f.fails(2, "not defined", "allowlist", "add", "--by", "101", "--colour", "red", "02 40 12 34 56")
	if out := f.ok("allowlist", "list"); strings.Count(out, "\n") != 1 {
		t.Errorf("bad input left entries:\n%s", out)
	}
	if out := f.ok("audit", "verify"); !strings.HasPrefix(out, "audit chain ok: 0 entries") {
		t.Errorf("bad input was audited: %s", out)
	}
}

func TestCLIExportDefusesFormulas(t *testing.T) {
	f := newCLI(t)
	f.ok("allowlist", "add", "--by", "101", "--label", "=HYPERLINK(\"http://x\")", "02 40 12 34 56")
	out := f.ok("allowlist", "export")
	if !strings.Contains(out, "\"'=HYPERLINK") || !strings.Contains(out, "\n+33240123456,") {
		t.Errorf("export:\n%s", out)
	}
}

func TestCLIAuditVerifyBroken(t *testing.T) {
	f := newCLI(t)
	f.ok("allowlist", "add", "--by", "101", "02 40 12 34 56", "02 40 12 34 57")
	st := f.store()
	ctx := context.Background()
	for _, q := range []string{`DROP TRIGGER audit_log_no_update`, `UPDATE audit_log SET actor = '301' WHERE seq = 2`} {
		if _, err := st.DB().ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	f.fails(1, "audit chain broken at entry 2:", "audit", "verify")
	if !strings.HasPrefix(f.last.stdout, "audit chain broken at entry 2:") {
		t.Errorf("stdout %q", f.last.stdout)
	}
	f.fails(2, "--limit", "audit", "list", "--limit", "0")
}

// The head that `audit verify` prints, passed back with --head, catches the
// newest entries deleted (which the chain alone cannot).
func TestCLIAuditVerifyNotedHead(t *testing.T) {
	f := newCLI(t)
	f.ok("allowlist", "add", "--by", "101", "02 40 12 34 56", "02 40 12 34 57")
	out := f.ok("audit", "verify")
	_, hint, ok := strings.Cut(out, "check later with --head ")
	if !ok {
		t.Fatalf("verify prints no head to note:\n%s", out)
	}
	head := strings.TrimSuffix(strings.TrimSpace(hint), ")")
	f.ok("allowlist", "add", "--by", "101", "02 40 12 34 58")
	if out := f.ok("audit", "verify", "--head", head); !strings.Contains(out, "noted head "+head+": still in the chain") {
		t.Errorf("verify --head on an intact chain:\n%s", out)
	}
	st := f.store()
	for _, q := range []string{`DROP TRIGGER audit_log_no_delete`, `DELETE FROM audit_log WHERE seq >= 2`} {
		if _, err := st.DB().ExecContext(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	if out := f.ok("audit", "verify"); !strings.HasPrefix(out, "audit chain ok: 1 entries") {
		t.Errorf("the truncated chain alone: %s", out)
	}
	f.fails(1, "entries were deleted", "audit", "verify", "--head", head)
	f.fails(2, "SEQ:SHA256", "audit", "verify", "--head", "2")
}
