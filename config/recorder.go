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
		if p, err := netip.ParsePrefix(s); err == nil && p.Bits() == 0 {
			return bad(fmt.Sprintf("recorder.allowed_sources[%d]", i), "%q allows every address: list only the Plateau nodes' addresses", s)
		}
	}
	return nil
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
	if len(c.Recorder.AllowedSources) > 0 || loopbackOnly(addr) {
		return nil
	}
	return &FieldError{Key: "recorder.allowed_sources", Msg: fmt.Sprintf(
		"is empty but %s %q listens beyond loopback: list the Plateau nodes' addresses (e.g. [10.0.0.10/32]) or listen on 127.0.0.1", key, addr)}
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
