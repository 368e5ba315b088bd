package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// This file is the surface the call layer (package b2bua) runs on, and
// the types the signalling layer declares for itself so that neither
// layer needs the store's or the config's (cmd/plateau adapts them).

// Role is an account's role, as the store names it.
type Role string

// The roles the signalling and call layers tell apart.
const (
	RoleOperator   Role = "operator"
	RoleSupervisor Role = "supervisor"
	RoleSecurity   Role = "security"
	RoleAdmin      Role = "admin"
)

// Account is a user as SIP sees it.
type Account struct {
	Extension   string
	DisplayName string
	Role        Role
	HA1MD5      string // empty: no SIP secret, the account cannot use SIP
	HA1SHA256   string
	Active      bool // false: suspended
}

// ErrUnknownAccount is what Users.User returns for an extension that does
// not exist (any other error is a lookup failure).
var ErrUnknownAccount = errors.New("sip: unknown account")

// Binding is one registered contact of an extension.
type Binding struct {
	Extension string
	Contact   string
	Source    string
	Transport string
	UserAgent string
	CallID    string
	CSeq      uint32
	ExpiresAt time.Time
	// Path is the REGISTER's Path header values (RFC 3327), in order: the
	// proxies to ring the phone through.
	Path []string
}

// CallLayer is what the server asks of the call layer.
type CallLayer interface {
	// Run does the call layer's background work until ctx ends (Serve
	// runs it supervised: a panic is recovered and it starts again).
	Run(ctx context.Context)
	// Shutdown hangs up every call; Serve calls it while the transports
	// are still open.
	Shutdown()
	ActiveCalls() int
	// MediaIP is the address calls' RTP is anchored on: never a phone's.
	MediaIP() netip.Addr
}

// EnableCalls attaches the call layer and the trunks. It builds the
// client every outgoing request is sent with (from the listening socket,
// so a trunk sees the port it knows and in-dialog requests come back
// where the dialog lives).
func (s *Server) EnableCalls(cl CallLayer, trunks []TrunkConfig) error {
	if cl == nil {
		return errors.New("sip: EnableCalls needs a call layer")
	}
	if s.calls != nil {
		return errors.New("sip: calls already enabled")
	}
	client, err := sipgo.NewClient(s.ua, sipgo.WithClientHostname(s.opts.ExternalAddress), sipgo.WithClientConnectionAddr(s.opts.Listen))
	if err != nil {
		return fmt.Errorf("sip client: %w", err)
	}
	client.TxRequester = clientBinding{s} // but not for TCP (transport_client.go)
	s.client = client
	s.dialogs = &sipgo.DialogUA{Client: client, ContactHDR: s.ContactFor("UDP")}
	s.dialogsTLS = &sipgo.DialogUA{Client: client, ContactHDR: s.ContactFor("TLS")}
	s.dialogsSIPS = &sipgo.DialogUA{Client: client, ContactHDR: s.ContactFor("SIPS")}
	s.trunkAddrsOf = map[*Trunk][]netip.AddrPort{}
	for _, tc := range trunks {
		t := newTrunk(tc)
		s.trunks = append(s.trunks, t)
		addrs := resolveTrunk(t.Address)
		s.trunkAddrsOf[t] = addrs
		s.trunkAddrs = append(s.trunkAddrs, addrs...)
	}
	s.calls = cl
	return nil
}

// Handle registers the handler of a method. Every handler runs behind the
// server's guard: panics recovered, banned sources dropped, malformed
// requests refused before it.
func (s *Server) Handle(method sip.RequestMethod, h sipgo.RequestHandler) {
	h = s.guard(h)
	switch method {
	case sip.INVITE:
		s.srv.OnInvite(h)
	case sip.ACK:
		s.srv.OnAck(h)
	case sip.BYE:
		s.srv.OnBye(h)
	case sip.CANCEL:
		s.srv.OnCancel(h)
	case sip.UPDATE:
		s.srv.OnUpdate(h)
	case sip.REFER:
		s.srv.OnRefer(h)
	case sip.INFO:
		s.srv.OnInfo(h)
	case sip.NOTIFY:
		s.srv.OnNotify(h)
	case sip.MESSAGE:
		s.srv.OnMessage(h)
	case sip.PRACK:
		s.srv.OnPrack(h)
	case sip.SUBSCRIBE:
		s.srv.OnSubscribe(h)
	case sip.PUBLISH:
		s.srv.OnPublish(h)
	default:
		// REGISTER and OPTIONS are the signalling layer's own.
		panic("sip: Handle: method " + string(method) + " cannot be handled by the call layer")
	}
}

// Respond sends a response and counts it.
func (s *Server) Respond(tx sip.ServerTransaction, req *sip.Request, res *sip.Response) {
	s.respond(tx, req, res)
}

// Context is Serve's context (Background before Serve): lookups made on
// sipgo's goroutines use it, so that shutdown cancels them.
func (s *Server) Context() context.Context { return s.ctx }

// Audit writes an entry in the audit chain.
func (s *Server) Audit(ctx context.Context, kind, actor, subject, outcome, reason, source string, details map[string]any) {
	s.audit.Audit(ctx, kind, actor, subject, outcome, reason, source, details)
}

// Log is the server's logger.
func (s *Server) Log() *slog.Logger { return s.log }

// Now is the server's clock.
func (s *Server) Now() time.Time { return s.now() }

// ExternalAddress is the host written in Contact and Via.
func (s *Server) ExternalAddress() string { return s.opts.ExternalAddress }

// Realm is the digest realm.
func (s *Server) Realm() string { return s.opts.Realm }

// Contacts returns ext's bindings not yet expired.
func (s *Server) Contacts(ext string) []Binding { return s.reg.contacts(ext) }

// Extensions returns the extensions with bindings.
func (s *Server) Extensions() []string { return s.reg.extensions() }

// User looks an account up in the user directory.
func (s *Server) User(ctx context.Context, ext string) (Account, error) {
	return s.users.User(ctx, ext)
}

// Authenticate checks req's digest credentials (challenging or refusing
// through tx when they do not pass; proxy: Proxy-Authenticate).
func (s *Server) Authenticate(req *sip.Request, tx sip.ServerTransaction, proxy bool) (Account, bool) {
	return s.authenticate(req, tx, proxy)
}

// Source is where req really came from (see source.go).
func (s *Server) Source(req *sip.Request) (Source, bool) { return s.source(req) }

// PathAllowed checks a binding's Path before a request is sent through it.
func (s *Server) PathAllowed(path []string) error { return s.pathAllowed(path) }

// CountPanic counts a panic recovered in the call layer
// (plateau_panics_total{where}).
func (s *Server) CountPanic(where string) { s.metrics.panics.WithLabelValues(where).Inc() }

// Client is what requests Plateau originates are sent with (nil before
// EnableCalls).
func (s *Server) Client() *sipgo.Client { return s.client }

// DialogUA builds the call layer's dialogs (nil before EnableCalls).
func (s *Server) DialogUA() *sipgo.DialogUA { return s.dialogs }

// Trunks are the configured trunks, in configuration order.
func (s *Server) Trunks() []*Trunk { return s.trunks }

// TrunkAddrs returns a trunk's resolved addresses.
func (s *Server) TrunkAddrs(t *Trunk) []netip.Addr {
	var out []netip.Addr
	for _, ap := range s.trunkAddrsOf[t] {
		out = append(out, ap.Addr())
	}
	return out
}

// IsTrunkAddr reports whether a phone destination a:port is a trunk's:
// a trunk's own address (host and port: a phone and the carrier may
// share a host only in tests) or a host in a trunk's allowed sources.
func (s *Server) IsTrunkAddr(a netip.Addr, port uint16) bool {
	a = a.Unmap()
	if port == 0 {
		port = 5060
	}
	for _, t := range s.trunkAddrs {
		if t.Addr() == a && t.Port() == port {
			return true
		}
	}
	for _, t := range s.trunks {
		if t.Allows(a) {
			return true
		}
	}
	return false
}

// TrunkFor returns the trunk whose allowed sources contain src.
func (s *Server) TrunkFor(src netip.Addr) *Trunk {
	for _, t := range s.trunks {
		if t.Allows(src) {
			return t
		}
	}
	return nil
}

// runTrunks keeps the trunks' health until ctx ends.
func (s *Server) runTrunks(ctx context.Context) {
	var wg sync.WaitGroup
	for _, t := range s.trunks {
		wg.Add(1)
		go func() { defer wg.Done(); t.keepalive(ctx, s.client, s) }()
		if t.Register != nil {
			wg.Add(1)
			go func() { defer wg.Done(); s.registerTrunk(ctx, t) }()
		}
	}
	wg.Wait()
}

// resolveTrunk returns the addresses of a trunk's host:port (a literal
// address, or the host's addresses now; a name that does not resolve adds
// none: the trunk's allowed_sources still count as trunk addresses).
func resolveTrunk(hostport string) []netip.AddrPort {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		host, p = hostport, "5060"
	}
	port, _ := strconv.Atoi(p)
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return []netip.AddrPort{netip.AddrPortFrom(a.Unmap(), uint16(port))}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	out := make([]netip.AddrPort, 0, len(ips))
	for _, a := range ips {
		out = append(out, netip.AddrPortFrom(a.Unmap(), uint16(port)))
	}
	return out
}

// RequestHost is the host a request really came from: its transport
// source, or behind a trusted proxy (sip.trusted_proxies, source.go) the
// phone's address as that proxy saw it. Dialog peers are compared on it.
func (s *Server) RequestHost(req *sip.Request) (netip.Addr, bool) {
	src, ok := s.source(req)
	if !ok || !src.Addr.IsValid() {
		return netip.Addr{}, false
	}
	return src.Addr.Addr().Unmap(), true
}

// PeerOf is who may speak in the dialog req opens: the host it really
// came from and, behind a trusted proxy, that proxy itself (a proxy that
// record-routes forwards the phone's ACK and BYE, and may send its own).
func (s *Server) PeerOf(req *sip.Request) func(netip.Addr) bool {
	src, ok := s.source(req)
	if !ok || !src.Addr.IsValid() {
		return func(netip.Addr) bool { return false }
	}
	phone, proxy := src.Addr.Addr().Unmap(), src.Proxy()
	return func(h netip.Addr) bool {
		h = h.Unmap()
		return h == phone || (proxy.IsValid() && h == proxy.Unmap())
	}
}

// PhoneBindingAllowed checks a stored binding again at use: its Contact
// host must be allowed for phones given the REGISTER's source. It
// returns the host to send to.
func (s *Server) PhoneBindingAllowed(bnd Binding) (netip.Addr, error) {
	var u sip.Uri
	if err := sip.ParseUri(bnd.Contact, &u); err != nil {
		return netip.Addr{}, fmt.Errorf("contact %q: %v", bnd.Contact, err)
	}
	src, _ := netip.ParseAddrPort(bnd.Source)
	return s.PhoneAddrAllowed(u.Host, uint16(u.Port), src.Addr())
}

// PhoneAddrAllowed says whether Plateau may send to host as a phone
// registered from regSource: host must be an IP address, never a trunk's,
// and either the REGISTER's own source or inside sip.phone_networks.
func (s *Server) PhoneAddrAllowed(host string, port uint16, regSource netip.Addr) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("contact host %q is not an IP address", host)
	}
	a = a.Unmap()
	if s.IsTrunkAddr(a, port) {
		return netip.Addr{}, fmt.Errorf("contact %s is a trunk's address", netip.AddrPortFrom(a, port))
	}
	if regSource.IsValid() && a == regSource.Unmap() {
		return a, nil
	}
	if err := s.notAPhoneHost(a); err != nil { // targetguard.go
		return netip.Addr{}, err
	}
	for _, p := range s.opts.PhoneNetworks {
		if p.Contains(a) {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("contact host %s is neither the REGISTER's source %s nor in sip.phone_networks", a, regSource)
}

// GetHeader returns req's first header named name, any case.
func GetHeader(req *sip.Request, name string) sip.Header { return getHeader(req, name) }

// GetHeaders returns all of req's headers named name, in order.
func GetHeaders(req *sip.Request, name string) []sip.Header { return getHeaders(req, name) }

// SourceAddr is the network source of a request (not its Via).
func SourceAddr(req *sip.Request) (netip.Addr, bool) { return sourceAddr(req) }

// RouteViaPath adds a binding's Path as the Route of a request sent to it.
func RouteViaPath(req *sip.Request, b Binding) { routeViaPath(req, b) }

// DigestAnswer answers a digest challenge (401/407) to a request.
func DigestAnswer(res *sip.Response, method sip.RequestMethod, uri, username, password string) (sip.Header, error) {
	return digestAnswer(res, method, uri, username, password)
}

// MsgHeaders returns a request's or a response's headers named name.
func MsgHeaders(m interface{ Headers() []sip.Header }, name string) []sip.Header {
	return msgHeaders(m, name)
}

// TrustedProxy reports whether a is one of sip.trusted_proxies.
func (s *Server) TrustedProxy(a netip.Addr) bool { return s.trusted.Contains(a) }

// SplitNameAddrs splits header values on the commas between name-addrs.
func SplitNameAddrs(hs []sip.Header) []string { return splitNameAddrs(hs) }

// ApplyBindingsForTest stores (up) and removes (rm) bindings of ext as the
// registrar does after a REGISTER, without its checks: the call layer's
// tests bind phones behind its back, as bindings stored before an upgrade
// would be. Nothing else may call it.
func (s *Server) ApplyBindingsForTest(ext string, up, rm []Binding) error {
	return s.reg.apply(ext, up, rm)
}
