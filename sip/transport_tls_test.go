package sip

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"plateau/certs"
)

// testPair is a self-signed certificate for hosts, as a Pair and as a
// pool that trusts it.
func testPair(t *testing.T, hosts ...string) (*certs.Pair, *x509.CertPool) {
	t.Helper()
	dir := t.TempDir()
	c, k, err := certs.SelfSigned(hosts, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cf, kf := dir+"/c.pem", dir+"/k.pem"
	if err := os.WriteFile(cf, c, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kf, k, 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := certs.Load(cf, kf)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := certs.LoadCAs(cf)
	if err != nil {
		t.Fatal(err)
	}
	return p, pool
}

// tlsEnv runs the TLS front door on 127.0.0.1 with a reader per accepted
// connection that records the plaintext it read and how it ended.
type tlsEnv struct {
	t     *testing.T
	env   *regEnv
	l     *tlsListener
	addr  string
	roots *x509.CertPool
	mu    sync.Mutex
	read  []string
	ended chan error
}

func newTLSEnv(t *testing.T, limits TCPLimits, setup ...func(*regEnv)) *tlsEnv {
	t.Helper()
	env := newRegEnv(t)
	env.s.opts.TCP = limits
	for _, f := range setup { // before the listener serves
		f(env)
	}
	pair, roots := testPair(t, "127.0.0.1")
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &tlsEnv{t: t, env: env, l: env.s.newTLSListener(raw, certs.ServerConfig(pair, nil)), addr: raw.Addr().String(), roots: roots, ended: make(chan error, 100)}
	serveTestListener(t, e.l, e.ended, func(b []byte) {
		e.mu.Lock()
		e.read = append(e.read, string(b))
		e.mu.Unlock()
	})
	return e
}

func (e *tlsEnv) dialTLS(ip string) (*tls.Conn, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 3 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", e.addr, certs.ClientConfig("127.0.0.1", e.roots, nil))
	if err == nil {
		e.t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// phoneConn opens a TLS connection from ip, as a phone would, and
// returns its address once the server has read a message on it (the
// server marks a handshake done at its first read).
func (e *tlsEnv) phoneConn(ip string) netip.AddrPort {
	e.t.Helper()
	c, err := e.dialTLS(ip)
	if err != nil {
		e.t.Fatalf("handshake: %v", err)
	}
	msg := fmt.Sprintf("OPTIONS sip:127.0.0.1 SIP/2.0\r\nCall-ID: %s\r\nContent-Length: 0\r\n\r\n", c.LocalAddr())
	c.Write([]byte(msg))
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(e.plaintext(), msg); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			e.t.Fatal("the server did not read the message")
		}
	}
	return c.LocalAddr().(*net.TCPAddr).AddrPort()
}

// routeTo routes an INVITE to target over TLS as the client does and
// returns where it would be written (a connection's remote address).
func (e *tlsEnv) routeTo(target string) (string, error) {
	var u sip.Uri
	if err := sip.ParseUri(target, &u); err != nil {
		e.t.Fatal(err)
	}
	req := sip.NewRequest(sip.INVITE, u)
	req.SetTransport("TLS")
	err := e.env.s.routeTLS(context.Background(), req)
	return req.Destination(), err
}

func (e *tlsEnv) plaintext() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return strings.Join(e.read, "")
}

func (e *tlsEnv) waitEnded(within time.Duration) error {
	e.t.Helper()
	select {
	case err := <-e.ended:
		return err
	case <-time.After(within):
		e.t.Fatalf("no connection ended within %s", within)
		return nil
	}
}

// The TLS listener serves SIP in TLS under the TCP front door's limits:
// the per-source cap refuses a connection before any handshake, a client
// that never finishes its handshake is closed by the idle timeout, a
// client speaking SIP in clear is refused and counted, and what a client
// sends arrives decrypted.
func TestTLSListenerFrontDoor(t *testing.T) {
	e := newTLSEnv(t, TCPLimits{MaxConnections: 10, MaxConnectionsPerSource: 2, IdleTimeout: 400 * time.Millisecond})
	m := e.env.s.metrics

	// Plaintext arrives decrypted.
	c, err := e.dialTLS("127.0.0.1")
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	msg := "OPTIONS sip:127.0.0.1 SIP/2.0\r\nContent-Length: 0\r\n\r\n"
	c.Write([]byte(msg))
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(e.plaintext(), msg) {
		if time.Now().After(deadline) {
			t.Fatalf("the server read %q, want %q", e.plaintext(), msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A request to the phone finds its connection, by its address or by
	// its host (a Contact naming another port).
	src := c.LocalAddr().(*net.TCPAddr).AddrPort()
	if got := e.env.s.tlsIn.lookup(src); got != src.String() {
		t.Errorf("lookup(%s) = %q, want the connection itself", src, got)
	}
	if got := e.env.s.tlsIn.lookup(netip.AddrPortFrom(src.Addr(), 5061)); got != src.String() {
		t.Errorf("lookup(another port of the host) = %q, want %s", got, src)
	}
	if got := e.env.s.tlsIn.lookup(netip.MustParseAddrPort("127.0.0.9:5061")); got != "" {
		t.Errorf("lookup(another host) = %q, want none", got)
	}
	// A phone behind NAT: its Contact names a private address; the
	// request goes over the connection its REGISTER came on.
	natContact := netip.MustParseAddrPort("10.9.9.9:5061")
	var u sip.Uri
	sip.ParseUri("sip:101@10.9.9.9:5061;transport=tls", &u)
	bye := sip.NewRequest(sip.BYE, u)
	bye.SetTransport("TLS")
	if err := e.env.s.routeTLS(context.Background(), bye); err == nil {
		t.Error("routed to a Contact nobody registered")
	}
	e.env.s.ApplyBindingsForTest("101", []Binding{{Extension: "101", Contact: "sip:101@10.9.9.9:5061;transport=tls", Source: src.String(),
		Transport: "tls", ExpiresAt: e.env.clk.now().Add(time.Hour)}}, nil)
	if err := e.env.s.routeTLS(context.Background(), bye); err != nil || bye.Destination() != src.String() {
		t.Errorf("routeTLS(NAT Contact %s) = %v, destination %s, want the REGISTER's connection %s", natContact, err, bye.Destination(), src)
	}

	// Per source: a second connection is held, a third is refused at once.
	if _, err := e.dialTLS("127.0.0.1"); err != nil {
		t.Fatalf("second connection: %v", err)
	}
	if _, err := e.dialTLS("127.0.0.1"); err == nil {
		t.Error("third connection from one source completed a handshake, want it refused (per-source cap 2)")
	}
	// The listener counts the refusal just after closing the connection.
	for deadline := time.Now().Add(5 * time.Second); metricValue(m.tcpRefused.WithLabelValues("per_source")) < 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("refused per_source not counted")
		}
	}

	// A client that opens a connection and never speaks: closed by the
	// idle timeout, counted as a failed handshake.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	silent, err := d.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err == nil {
		t.Error("a silent connection got data, want it closed")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Error("a silent connection stayed open past the idle timeout")
	}

	// SIP in clear on the TLS port: refused, counted as not_tls.
	plain, err := d.Dial("tcp", e.addr)
	if err == nil {
		defer plain.Close()
		plain.Write([]byte(msg))
		plain.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 512)
		for {
			if _, err := plain.Read(buf); err != nil {
				break
			}
		}
	}
	deadline = time.Now().Add(5 * time.Second)
	for metricValue(m.tlsHandshakeFailures.WithLabelValues("in", "not_tls")) < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("plain SIP on the TLS port not counted as not_tls")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if strings.Count(e.plaintext(), "OPTIONS") != 1 {
		t.Errorf("the server read plain SIP from a connection that never did TLS: %q", e.plaintext())
	}
}

// The transport of a request Plateau sends: an in-dialog request follows
// its target's ;transport=, never out of TLS, only udp/tcp/tls.
func TestChooseTransport(t *testing.T) {
	env := newRegEnv(t)
	s := env.s
	s.opts.TLS = &TLSOptions{Listen: "127.0.0.1:5061"}
	s.tlsConf = &tls.Config{}
	build := func(method sip.RequestMethod, target, transport string, toTag bool) *sip.Request {
		var u sip.Uri
		if err := sip.ParseUri(target, &u); err != nil {
			t.Fatal(err)
		}
		req := sip.NewRequest(method, u)
		to := &sip.ToHeader{Address: u, Params: sip.NewParams()}
		if toTag {
			to.Params.Add("tag", "peer")
		}
		req.AppendHeader(to)
		req.AppendHeader(&sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "127.0.0.1", Port: 5060, Params: sip.NewParams()})
		if transport != "" {
			req.SetTransport(transport)
		}
		return req
	}
	tests := []struct {
		name            string
		req             *sip.Request
		want, wantErr   string
		wantViaPortFrom string
	}{
		{"in dialog, Contact tcp over a UDP dialog", build(sip.BYE, "sip:101@10.0.0.5:5062;transport=tcp", "UDP", true), "TCP", "", ""},
		{"in dialog, Contact tls over a TCP dialog", build(sip.BYE, "sip:101@10.0.0.5:5061;transport=tls", "TCP", true), "TLS", "", "tls"},
		{"in dialog, sips target", build(sip.BYE, "sips:101@10.0.0.5:5061", "UDP", true), "TLS", "", "tls"},
		{"in dialog, TLS dialog never leaves TLS for udp", build(sip.BYE, "sip:carrier@192.0.2.1:5060;transport=udp", "TLS", true), "TLS", "", ""},
		{"in dialog, TLS dialog never leaves TLS for tcp", build(sip.INVITE, "sip:carrier@192.0.2.1:5060;transport=tcp", "TLS", true), "TLS", "", ""},
		{"in dialog, unknown transport ignored", build(sip.BYE, "sip:101@10.0.0.5:5062;transport=ws", "UDP", true), "UDP", "", ""},
		{"in dialog, no transport named: the dialog's", build(sip.BYE, "sip:101@10.0.0.5:5062", "TCP", true), "TCP", "", ""},
		{"CANCEL follows its INVITE", build(sip.CANCEL, "sip:101@10.0.0.5:5062;transport=tcp", "UDP", true), "UDP", "", ""},
		{"out of dialog: as built", build(sip.OPTIONS, "sip:10.0.0.5:5062", "UDP", false), "UDP", "", ""},
		{"initial INVITE to a Contact saying ws: refused", build(sip.INVITE, "sip:101@10.0.0.5:5062;transport=ws", "", false), "", "does not speak", ""},
		{"initial INVITE to a Contact saying sctp: refused", build(sip.INVITE, "sip:101@10.0.0.5:5062;transport=sctp", "", false), "", "does not speak", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.chooseTransport(tt.req)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.req.Transport(); got != tt.want {
				t.Errorf("transport %s, want %s", got, tt.want)
			}
			if v := tt.req.Via(); v.Transport != tt.want {
				t.Errorf("Via transport %s, want %s", v.Transport, tt.want)
			} else if tt.wantViaPortFrom == "tls" && v.Port != 5061 {
				t.Errorf("Via port %d, want the TLS listener's 5061", v.Port)
			}
			// The address is never the transport's business.
			if tt.req.Recipient.Host != "10.0.0.5" && tt.req.Recipient.Host != "192.0.2.1" {
				t.Errorf("Request-URI host changed: %s", tt.req.Recipient.Host)
			}
		})
	}

	// Without sip.tls, nothing leaves over TLS.
	s.opts.TLS, s.tlsConf = nil, nil
	if err := s.chooseTransport(build(sip.BYE, "sip:101@10.0.0.5:5061;transport=tls", "UDP", true)); err == nil {
		t.Error("a TLS request without sip.tls was allowed")
	}
}

// A TLS trunk's connection is Plateau's own: verified with the trunk's
// roots and name, then handed to sipgo; a carrier whose certificate does
// not verify gets no connection, and a phone without an open connection
// gets none either.
func TestTLSOutboundVerifiesTheCarrier(t *testing.T) {
	carrierPair, carrierRoots := testPair(t, "127.0.0.1", "sbc.carrier.example")
	_, otherRoots := testPair(t, "127.0.0.1")
	l, err := tls.Listen("tcp", "127.0.0.1:0", certs.ServerConfig(carrierPair, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { c.(*tls.Conn).Handshake(); c.Read(make([]byte, 1)); c.Close() }()
		}
	}()
	dest := l.Addr().(*net.TCPAddr).AddrPort()

	for _, tt := range []struct {
		name       string
		cfg        *tls.Config
		wantReason string
	}{
		{"trusted, right name", certs.ClientConfig("sbc.carrier.example", carrierRoots, nil), ""},
		{"unknown CA", certs.ClientConfig("127.0.0.1", otherRoots, nil), "certificate"},
		{"wrong name", certs.ClientConfig("sbc.other.example", carrierRoots, nil), "certificate"},
		{"system roots only", certs.ClientConfig("127.0.0.1", nil, nil), "certificate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := newRegEnv(t)
			s := env.s
			tr := newTrunk(TrunkConfig{Name: "carrier", Address: dest.String(), Transport: "tls", TLS: tt.cfg})
			s.trunks = []*Trunk{tr}
			s.trunkAddrsOf = map[*Trunk][]netip.AddrPort{tr: {dest}}
			hl := s.startTLSHandoff(l.Addr())
			defer hl.Close()
			accepted := make(chan net.Conn, 1)
			go func() {
				// What sipgo's serving loop does: Accept, pool, Accept again.
				for {
					c, err := hl.Accept()
					if err != nil {
						return
					}
					accepted <- c
				}
			}()
			var u sip.Uri
			sip.ParseUri("sip:+33240123456@"+dest.String()+";transport=tls", &u)
			req := sip.NewRequest(sip.INVITE, u)
			req.SetTransport("TLS")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := s.routeTLS(ctx, req)
			var te *TLSError
			switch {
			case tt.wantReason == "" && err != nil:
				t.Fatalf("routeTLS: %v", err)
			case tt.wantReason == "":
				select {
				case c := <-accepted:
					if c.RemoteAddr().String() != dest.String() {
						t.Errorf("handed %s to sipgo, want %s", c.RemoteAddr(), dest)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("the connection never reached sipgo")
				}
				if err := s.routeTLS(ctx, req); err != nil {
					t.Errorf("second request: %v (want the connection reused)", err)
				}
				select {
				case <-accepted:
					t.Error("a second connection was dialled, want the first reused")
				default:
				}
			case !errors.As(err, &te) || te.Reason != tt.wantReason || !errors.Is(err, ErrTLS):
				t.Fatalf("routeTLS: %v, want a TLSError %s", err, tt.wantReason)
			default:
				select {
				case <-accepted:
					t.Error("an unverified connection reached sipgo")
				default:
				}
				if v := metricValue(s.metrics.tlsHandshakeFailures.WithLabelValues("out", tt.wantReason)); v != 1 {
					t.Errorf("failures{out,%s} = %v, want 1", tt.wantReason, v)
				}
			}
		})
	}

	t.Run("phone without a connection", func(t *testing.T) {
		env := newRegEnv(t)
		var u sip.Uri
		sip.ParseUri("sip:101@127.0.0.1:5071;transport=tls", &u)
		req := sip.NewRequest(sip.BYE, u)
		req.SetTransport("TLS")
		var te *TLSError
		if err := env.s.routeTLS(context.Background(), req); !errors.As(err, &te) || te.Reason != "no_connection" {
			t.Fatalf("routeTLS: %v, want no_connection", err)
		}
	})
}

// sipgo's own TLS dialer never opens a connection.
func TestSipgoTLSDialRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan struct{}, 1)
	go func() {
		if c, err := l.Accept(); err == nil {
			got <- struct{}{}
			c.Close()
		}
	}()
	tp := refusingTLSTransport()
	d := tp.DialerCreate(nil)
	if _, err := d.Dial("tcp", l.Addr().String()); !errors.Is(err, errSipgoTLSDial) {
		t.Fatalf("dial: %v, want refused", err)
	}
	select {
	case <-got:
		t.Error("a connection reached the listener")
	case <-time.After(200 * time.Millisecond):
	}
}

// FuzzChooseTransport: whatever a peer's Contact says, a request leaves
// over udp, tcp or tls only, a TLS dialog stays on TLS, and the address
// is untouched.
func FuzzChooseTransport(f *testing.F) {
	for _, seed := range []struct {
		target, transport string
		inDialog          bool
	}{
		{"sip:101@10.0.0.5:5062;transport=tcp", "UDP", true},
		{"sips:101@10.0.0.5:5061;transport=udp", "UDP", true},
		{"sip:c@192.0.2.1;transport=udp", "TLS", true},
		{"sip:101@10.0.0.5;transport=ws", "", false},
		{"sip:101@10.0.0.5;transport=", "TCP", true},
		{"sip:101@[2001:db8::1]:5061;transport=TLS;lr", "UDP", true},
	} {
		f.Add(seed.target, seed.transport, seed.inDialog)
	}
	// chooseTransport reads only the options, the TLS config and the log.
	s := &Server{opts: Options{Listen: "127.0.0.1:5060", TLS: &TLSOptions{Listen: "127.0.0.1:5061"}},
		tlsConf: &tls.Config{}, log: slog.New(slog.DiscardHandler)}
	f.Fuzz(func(t *testing.T, target, transport string, dialog bool) {
		var u sip.Uri
		if err := sip.ParseUri(target, &u); err != nil {
			return
		}
		req := sip.NewRequest(sip.BYE, u)
		to := &sip.ToHeader{Address: u, Params: sip.NewParams()}
		if dialog {
			to.Params.Add("tag", "peer")
		}
		req.AppendHeader(to)
		req.AppendHeader(&sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "127.0.0.1", Port: 5060, Params: sip.NewParams()})
		if transport != "" {
			req.SetTransport(transport)
		}
		was := strings.ToUpper(req.Transport())
		host, port := u.Host, u.Port
		if err := s.chooseTransport(req); err != nil {
			return
		}
		got := req.Transport()
		if got != "UDP" && got != "TCP" && got != "TLS" {
			t.Fatalf("left over %q", got)
		}
		if dialog && was == "TLS" && got != "TLS" {
			t.Fatalf("a TLS dialog left TLS for %s", got)
		}
		if req.Recipient.Host != host || req.Recipient.Port != port {
			t.Fatalf("address changed: %s:%d -> %s:%d", host, port, req.Recipient.Host, req.Recipient.Port)
		}
		if req.Via().Transport != got {
			t.Fatalf("Via says %s, request goes over %s", req.Via().Transport, got)
		}
	})
}

// Plateau's Contact names the transport: transport=tls and the TLS port
// over TLS, sips: for a sips: dialog, transport=tcp over TCP (with or
// without TLS configured), the plain one over UDP.
func TestContactFor(t *testing.T) {
	s := &Server{opts: Options{Listen: "127.0.0.1:5060", ExternalAddress: "203.0.113.5", TLS: &TLSOptions{Listen: "0.0.0.0:5061"}}}
	for _, tt := range []struct{ transport, want string }{
		{"UDP", "sip:plateau@203.0.113.5:5060"},
		{"TCP", "sip:plateau@203.0.113.5:5060;transport=tcp"},
		{"tcp", "sip:plateau@203.0.113.5:5060;transport=tcp"},
		{"TLS", "sip:plateau@203.0.113.5:5061;transport=tls"},
		{"tls", "sip:plateau@203.0.113.5:5061;transport=tls"},
		{"SIPS", "sips:plateau@203.0.113.5:5061"},
	} {
		c := s.ContactFor(tt.transport)
		if got := c.Address.String(); got != tt.want {
			t.Errorf("ContactFor(%s) = %s, want %s", tt.transport, got, tt.want)
		}
	}
	plain := &Server{opts: Options{Listen: "127.0.0.1:5060", ExternalAddress: "203.0.113.5"}}
	for transport, want := range map[string]string{"UDP": "sip:plateau@203.0.113.5:5060", "TCP": "sip:plateau@203.0.113.5:5060;transport=tcp"} {
		c := plain.ContactFor(transport)
		if got := c.Address.String(); got != want {
			t.Errorf("without TLS, ContactFor(%s) = %s, want %s", transport, got, want)
		}
	}
	var u sip.Uri
	sip.ParseUri("sips:+33240123456@203.0.113.5:5061", &u)
	req := sip.NewRequest(sip.INVITE, u)
	req.SetTransport("TLS")
	if got := ContactTransport(req); got != "SIPS" {
		t.Errorf("ContactTransport(sips over TLS) = %s", got)
	}
	req.SetTransport("UDP")
	if got := ContactTransport(req); got != "UDP" {
		t.Errorf("ContactTransport(sips over UDP) = %s", got)
	}
}
