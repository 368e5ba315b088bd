package config

import (
	"errors"
	"strings"
	"testing"
)

// TestRecorderLinkLockedDown: every way of opening the recorder link
// beyond loopback short of TLS with a short list of nodes is refused, by a
// FieldError naming the key to change; on loopback the plain link stays.
func TestRecorderLinkLockedDown(t *testing.T) {
	dir := testDir(t)
	recorderLinkFiles(t, dir)
	tlsRec := func(sources string) string {
		return "recorder: {allowed_sources: " + sources + ", tls: {cert_file: node.crt, key_file: node.key, client_ca_file: ca.crt}}\n"
	}
	remote := func(address, extra string) string {
		return strings.Replace(base, "recordings: {notice_prompt: notice.wav}",
			`recordings: {notice_prompt: notice.wav, remote: {address: "`+address+`"`+extra+`}}`, 1)
	}
	tlsRemote := ", transport: tls, ca_file: ca.crt, cert_file: node.crt, key_file: node.key"
	for _, tc := range []struct {
		name, doc string
		recorder  bool   // also run ValidateRecorder (plateau recorder)
		key       string // "" means accepted
	}{
		{"plain udp/tcp beyond loopback, sources listed", base + `recorder: {listen: "10.0.0.20:5070", allowed_sources: [10.0.0.10/32]}` + "\n", true, "recorder.tls"},
		{"plain tcp alone beyond loopback", base + `recorder: {listen: "0.0.0.0:5070", transports: [tcp], allowed_sources: [10.0.0.10/32]}` + "\n", true, "recorder.tls"},
		{"plain on IPv6 everywhere", base + `recorder: {listen: "[::]:5070", allowed_sources: ["fd00::10/128"]}` + "\n", true, "recorder.tls"},
		{"plain on loopback", base + `recorder: {listen: "127.0.0.1:5070"}` + "\n", true, ""},
		{"tls with a node", base + tlsRec("[10.0.0.10/32]"), true, ""},
		{"tls with a /8", base + tlsRec("[10.0.0.0/8]"), true, ""},
		{"every IPv4 address in two halves", base + tlsRec("[0.0.0.0/1, 128.0.0.0/1]"), false, "recorder.allowed_sources[0]"},
		{"a /7", base + tlsRec("[10.0.0.10/32, 10.0.0.0/7]"), false, "recorder.allowed_sources[1]"},
		{"every IPv6 address", base + tlsRec(`["::/0"]`), false, "recorder.allowed_sources[0]"},
		{"an IPv6 /16", base + tlsRec(`["2001::/16"]`), false, "recorder.allowed_sources[0]"},
		{"an IPv6 /64", base + tlsRec(`["2001:db8:0:1::/64"]`), true, ""},
		{"IPv4-mapped node (matches nothing)", base + tlsRec(`["::ffff:10.0.0.10/128"]`), false, "recorder.allowed_sources[0]"},
		{"IPv4-mapped everything", base + tlsRec(`["::ffff:0.0.0.0/96"]`), false, "recorder.allowed_sources[0]"},
		{"remote in clear beyond loopback", remote("10.0.0.20:5070", ""), false, "recordings.remote.transport"},
		{"remote over udp beyond loopback", remote("recorder.lan:5070", ", transport: udp"), false, "recordings.remote.transport"},
		{"remote in clear on loopback", remote("127.0.0.1:5070", ""), false, ""},
		{"remote over tls", remote("10.0.0.20:5071", tlsRemote), false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.doc), dir)
			if err == nil && tc.recorder {
				err = c.ValidateRecorder()
			}
			if tc.key == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Key != tc.key || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want a FieldError naming %s", err, tc.key)
			}
		})
	}
}
