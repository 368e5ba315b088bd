package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/prometheus/client_golang/prometheus"
)

// rawRequest builds a request as a phone would send it from src (host:port).
func rawRequest(method, src string, extra ...string) string {
	lines := []string{
		method + " sip:101@127.0.0.1 SIP/2.0",
		fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=z9hG4bK-%d;rport", src, branchSeq.Add(1)),
		"From: <sip:101@127.0.0.1>;tag=a1",
		"To: <sip:101@127.0.0.1>",
		fmt.Sprintf("Call-ID: raw-%d@test", branchSeq.Add(1)),
		"CSeq: 1 " + method,
		"Max-Forwards: 70",
	}
	lines = append(lines, extra...)
	return strings.Join(lines, "\r\n") + "\r\nContent-Length: 0\r\n\r\n"
}

func TestCheckRequest(t *testing.T) {
	drop := func(msg, header string) string {
		var out []string
		for _, l := range strings.Split(msg, "\r\n") {
			if !strings.HasPrefix(l, header+":") {
				out = append(out, l)
			}
		}
		return strings.Join(out, "\r\n")
	}
	add := func(msg, line string) string { return strings.Replace(msg, "\r\n", "\r\n"+line+"\r\n", 1) }
	inv := rawRequest("INVITE", "127.0.0.1:5999")
	tests := []struct {
		name   string
		msg    string
		status int
		phrase string
	}{
		{"valid", inv, 0, ""},
		{"valid compact forms", "INVITE sip:1@h SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\nf: <sip:a@h>;tag=1\r\nt: <sip:1@h>\r\ni: abc\r\nCSeq: 1 INVITE\r\nl: 0\r\n\r\n", 0, ""},
		{"valid tel URI", strings.Replace(inv, "sip:101@127.0.0.1 SIP", "tel:+33240000000 SIP", 1), 0, ""},
		{"sips URI over UDP", strings.Replace(inv, "sip:101@127.0.0.1 SIP", "sips:101@127.0.0.1 SIP", 1), 416, "SIPS Requires TLS"},
		{"sips URI over TCP", strings.Replace(strings.Replace(inv, "sip:101@127.0.0.1 SIP", "sips:101@127.0.0.1 SIP", 1), "SIP/2.0/UDP", "SIP/2.0/TCP", 1), 416, "SIPS Requires TLS"},
		{"sips URI over TLS", strings.Replace(strings.Replace(inv, "sip:101@127.0.0.1 SIP", "sips:101@127.0.0.1 SIP", 1), "SIP/2.0/UDP", "SIP/2.0/TLS", 1), 0, ""},
		{"SIP/7.0", strings.Replace(inv, " SIP/2.0\r\n", " SIP/7.0\r\n", 1), 505, "Version Not Supported"},
		{"unknown scheme", strings.Replace(inv, "sip:101@127.0.0.1 SIP", "nobodyKnowsThisScheme:opaque SIP", 1), 416, "Unsupported URI Scheme"},
		{"http scheme", strings.Replace(inv, "sip:101@127.0.0.1 SIP", "http://example.com/ SIP", 1), 416, "Unsupported URI Scheme"},
		{"no Call-ID", drop(inv, "Call-ID"), 400, "Missing Call-ID Header"},
		{"no From", drop(inv, "From"), 400, "Missing From Header"},
		{"no To", drop(inv, "To"), 400, "Missing To Header"},
		{"no CSeq", drop(inv, "CSeq"), 400, "Missing CSeq Header"},
		{"no Via", drop(inv, "Via"), 400, "Missing Via Header"},
		{"two Call-IDs", add(inv, "Call-ID: other@test"), 400, "Multiple Call-ID Headers"},
		{"two Call-IDs, one compact", add(inv, "i: other@test"), 400, "Multiple Call-ID Headers"},
		{"two From", add(inv, "From: <sip:102@127.0.0.1>;tag=b2"), 400, "Multiple From Headers"},
		{"two To", add(inv, "To: <sip:102@127.0.0.1>"), 400, "Multiple To Headers"},
		{"two CSeq", add(inv, "CSeq: 2 INVITE"), 400, "Multiple CSeq Headers"},
		{"two Max-Forwards", add(inv, "Max-Forwards: 5"), 400, "Multiple Max-Forwards Headers"},
		{"CSeq of another method", strings.Replace(inv, "CSeq: 1 INVITE", "CSeq: 1 REGISTER", 1), 400, "CSeq Method Does Not Match Request"},
		{"CSeq method lower case", strings.Replace(inv, "CSeq: 1 INVITE", "CSeq: 1 invite", 1), 400, "CSeq Method Does Not Match Request"},
		{"ACK without Call-ID", drop(rawRequest("ACK", "127.0.0.1:5999"), "Call-ID"), 400, "Missing Call-ID Header"},
		{"CANCEL valid", rawRequest("CANCEL", "127.0.0.1:5999"), 0, ""},
		{"Max-Forwards not a number", strings.Replace(inv, "Max-Forwards: 70", "Max-Forwards: abc", 1), 400, "Malformed Max-Forwards Header"},
		{"Max-Forwards negative", strings.Replace(inv, "Max-Forwards: 70", "Max-Forwards: -1", 1), 400, "Malformed Max-Forwards Header"},
		{"CSeq not a number", strings.Replace(inv, "CSeq: 1 INVITE", "CSeq: x INVITE", 1), 400, "Malformed CSeq Header"},
		{"From without URI", regexp.MustCompile(`From: [^\r]*`).ReplaceAllString(inv, "From: garbage"), 400, "Malformed From Header"},
		{"To without URI", regexp.MustCompile(`To: [^\r]*`).ReplaceAllString(inv, "To: <>"), 400, "Malformed To Header"},
		{"empty Call-ID", regexp.MustCompile(`Call-ID: [^\r]*`).ReplaceAllString(inv, "Call-ID: "), 400, "Malformed Call-ID Header"},
	}
	parser := newParser()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parser.ParseSIP([]byte(tt.msg))
			if err != nil {
				t.Fatalf("parse: %v\n%s", err, tt.msg)
			}
			req := m.(*sip.Request)
			if v := req.Via(); v != nil {
				req.SetTransport(v.Transport) // as the listener it came on would
			}
			got := checkRequest(req)
			switch {
			case tt.status == 0 && got != nil:
				t.Fatalf("refused %d %q, want accepted", got.status, got.phrase)
			case tt.status != 0 && got == nil:
				t.Fatalf("accepted, want %d %q", tt.status, tt.phrase)
			case got != nil && (got.status != tt.status || got.phrase != tt.phrase):
				t.Fatalf("got %d %q, want %d %q", got.status, got.phrase, tt.status, tt.phrase)
			}
		})
	}
}

func TestHasAuthorization(t *testing.T) {
	for _, tt := range []struct {
		msg  string
		want bool
	}{
		{rawRequest("REGISTER", "h:1"), false},
		{rawRequest("REGISTER", "h:1", `Authorization: Digest username="101"`), true},
		{rawRequest("REGISTER", "h:1", `authorization: Digest username="101"`), true},
		{rawRequest("REGISTER", "h:1", `AUTHORIZATION   : Digest username="101"`), true},
		{rawRequest("REGISTER", "h:1", "Proxy-Authorization: Digest x"), false}, // not what a REGISTER answers
		{rawRequest("REGISTER", "h:1", "X-Authorization: Digest x"), false},
		{rawRequest("REGISTER", "h:1", "Authorization-Info: x"), false},
		{strings.Replace(rawRequest("REGISTER", "h:1"), "\r\n\r\n", "\r\n\r\nAuthorization: in the body\r\n", 1), false},
		{"REGISTER sip:x SIP/2.0\nAuthorization: Digest x\n\n", true}, // bare LF
	} {
		if got := hasAuthorization([]byte(tt.msg)); got != tt.want {
			t.Errorf("hasAuthorization = %v, want %v for:\n%s", got, tt.want, tt.msg)
		}
	}
}

func TestSourceLimiter(t *testing.T) {
	clk := newClock()
	l := newSourceLimiter(5, clk.now)
	var limited []string
	l.onLimit = func(ip netip.Addr) { limited = append(limited, ip.String()) }
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	count := func(ip netip.Addr, n int) (ok int) {
		for range n {
			if l.allow(ip) {
				ok++
			}
		}
		return ok
	}
	if got := count(a, 15); got != 10 {
		t.Errorf("burst: %d allowed of 15, want 10 (twice the rate)", got)
	}
	if got := count(b, 3); got != 3 {
		t.Errorf("another source: %d allowed of 3, want 3", got)
	}
	clk.advance(time.Second)
	if got := count(a, 10); got != 5 {
		t.Errorf("one second later: %d allowed, want 5", got)
	}
	if !slices.Equal(limited, []string{"192.0.2.1", "192.0.2.1"}) {
		t.Errorf("onLimit calls %v, want one per episode (2) for 192.0.2.1", limited)
	}
	if n := l.sweep(); n != 1 {
		t.Errorf("sweep: %d sources limited, want 1", n)
	}
	clk.advance(2 * time.Minute)
	l.sweep()
	if len(l.buckets) != 0 {
		t.Errorf("%d buckets kept after two idle minutes", len(l.buckets))
	}
	var off *sourceLimiter
	if !off.allow(a) || !newSourceLimiter(0, clk.now).allow(a) {
		t.Error("a nil or zero-rate limiter must allow everything")
	}
}

func TestReplayRingIsBounded(t *testing.T) {
	var r replayRing
	dst := netip.MustParseAddrPort("127.0.0.1:5060")
	for i := range replaySize + 100 {
		r.put(fmt.Sprint(i), dst, []byte(fmt.Sprint("answer ", i)))
	}
	if len(r.index) != replaySize {
		t.Errorf("%d entries, want %d", len(r.index), replaySize)
	}
	if _, _, ok := r.get("0"); ok {
		t.Error("the oldest entry is still there")
	}
	if _, b, ok := r.get(fmt.Sprint(replaySize + 99)); !ok || string(b) != fmt.Sprint("answer ", replaySize+99) {
		t.Errorf("newest entry: %q %v", b, ok)
	}
}

func TestSourceLimiterTableIsBounded(t *testing.T) {
	clk := newClock()
	l := newSourceLimiter(1, clk.now)
	for i := range maxLimitedSources + 100 {
		l.allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	if len(l.buckets) != maxLimitedSources {
		t.Fatalf("%d buckets, want at most %d", len(l.buckets), maxLimitedSources)
	}
	// Sources beyond the table share one bucket: spoofing addresses gets
	// no more than one source's rate.
	allowed := 0
	for i := range 100 {
		if l.allow(netip.AddrFrom4([4]byte{11, 0, 0, byte(i)})) {
			allowed++
		}
	}
	if allowed > 2 {
		t.Errorf("overflow sources: %d allowed, want at most the burst (2)", allowed)
	}
}

// liveServer is a Server serving UDP and TCP on a free port of 127.0.0.1.
type liveServer struct {
	*regEnv
	addr string
	stop func()
}

// handlers registers request handlers before Serve (sipgo's handler table
// is not safe to change while serving).
func startLive(t *testing.T, tune func(*Options), handlers func(*Server)) *liveServer {
	t.Helper()
	env := newRegEnv(t)
	env.s.opts.Transports = []string{"udp", "tcp"}
	if tune != nil {
		tune(&env.s.opts)
		env.s.limiter = newSourceLimiter(env.s.opts.RequestsPerSource, env.clk.now)
		env.s.limiter.onLimit = func(ip netip.Addr) { env.s.refusedSource(ip, "rate_limited") }
	}
	if handlers != nil {
		handlers(env.s)
	}
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := pc.LocalAddr().String()
		pc.Close()
		env.s.opts.Listen = addr
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- env.s.Serve(ctx) }()
		if err := waitListening(env.s, done); err != nil {
			cancel()
			if strings.Contains(err.Error(), "address already in use") {
				continue // the TCP side of the port was taken
			}
			t.Fatal(err)
		}
		ls := &liveServer{regEnv: env, addr: addr}
		var once sync.Once
		ls.stop = func() {
			once.Do(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Serve: %v", err)
				}
			})
		}
		t.Cleanup(ls.stop)
		return ls
	}
	t.Fatal("no free port")
	return nil
}

// waitListening waits until s serves, or returns Serve's error.
func waitListening(s *Server, done <-chan error) error {
	deadline := time.Now().Add(10 * time.Second)
	for !s.Listening() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening after 10s")
		}
		select {
		case err := <-done:
			return fmt.Errorf("serve: %w", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// udp sends msg from conn and returns the first answer's status line ("" if
// none within wait).
func udpExchange(t *testing.T, conn *net.UDPConn, to, msg string, wait time.Duration) string {
	t.Helper()
	dst, _ := net.ResolveUDPAddr("udp", to)
	if _, err := conn.WriteToUDP([]byte(msg), dst); err != nil {
		t.Fatal(err)
	}
	return udpRead(conn, wait)
}

func udpRead(conn *net.UDPConn, wait time.Duration) string {
	buf := make([]byte, 65535)
	conn.SetReadDeadline(time.Now().Add(wait))
	n, _, err := conn.ReadFromUDP(buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

func udpSocket(t *testing.T, ip string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func statusLine(s string) string { l, _, _ := strings.Cut(s, "\r\n"); return l }

// A handler that panics answers 500, is counted and audited, and the
// server goes on serving, over UDP and TCP. Without guard's recover the
// panic would end this test binary.
func TestGuardRecoversPanic(t *testing.T) {
	ls := startLive(t, nil, func(s *Server) {
		s.srv.OnMessage(s.guard(func(req *sip.Request, tx sip.ServerTransaction) {
			if getHeader(req, "X-Panic") != nil {
				var nilReq *sip.Request
				_ = nilReq.CallID().Value() // the nil dereference that once crashed the process
			}
			s.respond(tx, req, sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
		}))
	})
	s := ls.s
	conn := udpSocket(t, "127.0.0.1")
	src := conn.LocalAddr().String()
	if got := statusLine(udpExchange(t, conn, ls.addr, rawRequest("MESSAGE", src, "X-Panic: 1"), 3*time.Second)); got != "SIP/2.0 500 Server Internal Error" {
		t.Fatalf("panicking handler over UDP answered %q, want 500", got)
	}
	if got := statusLine(udpExchange(t, conn, ls.addr, rawRequest("MESSAGE", src), 3*time.Second)); got != "SIP/2.0 200 OK" {
		t.Fatalf("after the panic, UDP MESSAGE answered %q, want 200", got)
	}
	tc, err := net.DialTimeout("tcp", ls.addr, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tsrc := tc.LocalAddr().String()
	for _, tt := range []struct{ msg, want string }{
		{strings.Replace(rawRequest("MESSAGE", tsrc, "X-Panic: 1"), "SIP/2.0/UDP", "SIP/2.0/TCP", 1), "SIP/2.0 500 Server Internal Error"},
		{strings.Replace(rawRequest("OPTIONS", tsrc), "SIP/2.0/UDP", "SIP/2.0/TCP", 1), "SIP/2.0 200 OK"},
	} {
		tc.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := tc.Write([]byte(tt.msg)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		n, err := tc.Read(buf)
		if err != nil {
			t.Fatalf("TCP read: %v", err)
		}
		if got := statusLine(string(buf[:n])); got != tt.want {
			t.Fatalf("TCP answered %q, want %q", got, tt.want)
		}
	}
	if v := metricValue(s.metrics.panics.WithLabelValues("sip.handler")); v != 2 {
		t.Errorf("plateau_panics_total{where=sip.handler} = %v, want 2", v)
	}
	kinds := ls.audit.list()
	if n := countOf(kinds, "process.panic:PANIC"); n != 2 {
		t.Errorf("audit %v: %d process.panic entries, want 2", kinds, n)
	}
	if !strings.Contains(ls.log.String(), "panic recovered") || !strings.Contains(ls.log.String(), "goroutine") {
		t.Error("the panic and its stack were not logged")
	}
}

// list returns the audit entries so far ("kind:reason").
func (a *auditRec) list() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.kinds)
}

func countOf(xs []string, x string) (n int) {
	for _, v := range xs {
		if v == x {
			n++
		}
	}
	return n
}

// RecoverGoroutine ends a panicking goroutine, not the process.
func TestRecoverGoroutine(t *testing.T) {
	env := newRegEnv(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer env.s.RecoverGoroutine("test.worker")
		panic(fmt.Errorf("worker failed with secret %s", "hunter2"))
	}()
	<-done
	if v := metricValue(env.s.metrics.panics.WithLabelValues("test.worker")); v != 1 {
		t.Errorf("plateau_panics_total{where=test.worker} = %v, want 1", v)
	}
	if kinds := env.audit.list(); countOf(kinds, "process.panic:PANIC") != 1 {
		t.Errorf("audit %v, want one process.panic", kinds)
	}
}

// Malformed requests get their 400 (or 416, 505) from the front door,
// statelessly for OPTIONS and through the guard otherwise, and no handler
// sees them.
func TestMalformedRequestsRefusedBeforeHandlers(t *testing.T) {
	var seen sync.Map
	ls := startLive(t, nil, func(s *Server) {
		s.srv.OnInvite(s.guard(func(req *sip.Request, tx sip.ServerTransaction) {
			seen.Store(req.CallID().Value(), true) // would panic without a Call-ID
			s.respond(tx, req, sip.NewResponseFromRequest(req, sip.StatusNotFound, "Not Here", nil))
		}))
	})
	conn := udpSocket(t, "127.0.0.1")
	src := conn.LocalAddr().String()
	noCallID := func(m string) string {
		var out []string
		for _, l := range strings.Split(m, "\r\n") {
			if !strings.HasPrefix(l, "Call-ID:") {
				out = append(out, l)
			}
		}
		return strings.Join(out, "\r\n")
	}
	for _, tt := range []struct{ name, msg, want string }{
		{"INVITE without Call-ID", noCallID(rawRequest("INVITE", src)), "SIP/2.0 400 Missing Call-ID Header"},
		{"INVITE with CSeq BYE", strings.Replace(rawRequest("INVITE", src), "CSeq: 1 INVITE", "CSeq: 1 BYE", 1), "SIP/2.0 400 CSeq Method Does Not Match Request"},
		{"OPTIONS SIP/7.0", strings.Replace(rawRequest("OPTIONS", src), " SIP/2.0\r\n", " SIP/7.0\r\n", 1), "SIP/2.0 505 Version Not Supported"},
		{"OPTIONS unknown scheme", strings.Replace(rawRequest("OPTIONS", src), "sip:101@127.0.0.1 SIP", "nobodyKnowsThisScheme:x SIP", 1), "SIP/2.0 416 Unsupported URI Scheme"},
		{"REGISTER without To", strings.Replace(rawRequest("REGISTER", src), "To: <sip:101@127.0.0.1>\r\n", "", 1), "SIP/2.0 400 Missing To Header"},
		{"INVITE valid", rawRequest("INVITE", src), "SIP/2.0 404 Not Here"},
	} {
		got := udpExchange(t, conn, ls.addr, tt.msg, 3*time.Second)
		// An INVITE may get 100 Trying first.
		for strings.HasPrefix(got, "SIP/2.0 100") {
			got = udpRead(conn, 3*time.Second)
		}
		if statusLine(got) != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, statusLine(got), tt.want)
		}
	}
	n := 0
	seen.Range(func(any, any) bool { n++; return true })
	if n != 1 {
		t.Errorf("the INVITE handler saw %d requests, want only the valid one", n)
	}
	// Audited, within a budget (about one entry a second for all sources).
	if kinds := ls.audit.list(); countOf(kinds, "sip.malformed:MALFORMED:MISSING_CALL_ID") != 1 {
		t.Errorf("audit %v: want the first refusal audited as sip.malformed", kinds)
	}
}

// REGISTER without credentials and OPTIONS are answered statelessly, to
// the address RFC 3581 says; other requests over UDP count against their
// source's rate; banned sources get nothing.
func TestUDPGate(t *testing.T) {
	ls := startLive(t, func(o *Options) { o.RequestsPerSource = 5 }, func(s *Server) {
		s.srv.OnMessage(s.guard(func(req *sip.Request, tx sip.ServerTransaction) {
			s.respond(tx, req, sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
		}))
	})
	s := ls.s
	conn := udpSocket(t, "127.0.0.1")
	src := conn.LocalAddr().String()

	t.Run("stateless challenge", func(t *testing.T) {
		got := udpExchange(t, conn, ls.addr, rawRequest("REGISTER", src), 3*time.Second)
		if statusLine(got) != "SIP/2.0 401 Unauthorized" || strings.Count(got, "WWW-Authenticate: Digest") != 2 {
			t.Fatalf("REGISTER without credentials: %q", got)
		}
		if !strings.Contains(got, ";rport=") || !strings.Contains(got, ";received=127.0.0.1") {
			t.Errorf("the answer's Via has no rport/received:\n%s", got)
		}
		if v := metricValue(s.metrics.stateless.WithLabelValues("REGISTER")); v != 1 {
			t.Errorf("stateless REGISTER answers = %v, want 1", v)
		}
		// The challenge works: the same phone now registers (statefully).
		p := newPhone("101", "demo101", src)
		p.ch = parseChallenge(t, got, "SHA-256")
		m := p.request("REGISTER", "Contact: <sip:101@"+src+">")
		if got := statusLine(udpExchange(t, conn, ls.addr, m.String(), 3*time.Second)); got != "SIP/2.0 200 OK" {
			t.Fatalf("REGISTER answering the stateless challenge: %q", got)
		}
	})
	t.Run("retransmission gets the same answer", func(t *testing.T) {
		msg := rawRequest("REGISTER", src)
		first := udpExchange(t, conn, ls.addr, msg, 3*time.Second)
		again := udpExchange(t, conn, ls.addr, msg, 3*time.Second)
		if first == "" || first != again {
			t.Errorf("retransmitted REGISTER: answers differ:\n%s\n--\n%s", first, again)
		}
		other := udpExchange(t, conn, ls.addr, rawRequest("REGISTER", src), 3*time.Second)
		if other == first {
			t.Error("a new REGISTER got the previous one's answer")
		}
	})
	t.Run("answer goes to the Via port without rport", func(t *testing.T) {
		other := udpSocket(t, "127.0.0.1")
		msg := strings.Replace(rawRequest("OPTIONS", other.LocalAddr().String()), ";rport", "", 1)
		if got := udpExchange(t, conn, ls.addr, msg, 500*time.Millisecond); got != "" {
			t.Errorf("answer came back to the source port: %q", statusLine(got))
		}
		if got := statusLine(udpRead(other, 3*time.Second)); got != "SIP/2.0 200 OK" {
			t.Errorf("Via port got %q, want 200", got)
		}
	})
	t.Run("rate per source", func(t *testing.T) {
		dst, _ := net.ResolveUDPAddr("udp", ls.addr)
		for range 15 {
			conn.WriteToUDP([]byte(rawRequest("MESSAGE", src)), dst)
		}
		// Wait for the 9 expected answers (slowly on a loaded machine),
		// then check that no more come.
		answers := 0
		for answers < 9 && udpRead(conn, 5*time.Second) != "" {
			answers++
		}
		for udpRead(conn, 300*time.Millisecond) != "" {
			answers++
		}
		// The burst (2×5) minus the REGISTER above that needed a transaction.
		if answers != 9 {
			t.Errorf("%d of 15 MESSAGEs answered, want 9 (burst 10, one token spent on the REGISTER)", answers)
		}
		if v := metricValue(s.metrics.dropped.WithLabelValues("rate_limited")); v != 6 {
			t.Errorf("dropped{rate_limited} = %v, want 6", v)
		}
		// OPTIONS costs no transaction and is not limited.
		if got := statusLine(udpExchange(t, conn, ls.addr, rawRequest("OPTIONS", src), 3*time.Second)); got != "SIP/2.0 200 OK" {
			t.Errorf("OPTIONS while limited: %q, want 200", got)
		}
		// Another source is not affected.
		other := udpSocket(t, "127.0.0.2")
		if got := statusLine(udpExchange(t, other, ls.addr, rawRequest("MESSAGE", other.LocalAddr().String()), 3*time.Second)); got != "SIP/2.0 200 OK" {
			t.Errorf("another source: %q, want 200", got)
		}
		ls.clk.advance(time.Second)
		if got := statusLine(udpExchange(t, conn, ls.addr, rawRequest("MESSAGE", src), 3*time.Second)); got != "SIP/2.0 200 OK" {
			t.Errorf("a second later: %q, want 200", got)
		}
		kinds := ls.audit.list()
		if n := countOf(kinds, "sip.rate_limited:RATE_LIMITED"); n != 1 {
			t.Errorf("audit %v: want one sip.rate_limited entry", kinds)
		}
	})
	t.Run("banned source", func(t *testing.T) {
		banned := udpSocket(t, "127.0.0.3")
		for range 3 {
			s.bans.fail("", netip.MustParseAddr("127.0.0.3"))
		}
		for _, m := range []string{"OPTIONS", "REGISTER", "MESSAGE"} {
			if got := udpExchange(t, banned, ls.addr, rawRequest(m, banned.LocalAddr().String()), 300*time.Millisecond); got != "" {
				t.Errorf("banned source, %s: %q, want no answer", m, statusLine(got))
			}
		}
	})
}

// Behind a trusted proxy the rate is each phone's, not the proxy's: one
// phone flooding through it is answered 503 beyond its own burst while the
// phone next to it, and the proxy itself, are served.
func TestTrustedProxyRatePerPhone(t *testing.T) {
	ls := startLive(t, func(o *Options) { o.RequestsPerSource = 5 }, func(s *Server) {
		s.trusted = NewTrustedProxies([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
		s.srv.OnMessage(s.guard(func(req *sip.Request, tx sip.ServerTransaction) {
			s.respond(tx, req, sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
		}))
	})
	proxy := udpSocket(t, "127.0.0.1")
	via := proxy.LocalAddr().String()
	// through the proxy: its Via on top of the phone's, which it stamped.
	from := func(phone string) string {
		m := rawRequest("MESSAGE", via)
		return strings.Replace(m, "\r\nFrom:", fmt.Sprintf(
			"\r\nVia: SIP/2.0/UDP %s:5060;branch=z9hG4bK-p%d;received=%s;rport=5060\r\nFrom:", phone, branchSeq.Add(1), phone), 1)
	}
	dst, _ := net.ResolveUDPAddr("udp", ls.addr)
	for range 15 {
		proxy.WriteToUDP([]byte(from("10.1.0.7")), dst)
	}
	counts := map[string]int{}
	for counts["SIP/2.0 200 OK"]+counts["SIP/2.0 503 Service Unavailable"] < 15 {
		got := udpRead(proxy, 5*time.Second)
		if got == "" {
			break
		}
		counts[statusLine(got)]++
	}
	if counts["SIP/2.0 200 OK"] != 10 || counts["SIP/2.0 503 Service Unavailable"] != 5 {
		t.Errorf("15 MESSAGEs from one phone behind the proxy: %v, want 10 OK (the burst) and 5 503", counts)
	}
	if got := udpExchange(t, proxy, ls.addr, from("10.1.0.8"), 3*time.Second); statusLine(got) != "SIP/2.0 200 OK" {
		t.Errorf("the next phone behind the same proxy: %q, want 200", statusLine(got))
	}
	if got := udpExchange(t, proxy, ls.addr, rawRequest("MESSAGE", via), 3*time.Second); statusLine(got) != "SIP/2.0 200 OK" {
		t.Errorf("the proxy's own request: %q, want 200", statusLine(got))
	}
	if got := udpExchange(t, proxy, ls.addr, from("10.1.0.7"), 3*time.Second); !strings.Contains(got, "Retry-After: 1") {
		t.Errorf("the flooding phone's next request: %q, want a 503 with Retry-After", statusLine(got))
	}
}

// parseChallenge returns the challenge of algorithm alg in a 401.
func parseChallenge(t *testing.T, res, alg string) *digest.Challenge {
	t.Helper()
	m, err := sip.ParseMessage([]byte(res))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range m.GetHeaders("WWW-Authenticate") {
		ch, err := digest.ParseChallenge(h.Value())
		if err == nil && ch.Algorithm == alg {
			return ch
		}
	}
	t.Fatalf("no %s challenge in %q", alg, res)
	return nil
}

// Any datagram goes through the front door without a panic, and what it
// lets through has what handlers rely on. The committed corpus
// (testdata/fuzz/FuzzUDPGate) holds RFC 4475's torture messages.
func FuzzUDPGate(f *testing.F) {
	f.Add([]byte(rawRequest("REGISTER", "127.0.0.1:5999")))
	f.Add([]byte(rawRequest("OPTIONS", "127.0.0.1:5999")))
	srv, err := NewServer(Options{Listen: "127.0.0.1:0", Transports: []string{"udp"}, Realm: "plateau", NonceTTL: time.Minute,
		BanMaxFailures: 3, BanWindow: time.Minute, BanDuration: time.Minute, RequestsPerSource: 1000},
		fakeUsers{"101": Account{Extension: "101"}}, nopBindings{}, &auditRec{}, prometheus.NewRegistry(),
		slog.New(slog.DiscardHandler), newClock().now)
	if err != nil {
		f.Fatal(err)
	}
	defer srv.Close()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		f.Fatal(err)
	}
	defer pc.Close()
	c := srv.newUDPConn(pc)
	// Answers go to the discard port of 127.0.0.1: nobody reads them.
	from := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}
	parser := newParser() // what sipgo parses with (server.go)
	f.Fuzz(func(t *testing.T, data []byte) {
		if !c.admit(data, from) {
			return
		}
		m, err := parser.ParseSIP(data)
		if err != nil {
			return
		}
		req, ok := m.(*sip.Request)
		if !ok || checkRequest(req) != nil {
			return
		}
		if req.CallID() == nil || req.CSeq() == nil || req.From() == nil || req.To() == nil || req.Via() == nil ||
			getHeader(req, "max-forwards") != nil && req.MaxForwards() == nil {
			t.Fatalf("checkRequest passed a request missing a mandatory header:\n%q", data)
		}
		_ = req.CallID().Value()
	})
}

// fakePacketConn fails ReadFrom with errs, then returns datagrams.
type fakePacketConn struct {
	net.PacketConn // nil: only what udpConn uses is implemented
	errs           []error
	datagrams      [][]byte
	from           net.Addr
}

func (f *fakePacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return 0, nil, err
	}
	if len(f.datagrams) > 0 {
		n := copy(b, f.datagrams[0])
		f.datagrams = f.datagrams[1:]
		return n, f.from, nil
	}
	return 0, nil, net.ErrClosed
}

// A UDP read error other than a closed socket is retried with backoff:
// sipgo would stop serving UDP (and Plateau with it) on any.
func TestUDPReadErrorsRetried(t *testing.T) {
	env := newRegEnv(t)
	msg := rawRequest("MESSAGE", "127.0.0.1:5999")
	f := &fakePacketConn{
		errs:      []error{syscall.ENOBUFS, syscall.ECONNREFUSED, syscall.EINTR},
		datagrams: [][]byte{[]byte(msg)},
		from:      &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5999},
	}
	c := env.s.newUDPConn(f)
	var delays []time.Duration
	c.sleep = func(d time.Duration) { delays = append(delays, d) }
	buf := make([]byte, 65535)
	n, from, err := c.ReadFrom(buf)
	if err != nil || string(buf[:n]) != msg || from.String() != "127.0.0.1:5999" {
		t.Fatalf("ReadFrom = %d, %v, %v; want the datagram after the errors", n, from, err)
	}
	if !slices.Equal(delays, []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond}) {
		t.Errorf("backoff %v", delays)
	}
	if v := metricValue(env.s.metrics.udpReadErrors); v != 3 {
		t.Errorf("udp read errors = %v, want 3", v)
	}
	if _, _, err := c.ReadFrom(buf); !errors.Is(err, net.ErrClosed) {
		t.Errorf("closed socket: %v, want net.ErrClosed (Serve ends)", err)
	}
}

// A supervised loop that panics is reported and started again; one that
// returns is not.
func TestSuperviseRestartsAfterPanic(t *testing.T) {
	env := newRegEnv(t)
	env.s.restartDelay = time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runs := 0
	env.s.supervise(ctx, "test.loop", func(context.Context) {
		runs++
		if runs < 3 {
			var m map[string]int
			m["boom"]++ // assignment to a nil map
		}
	})
	if runs != 3 {
		t.Errorf("loop ran %d times, want 3 (two panics, then a normal return)", runs)
	}
	if v := metricValue(env.s.metrics.panics.WithLabelValues("test.loop")); v != 2 {
		t.Errorf("plateau_panics_total{where=test.loop} = %v, want 2", v)
	}
	// Once ctx ends, a panicking loop is not restarted.
	cancel()
	runs = 0
	env.s.supervise(ctx, "test.loop", func(context.Context) { runs++; panic("again") })
	if runs != 1 {
		t.Errorf("after cancel: loop ran %d times, want 1", runs)
	}
}
