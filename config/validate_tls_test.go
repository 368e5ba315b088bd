package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"plateau/certs"
)

// writeTLSFiles writes two self-signed pairs (a, b) and a CA file (a's
// certificate) into dir.
func writeTLSFiles(t *testing.T, dir string) {
	t.Helper()
	for _, name := range []string{"a", "b"} {
		c, k, err := certs.SelfSigned([]string{"127.0.0.1"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, name+".crt"), c, 0o600)
		os.WriteFile(filepath.Join(dir, name+".key"), k, 0o600)
	}
	os.WriteFile(filepath.Join(dir, "junk.pem"), []byte("not a certificate"), 0o600)
}

func TestSIPTLSConfig(t *testing.T) {
	const tlsSIP = `sip: {listen: "127.0.0.1:5060", realm: plateau, transports: [udp, tcp, tls], tls: {cert_file: a.crt, key_file: a.key}}`
	const plainSIP = `sip: {listen: "127.0.0.1:5060", realm: plateau}`
	trunk := func(extra string) string {
		return "\ntrunks: [{name: carrier, address: \"127.0.0.1:5071\", transport: tls" + extra + "}]\n"
	}
	tests := []struct {
		name, sip, extra, key string
	}{
		{"valid", tlsSIP, "", ""},
		{"valid TLS trunk, system roots", tlsSIP, trunk(""), ""},
		{"valid TLS trunk, CA and client certificate", tlsSIP, trunk(", tls: {ca_file: a.crt, server_name: sbc.carrier.example, cert_file: b.crt, key_file: b.key}"), ""},
		{"no cert_file", `sip: {listen: "127.0.0.1:5060", realm: plateau, transports: [tls], tls: {key_file: a.key}}`, "", "sip.tls.cert_file"},
		{"no key_file", `sip: {listen: "127.0.0.1:5060", realm: plateau, transports: [tls], tls: {cert_file: a.crt}}`, "", "sip.tls.key_file"},
		{"unreadable cert_file", `sip: {listen: "127.0.0.1:5060", realm: plateau, transports: [tls], tls: {cert_file: nope.crt, key_file: a.key}}`, "", "sip.tls.cert_file"},
		{"unreadable key_file", `sip: {listen: "127.0.0.1:5060", realm: plateau, transports: [tls], tls: {cert_file: a.crt, key_file: nope.key}}`, "", "sip.tls.key_file"},
		{"cert_file not PEM", `sip: {listen: "127.0.0.1:5060", realm: plateau, transports: [tls], tls: {cert_file: junk.pem, key_file: a.key}}`, "", "sip.tls.cert_file"},
		{"key of another certificate", `sip: {listen: "127.0.0.1:5060", realm: plateau, transports: [tls], tls: {cert_file: a.crt, key_file: b.key}}`, "", "sip.tls.cert_file"},
		{"listen same as sip.listen", `sip: {listen: "127.0.0.1:5060", realm: plateau, transports: [tls], tls: {listen: "127.0.0.1:5060", cert_file: a.crt, key_file: a.key}}`, "", "sip.tls.listen"},
		{"listen not host:port", `sip: {listen: "127.0.0.1:5060", realm: plateau, transports: [tls], tls: {listen: "127.0.0.1", cert_file: a.crt, key_file: a.key}}`, "", "sip.tls.listen"},
		{"TLS trunk without sip tls", plainSIP, trunk(""), "trunks[0].transport"},
		{"trunk tls on a udp trunk", plainSIP, "\ntrunks: [{name: carrier, address: \"127.0.0.1:5071\", tls: {ca_file: a.crt}}]\n", "trunks[0].tls"},
		{"trunk ca_file missing", tlsSIP, trunk(", tls: {ca_file: nope.pem}"), "trunks[0].tls.ca_file"},
		{"trunk ca_file not PEM", tlsSIP, trunk(", tls: {ca_file: junk.pem}"), "trunks[0].tls.ca_file"},
		{"trunk client cert without key", tlsSIP, trunk(", tls: {cert_file: b.crt}"), "trunks[0].tls.key_file"},
		{"trunk client key without cert", tlsSIP, trunk(", tls: {key_file: b.key}"), "trunks[0].tls.cert_file"},
		{"trunk client key mismatched", tlsSIP, trunk(", tls: {cert_file: a.crt, key_file: b.key}"), "trunks[0].tls.cert_file"},
		{"trunk server_name with a space", tlsSIP, trunk(", tls: {server_name: \"a b\"}"), "trunks[0].tls.server_name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := testDir(t)
			writeTLSFiles(t, dir)
			yaml := strings.Replace(base, `sip: {listen: "127.0.0.1:5060", realm: plateau}`, tt.sip, 1) + tt.extra
			c, err := Parse([]byte(yaml), dir)
			if tt.key == "" {
				if err != nil {
					t.Fatalf("refused: %v\n%s", err, yaml)
				}
				if c.SIP.TLS.Listen != "127.0.0.1:5061" {
					t.Errorf("sip.tls.listen default = %q, want 127.0.0.1:5061", c.SIP.TLS.Listen)
				}
				for _, tr := range c.Trunks {
					if tr.TLS.ServerName == "" {
						t.Errorf("trunk %s: no server_name default", tr.Name)
					}
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Key != tt.key {
				t.Fatalf("error %v, want one naming %s", err, tt.key)
			}
		})
	}
}

// A TLS trunk's server_name defaults to its address's host.
func TestTrunkServerNameDefault(t *testing.T) {
	dir := testDir(t)
	writeTLSFiles(t, dir)
	yaml := strings.Replace(base, `sip: {listen: "127.0.0.1:5060", realm: plateau}`,
		`sip: {listen: "127.0.0.1:5060", realm: plateau, transports: [tls], tls: {cert_file: a.crt, key_file: a.key}}`, 1) +
		"\ntrunks: [{name: c, address: \"192.0.2.7:5061\", transport: tls}]\n"
	c, err := Parse([]byte(yaml), dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Trunks[0].TLS.ServerName; got != "192.0.2.7" {
		t.Errorf("server_name = %q, want 192.0.2.7", got)
	}
}
