package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"plateau/certs"
)

// base is a valid configuration; cases append or replace sections.
const base = `
site: {name: Test, timezone: Europe/Paris, default_region: FR}
sip: {listen: "127.0.0.1:5060", realm: plateau}
media: {ip: 127.0.0.1, rtp_ports: "20000-20100"}
http: {listen: "127.0.0.1:8080"}
data_dir: ./data
recordings: {notice_prompt: notice.wav}
`

// testDir holds notice.wav so the base config validates.
func testDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notice.wav"), []byte("RIFF"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestParseValid(t *testing.T) {
	dir := testDir(t)
	c, err := Parse([]byte(base), dir)
	if err != nil {
		t.Fatalf("base config: %v", err)
	}
	if min, max := c.Media.PortRange(); min != 20000 || max != 20100 {
		t.Errorf("PortRange = %d-%d", min, max)
	}
	if c.SIP.NonceTTL.D() != 5*time.Minute || c.Policy.Ban.MaxFailures != 10 {
		t.Errorf("defaults not applied: nonce_ttl %v, ban.max_failures %d", c.SIP.NonceTTL.D(), c.Policy.Ban.MaxFailures)
	}
	// MD5 alone by default: baresip 1.0 refuses a 401 that also offers SHA-256.
	if got := c.SIP.DigestAlgorithms; len(got) != 1 || got[0] != "MD5" {
		t.Errorf("default digest_algorithms = %v, want [MD5]", got)
	}
	if c.SIP.DigestURICheck != "request_uri" {
		t.Errorf("default digest_uri_check = %q, want request_uri", c.SIP.DigestURICheck)
	}
	if got := c.SIP.TrustedProxyPrefixes(); len(got) != 0 {
		t.Errorf("default trusted_proxies = %v, want none", got)
	}
	if l := c.SIP.Limits; l.TCPConnections != 2048 || l.TCPConnectionsPerSource != 32 || l.TCPIdleTimeout.D() != 2*time.Minute || l.RequestsPerSource != 200 {
		t.Errorf("default sip.limits = %+v", l)
	}
	if got := c.Resolve("notice.wav"); got != filepath.Join(dir, "notice.wav") {
		t.Errorf("Resolve = %q, want it relative to the config file", got)
	}
	if !c.DetentionMode() {
		t.Error("detention mode must default to true")
	}
}

func TestTrustedProxies(t *testing.T) {
	c, err := Parse([]byte(strings.Replace(base, "realm: plateau}", "realm: plateau, trusted_proxies: [10.0.0.5, 10.0.1.9/29, \"2001:db8::5\"]}", 1)), testDir(t))
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(c.SIP.TrustedProxyPrefixes())
	if want := "[10.0.0.5/32 10.0.1.8/29 2001:db8::5/128]"; got != want {
		t.Fatalf("trusted proxies = %s, want %s", got, want)
	}
}

func TestExampleConfig(t *testing.T) {
	if _, err := Load("../configs/plateau.yaml"); err != nil {
		t.Fatalf("configs/plateau.yaml: %v", err)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name string
		yaml string // a section appended to base
		key  string
	}{
		{"unknown top-level key", "colour: blue\n", "colour"},
		{"unknown nested key", "policy: {ban: {max_failure: 3}}\n", "policy.ban.max_failure"},
		{"unknown key in a list item", "users:\n  - {extension: \"101\", role: operator, pasword: x}\n", "users[0].pasword"},
		{"bad duration", "policy: {max_call_duration: 5 minutes}\n", "policy.max_call_duration"},
		{"duration not a scalar", "policy: {ban: {window: [1]}}\n", "policy.ban.window"},
		{"bad window day", "policy: {windows: [{days: mon-fry, from: \"07:30\", to: \"12:00\"}]}\n", "policy.windows[0]"},
		{"bad window time", "policy: {windows: [{days: mon-fri, from: \"7h30\", to: \"12:00\"}]}\n", "policy.windows[0]"},
		{"window ends before it starts", "policy: {windows: [{days: mon-fri, from: \"12:00\", to: \"07:30\"}]}\n", "policy.windows[0]"},
		{"window without days", "policy: {windows: [{from: \"07:30\", to: \"12:00\"}]}\n", "policy.windows[0]"},
		{"bad holiday", "policy: {holidays: [\"25/12/2026\"]}\n", "policy.holidays[0]"},
		{"number hours without numbers", "policy: {number_windows: [{windows: [{days: mon, from: \"07:30\", to: \"12:00\"}]}]}\n", "policy.number_windows[0].numbers"},
		{"number hours national number", "policy: {number_windows: [{numbers: [\"0240123456\"], windows: [{days: mon, from: \"07:30\", to: \"12:00\"}]}]}\n", "policy.number_windows[0].numbers[0]"},
		{"number hours twice", "policy: {number_windows: [{numbers: [\"+33240123456\", \"+33240123456\"], windows: [{days: mon, from: \"07:30\", to: \"12:00\"}]}]}\n", "policy.number_windows[0].numbers[1]"},
		{"number hours without windows", "policy: {number_windows: [{numbers: [\"+33240123456\"]}]}\n", "policy.number_windows[0].windows"},
		{"number hours bad window", "policy: {number_windows: [{numbers: [\"+33240123456\"], windows: [{days: mon, from: \"7h\", to: \"12:00\"}]}]}\n", "policy.number_windows[0].windows[0]"},
		{"number hours bad holiday", "policy: {number_windows: [{numbers: [\"+33240123456\"], windows: [{days: mon, from: \"07:30\", to: \"12:00\"}], holidays: [x]}]}\n", "policy.number_windows[0].holidays[0]"},
		{"ban max_failures zero", "policy: {ban: {max_failures: -1}}\n", "policy.ban.max_failures"},
		{"bad CIDR", "trunks: [{name: t, address: \"127.0.0.1:5070\", allowed_sources: [\"10.0.0.0/33\"]}]\n", "trunks[0].allowed_sources[0]"},
		{"trunk without name", "trunks: [{address: \"127.0.0.1:5070\"}]\n", "trunks[0].name"},
		{"trunk name twice", "trunks: [{name: t, address: \"127.0.0.1:5070\"}, {name: t, address: \"127.0.0.1:5071\"}]\n", "trunks[1].name"},
		{"trunk bad address", "trunks: [{name: t, address: carrier.example}]\n", "trunks[0].address"},
		{"trunk bad transport", "trunks: [{name: t, address: \"127.0.0.1:5070\", transport: sctp}]\n", "trunks[0].transport"},
		{"trunk missing password file", "trunks: [{name: t, address: \"127.0.0.1:5070\", auth: {password_file: nope.secret}}]\n", "trunks[0].auth.password_file"},
		{"trunk bad media latch", "trunks: [{name: t, address: \"127.0.0.1:5070\", media_latch: anywhere}]\n", "trunks[0].media_latch"},
		{"trunk bad srtp", "trunks: [{name: t, address: \"127.0.0.1:5070\", srtp: mandatory}]\n", "trunks[0].srtp"},
		{"trunk srtp over udp", "trunks: [{name: t, address: \"127.0.0.1:5070\", srtp: required}]\n", "trunks[0].srtp"},
		{"trunk optional srtp over tcp", "trunks: [{name: t, address: \"127.0.0.1:5070\", transport: tcp, srtp: optional}]\n", "trunks[0].srtp"},
		{"trunk bad number format", "trunks: [{name: t, address: \"127.0.0.1:5070\", number_format: local}]\n", "trunks[0].number_format"},
		{"trunk ring timeout too short", "trunks: [{name: t, address: \"127.0.0.1:5070\", ring_timeout: 100ms}]\n", "trunks[0].ring_timeout"},
		{"register without credentials", "trunks: [{name: t, address: \"127.0.0.1:5070\", register: {expires: 600s}}]\n", "trunks[0].register.username"},
		{"register without password", "trunks: [{name: t, address: \"127.0.0.1:5070\", register: {username: u}}]\n", "trunks[0].register.password"},
		{"register expiry too short", "trunks: [{name: t, address: \"127.0.0.1:5070\", auth: {username: u, password: p}, register: {expires: 10s}}]\n", "trunks[0].register.expires"},
		{"register bad contact user", "trunks: [{name: t, address: \"127.0.0.1:5070\", auth: {username: u, password: p}, register: {contact_user: \"a b\"}}]\n", "trunks[0].register.contact_user"},
		{"register unknown key", "trunks: [{name: t, address: \"127.0.0.1:5070\", register: {expiry: 600s}}]\n", "trunks[0].register.expiry"},
		{"bad role", "users: [{extension: \"101\", role: warden}]\n", "users[0].role"},
		{"duplicate extension", "users: [{extension: \"101\", role: operator}, {extension: \"101\", role: supervisor}]\n", "users[1].extension"},
		{"bad extension", "users: [{extension: \"1a\", role: operator}]\n", "users[0].extension"},
		{"missing sip password file", "users: [{extension: \"101\", role: operator, sip_password_file: nope}]\n", "users[0].sip_password_file"},
		{"missing web password file", "users: [{extension: \"101\", role: operator, web_password_file: nope}]\n", "users[0].web_password_file"},
	}
	// Cases that replace a base section rather than add one.
	replace := []struct {
		name, old, new, key string
	}{
		{"bad timezone", "timezone: Europe/Paris", "timezone: Europe/Lutece", "site.timezone"},
		{"bad region", "default_region: FR", "default_region: France", "site.default_region"},
		{"bad sip listen", `listen: "127.0.0.1:5060"`, `listen: "127.0.0.1"`, "sip.listen"},
		{"bad sip listen port", `listen: "127.0.0.1:5060"`, `listen: "127.0.0.1:70000"`, "sip.listen"},
		{"bad transport", "realm: plateau}", "realm: plateau, transports: [udp, ws]}", "sip.transports[1]"},
		{"bad external address", "realm: plateau}", "realm: plateau, external_address: pbx.example}", "sip.external_address"},
		{"bad digest algorithm", "realm: plateau}", "realm: plateau, digest_algorithms: [SHA-512]}", "sip.digest_algorithms[0]"},
		{"bad digest uri check", "realm: plateau}", "realm: plateau, digest_uri_check: loose}", "sip.digest_uri_check"},
		{"trusted proxy not a CIDR", "realm: plateau}", "realm: plateau, trusted_proxies: [10.0.0.5/32, 10.0.0.300/32]}", "sip.trusted_proxies[1]"},
		{"trusted proxy not an address", "realm: plateau}", "realm: plateau, trusted_proxies: [proxy.example]}", "sip.trusted_proxies[0]"},
		{"trusted proxies trusting every IPv4 address", "realm: plateau}", "realm: plateau, trusted_proxies: [\"::ffff:0.0.0.0/96\"]}", "sip.trusted_proxies[0]"},
		{"trusted proxies trusting everyone", "realm: plateau}", "realm: plateau, trusted_proxies: [\"::/0\"]}", "sip.trusted_proxies[0]"},
		{"min above max expires", "realm: plateau}", "realm: plateau, min_expires: 2h, max_expires: 1h}", "sip.min_expires"},
		{"nonce ttl too short", "realm: plateau}", "realm: plateau, nonce_ttl: 1s}", "sip.nonce_ttl"},
		{"session interval floor zero", "realm: plateau}", "realm: plateau, min_session_expires: 500ms}", "sip.min_session_expires"},
		{"session interval floor not whole seconds", "realm: plateau}", "realm: plateau, min_session_expires: 1500ms}", "sip.min_session_expires"},
		{"session interval floor too long", "realm: plateau}", "realm: plateau, min_session_expires: 2h}", "sip.min_session_expires"},
		{"tcp connections negative", "realm: plateau}", "realm: plateau, limits: {tcp_connections: -1}}", "sip.limits.tcp_connections"},
		{"per source above total", "realm: plateau}", "realm: plateau, limits: {tcp_connections: 10, tcp_connections_per_source: 11}}", "sip.limits.tcp_connections_per_source"},
		{"per source negative", "realm: plateau}", "realm: plateau, limits: {tcp_connections_per_source: -2}}", "sip.limits.tcp_connections_per_source"},
		{"tcp idle too short", "realm: plateau}", "realm: plateau, limits: {tcp_idle_timeout: 10ms}}", "sip.limits.tcp_idle_timeout"},
		{"requests per source negative", "realm: plateau}", "realm: plateau, limits: {requests_per_source: -5}}", "sip.limits.requests_per_source"},
		{"unknown limit", "realm: plateau}", "realm: plateau, limits: {udp_connections: 5}}", "sip.limits.udp_connections"},
		{"bad nonce ttl", "realm: plateau}", "realm: plateau, nonce_ttl: soon}", "sip.nonce_ttl"},
		{"bad media ip", "ip: 127.0.0.1,", "ip: localhost,", "media.ip"},
		{"port range not a range", `rtp_ports: "20000-20100"`, `rtp_ports: "20000"`, "media.rtp_ports"},
		{"port range reversed", `rtp_ports: "20000-20100"`, `rtp_ports: "20100-20000"`, "media.rtp_ports"},
		{"port range privileged", `rtp_ports: "20000-20100"`, `rtp_ports: "80-200"`, "media.rtp_ports"},
		{"port range too small", `rtp_ports: "20000-20100"`, `rtp_ports: "20000-20002"`, "media.rtp_ports"},
		{"port range beyond 65534", `rtp_ports: "20000-20100"`, `rtp_ports: "65000-65535"`, "media.rtp_ports"},
		{"bad http listen", `listen: "127.0.0.1:8080"`, `listen: "web.example:8080"`, "http.listen"},
		{"bad log format", "data_dir: ./data", "data_dir: ./data\nlog: {format: xml}", "log.format"},
		{"bad log level", "data_dir: ./data", "data_dir: ./data\nlog: {level: loud}", "log.level"},
		{"missing notice prompt", "notice_prompt: notice.wav", "notice_prompt: nope.wav", "recordings.notice_prompt"},
		{"notice prompt required in detention mode", "recordings: {notice_prompt: notice.wav}", "recordings: {}", "recordings.notice_prompt"},
		{"retention", "notice_prompt: notice.wav", "notice_prompt: notice.wav, retention_days: -3", "recordings.retention_days"},
		{"campaign prompt missing", "notice_prompt: notice.wav", "notice_prompt: notice.wav, campaign_prompts: {bati: nope.wav}", "recordings.campaign_prompts.bati"},
		{"campaign prompt cannot remove the notice", "notice_prompt: notice.wav", "notice_prompt: notice.wav, campaign_prompts: {bati: \"\"}", "recordings.campaign_prompts.bati"},
		{"min free", "notice_prompt: notice.wav", "notice_prompt: notice.wav, min_free_mb: -1", "recordings.min_free_mb"},
	}
	type tc struct{ name, yaml, key string }
	var all []tc
	for _, tt := range tests {
		all = append(all, tc{tt.name, base + tt.yaml, tt.key})
	}
	for _, r := range replace {
		if !strings.Contains(base, r.old) {
			t.Fatalf("%s: base has no %q", r.name, r.old)
		}
		all = append(all, tc{r.name, strings.Replace(base, r.old, r.new, 1), r.key})
	}
	for _, tt := range all {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), testDir(t))
			if err == nil {
				t.Fatalf("no error for:\n%s", tt.yaml)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v is not ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.key) {
				t.Errorf("error %q does not name %q", err, tt.key)
			}
			var fe *FieldError
			if errors.As(err, &fe) && fe.Key != tt.key {
				t.Errorf("FieldError.Key = %q, want %q", fe.Key, tt.key)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.yaml")
	_, err := Load(path)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Load(missing) = %v, want ErrInvalid naming the file", err)
	}
}

func TestSecretFromFile(t *testing.T) {
	dir := testDir(t)
	if err := os.WriteFile(filepath.Join(dir, "trunk.secret"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Parse([]byte(base+"trunks: [{name: t, address: \"127.0.0.1:5070\", auth: {password_file: trunk.secret}}]\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Secret("", c.Trunks[0].Auth.PasswordFile)
	if err != nil || got != "s3cret" {
		t.Fatalf("Secret = %q, %v; want s3cret (trimmed)", got, err)
	}
}

func TestWindowParse(t *testing.T) {
	tests := []struct {
		w        Window
		days     []time.Weekday
		from, to int
	}{
		{Window{"mon-fri", "07:30", "12:00"}, []time.Weekday{1, 2, 3, 4, 5}, 450, 720},
		{Window{"sat,sun", "00:00", "24:00"}, []time.Weekday{0, 6}, 0, 1440},
		{Window{"fri-mon", "13:30", "18:00"}, []time.Weekday{5, 6, 0, 1}, 810, 1080},
	}
	for _, tt := range tests {
		ww, err := tt.w.Parse()
		if err != nil {
			t.Errorf("%+v: %v", tt.w, err)
			continue
		}
		n := 0
		for _, d := range tt.days {
			if !ww.Days[d] {
				t.Errorf("%+v: %v not set", tt.w, d)
			}
		}
		for _, on := range ww.Days {
			if on {
				n++
			}
		}
		if n != len(tt.days) || ww.From != tt.from || ww.To != tt.to {
			t.Errorf("%+v = %+v", tt.w, ww)
		}
	}
}

func TestRemoteRecorderAndRecorder(t *testing.T) {
	dir := testDir(t)
	c, err := Parse([]byte(base+"recorder: {listen: \"127.0.0.1:5070\", allowed_sources: [10.0.0.0/24]}\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Recordings.Remote.Address != "" || c.Recorder.RTPTimeout.D() != 5*time.Minute || len(c.Recorder.Transports) != 2 {
		t.Errorf("defaults: remote %+v, recorder %+v", c.Recordings.Remote, c.Recorder)
	}
	remote := strings.Replace(base, "recordings: {notice_prompt: notice.wav}",
		`recordings: {notice_prompt: notice.wav, remote: {address: "127.0.0.9:5070"}}`, 1)
	c, err = Parse([]byte(remote), dir)
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Recordings.Remote; r.Transport != "tcp" || r.Timeout.D() != 2*time.Second {
		t.Errorf("remote defaults = %+v", r)
	}
	for key, doc := range map[string]string{
		"recordings.remote.address":   strings.Replace(remote, `"127.0.0.9:5070"`, `"127.0.0.9"`, 1),
		"recordings.remote.transport": strings.Replace(remote, `address: "127.0.0.9:5070"`, `address: "127.0.0.9:5070", transport: sctp`, 1),
		"recordings.remote.timeout":   strings.Replace(remote, `address: "127.0.0.9:5070"`, `address: "127.0.0.9:5070", timeout: 5m`, 1),
		"recordings.remote":           strings.Replace(remote, `address: "127.0.0.9:5070"`, `adress: "127.0.0.9:5070"`, 1),
		"recorder.listen":             base + "recorder: {listen: nowhere}\n",
		"recorder.transports[0]":      base + "recorder: {transports: [sctp]}\n",
		"recorder.rtp_timeout":        base + "recorder: {rtp_timeout: 10ms}\n",
		"recorder.allowed_sources[0]": base + "recorder: {allowed_sources: [10.0.0.1/99]}\n",
	} {
		_, err := Parse([]byte(doc), dir)
		var fe *FieldError
		if !errors.As(err, &fe) || !strings.HasPrefix(fe.Key, key) {
			t.Errorf("%s: err = %v, want a FieldError naming it", key, err)
		}
	}
}

func TestExampleRecorderConfig(t *testing.T) {
	c, err := Load("../configs/recorder.yaml")
	if err != nil {
		t.Fatalf("configs/recorder.yaml: %v", err)
	}
	if c.Recorder.Listen != "127.0.0.1:5070" {
		t.Errorf("recorder.listen = %q", c.Recorder.Listen)
	}
	if err := c.ValidateRecorder(); err != nil {
		t.Errorf("configs/recorder.yaml would not start: %v", err)
	}

	// Its commented TLS block, as the comments say to turn it on, with
	// the certificates where it names them.
	b, err := os.ReadFile("../configs/recorder.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	doc = strings.Replace(doc, "  transports: [udp, tcp]", "", 1)
	doc = strings.Replace(doc, "allowed_sources: []", "allowed_sources: [10.0.0.10/32]", 1)
	// The block's lines are the only ones indented before their "#".
	for _, k := range [][2]string{{"  # tls:", "  tls:"}, {"  #   ", "    "}, {"  # metrics_listen:", "  metrics_listen:"}} {
		doc = strings.ReplaceAll(doc, k[0], k[1])
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "certs"), 0o700); err != nil {
		t.Fatal(err)
	}
	recorderLinkFiles(t, filepath.Join(dir, "certs"))
	for _, f := range [][2]string{{"node.crt", "recorder.crt"}, {"node.key", "recorder.key"}} {
		os.Rename(filepath.Join(dir, "certs", f[0]), filepath.Join(dir, "certs", f[1]))
	}
	c, err = Parse([]byte(doc), filepath.Dir(mustAbs(t, "../configs/recorder.yaml")))
	if err == nil {
		t.Fatalf("the TLS block parsed without its certificate files next to the config")
	}
	c, err = Parse([]byte(strings.ReplaceAll(doc, "certs/", filepath.Join(dir, "certs")+"/")), filepath.Dir(mustAbs(t, "../configs/recorder.yaml")))
	if err != nil {
		t.Fatalf("configs/recorder.yaml with its tls block on: %v", err)
	}
	if addr, _ := c.RecorderListen(); addr != "0.0.0.0:5071" || len(c.Recorder.Transports) != 0 || c.Recorder.MetricsListen == "" {
		t.Errorf("tls block: listen %s, transports %v, metrics %q", addr, c.Recorder.Transports, c.Recorder.MetricsListen)
	}
	if err := c.ValidateRecorder(); err != nil {
		t.Errorf("with its tls block on: %v", err)
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// recorderLinkFiles writes a CA and a certificate pair (self-signed: any
// parsable PEM serves the config check) into dir.
func recorderLinkFiles(t *testing.T, dir string) {
	t.Helper()
	c, k, err := certs.SelfSigned([]string{"recorder.test"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"ca.crt": c, "node.crt": c, "node.key": k, "garbage.crt": []byte("not a certificate")} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRecorderLinkTLS(t *testing.T) {
	dir := testDir(t)
	recorderLinkFiles(t, dir)
	remote := func(extra string) string {
		return strings.Replace(base, "recordings: {notice_prompt: notice.wav}",
			`recordings: {notice_prompt: notice.wav, remote: {address: "10.0.0.20:5071"`+extra+`}}`, 1)
	}
	goodRemote := `, transport: tls, ca_file: ca.crt, cert_file: node.crt, key_file: node.key`
	c, err := Parse([]byte(remote(goodRemote)), dir)
	if err != nil {
		t.Fatalf("remote over tls: %v", err)
	}
	if r := c.Recordings.Remote; r.ServerName != "10.0.0.20" || r.Timeout.D() != 2*time.Second {
		t.Errorf("remote tls defaults = %+v, want server_name from the address", r)
	}
	goodRec := "recorder: {allowed_sources: [10.0.0.10/32], tls: {cert_file: node.crt, key_file: node.key, client_ca_file: ca.crt}}\n"
	c, err = Parse([]byte(base+goodRec), dir)
	if err != nil {
		t.Fatalf("recorder tls: %v", err)
	}
	if r := c.Recorder; r.TLS.Listen != "0.0.0.0:5071" || len(r.Transports) != 0 {
		t.Errorf("recorder tls defaults: listen %q, transports %v (plain must be off)", r.TLS.Listen, r.Transports)
	}
	if addr, key := c.RecorderListen(); addr != "0.0.0.0:5071" || key != "recorder.tls.listen" {
		t.Errorf("RecorderListen = %s, %s", addr, key)
	}
	if err := c.ValidateRecorder(); err != nil {
		t.Errorf("ValidateRecorder with allowed sources: %v", err)
	}

	for key, doc := range map[string]string{
		"recordings.remote.ca_file":     remote(`, transport: tls, cert_file: node.crt, key_file: node.key`),
		"recordings.remote.ca_file ":    remote(`, transport: tls, ca_file: missing.crt, cert_file: node.crt, key_file: node.key`),
		"recordings.remote.ca_file  ":   remote(`, transport: tls, ca_file: garbage.crt, cert_file: node.crt, key_file: node.key`),
		"recordings.remote.cert_file":   remote(`, transport: tls, ca_file: ca.crt`),
		"recordings.remote.cert_file ":  remote(`, transport: tls, ca_file: ca.crt, cert_file: missing.crt, key_file: node.key`),
		"recordings.remote.cert_file  ": remote(`, transport: tls, ca_file: ca.crt, cert_file: node.crt, key_file: garbage.crt`),
		"recordings.remote.transport":   remote(`, transport: tcp, ca_file: ca.crt`),
		"recordings.remote.address":     strings.Replace(base, "recordings: {notice_prompt: notice.wav}", `recordings: {notice_prompt: notice.wav, remote: {ca_file: ca.crt}}`, 1),
		"recorder.tls.cert_file":        base + "recorder: {tls: {client_ca_file: ca.crt}}\n",
		"recorder.tls.cert_file ":       base + "recorder: {tls: {cert_file: missing.crt, key_file: node.key, client_ca_file: ca.crt}}\n",
		"recorder.tls.client_ca_file":   base + "recorder: {tls: {cert_file: node.crt, key_file: node.key}}\n",
		"recorder.tls.client_ca_file ":  base + "recorder: {tls: {cert_file: node.crt, key_file: node.key, client_ca_file: missing.crt}}\n",
		"recorder.tls.listen":           base + "recorder: {tls: {listen: nowhere, cert_file: node.crt, key_file: node.key, client_ca_file: ca.crt}}\n",
		"recorder.transports":           base + "recorder: {transports: [udp], tls: {cert_file: node.crt, key_file: node.key, client_ca_file: ca.crt}}\n",
		"recorder.tls":                  base + "recorder: {tls: {cert: node.crt}}\n",
		"recorder.metrics_listen":       base + "recorder: {metrics_listen: \"9100\"}\n",
		"recorder.allowed_sources[1]":   base + "recorder: {allowed_sources: [10.0.0.10/32, 0.0.0.0/0]}\n",
	} {
		_, err := Parse([]byte(doc), dir)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Key != strings.TrimSpace(key) && !strings.HasPrefix(fe.Key, strings.TrimSpace(key)+".") {
			t.Errorf("%s: err = %v, want a FieldError naming it", key, err)
		}
	}
}

// TestValidateRecorder: plateau recorder (and check-config on its file)
// refuses to listen beyond loopback without allowed sources.
func TestValidateRecorder(t *testing.T) {
	dir := testDir(t)
	recorderLinkFiles(t, dir)
	tlsKeys := "cert_file: node.crt, key_file: node.key, client_ca_file: ca.crt"
	for _, tc := range []struct {
		recorder string
		wantErr  bool
	}{
		{`{listen: "127.0.0.1:5070"}`, false},
		{`{listen: "[::1]:5070"}`, false},
		{`{listen: "localhost:5070"}`, false},
		{`{listen: "0.0.0.0:5070"}`, true},
		{`{}`, true}, // the default listens on 0.0.0.0
		{`{listen: "[::]:5070"}`, true},
		{`{listen: "10.0.0.20:5070"}`, true},
		{`{listen: "10.0.0.20:5070", allowed_sources: [10.0.0.10/32], tls: {listen: "10.0.0.20:5071", ` + tlsKeys + `}}`, false},
		{`{listen: "127.0.0.1:5070", tls: {listen: "0.0.0.0:5071", ` + tlsKeys + `}}`, true},
		{`{listen: "0.0.0.0:5070", tls: {listen: "127.0.0.1:5071", ` + tlsKeys + `}}`, false},
		{`{tls: {` + tlsKeys + `}, allowed_sources: [10.0.0.10/32]}`, false},
	} {
		c, err := Parse([]byte(base+"recorder: "+tc.recorder+"\n"), dir)
		if err != nil {
			t.Fatalf("%s: %v", tc.recorder, err)
		}
		if !c.HasRecorder() {
			t.Errorf("%s: HasRecorder = false", tc.recorder)
		}
		err = c.ValidateRecorder()
		var fe *FieldError
		if tc.wantErr && (!errors.As(err, &fe) || fe.Key != "recorder.allowed_sources" || !errors.Is(err, ErrInvalid)) {
			t.Errorf("%s: ValidateRecorder = %v, want an error naming recorder.allowed_sources", tc.recorder, err)
		}
		if !tc.wantErr && err != nil {
			t.Errorf("%s: ValidateRecorder = %v", tc.recorder, err)
		}
	}
	c, err := Parse([]byte(base), dir)
	if err != nil || c.HasRecorder() {
		t.Errorf("a config without a recorder section: HasRecorder = %v, %v", c != nil && c.HasRecorder(), err)
	}
}

func TestTrunkSRTPDefaultOff(t *testing.T) {
	c, err := Parse([]byte(base+"trunks: [{name: t, address: \"127.0.0.1:5070\"}]\n"), testDir(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Trunks[0].SRTP; got != "off" {
		t.Fatalf("default trunks[0].srtp = %q, want off", got)
	}
}
