package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"slices"

	"plateau/b2bua"
	"plateau/certs"
	"plateau/config"
	"plateau/sip"
)

// SIP over TLS wiring: the listener's certificate (sip.tls) and each TLS
// trunk's verification (trunks[].tls). Certificates are certs.Pairs,
// reloaded on SIGHUP and when their files change, without a restart.

// sipTLSOptions loads sip.tls when "tls" is in sip.transports (nil
// otherwise). The pair is added to reload.
func sipTLSOptions(cfg *config.Config, reload *certReloader) (*sip.TLSOptions, error) {
	if !slices.Contains(cfg.SIP.Transports, "tls") {
		return nil, nil
	}
	pair, err := certs.Load(cfg.Resolve(cfg.SIP.TLS.CertFile), cfg.Resolve(cfg.SIP.TLS.KeyFile))
	if err != nil {
		return nil, fmt.Errorf("sip.tls: %w", err)
	}
	reload.add("sip.tls", pair, nil)
	return &sip.TLSOptions{Listen: cfg.SIP.TLS.Listen, Pair: pair}, nil
}

// applyTrunkTLS gives each TLS trunk its client policy: the carrier's
// certificate verified against trunks[].tls.ca_file (the system's roots
// when empty) for trunks[].tls.server_name, and Plateau's client
// certificate when the carrier wants mutual TLS.
func applyTrunkTLS(cfg *config.Config, opts *b2bua.CallOptions, reload *certReloader) error {
	for i, t := range cfg.Trunks {
		if t.Transport != "tls" {
			continue
		}
		tc, pair, err := trunkTLSConfig(cfg, t)
		if err != nil {
			return fmt.Errorf("trunks[%d].tls: %w", i, err)
		}
		if pair != nil {
			reload.add(fmt.Sprintf("trunks[%d].tls", i), pair, nil)
		}
		for j := range opts.Trunks {
			if opts.Trunks[j].Name == t.Name {
				opts.Trunks[j].TLS = tc
			}
		}
	}
	return nil
}

func trunkTLSConfig(cfg *config.Config, t config.Trunk) (*tls.Config, *certs.Pair, error) {
	x := t.TLS
	var roots *x509.CertPool // nil: the system's roots
	if x.CAFile != "" {
		var err error
		if roots, err = certs.LoadCAs(cfg.Resolve(x.CAFile)); err != nil {
			return nil, nil, err
		}
	}
	var pair *certs.Pair
	var err error
	if x.CertFile != "" {
		if pair, err = certs.Load(cfg.Resolve(x.CertFile), cfg.Resolve(x.KeyFile)); err != nil {
			return nil, nil, err
		}
	}
	return certs.ClientConfig(x.ServerName, roots, pair), pair, nil
}
