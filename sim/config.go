// Package sim is the simulated outside world (PSTN, a carrier that follows
// number rules) and a small SIP user agent (Phone), both on sipgo and
// media.Endpoint. They serve the demo (`plateau pstn-sim`, `plateau dial`),
// smoke tests and Go tests; nothing in the call path depends on them.
package sim

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

	"plateau/config"
	"plateau/media"
)

// Config is the pstn-sim configuration file.
type Config struct {
	// Listen is the SIP address, UDP and TCP on the same port.
	Listen string      `yaml:"listen"`
	Media  MediaConfig `yaml:"media"`
	// RingTime is how long a ringing number rings before it answers.
	RingTime config.Duration `yaml:"ring_time"`
	Answer   AnswerConfig    `yaml:"answer"`
	Auth     AuthConfig      `yaml:"auth"`
	// SRTP is the carrier's SDES policy, as a trunk's (sdes.go): off
	// (plain RTP; RTP/SAVP offers get 488), optional (answers either,
	// offers RTP/SAVP) or required (488 to RTP/AVP).
	SRTP string `yaml:"srtp"`
	// Rules are tried in order before the default rules (0486 busy, 0480
	// no answer, 0404 not found, 0503 unavailable); the first match wins.
	Rules []Rule `yaml:"rules"`
	// NoDefaultRules drops the default rules: every number then rings.
	NoDefaultRules bool `yaml:"no_default_rules"`
	// Registrar makes the simulator a registration-trunk carrier: a PBX
	// must REGISTER with the auth credentials (401 digest) before its
	// INVITEs are accepted (403 until then).
	Registrar RegistrarConfig `yaml:"registrar"`
	// TLS makes the simulator a TLS carrier as well (pstn_tls.go).
	TLS TLSConfig `yaml:"tls"`

	dir string
}

// TLSConfig is the simulator's SIP over TLS listener. Empty listen: none.
type TLSConfig struct {
	Listen   string `yaml:"listen"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile, when set, demands a client certificate signed by one
	// of its CAs (a carrier requiring mutual TLS).
	ClientCAFile string `yaml:"client_ca_file"`
}

// MediaConfig is where the simulator's RTP lives.
type MediaConfig struct {
	IP       string `yaml:"ip"`
	RTPPorts string `yaml:"rtp_ports"`

	ip               netip.Addr
	portMin, portMax int
}

// AnswerConfig says what an answered call hears.
type AnswerConfig struct {
	Mode string `yaml:"mode"` // echo or play
	WAV  string `yaml:"wav"`  // for play: 8 kHz mono 16-bit, looped
}

// AuthConfig is the digest authentication demanded of INVITEs (407).
// Empty username: no authentication.
type AuthConfig struct {
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	Realm        string `yaml:"realm"`
}

// RegistrarConfig is the registration-trunk mode.
type RegistrarConfig struct {
	Enabled bool `yaml:"enabled"`
	// MaxExpires caps the granted registration lifetime (default 3600s).
	MaxExpires config.Duration `yaml:"max_expires"`
}

// Rule maps dialled numbers to a behaviour.
type Rule struct {
	Prefix string `yaml:"prefix"`
	Suffix string `yaml:"suffix"`
	Action Action `yaml:"action"`
	// RingTime overrides the global ring time (ring, early).
	RingTime config.Duration `yaml:"ring_time"`
	// Timeout is how long noanswer rings before 480 (default 30s).
	Timeout config.Duration `yaml:"timeout"`
	// HangupAfter makes the callee send BYE this long after answering.
	HangupAfter config.Duration `yaml:"hangup_after"`
}

// Action is what the simulated callee does.
type Action string

// Actions of a Rule.
const (
	ActionRing        Action = "ring"        // 180, then 200 after the ring time
	ActionEarly       Action = "early"       // 183 with SDP and early media, then 200
	ActionBusy        Action = "busy"        // 486
	ActionNoAnswer    Action = "noanswer"    // 180, then 480 after the timeout
	ActionNotFound    Action = "notfound"    // 404
	ActionUnavailable Action = "unavailable" // 503
	ActionReject      Action = "reject"      // 403
)

var actions = []Action{ActionRing, ActionEarly, ActionBusy, ActionNoAnswer, ActionNotFound, ActionUnavailable, ActionReject}

// DefaultRules apply after the configured ones.
func DefaultRules() []Rule {
	return []Rule{
		{Suffix: "0486", Action: ActionBusy},
		{Suffix: "0480", Action: ActionNoAnswer, Timeout: config.Duration(30 * time.Second)},
		{Suffix: "0404", Action: ActionNotFound},
		{Suffix: "0503", Action: ActionUnavailable},
	}
}

// Match reports whether the rule applies to number (the Request-URI user).
func (r Rule) Match(number string) bool {
	if r.Prefix != "" && !strings.HasPrefix(number, r.Prefix) {
		return false
	}
	if r.Suffix != "" && !strings.HasSuffix(number, r.Suffix) {
		return false
	}
	return true
}

// Rule returns the first rule matching number, or the ring rule.
func (c *Config) Rule(number string) Rule {
	rules := c.Rules
	if !c.NoDefaultRules {
		rules = append(append([]Rule(nil), c.Rules...), DefaultRules()...)
	}
	for _, r := range rules {
		if r.Match(number) {
			return r
		}
	}
	return Rule{Action: ActionRing}
}

// DefaultConfig is a usable configuration: 127.0.0.1:5070, echo, no auth,
// RTP on any free port.
func DefaultConfig() Config {
	c := Config{}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		panic(err) // the defaults are valid
	}
	return c
}

// LoadConfig reads, decodes strictly, defaults and validates a file.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %v", config.ErrInvalid, err)
	}
	abs, _ := filepath.Abs(path)
	return ParseConfig(data, filepath.Dir(abs))
}

// ParseConfig decodes YAML strictly (unknown keys are errors naming the
// key); dir resolves relative paths (the WAV file).
func ParseConfig(data []byte, dir string) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, decodeError(data, err)
	}
	c.dir = dir
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func (c *Config) applyDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:5070"
	}
	if c.Media.IP == "" {
		c.Media.IP = "127.0.0.1"
	}
	if c.RingTime == 0 {
		c.RingTime = config.Duration(time.Second)
	}
	if c.Answer.Mode == "" {
		c.Answer.Mode = "echo"
	}
	if c.Auth.Realm == "" {
		c.Auth.Realm = "pstn-sim"
	}
	for i := range c.Rules {
		if c.Rules[i].Action == ActionNoAnswer && c.Rules[i].Timeout == 0 {
			c.Rules[i].Timeout = config.Duration(30 * time.Second)
		}
	}
}

func bad(key, format string, args ...any) error {
	return &config.FieldError{Key: key, Msg: fmt.Sprintf(format, args...)}
}

// Validate names the key of the first invalid value.
func (c *Config) Validate() error {
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return bad("listen", "%q is not host:port (e.g. 127.0.0.1:5070)", c.Listen)
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return bad("listen", "%q: host must be an IP address", c.Listen)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return bad("listen", "%q: port must be 0-65535", c.Listen)
	}
	ip, err := netip.ParseAddr(c.Media.IP)
	if err != nil || ip.IsUnspecified() {
		return bad("media.ip", "%q is not a unicast IP address (it is written in SDP)", c.Media.IP)
	}
	c.Media.ip = ip
	if c.Media.RTPPorts != "" {
		a, b, ok := strings.Cut(c.Media.RTPPorts, "-")
		min, err1 := strconv.Atoi(strings.TrimSpace(a))
		max, err2 := strconv.Atoi(strings.TrimSpace(b))
		switch {
		case !ok || err1 != nil || err2 != nil:
			return bad("media.rtp_ports", "%q is not a range such as 30000-30999", c.Media.RTPPorts)
		case min < 1024 || max > 65534 || max-min < 3:
			return bad("media.rtp_ports", "%q must be within 1024-65534 and hold at least two port pairs", c.Media.RTPPorts)
		}
		c.Media.portMin, c.Media.portMax = min, max
	}
	if c.RingTime < 0 {
		return bad("ring_time", "must not be negative")
	}
	if err := c.validateTLS(); err != nil {
		return err
	}
	if c.Registrar.Enabled && c.Auth.Username == "" {
		return bad("registrar.enabled", "needs auth.username and a password: registrations are authenticated")
	}
	if c.Registrar.MaxExpires < 0 {
		return bad("registrar.max_expires", "must not be negative")
	}
	if _, err := media.ParseSRTPMode(c.SRTP); err != nil {
		return bad("srtp", "%q is not off, optional or required", c.SRTP)
	}
	switch c.Answer.Mode {
	case "echo":
	case "play":
		if c.Answer.WAV == "" {
			return bad("answer.wav", "is required when answer.mode is play")
		}
	default:
		return bad("answer.mode", "%q is not echo or play", c.Answer.Mode)
	}
	if c.Answer.WAV != "" {
		if _, err := os.Stat(c.resolve(c.Answer.WAV)); err != nil {
			return bad("answer.wav", "%v", err)
		}
	}
	if c.Auth.Password != "" && c.Auth.PasswordFile != "" {
		return bad("auth.password", "set password or password_file, not both")
	}
	if c.Auth.Username == "" && (c.Auth.Password != "" || c.Auth.PasswordFile != "") {
		return bad("auth.username", "is required when a password is set")
	}
	if c.Auth.Username != "" && c.Auth.Password == "" && c.Auth.PasswordFile == "" {
		return bad("auth.password", "is required when auth.username is set (or use password_file)")
	}
	for i, r := range c.Rules {
		key := fmt.Sprintf("rules[%d]", i)
		if r.Prefix == "" && r.Suffix == "" {
			return bad(key, "needs prefix or suffix (use prefix: \"+\" or suffix: \"\" style matches explicitly)")
		}
		if !slicesContains(actions, r.Action) {
			return bad(key+".action", "%q is not one of ring, early, busy, noanswer, notfound, unavailable, reject", r.Action)
		}
		if r.RingTime < 0 {
			return bad(key+".ring_time", "must not be negative")
		}
		if r.Timeout < 0 || (r.Timeout != 0 && r.Action != ActionNoAnswer) {
			return bad(key+".timeout", "applies to action noanswer only and must be positive")
		}
		if r.HangupAfter < 0 || (r.HangupAfter != 0 && r.Action != ActionRing && r.Action != ActionEarly) {
			return bad(key+".hangup_after", "applies to answered calls (ring, early) only and must be positive")
		}
	}
	return nil
}

func slicesContains(as []Action, a Action) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}

func (c *Config) resolve(p string) string {
	if p == "" || filepath.IsAbs(p) || c.dir == "" {
		return p
	}
	return filepath.Join(c.dir, p)
}

// password returns the digest password, inline or from its file.
func (c *Config) password() (string, error) {
	if c.Auth.PasswordFile == "" {
		return c.Auth.Password, nil
	}
	b, err := os.ReadFile(c.resolve(c.Auth.PasswordFile))
	if err != nil {
		return "", bad("auth.password_file", "%v", err)
	}
	return strings.TrimSpace(string(b)), nil
}

var lineRE = regexp.MustCompile(`line (\d+): (field (\S+) not found)?`)

// decodeError prefixes each "line N:" of a yaml.v3 error with the key
// written on that line, so the message names what to change.
func decodeError(data []byte, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil {
		return fmt.Errorf("%w: %s", config.ErrInvalid, msg)
	}
	keys := map[int]string{}
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
				if _, ok := keys[n.Content[i].Line]; !ok {
					keys[n.Content[i].Line] = p
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
	msg = lineRE.ReplaceAllStringFunc(msg, func(m string) string {
		sm := lineRE.FindStringSubmatch(m)
		line, _ := strconv.Atoi(sm[1])
		k, ok := keys[line]
		if !ok {
			return m
		}
		if sm[3] != "" { // unknown key: name it under its parent
			parent := ""
			if i := strings.LastIndex(k, "."); i >= 0 {
				parent = k[:i+1]
			}
			return parent + sm[3] + ": line " + sm[1] + ": unknown key (" + sm[2] + ")"
		}
		return k + ": " + m
	})
	return fmt.Errorf("%w: %s", config.ErrInvalid, msg)
}
