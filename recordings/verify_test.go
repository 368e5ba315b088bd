package recordings

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestVerify: a flipped byte, a deleted file, an extra file, an edited
// sidecar and a file retention should have removed are each reported once,
// naming the file.
func TestVerify(t *testing.T) {
	f := newFixture(t)
	ids := []string{"ok", "flipped", "deleted", "sidecar", "retained"}
	for i, id := range ids {
		f.closedCall(id, t0.Add(time.Duration(i)*time.Minute), 3*time.Second)
	}
	ctx := context.Background()
	if rep, err := Verify(ctx, f.dir, f.idx, time.Time{}); err != nil || !rep.OK() || rep.Verified != len(ids) {
		t.Fatalf("clean Verify = %+v, %v", rep, err)
	}

	wav := f.abs("2026/03/02/flipped.wav")
	b, err := os.ReadFile(wav)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(wav, b, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(f.abs("2026/03/02/deleted.wav")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.abs("2026/03/02/intruder.wav"), b, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(f.abs("2025/12/31"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.abs("2025/12/31/old-intruder.wav"), b, 0o640); err != nil {
		t.Fatal(err)
	}
	sc, _ := ReadSidecar(f.abs("2026/03/02/sidecar.json"))
	sc.SHA256 = strings.Repeat("0", 64)
	if err := WriteSidecar(f.abs("2026/03/02/sidecar.json"), sc); err != nil {
		t.Fatal(err)
	}
	// A row marked deleted whose files are still there.
	if _, err := f.st.DB().Exec(`UPDATE recordings SET state = 'deleted', deleted_at = ?, deleted_by = 'retention' WHERE id = 'retained'`,
		"2026-03-03T00:00:00.000000000Z"); err != nil {
		t.Fatal(err)
	}
	// An open recording is counted, not judged.
	s, err := f.call(info("live", t0.Add(time.Hour)), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(t0.Add(time.Hour + time.Second))

	rep, err := Verify(ctx, f.dir, f.idx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range rep.Problems {
		got = append(got, p.Kind+" "+p.Path)
	}
	sort.Strings(got)
	want := []string{
		"missing 2026/03/02/deleted.wav",
		"modified 2026/03/02/flipped.wav",
		"sidecar 2026/03/02/sidecar.json",
		"undeleted 2026/03/02/retained.json",
		"undeleted 2026/03/02/retained.wav",
		"unindexed 2025/12/31/old-intruder.wav",
		"unindexed 2026/03/02/intruder.wav",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if rep.Verified != 4 || rep.Open != 1 {
		t.Errorf("verified %d, open %d; want 4 and 1", rep.Verified, rep.Open)
	}
	for _, p := range rep.Problems {
		if p.Kind == ProblemModified && !strings.Contains(p.String(), "flipped.wav") {
			t.Errorf("modified problem does not name the file: %s", p)
		}
	}

	// --since: rows before it and day directories well before it are skipped.
	rep, err = Verify(ctx, f.dir, f.idx, t0.Add(90*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Problems {
		if strings.Contains(p.Path, "flipped") || strings.Contains(p.Path, "old-intruder") {
			t.Errorf("--since reported %s", p)
		}
	}
	if rep.Verified != 2 {
		t.Errorf("--since verified %d, want 2 (deleted, sidecar)", rep.Verified)
	}
}

// TestVerifySidecarDisagreement covers each sidecar check apart.
func TestVerifySidecarDisagreement(t *testing.T) {
	cases := map[string]func(path string, sc *Sidecar) error{
		"missing":    func(p string, _ *Sidecar) error { return os.Remove(p) },
		"unreadable": func(p string, _ *Sidecar) error { return os.WriteFile(p, []byte("{"), 0o640) },
		"id":         func(p string, sc *Sidecar) error { sc.ID = "other"; return WriteSidecar(p, sc) },
		"duration":   func(p string, sc *Sidecar) error { sc.DurationMS++; return WriteSidecar(p, sc) },
		"unknown field": func(p string, sc *Sidecar) error {
			b, _ := json.Marshal(map[string]any{"id": sc.ID, "sha256": sc.SHA256, "extra": 1})
			return os.WriteFile(p, b, 0o640)
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			r := f.closedCall("c", t0, time.Second)
			p := filepath.Join(f.dir, filepath.FromSlash(r.SidecarRel()))
			sc, _ := ReadSidecar(p)
			if err := mutate(p, sc); err != nil {
				t.Fatal(err)
			}
			rep, err := Verify(context.Background(), f.dir, f.idx, time.Time{})
			if err != nil || len(rep.Problems) != 1 || rep.Problems[0].Kind != ProblemSidecar || rep.Problems[0].Path != r.SidecarRel() {
				t.Errorf("Verify = %+v, %v; want one sidecar problem", rep, err)
			}
		})
	}
}

func TestVerifyReportAuditEntry(t *testing.T) {
	many := make([]Problem, 250)
	for i := range many {
		many[i] = Problem{Kind: ProblemModified, Path: fmt.Sprintf("2026/11/27/r%03d.wav", i)}
	}
	tests := []struct {
		name    string
		rep     VerifyReport
		since   string
		outcome string
		found   int
	}{
		{"intact", VerifyReport{Verified: 3}, "", "ok", 0},
		{"one problem, since", VerifyReport{Verified: 3, Problems: many[:1]}, "2026-11-20", "problems", 1},
		{"a disaster names the first 100", VerifyReport{Verified: 250, Problems: many}, "", "problems", 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.rep.AuditEntry("302", "cli", tt.since)
			found, _ := e.Details["found"].([]string)
			if e.Kind != "recordings.verified" || e.Actor != "302" || e.Source != "cli" || e.Outcome != tt.outcome ||
				len(found) != tt.found || e.Details["problems"] != len(tt.rep.Problems) || e.Details["verified"] != tt.rep.Verified {
				t.Fatalf("entry %+v", e)
			}
			if _, has := e.Details["since"]; has != (tt.since != "") {
				t.Errorf("since in details: %v, want %v", has, tt.since != "")
			}
			if tt.found > 0 && found[0] != tt.rep.Problems[0].String() {
				t.Errorf("first found %q", found[0])
			}
		})
	}
}
