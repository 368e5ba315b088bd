package config

import (
	"strings"

	"plateau/certs"
)

// validateSIPTLS checks sip.tls when "tls" is in sip.transports: a listen
// address apart from sip.listen, and a certificate and key that load and
// match (check-config names the key at fault).
func (c *Config) validateSIPTLS() error {
	t := c.SIP.TLS
	if err := checkHostPort(t.Listen); err != nil {
		return &FieldError{Key: "sip.tls.listen", Msg: err.Error()}
	}
	if t.Listen == c.SIP.Listen {
		return &FieldError{Key: "sip.tls.listen", Msg: "must differ from sip.listen (TLS needs its own port, usually 5061)"}
	}
	if t.CertFile == "" {
		return &FieldError{Key: "sip.tls.cert_file", Msg: `is required with "tls" in sip.transports`}
	}
	if t.KeyFile == "" {
		return &FieldError{Key: "sip.tls.key_file", Msg: `is required with "tls" in sip.transports`}
	}
	return checkPair("sip.tls", c.Resolve(t.CertFile), c.Resolve(t.KeyFile))
}

// validateTrunkTLS checks trunks[i].tls: only with transport tls, which
// needs Plateau's own TLS listener (the carrier sends the dialog's requests
// to the Contact, which must be a TLS one); readable CA and certificate
// files; a client certificate given whole or not at all.
func (c *Config) validateTrunkTLS(key string, t Trunk, sipTLS bool) error {
	x := t.TLS
	if t.Transport != "tls" {
		if x.CAFile != "" || x.CertFile != "" || x.KeyFile != "" {
			return &FieldError{Key: key + ".tls", Msg: "is only for transport: tls"}
		}
		return nil
	}
	if !sipTLS {
		return &FieldError{Key: key + ".transport", Msg: `tls needs "tls" in sip.transports and sip.tls (the carrier reaches Plateau's TLS Contact)`}
	}
	if strings.TrimSpace(x.ServerName) == "" || strings.ContainsAny(x.ServerName, " /") {
		return &FieldError{Key: key + ".tls.server_name", Msg: "must be the host name (or IP address) the carrier's certificate carries"}
	}
	if x.CAFile != "" {
		if _, err := certs.LoadCAs(c.Resolve(x.CAFile)); err != nil {
			return &FieldError{Key: key + ".tls.ca_file", Msg: err.Error()}
		}
	}
	switch {
	case x.CertFile == "" && x.KeyFile == "":
		return nil
	case x.CertFile == "":
		return &FieldError{Key: key + ".tls.cert_file", Msg: "is required with tls.key_file"}
	case x.KeyFile == "":
		return &FieldError{Key: key + ".tls.key_file", Msg: "is required with tls.cert_file"}
	}
	return checkPair(key+".tls", c.Resolve(x.CertFile), c.Resolve(x.KeyFile))
}

// checkPair loads a certificate and its key and names the key at fault.
func checkPair(prefix, certFile, keyFile string) error {
	if _, err := certs.Load(certFile, keyFile); err != nil {
		k := prefix + ".cert_file"
		msg := err.Error()
		if strings.HasPrefix(msg, "key file") {
			k = prefix + ".key_file"
		} else if strings.Contains(msg, " with key ") {
			msg = "does not match key_file: " + msg
		}
		return &FieldError{Key: k, Msg: msg}
	}
	return nil
}
