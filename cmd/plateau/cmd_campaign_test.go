package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCampaignCLI(t *testing.T) {
	f := newCLI(t)
	script := filepath.Join(f.dir, "script.md")
	os.WriteFile(script, []byte("# Bonjour\n"), 0o600)
	out := f.ok("campaign", "create", "--by", "201", "--client", "ACME", "--script", script, "--operators", "101",
		"--window", "mon-fri 09:00-12:00", "Archi Ouest")
	if !strings.Contains(out, `created campaign #1 "Archi Ouest" (draft)`) {
		t.Fatalf("create: %q", out)
	}
	f.fails(2, "already exists", "campaign", "create", "--by", "201", "Archi Ouest")
	f.fails(2, "role operator", "campaign", "create", "--by", "101", "Other")
	f.fails(2, "window", "campaign", "create", "--by", "201", "--window", "mon-fri 9h-12h", "Other")
	f.ok("campaign", "activate", "--by", "201", "Archi Ouest")

	list := filepath.Join(f.dir, "list.csv")
	data, err := os.ReadFile("../../dialer/testdata/cp1252_semicolon.csv")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(list, data, 0o600)
	out = f.ok("campaign", "import", "--campaign", "Archi Ouest", "--by", "201", list)
	for _, want := range []string{"line 4: duplicate in the file", "line 5: invalid number",
		"windows-1252, semicolon-separated, 4 rows: 2 added, 2 rejected, 2 numbers proposed",
		`plateau allowlist approve --by EXT --campaign "Archi Ouest"`} {
		if !strings.Contains(out, want) {
			t.Errorf("import output lacks %q:\n%s", want, out)
		}
	}
	out = f.ok("campaign", "import", "--campaign", "Archi Ouest", "--by", "201", list)
	if !strings.Contains(out, "0 added") || !strings.Contains(out, "already in the campaign") {
		t.Errorf("re-import: %s", out)
	}
	f.fails(2, "does not exist", "campaign", "import", "--campaign", "Nope", "--by", "201", list)
	os.WriteFile(list, []byte("name,city\nA,B\n"), 0o600)
	f.fails(2, "no phone column", "campaign", "import", "--campaign", "Archi Ouest", "--by", "201", list)

	f.ok("allowlist", "approve", "--by", "301", "--campaign", "Archi Ouest")
	out = f.ok("campaign", "list")
	if !strings.Contains(out, "Archi Ouest") || !strings.Contains(out, "active") {
		t.Errorf("list: %s", out)
	}
	out = f.ok("campaign", "export", "--campaign", "Archi Ouest")
	if !strings.HasPrefix(out, "company,contact,phone,email,city,attempts,last_disposition,notes,callback_at\n") ||
		!strings.Contains(out, "Société Générale,Élodie Lefèvre,+33142142000,") {
		t.Errorf("export: %s", out)
	}
	f.ok("campaign", "pause", "--by", "201", "--campaign", "Archi Ouest")
	out = f.ok("campaign", "results", "--campaign", "Archi Ouest")
	if !strings.Contains(out, `campaign "Archi Ouest" (paused): 2 contacts`) {
		t.Errorf("results: %s", out)
	}
	f.fails(2, "want --campaign", "campaign", "export")
}
