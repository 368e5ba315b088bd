package sim

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"plateau/config"
)

func TestParseConfigErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, key string
	}{
		{"unknown top-level key", "listen: 127.0.0.1:5070\nring_tme: 1s\n", "ring_tme"},
		{"unknown nested key", "auth:\n  user: x\n", "auth.user"},
		{"unknown rule key", "rules:\n  - {suffix: \"1\", action: busy, colour: red}\n", "rules[0].colour"},
		{"bad duration", "ring_time: soon\n", "ring_time"},
		{"bad action", "rules:\n  - {suffix: \"1\", action: bsy}\n", "rules[0].action"},
		{"rule without match", "rules:\n  - {action: busy}\n", "rules[0]"},
		{"timeout on busy", "rules:\n  - {suffix: \"1\", action: busy, timeout: 3s}\n", "rules[0].timeout"},
		{"hangup_after on busy", "rules:\n  - {suffix: \"1\", action: busy, hangup_after: 3s}\n", "rules[0].hangup_after"},
		{"bad listen", "listen: nowhere\n", "listen"},
		{"bad media ip", "media: {ip: 0.0.0.0}\n", "media.ip"},
		{"bad port range", "media: {rtp_ports: \"30000\"}\n", "media.rtp_ports"},
		{"bad mode", "answer: {mode: sing}\n", "answer.mode"},
		{"play without wav", "answer: {mode: play}\n", "answer.wav"},
		{"missing wav", "answer: {mode: play, wav: nope.wav}\n", "answer.wav"},
		{"password without user", "auth: {password: x}\n", "auth.username"},
		{"user without password", "auth: {username: x}\n", "auth.password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.yaml), t.TempDir())
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, config.ErrInvalid) {
				t.Errorf("%v does not wrap config.ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.key+":") {
				t.Errorf("error %q does not name %q", err, tc.key)
			}
		})
	}
}

func TestDemoConfig(t *testing.T) {
	c, err := LoadConfig("../configs/pstn-sim.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.2:5070" || c.Auth.Username != "plateau" || c.Auth.Password != "demo-trunk-secret" || c.Answer.Mode != "echo" {
		t.Errorf("demo config %+v", c)
	}
	pc, err := config.Load("../configs/plateau.yaml")
	if err != nil {
		t.Skipf("plateau.yaml: %v", err)
	}
	for _, tr := range pc.Trunks {
		if tr.Address == c.Listen && (tr.Auth.Username != c.Auth.Username || tr.Auth.Password != c.Auth.Password) {
			t.Errorf("trunk %s credentials do not match pstn-sim.yaml", tr.Name)
		}
	}
}

func TestConfigDefaultsAndRules(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.wav"), []byte("x"), 0o644)
	c, err := ParseConfig([]byte("answer: {mode: play, wav: a.wav}\nrules:\n  - {suffix: \"0486\", action: ring}\n  - {prefix: \"+3399\", action: noanswer}\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:5070" || c.RingTime.D() != time.Second {
		t.Errorf("defaults %+v", c)
	}
	for number, want := range map[string]Action{
		"0240120486": ActionRing, // the configured rule wins over the default
		"0240120480": ActionNoAnswer,
		"0240120404": ActionNotFound,
		"0240120503": ActionUnavailable,
		"+33990001":  ActionNoAnswer,
		"0240123456": ActionRing,
	} {
		if got := c.Rule(number).Action; got != want {
			t.Errorf("%s: %s, want %s", number, got, want)
		}
	}
	if d := c.Rule("+33990001").Timeout.D(); d != 30*time.Second {
		t.Errorf("noanswer default timeout %v", d)
	}
}
