package recordings

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestPath(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	// 23:30 UTC on 31 Dec is already 1 Jan in Paris: the caller's location
	// decides the day directory.
	utc := time.Date(2025, 12, 31, 23, 30, 0, 0, time.UTC)
	tests := []struct {
		start        time.Time
		wav, sidecar string
	}{
		{utc, "d/2025/12/31/abc.wav", "d/2025/12/31/abc.json"},
		{utc.In(paris), "d/2026/01/01/abc.wav", "d/2026/01/01/abc.json"},
		{time.Date(2026, 3, 2, 7, 30, 0, 0, time.UTC), "d/2026/03/02/abc.wav", "d/2026/03/02/abc.json"},
	}
	for _, tt := range tests {
		if got := Path("d", "abc", tt.start); got != filepath.FromSlash(tt.wav) {
			t.Errorf("Path(%v) = %s, want %s", tt.start, got, tt.wav)
		}
		if got := SidecarPath("d", "abc", tt.start); got != filepath.FromSlash(tt.sidecar) {
			t.Errorf("SidecarPath(%v) = %s, want %s", tt.start, got, tt.sidecar)
		}
	}
}

func TestValidateID(t *testing.T) {
	for _, id := range []string{"abc", "0195f3a2-7c1e-7000-8000-000000000001", "call_42.b"} {
		if err := ValidateID(id); err != nil {
			t.Errorf("ValidateID(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"", ".hidden", "..", "../x", "a/b", `a\b`, "a b", "é", strings.Repeat("x", 129)} {
		if err := ValidateID(id); !errors.Is(err, ErrInvalidID) {
			t.Errorf("ValidateID(%q) = %v, want ErrInvalidID", id, err)
		}
	}
}

func TestWriteSidecar(t *testing.T) {
	dir := t.TempDir()
	path := SidecarPath(dir, "call-1", t0)
	s := &Sidecar{
		ID: "call-1", CallIDs: []string{"a@op", "b@trunk"}, Operator: "101", Number: "+33123456789",
		Campaign: "archi", Start: t0, End: t0.Add(90 * time.Second), DurationMS: 90000,
		SHA256: strings.Repeat("ab", 32),
	}
	if err := WriteSidecar(path, s); err != nil {
		t.Fatal(err)
	}
	s.Repaired = true // overwrite: the rename replaces the old sidecar
	if err := WriteSidecar(path, s); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSidecar(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Errorf("read back %+v, want %+v", got, s)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the sidecar (no temp file left)", len(entries))
	}
	b, _ := os.ReadFile(path)
	for _, key := range []string{`"id"`, `"call_ids"`, `"operator"`, `"number"`, `"campaign"`, `"start"`, `"end"`, `"duration_ms"`, `"sha256"`, `"repaired"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("sidecar JSON lacks %s", key)
		}
	}
	if err := os.WriteFile(path, []byte(`{"id":"x","extra":1}`), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSidecar(path); err == nil {
		t.Error("ReadSidecar accepted an unknown field")
	}
}

func TestWriteSidecarFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	// The target is a directory: rename fails, the temp file must go.
	path := filepath.Join(dir, "x.json")
	if err := os.Mkdir(path, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path, "keep"), nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := WriteSidecar(path, &Sidecar{ID: "x"}); err == nil {
		t.Fatal("WriteSidecar over a non-empty directory succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("%d entries left, want 1 (temp file removed)", len(entries))
	}
}

func TestReady(t *testing.T) {
	dir := t.TempDir()
	if err := Ready(dir, 1); err != nil {
		t.Fatalf("Ready on a fresh temp dir: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("Ready left %d files behind", len(entries))
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, dir string
		minFree   int
		says      string
	}{
		{"missing", filepath.Join(dir, "nope"), 1, "recordings.dir"},
		{"not a directory", file, 1, "not a directory"},
		{"not enough space", dir, 1 << 40, "MiB minimum"},
	}
	if os.Geteuid() != 0 { // root writes through permission bits
		ro := filepath.Join(dir, "ro")
		if err := os.Mkdir(ro, 0o500); err != nil {
			t.Fatal(err)
		}
		tests = append(tests, struct {
			name, dir string
			minFree   int
			says      string
		}{"read-only", ro, 1, "not writable"})
	}
	for _, tt := range tests {
		err := Ready(tt.dir, tt.minFree)
		if !errors.Is(err, ErrRecorderUnavailable) || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%s: Ready = %v, want ErrRecorderUnavailable saying %q", tt.name, err, tt.says)
		}
	}
}
