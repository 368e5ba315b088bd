// Package config decodes and validates Plateau's YAML configuration.
//
// Decoding is strict: an unknown key is an error that names it, and Validate
// names the key of every invalid value, so an operator knows what to change.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration file.
type Config struct {
	Site       Site       `yaml:"site"`
	SIP        SIP        `yaml:"sip"`
	Media      Media      `yaml:"media"`
	HTTP       HTTP       `yaml:"http"`
	DataDir    string     `yaml:"data_dir"`
	Log        Log        `yaml:"log"`
	Trunks     []Trunk    `yaml:"trunks"`
	Users      []User     `yaml:"users"`
	Policy     Policy     `yaml:"policy"`
	Recordings Recordings `yaml:"recordings"`
	Monitoring Monitoring `yaml:"monitoring"`
	// Recorder configures `plateau recorder` (the remote recorder, SIPREC
	// server); plateau serve ignores it.
	Recorder Recorder `yaml:"recorder"`

	// dir is the directory of the config file; relative paths are resolved
	// against it so the binary can be started from anywhere.
	dir string
	// hasRecorder: the file has a recorder section (check-config then
	// checks it as plateau recorder would start it).
	hasRecorder bool
}

type Site struct {
	Name          string `yaml:"name"`
	Timezone      string `yaml:"timezone"`
	DefaultRegion string `yaml:"default_region"`
	// DetentionMode forbids turning the recording notice off. Default true.
	DetentionMode *bool `yaml:"detention_mode"`
}

type SIP struct {
	Listen          string   `yaml:"listen"`
	Transports      []string `yaml:"transports"`
	Realm           string   `yaml:"realm"`
	ExternalAddress string   `yaml:"external_address"`
	NonceTTL        Duration `yaml:"nonce_ttl"`
	// DigestAlgorithms are offered in this order (RFC 8760: most preferred
	// first), one challenge each. Some clients (SIPp, sipvicious) only read
	// the first challenge; baresip 1.0 refuses a 401 with one it does not
	// know (SHA-256). Default [MD5].
	DigestAlgorithms []string `yaml:"digest_algorithms"`
	MinExpires       Duration `yaml:"min_expires"`
	MaxExpires       Duration `yaml:"max_expires"`
	DefaultExpires   Duration `yaml:"default_expires"`
	// UDPBufferBytes sizes the UDP socket receive buffer; bursts overflow the
	// kernel's default.
	UDPBufferBytes int `yaml:"udp_buffer_bytes"`
	// DrainTimeout is how long SIGTERM lets calls in progress go on.
	DrainTimeout Duration `yaml:"drain_timeout"`
	// PhoneNetworks (CIDRs) are where registered phones may be besides the
	// address their REGISTER came from; Plateau sends INVITEs to a Contact
	// only there, and never to a trunk's address.
	PhoneNetworks []string `yaml:"phone_networks"`
	// TrustedProxies are the proxies/SBCs in front of Plateau (CIDRs or
	// addresses) whose Via tells a phone's real address, for the media
	// address check and the bans. Empty: every source is taken as it is.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// DigestURICheck is how a digest's uri must name the request:
	// "request_uri" (default: the Request-URI itself, RFC 3261 §22.4) or
	// "server" (also a uri naming only this server, as SIPp writes it).
	DigestURICheck string `yaml:"digest_uri_check"`
	// MinSessionExpires is the shortest session timer interval (RFC 4028
	// Min-SE) Plateau runs: a peer asking less is clamped to it, so that no
	// phone or carrier makes Plateau refresh, or expect refreshes, every
	// second. Default 90s, the RFC's minimum; lower only for tests.
	MinSessionExpires Duration `yaml:"min_session_expires"`

	trustedProxies []netip.Prefix

	// Limits protect the SIP front door from floods and idle connections.
	Limits SIPLimits `yaml:"limits"`

	// TLS is the SIP over TLS listener (with "tls" in transports).
	TLS SIPTLS `yaml:"tls"`
}

// SIPTLS configures SIP over TLS: its listener and the certificate Plateau
// presents there (reloaded on SIGHUP and when the files change).
type SIPTLS struct {
	// Listen defaults to the sip.listen host with port 5061.
	Listen   string `yaml:"listen"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// SIPLimits bound what one source, and all of them, can hold open.
type SIPLimits struct {
	// TCPConnections caps accepted TCP connections (each is a file).
	TCPConnections int `yaml:"tcp_connections"`
	// TCPConnectionsPerSource caps those from one IP address.
	TCPConnectionsPerSource int `yaml:"tcp_connections_per_source"`
	// TCPIdleTimeout closes a TCP connection without traffic either way.
	TCPIdleTimeout Duration `yaml:"tcp_idle_timeout"`
	// RequestsPerSource is how many SIP messages a second one IP address
	// may send (bursts up to twice that): over UDP the rest are dropped
	// before any transaction, over TCP its connections are read more
	// slowly. OPTIONS and REGISTERs without credentials over UDP are
	// answered statelessly and do not count.
	RequestsPerSource int `yaml:"requests_per_source"`
}

// TrustedProxyPrefixes returns the validated sip.trusted_proxies.
func (s SIP) TrustedProxyPrefixes() []netip.Prefix { return s.trustedProxies }

type Media struct {
	IP                string   `yaml:"ip"`
	RTPPorts          string   `yaml:"rtp_ports"`
	InactivityTimeout Duration `yaml:"inactivity_timeout"`
	PortDrain         Duration `yaml:"port_drain"`

	portMin, portMax int
}

// PortRange returns the validated RTP port range.
func (m Media) PortRange() (min, max int) { return m.portMin, m.portMax }

type HTTP struct {
	// Listen is the plain HTTP listener. Without tls it serves everything;
	// with tls only /healthz, /readyz and /metrics, the rest redirected.
	Listen string `yaml:"listen"`
	// Pprof serves /debug/pprof for profiling; keep it off in production.
	Pprof bool `yaml:"pprof"`
	// TLS, when set, serves the consoles and /api/v1 over HTTPS only.
	TLS *HTTPTLS `yaml:"tls"`
}

// HTTPTLS is the HTTPS listener of the consoles and the API.
type HTTPTLS struct {
	Listen string `yaml:"listen"` // host:port; default 127.0.0.1:8443
	// Host is the name or address users type (https://Host:port/): plain
	// HTTP redirects there, never to the Host a request names, and a
	// self-signed certificate is made for it. Default: listen's address.
	Host string `yaml:"host"`
	// CertFile and KeyFile are PEM files (relative to the config file),
	// reloaded on SIGHUP and when they change.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// SelfSigned, instead of the files, creates data_dir/tls/https.crt and
	// https.key on the first start and keeps them afterwards.
	SelfSigned bool `yaml:"self_signed"`
}

type Log struct {
	Format string `yaml:"format"` // text or json
	Level  string `yaml:"level"`  // debug, info, warn, error
}

type Trunk struct {
	Name           string    `yaml:"name"`
	Address        string    `yaml:"address"`
	Transport      string    `yaml:"transport"`
	Auth           TrunkAuth `yaml:"auth"`
	CallerID       string    `yaml:"caller_id"`
	AllowedSources []string  `yaml:"allowed_sources"`
	// OptionsInterval is the OPTIONS keepalive period; 0s turns it off.
	OptionsInterval *Duration `yaml:"options_interval"`
	// NumberFormat is how the called number is written in the Request-URI:
	// "e164" (+33...), "national" (0...), or "international" (0033...).
	NumberFormat string `yaml:"number_format"`
	// MediaLatch is which source the trunk's RTP is accepted from: "host"
	// (the host in its SDP, any port) or "any" (a carrier behind NAT whose
	// SDP carries a private address: the first source within the latch
	// window).
	MediaLatch string `yaml:"media_latch"`
	// SRTP is the trunk leg's media protection (SDES, RFC 4568): "off"
	// (plain RTP), "optional" (offer SRTP, fall back to RTP on 488; take
	// either) or "required" (SRTP only, plain RTP refused with 488). SDES
	// sends the keys in the SDP: anything but off needs transport tls.
	SRTP string `yaml:"srtp"`
	// RingTimeout is how long a call to this trunk may ring unanswered
	// before Plateau CANCELs it (default 90s).
	RingTimeout *Duration `yaml:"ring_timeout"`
	// Register makes Plateau REGISTER to the carrier (a registration
	// trunk): the carrier then accepts calls from, and delivers calls to,
	// the registered contact.
	Register *TrunkRegister `yaml:"register"`
	// TLS is how the carrier's certificate is verified (transport: tls).
	TLS TrunkTLS `yaml:"tls"`
}

// TrunkTLS is a TLS trunk's verification of the carrier, and the client
// certificate for carriers that want mutual TLS.
type TrunkTLS struct {
	// CAFile is the carrier's CA bundle (PEM); empty: the system's roots.
	CAFile string `yaml:"ca_file"`
	// ServerName is the name the carrier's certificate must carry
	// (default: the host of address).
	ServerName string `yaml:"server_name"`
	// CertFile and KeyFile, both or neither: Plateau's client certificate.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// TrunkRegister configures a registration trunk. Credentials default to
// the trunk's auth.
type TrunkRegister struct {
	// Expires is the registration lifetime asked (default 3600s); Plateau
	// renews at 80 % of what the carrier grants.
	Expires      Duration `yaml:"expires"`
	Username     string   `yaml:"username"`
	Password     string   `yaml:"password"`
	PasswordFile string   `yaml:"password_file"`
	// ContactUser is the user part of the registered Contact: the carrier
	// sends inbound calls to it (default: the username).
	ContactUser string `yaml:"contact_user"`
}

type TrunkAuth struct {
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
}

type User struct {
	Extension       string `yaml:"extension"`
	Name            string `yaml:"name"`
	Role            string `yaml:"role"`
	SIPPassword     string `yaml:"sip_password"`
	SIPPasswordFile string `yaml:"sip_password_file"`
	WebPassword     string `yaml:"web_password"`
	WebPasswordFile string `yaml:"web_password_file"`
}

type Policy struct {
	Windows  []Window `yaml:"windows"`
	Holidays []string `yaml:"holidays"`
	// NumberWindows give a few numbers calling hours of their own, in place
	// of windows and holidays: a client's office hours, a carrier's test
	// line, the demo's number.
	NumberWindows   []NumberWindows `yaml:"number_windows"`
	MaxCallDuration Duration        `yaml:"max_call_duration"`
	WindowWarning   Duration        `yaml:"window_warning"`
	WindowGrace     Duration        `yaml:"window_grace"`
	Limits          Limits          `yaml:"limits"`
	Ban             Ban             `yaml:"ban"`
}

// Window is a weekly time window, e.g. days "mon-fri", from "07:30", to "12:00".
type Window struct {
	Days string `yaml:"days"`
	From string `yaml:"from"`
	To   string `yaml:"to"`
}

// NumberWindows are the calling hours of some numbers (E.164), replacing
// policy.windows and policy.holidays for them; holidays here are theirs.
type NumberWindows struct {
	Numbers  []string `yaml:"numbers"`
	Windows  []Window `yaml:"windows"`
	Holidays []string `yaml:"holidays"`
}

type Limits struct {
	PerOperator int `yaml:"per_operator"`
	PerSite     int `yaml:"per_site"`
}

type Ban struct {
	MaxFailures int      `yaml:"max_failures"`
	Window      Duration `yaml:"window"`
	Duration    Duration `yaml:"duration"`
}

type Recordings struct {
	Dir           string `yaml:"dir"`
	RetentionDays int    `yaml:"retention_days"`
	MinFreeMB     int    `yaml:"min_free_mb"`
	NoticePrompt  string `yaml:"notice_prompt"`
	// CampaignPrompts replace the notice for a campaign's calls (another
	// wording or language); they cannot turn it off.
	CampaignPrompts map[string]string `yaml:"campaign_prompts"`
	// Remote, when its address is set, sends every recording to a remote
	// recorder with SIPREC (RFC 7866) instead of writing it here.
	Remote RemoteRecorder `yaml:"remote"`
}

// RemoteRecorder is the SIPREC recorder plateau serve records to.
type RemoteRecorder struct {
	Address string `yaml:"address"` // host:port; empty means record locally
	// Transport is tcp (default), udp or tls; with udp the INVITE still
	// goes over TCP, as RFC 3261 wants for messages over 1300 bytes. With
	// tls the recording streams are SRTP (keys in the SDP, SDES).
	Transport string   `yaml:"transport"`
	Timeout   Duration `yaml:"timeout"` // each SIP request; default 2s
	// With transport tls: CAFile verifies the recorder's certificate for
	// ServerName (default: the host of Address); CertFile and KeyFile are
	// Plateau's client certificate, which the recorder requires.
	CAFile     string `yaml:"ca_file"`
	ServerName string `yaml:"server_name"`
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
}

// Recorder is `plateau recorder`: it listens for SIPREC sessions and
// records into recordings.dir (data_dir/recordings), refusing sessions
// below recordings.min_free_mb, with RTP on media.ip and media.rtp_ports,
// and its index and audit chain in data_dir/plateau.db.
type Recorder struct {
	Listen     string   `yaml:"listen"`     // SIP host:port; default 0.0.0.0:5070
	Transports []string `yaml:"transports"` // default udp, tcp
	// RTPTimeout ends a session that received no RTP for that long.
	RTPTimeout Duration `yaml:"rtp_timeout"`
	// AllowedSources, if set, are the only SRC addresses served (CIDR).
	// Required when the recorder listens beyond loopback.
	AllowedSources []string `yaml:"allowed_sources"`
	// TLS, when set, is the only SIP listener (plain udp/tcp are off):
	// clients must present a certificate signed by its client CA.
	TLS *RecorderTLS `yaml:"tls"`
	// MetricsListen, if set, serves /metrics and /healthz over plain HTTP.
	MetricsListen string `yaml:"metrics_listen"`
}

// Monitoring configures supervisors' live monitoring and coaching.
type Monitoring struct {
	// FollowNextCall keeps a supervisor on the line when the monitored
	// call ends, and joins the operator's next call.
	FollowNextCall bool `yaml:"follow_next_call"`
	// TrainingCalls is how many calls of an operator put in training are
	// offered to a supervisor (default 5); "plateau user train
	// --until-signoff" coaches every call until sign-off instead.
	TrainingCalls int `yaml:"training_calls"`
}

// Duration is a time.Duration written as "30s", "5m" in YAML.
type Duration time.Duration

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: want a duration such as \"30s\"", n.Line)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (use e.g. 30s, 5m, 1h)", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) D() time.Duration { return time.Duration(d) }

// ErrInvalid marks every configuration error; the CLI exits 2 on it.
var ErrInvalid = errors.New("invalid configuration")

// FieldError names the key whose value is wrong.
type FieldError struct {
	Key string
	Msg string
}

func (e *FieldError) Error() string { return e.Key + ": " + e.Msg }
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Load reads, decodes, defaults and validates a configuration file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	abs, _ := filepath.Abs(path)
	return Parse(data, filepath.Dir(abs))
}

// Parse decodes YAML strictly; dir resolves relative paths.
func Parse(data []byte, dir string) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, decodeError(data, err)
	}
	c.dir = dir
	c.hasRecorder = hasTopKey(data, "recorder")
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Resolve makes a path from the config file relative to the file's directory.
func (c *Config) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) || c.dir == "" {
		return p
	}
	return filepath.Join(c.dir, p)
}

// DetentionMode reports whether the site runs in detention mode (default).
func (c *Config) DetentionMode() bool {
	return c.Site.DetentionMode == nil || *c.Site.DetentionMode
}

// RecordingsDir is where recordings go. Data paths are relative to the
// working directory (DESIGN: data in ./data); files the config refers to
// (prompts, secrets) are relative to the config file.
func (c *Config) RecordingsDir() string {
	if c.Recordings.Dir != "" {
		return c.Recordings.Dir
	}
	return filepath.Join(c.DataDir, "recordings")
}

// HTTPSelfSignedDir is where http.tls.self_signed keeps its certificate.
func (c *Config) HTTPSelfSignedDir() string { return filepath.Join(c.DataDir, "tls") }

// DBPath is the SQLite database file.
func (c *Config) DBPath() string { return filepath.Join(c.DataDir, "plateau.db") }

func (c *Config) applyDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	defD := func(d *Duration, v time.Duration) {
		if *d == 0 {
			*d = Duration(v)
		}
	}
	defI := func(i *int, v int) {
		if *i == 0 {
			*i = v
		}
	}
	def(&c.Site.Name, "Plateau")
	def(&c.Site.Timezone, "Europe/Paris")
	def(&c.Site.DefaultRegion, "FR")
	def(&c.SIP.Listen, "0.0.0.0:5060")
	if len(c.SIP.Transports) == 0 {
		c.SIP.Transports = []string{"udp", "tcp"}
	}
	def(&c.SIP.Realm, "plateau")
	defD(&c.SIP.NonceTTL, 5*time.Minute)
	if len(c.SIP.DigestAlgorithms) == 0 {
		// MD5 alone: Debian's baresip 1.0 rejects a whole 401 that also
		// offers SHA-256. SHA-256 is an option for phones that do it.
		c.SIP.DigestAlgorithms = []string{"MD5"}
	}
	def(&c.SIP.DigestURICheck, "request_uri")
	defD(&c.SIP.MinExpires, 60*time.Second)
	defD(&c.SIP.MaxExpires, time.Hour)
	defD(&c.SIP.DefaultExpires, time.Hour)
	defI(&c.SIP.UDPBufferBytes, 4<<20)
	defD(&c.SIP.DrainTimeout, 60*time.Second)
	defD(&c.SIP.MinSessionExpires, 90*time.Second)
	defI(&c.SIP.Limits.TCPConnections, 2048)
	defI(&c.SIP.Limits.TCPConnectionsPerSource, 32)
	defD(&c.SIP.Limits.TCPIdleTimeout, 2*time.Minute)
	defI(&c.SIP.Limits.RequestsPerSource, 200)
	if c.SIP.TLS.Listen == "" {
		if host, _, err := net.SplitHostPort(c.SIP.Listen); err == nil {
			c.SIP.TLS.Listen = net.JoinHostPort(host, "5061")
		}
	}
	def(&c.Media.IP, "127.0.0.1")
	def(&c.Media.RTPPorts, "20000-29999")
	defD(&c.Media.InactivityTimeout, 60*time.Second)
	defD(&c.Media.PortDrain, 5*time.Second)
	def(&c.HTTP.Listen, "127.0.0.1:8080")
	if t := c.HTTP.TLS; t != nil {
		def(&t.Listen, "127.0.0.1:8443")
	}
	def(&c.DataDir, "./data")
	def(&c.Log.Format, "text")
	def(&c.Log.Level, "info")
	for i := range c.Trunks {
		t := &c.Trunks[i]
		def(&t.Transport, "udp")
		if t.Transport == "tls" && t.TLS.ServerName == "" {
			if host, _, err := net.SplitHostPort(t.Address); err == nil {
				t.TLS.ServerName = host
			}
		}
		if t.OptionsInterval == nil {
			d := Duration(30 * time.Second)
			t.OptionsInterval = &d
		}
		def(&t.NumberFormat, "e164")
		def(&t.MediaLatch, "host")
		def(&t.SRTP, "off")
		if t.RingTimeout == nil {
			d := Duration(90 * time.Second)
			t.RingTimeout = &d
		}
		if r := t.Register; r != nil {
			defD(&r.Expires, time.Hour)
			def(&r.Username, t.Auth.Username)
			if r.Password == "" && r.PasswordFile == "" {
				r.Password, r.PasswordFile = t.Auth.Password, t.Auth.PasswordFile
			}
			def(&r.ContactUser, r.Username)
		}
	}
	defD(&c.Policy.MaxCallDuration, time.Hour)
	defD(&c.Policy.WindowWarning, 60*time.Second)
	defI(&c.Policy.Limits.PerOperator, 1)
	defI(&c.Policy.Limits.PerSite, 500)
	defI(&c.Policy.Ban.MaxFailures, 10)
	defD(&c.Policy.Ban.Window, time.Minute)
	defD(&c.Policy.Ban.Duration, 15*time.Minute)
	defI(&c.Recordings.RetentionDays, 180)
	defI(&c.Recordings.MinFreeMB, 200)
	defI(&c.Monitoring.TrainingCalls, 5)
	if c.Recordings.Remote.Address != "" {
		def(&c.Recordings.Remote.Transport, "tcp")
		defD(&c.Recordings.Remote.Timeout, 2*time.Second)
	}
	def(&c.Recorder.Listen, "0.0.0.0:5070")
	if r := c.Recordings.Remote; r.Transport == "tls" && r.ServerName == "" {
		if h, _, err := net.SplitHostPort(r.Address); err == nil {
			c.Recordings.Remote.ServerName = h
		}
	}
	if c.Recorder.TLS != nil {
		def(&c.Recorder.TLS.Listen, "0.0.0.0:5071")
	} else if len(c.Recorder.Transports) == 0 {
		// With TLS the plain transports stay off unless listed (an error).
		c.Recorder.Transports = []string{"udp", "tcp"}
	}
	defD(&c.Recorder.RTPTimeout, 5*time.Minute)
}

// Secret returns an inline secret or the trimmed content of its file.
func (c *Config) Secret(inline, file string) (string, error) {
	if file == "" {
		return inline, nil
	}
	b, err := os.ReadFile(c.Resolve(file))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

var lineRE = regexp.MustCompile(`line (\d+): (field (\S+) not found in type \S+)?`)

// decodeError names the key of each line a YAML decoding error points at
// ("line 12: ..." becomes "sip.nonce_ttl: line 12: ..."), since yaml.v3 only
// gives line numbers and Duration's decoder cannot know its key.
func decodeError(data []byte, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil {
		return fmt.Errorf("%w: %s", ErrInvalid, msg)
	}
	keys := map[int][]string{}    // line -> key paths written on it
	values := map[string]string{} // key path -> its scalar value
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := n.Content[i].Value
				if path != "" {
					p = path + "." + p
				}
				keys[n.Content[i].Line] = append(keys[n.Content[i].Line], p)
				if v := n.Content[i+1]; v.Kind == yaml.ScalarNode {
					values[p] = v.Value
				}
				walk(n.Content[i+1], p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	walk(&root, "")
	var first string
	found := 0
	msg = lineRE.ReplaceAllStringFunc(msg, func(m string) string {
		sm := lineRE.FindStringSubmatch(m)
		line, _ := strconv.Atoi(sm[1])
		paths := keys[line]
		if len(paths) == 0 {
			return m
		}
		// One line may hold several keys (flow style): prefer the unknown
		// field, then the key whose value the message quotes, then the
		// innermost key.
		key := paths[len(paths)-1]
		for _, p := range paths {
			if sm[3] != "" && (p == sm[3] || strings.HasSuffix(p, "."+sm[3])) {
				key = p
				break
			}
			if v, ok := values[p]; ok && sm[3] == "" && strings.Contains(msg, strconv.Quote(v)) {
				key = p
				break
			}
		}
		if found == 0 {
			first = key
		}
		found++
		if sm[3] != "" {
			// Name the key and the nearest real one, not a Go type.
			return key + ": " + unknownKeyMsg(key) + " on line " + sm[1]
		}
		return key + ": " + m
	})
	if found == 1 {
		msg = strings.TrimPrefix(msg, "unmarshal errors:\n  ")
		return &FieldError{Key: first, Msg: strings.TrimPrefix(msg, first+": ")}
	}
	return fmt.Errorf("%w: %s", ErrInvalid, msg)
}
