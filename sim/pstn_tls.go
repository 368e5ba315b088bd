package sim

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/netip"
	"os"
	"strconv"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"plateau/certs"
)

// pstnTLS is the simulator as a TLS carrier: a listener with its own
// certificate (tls.cert_file), optionally demanding a client certificate
// (tls.client_ca_file), the way carriers that want mutual TLS do.
type pstnTLS struct {
	l       net.Listener // TLS already: sipgo's ServeTLS does not wrap
	addr    netip.AddrPort
	dialogs *sipgo.DialogUA
}

func (t *pstnTLS) contact(host string) sip.ContactHeader {
	c := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "pstn", Host: host, Port: int(t.addr.Port()), UriParams: sip.NewParams()}}
	c.Address.UriParams.Add("transport", "tls")
	return c
}

func (c *Config) validateTLS() error {
	t := c.TLS
	if t.Listen == "" {
		if t.CertFile != "" || t.KeyFile != "" || t.ClientCAFile != "" {
			return bad("tls.listen", "is required with tls.cert_file, tls.key_file or tls.client_ca_file")
		}
		return nil
	}
	host, port, err := net.SplitHostPort(t.Listen)
	if err != nil {
		return bad("tls.listen", "%q is not host:port (e.g. 127.0.0.1:5071)", t.Listen)
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return bad("tls.listen", "%q: host must be an IP address", t.Listen)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return bad("tls.listen", "%q: port must be 0-65535", t.Listen)
	}
	if t.CertFile == "" {
		return bad("tls.cert_file", "is required with tls.listen")
	}
	if t.KeyFile == "" {
		return bad("tls.key_file", "is required with tls.listen")
	}
	for key, f := range map[string]string{"tls.cert_file": t.CertFile, "tls.key_file": t.KeyFile, "tls.client_ca_file": t.ClientCAFile} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(c.resolve(f)); err != nil {
			return bad(key, "%v", err)
		}
	}
	return nil
}

// listenTLS binds the TLS listener when tls.listen is set.
func (p *PSTN) listenTLS() error {
	t := p.cfg.TLS
	if t.Listen == "" {
		return nil
	}
	pair, err := certs.Load(p.cfg.resolve(t.CertFile), p.cfg.resolve(t.KeyFile))
	if err != nil {
		return bad("tls.cert_file", "%v", err)
	}
	var cas *x509.CertPool // nil: no client certificate asked
	if t.ClientCAFile != "" {
		if cas, err = certs.LoadCAs(p.cfg.resolve(t.ClientCAFile)); err != nil {
			return bad("tls.client_ca_file", "%v", err)
		}
	}
	l, err := net.Listen("tcp", t.Listen)
	if err != nil {
		return bad("tls.listen", "%v", err)
	}
	ap := l.Addr().(*net.TCPAddr).AddrPort()
	p.tls = &pstnTLS{l: tls.NewListener(l, certs.ServerConfig(pair, cas)), addr: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}
	return nil
}

// TLSAddr is the bound TLS address (invalid without tls.listen).
func (p *PSTN) TLSAddr() netip.AddrPort {
	if p.tls == nil {
		return netip.AddrPort{}
	}
	return p.tls.addr
}

// simClientTLS is the simulator's TLS client side (a BYE it sends to
// Plateau's TLS Contact): a simulator verifies nothing. Plateau's own
// client side always verifies (sip/transport_tls_client.go).
func simClientTLS() *tls.Config {
	c := certs.ClientConfig("", nil, nil)
	c.InsecureSkipVerify = true
	return c
}
