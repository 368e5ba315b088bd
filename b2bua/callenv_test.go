package b2bua

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"plateau/media"
	"plateau/policy"
	psip "plateau/sip"
)

// The call layer's test harness, in the style of livekit/sip's inbound
// tests: a real Server on 127.0.0.1 with fakes for the policy, the
// recorder, the users and the audit log, and Go user agents on loopback
// for the operator's phone, the carrier and the trunk's inbound source.

// fakePolicy allows approved numbers for active operators, with a
// per-operator limit computed like policy.Engine (reservations and the
// transfer discount included).
type fakePolicy struct {
	active   *ActiveCalls
	users    fakeUsers
	approved map[string]bool
	limit    int
	mu       sync.Mutex
	asked    []policy.Request
}

func (f *fakePolicy) Decide(ctx context.Context, r policy.Request) policy.Decision {
	f.mu.Lock()
	f.asked = append(f.asked, r)
	f.mu.Unlock()
	e164, err := policy.Normalize(r.Number, "FR")
	if err != nil {
		return policy.Decision{Reason: policy.ReasonInvalidNumber, Rule: policy.RuleNumber, Detail: err.Error()}
	}
	if !f.approved[e164] {
		return policy.Decision{Reason: policy.ReasonNotAllowlisted, Rule: policy.RuleAllowlist, E164: e164}
	}
	mine, _, _ := f.active.Active(ctx, r.Operator)
	if r.Reserved {
		mine--
	}
	if r.Kind == policy.KindRefer {
		mine--
	}
	if mine >= f.limit {
		return policy.Decision{Reason: policy.ReasonLimitReached, Rule: policy.RuleLimits, E164: e164}
	}
	return policy.Decision{Allow: true, Reason: policy.ReasonAllowed, Rule: policy.RuleAll, E164: e164}
}

// fakeRecorder starts recordings that count their packets; fail makes
// Start fail (RECORDER_UNAVAILABLE).
type fakeRecorder struct {
	mu     sync.Mutex
	fail   error
	open   int
	closed int
}

func (f *fakeRecorder) Ready() error { return nil }
func (f *fakeRecorder) Start(context.Context, RecordingInfo) (Recording, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	f.open++
	return &fakeRecording{f: f}, nil
}

type fakeRecording struct{ f *fakeRecorder }

func (r *fakeRecording) TapRTP(media.Leg, *rtp.Packet, time.Time) error { return nil }
func (r *fakeRecording) Close(time.Time) error {
	r.f.mu.Lock()
	r.f.closed++
	r.f.mu.Unlock()
	return nil
}

// auditLog keeps every entry.
type auditLog struct {
	mu      sync.Mutex
	entries []auditEntry
	reg     *prometheus.Registry // supervisedCall's server registry (plateau_panics_total)
}

type auditEntry struct {
	kind, actor, subject, outcome, reason, source string
	details                                       map[string]any
}

func (a *auditLog) Audit(_ context.Context, kind, actor, subject, outcome, reason, source string, details map[string]any) {
	a.mu.Lock()
	a.entries = append(a.entries, auditEntry{kind, actor, subject, outcome, reason, source, details})
	a.mu.Unlock()
}

func (a *auditLog) find(kind, reason string) []auditEntry {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []auditEntry
	for _, e := range a.entries {
		if e.kind == kind && (reason == "" || e.reason == reason) {
			out = append(out, e)
		}
	}
	return out
}

// udpAgent is a scripted SIP peer on one loopback socket: it answers
// INVITEs (200 with SDP) and every other request (200), and keeps what it
// received.
type udpAgent struct {
	t      testing.TB
	conn   *net.UDPConn
	answer bool // answer INVITEs with 200 (else 486)
	// onInvite, when set, may answer the n-th INVITE (from 0) itself
	// (status, e.g. "422 Session Interval Too Small") or add headers to
	// the 200 (status ""). Set under mu.
	onInvite func(n int, msg string) (status, extra string)

	mu      sync.Mutex
	got     []string // first lines of requests received
	raw     []string // INVITEs received, whole
	acks    []string // ACKs received, whole
	invites []agentInvite
	resp    chan string
}

type agentInvite struct{ callID, fromTag, toTag, uri, contact string }

func newUDPAgent(t testing.TB, ip string, answer bool) *udpAgent {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatalf("listen %s: %v", ip, err)
	}
	a := &udpAgent{t: t, conn: conn, answer: answer, resp: make(chan string, 64)}
	go a.serve()
	return a
}

func (a *udpAgent) addr() netip.AddrPort { return a.conn.LocalAddr().(*net.UDPAddr).AddrPort() }
func (a *udpAgent) close()               { a.conn.Close() }

var (
	hdrRE = func(name string) *regexp.Regexp {
		return regexp.MustCompile(`(?mi)^(?:` + name + `)[ \t]*:[ \t]*(.*?)\r?$`)
	}
	callIDRE  = hdrRE("Call-ID|i")
	fromRE    = hdrRE("From|f")
	toRE      = hdrRE("To|t")
	viaRE     = hdrRE("Via|v")
	cseqRE    = hdrRE("CSeq")
	contactRE = hdrRE("Contact|m")
	tagRE     = regexp.MustCompile(`;\s*tag=([^;>\s]+)`)
)

func header(msg string, re *regexp.Regexp) string {
	if m := re.FindStringSubmatch(msg); m != nil {
		return m[1]
	}
	return ""
}

func tagOf(v string) string {
	if m := tagRE.FindStringSubmatch(v); m != nil {
		return m[1]
	}
	return ""
}

func (a *udpAgent) serve() {
	buf := make([]byte, 65535)
	for {
		n, from, err := a.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		msg := string(buf[:n])
		first, _, _ := strings.Cut(msg, "\r\n")
		if strings.HasPrefix(first, "SIP/2.0") {
			select {
			case a.resp <- msg:
			default:
			}
			continue
		}
		method, _, _ := strings.Cut(first, " ")
		a.mu.Lock()
		a.got = append(a.got, first)
		a.mu.Unlock()
		switch method {
		case "ACK":
			a.mu.Lock()
			a.acks = append(a.acks, msg)
			a.mu.Unlock()
		case "INVITE":
			a.mu.Lock()
			a.raw = append(a.raw, msg)
			onInvite := a.onInvite
			a.mu.Unlock()
			if !a.answer {
				a.conn.WriteToUDP([]byte(replyTo(msg, "486 Busy Here", "busy", "", "")), from)
				continue
			}
			extra := ""
			if onInvite != nil {
				n := a.received("INVITE") - 1 // retransmissions count too
				status, hdrs := onInvite(n, msg)
				if status != "" {
					a.conn.WriteToUDP([]byte(replyTo(msg, status, "refused", hdrs, "")), from)
					continue
				}
				extra = hdrs
			}
			toTag := tagOf(header(msg, toRE))
			if toTag == "" {
				toTag = fmt.Sprintf("ag%d", time.Now().UnixNano())
			}
			a.mu.Lock()
			a.invites = append(a.invites, agentInvite{callID: header(msg, callIDRE), fromTag: tagOf(header(msg, fromRE)), toTag: toTag,
				uri: strings.Fields(first)[1], contact: header(msg, contactRE)})
			a.mu.Unlock()
			ap := a.addr()
			sdp := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
				ap.Addr(), ap.Addr(), ap.Port()+1)
			a.conn.WriteToUDP([]byte(replyTo(msg, "200 OK", toTag, fmt.Sprintf("Contact: <sip:agent@%s>\r\nContent-Type: application/sdp\r\n%s", ap, extra), sdp)), from)
		default:
			a.conn.WriteToUDP([]byte(replyTo(msg, "200 OK", "", "", "")), from)
		}
	}
}

func (a *udpAgent) invitesReceived() []agentInvite {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]agentInvite(nil), a.invites...)
}

func (a *udpAgent) received(method string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, l := range a.got {
		if strings.HasPrefix(l, method+" ") {
			n++
		}
	}
	return n
}

// send writes a raw message to the server.
func (a *udpAgent) send(to netip.AddrPort, msg string) {
	a.conn.WriteToUDPAddrPort([]byte(msg), to)
}

// final waits for a final response whose CSeq method is method.
func (a *udpAgent) final(method string, wait time.Duration) string {
	deadline := time.After(wait)
	for {
		select {
		case r := <-a.resp:
			f := strings.Fields(strings.SplitN(r, "\r\n", 2)[0])
			if len(f) >= 2 && f[1][0] >= '2' && strings.HasSuffix(header(r, cseqRE), method) {
				return r
			}
		case <-deadline:
			return ""
		}
	}
}

// replyTo builds a response copying Via, From, To (tagged), Call-ID, CSeq.
func replyTo(req, status, tag, extra, body string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %s\r\n", status)
	for _, m := range viaRE.FindAllStringSubmatch(req, -1) {
		fmt.Fprintf(&b, "Via: %s\r\n", m[1])
	}
	to := header(req, toRE)
	if tagOf(to) == "" && tag != "" {
		to += ";tag=" + tag
	}
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %s\r\n%s", header(req, fromRE), to, header(req, callIDRE), header(req, cseqRE), extra)
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	return b.String()
}

// callEnv is a running server with call control and its peers.
type callEnv struct {
	t        testing.TB
	s        *psip.Server
	b        *B2BUA
	addr     netip.AddrPort
	pol      *fakePolicy
	rec      *fakeRecorder
	audit    *auditLog
	active   *ActiveCalls
	users    fakeUsers // the directory the server looks users up in
	phone    *udpAgent // operator 101's phone, registered
	carrier  *udpAgent // the trunk
	trunkSrc *udpAgent // the trunk's inbound source (127.0.0.2)
	attacker *udpAgent // another host on the LAN (127.0.0.3)
	reg      *prometheus.Registry
	cancel   context.CancelFunc
	done     chan error
}

const (
	testApproved  = "+33240123456"
	testApproved2 = "+33240120183"
	testOperator  = "101"
)

func freeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

type envOpt func(*CallOptions)

func newCallEnv(t testing.TB, opts ...envOpt) *callEnv {
	t.Helper()
	return newCallEnvSetup(t, envSetup{}, opts...)
}

// envSetup changes what newCallEnvSetup starts.
type envSetup struct {
	// bindings are more bindings in the store the registrar loads at
	// start (behind its back, as from before an upgrade).
	bindings func(e *callEnv) []psip.Binding
	server   func(o *psip.Options) // changes the server's options
	users    func(u fakeUsers)     // adds users (e.g. a supervisor)
}

func newCallEnvSetup(t testing.TB, setup envSetup, opts ...envOpt) *callEnv {
	t.Helper()
	e := &callEnv{t: t, audit: &auditLog{}, rec: &fakeRecorder{}, active: NewActiveCalls(), reg: prometheus.NewRegistry()}
	e.pol = &fakePolicy{active: e.active, approved: map[string]bool{testApproved: true, testApproved2: true}, limit: 1}
	e.phone = newUDPAgent(t, "127.0.0.1", true)
	e.carrier = newUDPAgent(t, "127.0.0.1", true)
	e.trunkSrc = newUDPAgent(t, "127.0.0.2", true)
	e.attacker = newUDPAgent(t, "127.0.0.3", true)
	users := fakeUsers{testOperator: {Extension: testOperator, Role: psip.RoleOperator, Active: true}}
	if setup.users != nil {
		setup.users(users)
	}
	ph := e.phone.addr()
	bindings := fixedBindings{{Extension: testOperator, Contact: fmt.Sprintf("sip:%s@%s", testOperator, ph),
		Source: ph.String(), Transport: "udp", ExpiresAt: time.Now().Add(time.Hour)}}
	if setup.bindings != nil {
		bindings = append(bindings, setup.bindings(e)...)
	}
	e.users = users
	port := freeUDPPort(t)
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	so := psip.Options{Listen: listen, Transports: []string{"udp"}, Realm: "plateau", NonceTTL: time.Minute,
		DigestAlgorithms: []string{"MD5"}, MinExpires: time.Minute, MaxExpires: time.Hour, DefaultExpires: time.Hour,
		BanMaxFailures: 1000, BanWindow: time.Minute, BanDuration: time.Minute,
	}
	if setup.server != nil {
		setup.server(&so)
	}
	s, err := psip.NewServer(so, users, bindings, e.audit, e.reg, slog.New(slog.DiscardHandler), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := media.NewPortPool(40000, 40999, 0, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	co := CallOptions{
		MediaIP: netip.MustParseAddr("127.0.0.1"), Ports: pool, RingTimeout: 5 * time.Second, TrunkTimeout: 2 * time.Second,
		Trunks: []psip.TrunkConfig{{Name: "carrier", Address: e.carrier.addr().String(), Transport: "udp", CallerID: "+33240000000",
			AllowedSources: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}}},
		Region: "FR",
		// The tests' peers ask intervals of seconds; production's floor is
		// 90 s (TestSessionTimerFloor sets its own).
		MinSessionExpires: time.Second,
	}
	for _, o := range opts {
		o(&co)
	}
	b, err := New(s, co, e.pol, nil, e.rec, e.active, e.reg)
	if err != nil {
		t.Fatal(err)
	}
	e.s, e.b = s, b
	e.addr = netip.MustParseAddrPort(listen)
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done = cancel, make(chan error, 1)
	go func() { e.done <- s.Serve(ctx) }()
	for i := 0; i < 200 && !s.Listening(); i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if tb, ok := t.(interface{ Cleanup(func()) }); ok {
		tb.Cleanup(e.close)
	}
	return e
}

func (e *callEnv) close() {
	e.cancel()
	select {
	case <-e.done:
	case <-time.After(15 * time.Second):
		e.t.Error("server did not stop")
	}
	e.s.Close()
	for _, a := range []*udpAgent{e.phone, e.carrier, e.trunkSrc, e.attacker} {
		a.close()
	}
}

// callsLeft is the number of calls still in the table.
func (e *callEnv) callsLeft() int {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	seen := map[*call]bool{}
	for _, c := range e.b.calls {
		seen[c] = true
	}
	return len(seen)
}

// waitFor polls cond (a loaded CI machine gets seconds, not a sleep).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// inboundDialog is a call the trunk source placed through Plateau.
type inboundDialog struct {
	callID, fromTag, toTag string
	cseq                   int
	branch                 string // of the last INVITE: its ACK of a failure reuses it
	ackFailure             bool
}

func (e *callEnv) inviteMsg(from *udpAgent, d *inboundDialog, caller string, extra string) string {
	ap := from.addr()
	sdp := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n", ap.Addr(), ap.Addr(), ap.Port()+1)
	return e.request(from, "INVITE", d, caller, extra, "application/sdp", sdp)
}

// request builds a request in (or opening) an inbound dialog.
func (e *callEnv) request(from *udpAgent, method string, d *inboundDialog, caller, extra, ctype, body string) string {
	ap := from.addr()
	branch := fmt.Sprintf("z9hG4bK%d", time.Now().UnixNano())
	switch {
	case method == "INVITE":
		d.branch = branch
	case method == "CANCEL", method == "ACK" && d.ackFailure:
		branch = d.branch
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s sip:%s@%s SIP/2.0\r\n", method, testOperator, e.addr)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;branch=%s;rport\r\n", ap, branch)
	fmt.Fprintf(&b, "From: <sip:%s@carrier.example>;tag=%s\r\n", caller, d.fromTag)
	to := fmt.Sprintf("<sip:%s@%s>", testOperator, e.addr)
	if d.toTag != "" {
		to += ";tag=" + d.toTag
	}
	cseq := d.cseq
	if method != "ACK" && method != "CANCEL" {
		d.cseq++
		cseq = d.cseq
	}
	fmt.Fprintf(&b, "To: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\nMax-Forwards: 70\r\nContact: <sip:%s@%s>\r\n%s", to, d.callID, cseq, method, caller, ap, extra)
	if ctype != "" {
		fmt.Fprintf(&b, "Content-Type: %s\r\n", ctype)
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	return b.String()
}

// placeInbound has the trunk source call testOperator from caller and
// ACKs the 200; it returns the dialog, or nil and the final response.
func (e *callEnv) placeInbound(caller string) (*inboundDialog, string) {
	d := &inboundDialog{callID: fmt.Sprintf("in-%d@carrier", time.Now().UnixNano()), fromTag: fmt.Sprintf("c%d", time.Now().UnixNano())}
	e.trunkSrc.send(e.addr, e.inviteMsg(e.trunkSrc, d, caller, ""))
	r := e.trunkSrc.final("INVITE", 10*time.Second)
	if !strings.HasPrefix(r, "SIP/2.0 200") {
		if r != "" {
			d.toTag, d.ackFailure = tagOf(header(r, toRE)), true
			e.trunkSrc.send(e.addr, e.request(e.trunkSrc, "ACK", d, caller, "", "", ""))
		}
		return nil, r
	}
	d.toTag = tagOf(header(r, toRE))
	e.trunkSrc.send(e.addr, e.request(e.trunkSrc, "ACK", d, caller, "", "", ""))
	// sipgo handles requests in parallel: let the ACK confirm the dialog
	// before the test's next request.
	waitFor(e.t, "the call connected", func() bool { return e.b.findCall(testOperator) != nil })
	return d, r
}

// phoneDialog is the operator leg as the phone sees it.
func (e *callEnv) phoneDialog() (callID, plateauTag, phoneTag string) {
	inv := e.phone.invitesReceived()
	if len(inv) == 0 {
		e.t.Fatal("the phone was never rung")
	}
	last := inv[len(inv)-1]
	return last.callID, last.fromTag, last.toTag
}

// phoneRequest builds an in-dialog request from the phone's side of the
// operator leg (From: the phone's tag, To: Plateau's), sent by whoever.
func (e *callEnv) phoneRequest(from *udpAgent, method string, cseq int, extra, ctype, body string) string {
	callID, plateauTag, phoneTag := e.phoneDialog()
	ap := from.addr()
	var b strings.Builder
	fmt.Fprintf(&b, "%s sip:plateau@%s SIP/2.0\r\n", method, e.addr)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;branch=z9hG4bK%d;rport\r\n", ap, time.Now().UnixNano())
	fmt.Fprintf(&b, "From: <sip:%s@%s>;tag=%s\r\nTo: <sip:x@%s>;tag=%s\r\n", testOperator, ap.Addr(), phoneTag, e.addr, plateauTag)
	fmt.Fprintf(&b, "Call-ID: %s\r\nCSeq: %d %s\r\nMax-Forwards: 70\r\nContact: <sip:%s@%s>\r\n%s", callID, cseq, method, testOperator, ap, extra)
	if ctype != "" {
		fmt.Fprintf(&b, "Content-Type: %s\r\n", ctype)
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	return b.String()
}

func statusOf(r string) string {
	f := strings.Fields(strings.SplitN(r, "\r\n", 2)[0])
	if len(f) < 2 {
		return ""
	}
	return f[1]
}

// fakeUsers is the user directory of the tests.
type fakeUsers map[string]psip.Account

func (f fakeUsers) User(_ context.Context, ext string) (psip.Account, error) {
	if u, ok := f[ext]; ok {
		return u, nil
	}
	return psip.Account{}, psip.ErrUnknownAccount
}

// fixedBindings are the registrations the server loads at start (the
// operator's phone, registered).
type fixedBindings []psip.Binding

func (fixedBindings) SaveBindings(context.Context, []psip.Binding, []psip.Binding) error { return nil }
func (f fixedBindings) Bindings(_ context.Context, ext string, now time.Time) ([]psip.Binding, error) {
	var out []psip.Binding
	for _, b := range f {
		if (ext == "" || b.Extension == ext) && b.ExpiresAt.After(now) {
			out = append(out, b)
		}
	}
	return out, nil
}

func metricValue(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

// panicsIn is plateau_panics_total{where} (the signalling layer's counter,
// on the test's registry).
func panicsIn(g prometheus.Gatherer, where string) float64 {
	return counterValue(g, "plateau_panics_total", "where", where)
}

// counterValue is the counter name{label="value"} on g, 0 when absent.
func counterValue(g prometheus.Gatherer, name, label, value string) float64 {
	mfs, err := g.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
