package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runCLI runs the command line in-process and returns its exit code and
// streams. Help must never reach a config, a database or the network: the
// working directory is empty, so anything that tried would fail.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	t.Chdir(t.TempDir())
	var out, errb bytes.Buffer
	e := &env{stdout: &out, stderr: &errb, stdin: strings.NewReader(""),
		now: func() time.Time { return time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC) }}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code = run(ctx, e, args)
	return code, out.String(), errb.String()
}

// Every command of the table, and every subcommand, answers --help, -h and
// (groups) help with exit 0, on stdout, without an error line; the
// top-level help lists every one of them with an example.
func TestHelpTable(t *testing.T) {
	for _, top := range [][]string{{"--help"}, {"-h"}, {"help"}, {"-help"}} {
		code, out, errs := runCLI(t, top...)
		if code != 0 || errs != "" {
			t.Errorf("plateau %v: exit %d, stderr %q", top, code, errs)
		}
		for _, c := range commands {
			if !strings.Contains(out, "  "+c.name+" ") {
				t.Errorf("plateau %v does not list %s", top, c.name)
			}
			for _, s := range c.subs {
				if !strings.Contains(out, "    "+s.name+" ") || !strings.Contains(out, s.example) {
					t.Errorf("plateau %v does not list %s %s with its example", top, c.name, s.name)
				}
			}
			if len(c.subs) == 0 && !strings.Contains(out, c.example) {
				t.Errorf("plateau %v has no example for %s", top, c.name)
			}
		}
	}
	for _, c := range commands {
		if c.name == "help" {
			continue
		}
		forms := [][]string{{c.name, "--help"}, {c.name, "-h"}, {"help", c.name}}
		if len(c.subs) > 0 {
			forms = append(forms, []string{c.name, "help"})
		}
		for _, args := range forms {
			code, out, errs := runCLI(t, args...)
			if code != 0 || errs != "" {
				t.Errorf("plateau %s: exit %d, stderr %q; want 0 and no error", strings.Join(args, " "), code, errs)
			}
			if !strings.Contains(out, c.example) && len(c.subs) == 0 {
				t.Errorf("plateau %s: no example in %q", strings.Join(args, " "), out)
			}
			for _, s := range c.subs {
				if !strings.Contains(out, "  "+s.name+" ") {
					t.Errorf("plateau %s does not list %s", strings.Join(args, " "), s.name)
				}
			}
		}
		// Each subcommand's own flags: proves the table and the
		// dispatchers name the same subcommands.
		for _, s := range c.subs {
			for _, args := range [][]string{{c.name, s.name, "--help"}, {c.name, s.name, "-h"}, {"help", c.name, s.name}} {
				code, out, errs := runCLI(t, args...)
				if code != 0 || errs != "" {
					t.Errorf("plateau %s: exit %d, stderr %q", strings.Join(args, " "), code, errs)
				}
				if !strings.Contains(out, "usage: plateau "+c.name+" "+s.name) || !strings.Contains(out, s.example) {
					t.Errorf("plateau %s: help %q lacks its usage line or example", strings.Join(args, " "), out)
				}
			}
		}
	}
}

func TestHelpMistakes(t *testing.T) {
	tests := []struct {
		args     []string
		code     int
		inStderr string
	}{
		{nil, exitUsage, "usage: plateau COMMAND"},
		{[]string{"serv"}, exitUsage, `unknown command "serv" (did you mean serve?)`},
		{[]string{"recording", "list"}, exitUsage, "did you mean recordings?"},
		{[]string{"frobnicate"}, exitUsage, "unknown command \"frobnicate\" (serve, check-config"},
		{[]string{"user", "ad", "103"}, exitUsage, `user: unknown subcommand "ad" (did you mean add?)`},
		{[]string{"recordings", "lsit"}, exitUsage, "did you mean list?"},
		{[]string{"audit", "verfy"}, exitUsage, "did you mean verify?"},
		{[]string{"allowlist", "aprove"}, exitUsage, "did you mean approve?"},
		{[]string{"campaign", "improt"}, exitUsage, "did you mean import?"},
		{[]string{"user", "sign-off"}, exitUsage, "did you mean signoff?"},
		{[]string{"user"}, exitUsage, "user: want add, list, suspend, activate, passwd, train or signoff"},
		{[]string{"dial", "--nope"}, exitUsage, "flag provided but not defined: -nope"},
		{[]string{"dial", "--sconds", "3", "--as", "101", "0240123456"}, exitUsage, "(did you mean --seconds?)"},
		{[]string{"recordings", "list", "--operater", "101"}, exitUsage, "(did you mean --operator?)"},
	}
	for _, tc := range tests {
		code, out, errs := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.inStderr) {
			t.Errorf("plateau %v: exit %d, stderr %q; want %d and %q", tc.args, code, errs, tc.code, tc.inStderr)
		}
		if out != "" {
			t.Errorf("plateau %v wrote %q to stdout on a usage error", tc.args, out)
		}
	}
	// dial --help: the flags, exit 0, no "flag: help requested".
	code, out, errs := runCLI(t, "dial", "--help")
	if code != 0 || strings.Contains(out+errs, "help requested") || !strings.Contains(out, "-seconds") {
		t.Errorf("dial --help: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	// --help after the number too.
	if code, _, errs := runCLI(t, "dial", "--as", "101", "0240123456", "--help"); code != 0 || errs != "" {
		t.Errorf("dial NUMBER --help: exit %d, stderr %q", code, errs)
	}
}

// SIGTERM stops a command that is not a server (pstn-sim here) instead of
// being swallowed by the drain meant for serve: make run's clean-up sends
// it to pstn-sim and waits.
func TestSIGTERMStopsPSTNSim(t *testing.T) {
	drain := make(chan struct{})
	var out, errb bytes.Buffer
	e := &env{stdout: &out, stderr: &errb, stdin: strings.NewReader(""), now: time.Now, drain: drain}
	cfg, err := filepath.Abs("../../configs/pstn-sim.yaml")
	if err != nil {
		t.Fatal(err)
	}
	port := freeUDPPort(t)
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), e, []string{"pstn-sim", "-c", cfg, "--listen", fmt.Sprintf("127.0.0.1:%d", port)})
	}()
	time.Sleep(100 * time.Millisecond) // it may or may not be listening yet: both must stop
	close(drain)
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("pstn-sim exit %d after SIGTERM: %s", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("pstn-sim still running 10 s after SIGTERM")
	}
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}
