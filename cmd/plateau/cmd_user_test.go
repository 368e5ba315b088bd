package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testConfig writes a minimal valid config with its own data directory.
func testConfig(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	prompt, err := filepath.Abs("../../configs/prompts/notice-fr.wav")
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("data_dir: %q\nrecordings: {notice_prompt: %q}\n%s", filepath.Join(dir, "data"), prompt, extra)
	path := filepath.Join(dir, "plateau.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// plateau runs the CLI in-process and returns exit status, stdout, stderr.
func plateau(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdout: &out, stderr: &errb, stdin: strings.NewReader(stdin),
		now: func() time.Time { return time.Date(2026, 3, 2, 7, 30, 0, 0, time.UTC) }}
	code := run(context.Background(), e, args)
	return code, out.String(), errb.String()
}

func TestUserCommands(t *testing.T) {
	cfg := testConfig(t, "")
	steps := []struct {
		args    []string
		stdin   string
		code    int
		out     string // substring of stdout
		errText string // substring of stderr
	}{
		{[]string{"user", "add", "-c", cfg, "--name", "Jean", "--sip-password", "s1", "101"}, "", 0, "user 101 added (operator)", ""},
		{[]string{"user", "add", "-c", cfg, "--role", "supervisor", "--sip-password", "-", "--web-password", "-", "201"}, "sip-secret\nweb-secret-long\n", 0, "user 201 added (supervisor)", ""},
		{[]string{"user", "add", "-c", cfg, "--sip-password", "s1", "101"}, "", 1, "", "exists"},
		{[]string{"user", "add", "-c", cfg, "--role", "warden", "102"}, "", 2, "", "--role"},
		{[]string{"user", "add", "-c", cfg, "1a"}, "", 2, "", "2 to 8 digits"},
		{[]string{"user", "add", "-c", cfg, "--sip-password", "-", "103"}, "", 2, "", "standard input"},
		{[]string{"user", "list", "-c", cfg}, "", 0, "101        Jean", ""},
		{[]string{"user", "suspend", "-c", cfg, "101"}, "", 0, "user 101 suspended", ""},
		{[]string{"user", "suspend", "-c", cfg, "999"}, "", 1, "", "not found"},
		{[]string{"user", "suspend", "-c", cfg}, "", 2, "", "one extension"},
		{[]string{"user", "list", "-c", cfg}, "", 0, "suspended", ""},
		{[]string{"user", "activate", "-c", cfg, "101"}, "", 0, "user 101 active", ""},
		{[]string{"user", "passwd", "-c", cfg, "--sip-password", "s2", "101"}, "", 0, "password changed", ""},
		{[]string{"user", "passwd", "-c", cfg, "101"}, "", 2, "", "--sip-password"},
		{[]string{"user", "passwd", "-c", cfg, "--sip-password", "x", "999"}, "", 1, "", "not found"},
		{[]string{"user", "frobnicate", "-c", cfg}, "", 2, "", "unknown subcommand"},
		{[]string{"user"}, "", 2, "", "want add"},
		{[]string{"user", "list", "-c", filepath.Join(t.TempDir(), "absent.yaml")}, "", 2, "", "absent.yaml"},
	}
	for _, s := range steps {
		code, out, errText := plateau(t, s.stdin, s.args...)
		if code != s.code || !strings.Contains(out, s.out) || !strings.Contains(errText, s.errText) {
			t.Fatalf("plateau %s\n= %d, stdout %q, stderr %q\nwant %d, stdout ~%q, stderr ~%q",
				strings.Join(s.args, " "), code, out, errText, s.code, s.out, s.errText)
		}
	}
	// The list shows the state of every user, one line each.
	_, out, _ := plateau(t, "", "user", "list", "-c", cfg)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "EXTENSION") {
		t.Fatalf("user list:\n%s", out)
	}
	for _, want := range []string{"101  Jean  operator  active  yes  no  -", "201  201  supervisor  active  yes  yes  -"} {
		found := false
		for _, l := range lines {
			if strings.Join(strings.Fields(l), "  ") == want {
				found = true
			}
		}
		if !found {
			t.Errorf("user list has no line %q:\n%s", want, out)
		}
	}
}

func TestCheckConfig(t *testing.T) {
	good := testConfig(t, "")
	if code, out, errText := plateau(t, "", "check-config", "-c", good); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("good config: %d %q %q", code, out, errText)
	}
	for _, tt := range []struct{ extra, key string }{
		{"sip: {nonce_ttl: soon}\n", "sip.nonce_ttl"},
		{"media: {rtp_ports: \"5-4\"}\n", "media.rtp_ports"},
		{"colour: blue\n", "colour"},
		{"users: [{extension: \"101\", role: warden}]\n", "users[0].role"},
	} {
		code, _, errText := plateau(t, "", "check-config", "-c", testConfig(t, tt.extra))
		if code != 2 || !strings.Contains(errText, tt.key) || strings.Count(strings.TrimSpace(errText), "\n") != 0 {
			t.Errorf("%q: exit %d, stderr %q; want 2 and one line naming %s", tt.extra, code, errText, tt.key)
		}
	}
	if code, _, _ := plateau(t, "", "nonsense"); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
}
