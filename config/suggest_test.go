package config

import (
	"errors"
	"strings"
	"testing"
)

// A mistyped key names itself and the nearest real key, never a Go type.
func TestUnknownKeySuggestsTheClosest(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"swapped letters", "recorder: {rtp_timout: 5m}\n", "recorder.rtp_timout: unknown key (did you mean rtp_timeout?)"},
		{"top level", "polcy: {}\n", "polcy: unknown key (did you mean policy?)"},
		{"nested", "policy: {ban: {max_failure: 3}}\n", "policy.ban.max_failure: unknown key (did you mean max_failures?)"},
		{"in a list item", "users:\n  - {extension: \"101\", role: operator, pasword: x}\n", "users[0].pasword: unknown key (keys of users[0]: extension, name, role, sip_password, sip_password_file, web_password, web_password_file)"},
		{"under a pointer-free struct in a list", "trunks: [{name: t, address: \"127.0.0.1:5070\", auth: {usernme: u}}]\n", "trunks[0].auth.usernme: unknown key (did you mean username?)"},
		{"nothing close: list the keys", "monitoring: {colour: blue}\n", "monitoring.colour: unknown key (keys of monitoring: follow_next_call, training_calls)"},
	}
	// The issue's own example, in a section base already has.
	tests = append(tests, struct{ name, yaml, want string }{"issue example", "", "sip.nonce_tll: unknown key (did you mean nonce_ttl?) on line 3"})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := base + tc.yaml
			if tc.yaml == "" {
				doc = strings.Replace(base, "realm: plateau}", "realm: plateau, nonce_tll: 5m}", 1)
			}
			_, err := Parse([]byte(doc), testDir(t))
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v is not ErrInvalid", err)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error = %q\nwant prefix %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "config.") || strings.Contains(err.Error(), "not found in type") {
				t.Errorf("error %q names a Go type", err)
			}
		})
	}
}

func TestClosest(t *testing.T) {
	cands := []string{"serve", "check-config", "user", "allowlist", "campaign", "recordings", "recorder", "audit", "dial"}
	tests := []struct {
		word, want string
		ok         bool
	}{
		{"serv", "serve", true},
		{"allowlsit", "allowlist", true},
		{"recording", "recordings", true},
		{"udit", "audit", true},
		{"xyz", "", false},
		{"", "", false},
		{"campain", "campaign", true},
		{"dail", "dial", true},
		{"completely-else", "", false},
	}
	for _, tc := range tests {
		got, ok := Closest(tc.word, cands)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Closest(%q) = %q, %v; want %q, %v", tc.word, got, ok, tc.want, tc.ok)
		}
	}
	if d := editDistance("nonce_tll", "nonce_ttl"); d != 1 {
		t.Errorf("a swap costs %d, want 1", d)
	}
}
