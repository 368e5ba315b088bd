package config

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"

	"gopkg.in/yaml.v3"

	"plateau/certs"
)

// RecorderTLS is `plateau recorder`'s SIP over TLS listener: the recorder
// presents CertFile/KeyFile and requires every client (Plateau) to present
// a certificate signed by ClientCAFile.
type RecorderTLS struct {
	Listen       string `yaml:"listen"` // host:port; default 0.0.0.0:5071
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"`
}

// hasTopKey reports whether a YAML document has key at its top level.
func hasTopKey(data []byte, key string) bool {
	var top map[string]yaml.Node
	if yaml.NewDecoder(bytes.NewReader(data)).Decode(&top) != nil {
		return false
	}
	_, ok := top[key]
	return ok
}

// validateRecorderLink checks recordings.remote's TLS keys and recorder.*'s
// TLS and metrics keys (called by Validate). Certificate files are read
// here so that check-config reports a missing or unreadable one by its key.
func (c *Config) validateRecorderLink() error {
	bad := func(key, format string, args ...any) error {
		return &FieldError{Key: key, Msg: fmt.Sprintf(format, args...)}
	}
	if err := c.validateRemotePlain(); err != nil {
		return err
	}
	r := c.Recordings.Remote
	if r.Transport == "tls" {
		if r.CAFile == "" {
			return bad("recordings.remote.ca_file", "is required with transport tls (the CA that signed the recorder's certificate)")
		}
		if _, err := certs.LoadCAs(c.Resolve(r.CAFile)); err != nil {
			return bad("recordings.remote.ca_file", "%v", err)
		}
		if r.CertFile == "" || r.KeyFile == "" {
			return bad("recordings.remote.cert_file", "cert_file and key_file are required with transport tls (Plateau's client certificate: the recorder refuses clients without one)")
		}
		if _, err := certs.Load(c.Resolve(r.CertFile), c.Resolve(r.KeyFile)); err != nil {
			return bad("recordings.remote.cert_file", "%v", err)
		}
		if r.ServerName == "" {
			return bad("recordings.remote.server_name", "is required: the name the recorder's certificate is checked against")
		}
	} else if r.CAFile != "" || r.ServerName != "" || r.CertFile != "" || r.KeyFile != "" {
		return bad("recordings.remote.transport", "is %q but ca_file, server_name, cert_file or key_file is set: they apply to transport tls only", r.Transport)
	}

	if t := c.Recorder.TLS; t != nil {
		if err := checkHostPort(t.Listen); err != nil {
			return bad("recorder.tls.listen", "%v", err)
		}
		if len(c.Recorder.Transports) > 0 {
			// Plain SIP beside TLS would let any client skip the
			// certificate check, and its RTP would go in clear.
			return bad("recorder.transports", "plain udp/tcp are off when recorder.tls is set: remove recorder.transports")
		}
		if t.CertFile == "" || t.KeyFile == "" {
			return bad("recorder.tls.cert_file", "cert_file and key_file are required (the recorder's certificate)")
		}
		if _, err := certs.Load(c.Resolve(t.CertFile), c.Resolve(t.KeyFile)); err != nil {
			return bad("recorder.tls.cert_file", "%v", err)
		}
		if t.ClientCAFile == "" {
			return bad("recorder.tls.client_ca_file", "is required: the CA that signs the Plateau nodes' client certificates")
		}
		if _, err := certs.LoadCAs(c.Resolve(t.ClientCAFile)); err != nil {
			return bad("recorder.tls.client_ca_file", "%v", err)
		}
	}
	if m := c.Recorder.MetricsListen; m != "" {
		if err := checkHostPort(m); err != nil {
			return bad("recorder.metrics_listen", "%v", err)
		}
	}
	for i, s := range c.Recorder.AllowedSources {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			continue // reported by Validate
		}
		key := fmt.Sprintf("recorder.allowed_sources[%d]", i)
		switch {
		case p.Addr().Is4In6():
			// Sources are compared as IPv4: this prefix would match
			// nothing, and reads as if it allowed a node.
			return bad(key, "%q is an IPv4-mapped IPv6 prefix: write the IPv4 form (e.g. %s/%d)", s, p.Addr().Unmap(), max(p.Bits()-96, 0))
		case p.Bits() < minAllowedBits(p.Addr()):
			// 0.0.0.0/1 + 128.0.0.0/1 is 0.0.0.0/0 again: no set of
			// Plateau nodes spans more than a /8 (IPv6: a /32).
			return bad(key, "%q allows too many addresses (shorter than /%d): list only the Plateau nodes' addresses", s, minAllowedBits(p.Addr()))
		}
	}
	return nil
}

// minAllowedBits is the shortest prefix recorder.allowed_sources takes.
func minAllowedBits(a netip.Addr) int {
	if a.Is4() {
		return 8
	}
	return 32
}

// validateRemotePlain refuses recordings.remote in clear beyond loopback:
// the recorder refuses it (ValidateRecorder), and the audio of every call
// would cross the LAN in clear.
func (c *Config) validateRemotePlain() error {
	r := c.Recordings.Remote
	if r.Address == "" || r.Transport == "tls" || loopbackOnly(r.Address) {
		return nil
	}
	return &FieldError{Key: "recordings.remote.transport", Msg: fmt.Sprintf(
		"is %q but recordings.remote.address %q is beyond loopback: use tls (with ca_file, cert_file, key_file): in clear, the calls' audio crosses the LAN and anyone on it can forge the recorder's sources", r.Transport, r.Address)}
}

// RecorderListen is the SIP address `plateau recorder` listens on and the
// key that sets it: recorder.tls.listen with TLS, else recorder.listen.
func (c *Config) RecorderListen() (addr, key string) {
	if c.Recorder.TLS != nil {
		return c.Recorder.TLS.Listen, "recorder.tls.listen"
	}
	return c.Recorder.Listen, "recorder.listen"
}

// HasRecorder reports whether the file has a recorder section.
func (c *Config) HasRecorder() bool { return c.hasRecorder }

// ValidateRecorder adds the checks that only matter when the file runs
// `plateau recorder` (plateau serve ignores the recorder section): a
// recorder reachable beyond loopback must name the Plateau nodes allowed
// to open recording sessions, or any host could fill its disk with fake
// recordings.
func (c *Config) ValidateRecorder() error {
	addr, key := c.RecorderListen()
	if loopbackOnly(addr) {
		return nil
	}
	if len(c.Recorder.AllowedSources) == 0 {
		return &FieldError{Key: "recorder.allowed_sources", Msg: fmt.Sprintf(
			"is empty but %s %q listens beyond loopback: list the Plateau nodes' addresses (e.g. [10.0.0.10/32]) or listen on 127.0.0.1", key, addr)}
	}
	if c.Recorder.TLS == nil {
		// allowed_sources alone does not lock plain SIP: a UDP source is
		// forged at will on the LAN, so is the RTP that fills a
		// recording, and the calls' audio would cross the LAN in clear.
		return &FieldError{Key: "recorder.tls", Msg: fmt.Sprintf(
			"is required when %s %q listens beyond loopback: plain SIP and RTP sources are forged at will on the LAN and the audio crosses it in clear (see configs/recorder.yaml's tls block), or listen on 127.0.0.1", key, addr)}
	}
	return nil
}

// loopbackOnly reports whether a listen address is reachable from this
// host only. A name other than localhost, or an unspecified address
// (0.0.0.0, ::), is not.
func loopbackOnly(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}
