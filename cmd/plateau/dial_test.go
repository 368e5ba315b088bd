package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dial finds its password in the config's users (configs/plateau.yaml by
// default) and, when it cannot, says which flag to pass before sending a
// single packet: a REGISTER with a wrong or empty password would count
// toward the source's ban.
func TestDialPasswordBeforeAnyPacket(t *testing.T) {
	cfg := testConfig(t, `users:
  - {extension: "101", role: operator, sip_password: demo101}
  - {extension: "301", role: security, web_password: long-enough-web}
`)
	// A SIP "server" that must hear nothing.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	srv := pc.LocalAddr().String()

	empty := t.TempDir() // no configs/plateau.yaml here
	tests := []struct {
		name    string
		dir     string // working directory; "" keeps the package's
		args    []string
		errText string
	}{
		{"unknown extension", "", []string{"dial", "-c", cfg, "--server", srv, "--as", "105", "0240123456"}, "has no users: entry for 105; pass --password"},
		{"user without a SIP password", "", []string{"dial", "-c", cfg, "--server", srv, "--as", "301", "0240123456"}, "has no sip_password; pass --password"},
		{"no config here, no --password", empty, []string{"dial", "--server", srv, "--as", "101", "0240123456"}, "no password: configs/plateau.yaml is not here; pass --password"},
		{"explicit config missing", "", []string{"dial", "-c", filepath.Join(empty, "nope.yaml"), "--server", srv, "--as", "101", "0240123456"}, "nope.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.dir != "" {
				t.Chdir(tt.dir)
			}
			code, _, errs := plateau(t, "", tt.args...)
			if code != exitUsage || !strings.Contains(errs, tt.errText) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errs, exitUsage, tt.errText)
			}
			if strings.Contains(errs, "sim:") {
				t.Errorf("stderr %q has the sim: prefix", errs)
			}
		})
	}
	pc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, from, err := pc.ReadFrom(make([]byte, 2048)); err == nil {
		t.Errorf("dial sent %d bytes from %v before knowing its password", n, from)
	}
}

// The default config is the repository's, as for every command: run from
// the module root, dial knows 101's password without -c.
func TestDialDefaultConfigHasTheDemoUsers(t *testing.T) {
	t.Chdir("../..")
	if _, err := os.Stat("configs/plateau.yaml"); err != nil {
		t.Fatal(err)
	}
	cfg, err := dialConfig("configs/plateau.yaml", false, true)
	if err != nil || cfg == nil {
		t.Fatalf("dialConfig: %v", err)
	}
	if pw, err := sipPasswordOf(cfg, "configs/plateau.yaml", "101"); err != nil || pw != "demo101" {
		t.Errorf("101's password = %q, %v", pw, err)
	}
}
