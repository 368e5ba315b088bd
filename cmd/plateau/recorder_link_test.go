package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckConfigRecorder: check-config checks a recorder's file as
// plateau recorder starts it (its recorder section, or --recorder), and
// both refuse, exit 2 with one line naming the key, a recorder open
// beyond loopback without allowed sources or with certificate files that
// do not load.
func TestCheckConfigRecorder(t *testing.T) {
	for _, tt := range []struct {
		extra string
		args  []string
		key   string // "" means ok
	}{
		{"recorder: {listen: \"127.0.0.1:5070\"}\n", nil, ""},
		{"recorder: {listen: \"0.0.0.0:5070\"}\n", nil, "recorder.allowed_sources"},
		{"recorder: {listen: \"127.0.0.1:5070\", allowed_sources: [10.1.2.0/24]}\n", nil, ""},
		// Beyond loopback allowed_sources is not enough in clear: a UDP
		// source (and the RTP) is forged at will on the LAN.
		{"recorder: {listen: \"10.1.2.3:5070\", allowed_sources: [10.1.2.0/24]}\n", nil, "recorder.tls"},
		{"", []string{"--recorder"}, "recorder.allowed_sources"}, // the default listen is 0.0.0.0
		{"", nil, ""}, // plateau serve's file: the recorder section is not its concern
		{"recorder: {allowed_sources: [10.0.0.1/32], tls: {cert_file: missing.crt, key_file: missing.key, client_ca_file: ca.crt}}\n", nil, "recorder.tls.cert_file"},
	} {
		path := testConfig(t, tt.extra)
		args := append([]string{"check-config", "-c", path}, tt.args...)
		code, _, errText := plateau(t, "", args...)
		if tt.key == "" {
			if code != 0 {
				t.Errorf("%q %v: exit %d, %s", tt.extra, tt.args, code, errText)
			}
			continue
		}
		if code != 2 || !strings.Contains(errText, tt.key) || strings.Count(strings.TrimSpace(errText), "\n") != 0 {
			t.Errorf("%q %v: exit %d, stderr %q; want 2 and one line naming %s", tt.extra, tt.args, code, errText, tt.key)
		}
		if tt.args == nil {
			code, _, errText = plateau(t, "", "recorder", "-c", path)
			if code != 2 || !strings.Contains(errText, tt.key) {
				t.Errorf("plateau recorder %q: exit %d, stderr %q; want 2 naming %s", tt.extra, code, errText, tt.key)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(path), "data")); err == nil {
				t.Errorf("plateau recorder %q created its data directory before refusing", tt.extra)
			}
		}
	}
}
