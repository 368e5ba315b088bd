package sip

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/emiago/sipgo/siptest"
	"github.com/icholy/digest"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"plateau/auth"
)

type fakeUsers map[string]Account

func (f fakeUsers) User(_ context.Context, ext string) (Account, error) {
	if u, ok := f[ext]; ok {
		return u, nil
	}
	return Account{}, ErrUnknownAccount
}

type nopBindings struct{}

func (nopBindings) SaveBindings(context.Context, []Binding, []Binding) error { return nil }
func (nopBindings) Bindings(context.Context, string, time.Time) ([]Binding, error) {
	return nil, nil
}

type auditRec struct {
	mu    sync.Mutex
	kinds []string
}

func (a *auditRec) Audit(_ context.Context, kind, _, _, _, reason, _ string, _ map[string]any) {
	a.mu.Lock()
	a.kinds = append(a.kinds, kind+":"+reason)
	a.mu.Unlock()
}

// syncBuf is a log sink safe for sipgo's goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type regEnv struct {
	t     *testing.T
	s     *Server
	clk   *clock
	log   *syncBuf
	audit *auditRec
}

func newRegEnv(t *testing.T) *regEnv {
	t.Helper()
	users := fakeUsers{}
	for _, ext := range []string{"101", "102"} {
		users[ext] = Account{Extension: ext, Role: RoleOperator, Active: true,
			HA1MD5: auth.HA1MD5(ext, "plateau", "demo"+ext), HA1SHA256: auth.HA1SHA256(ext, "plateau", "demo"+ext)}
	}
	users["103"] = Account{Extension: "103", Role: RoleOperator, Active: false,
		HA1MD5: auth.HA1MD5("103", "plateau", "demo103"), HA1SHA256: auth.HA1SHA256("103", "plateau", "demo103")}
	clk := newClock()
	buf := &syncBuf{}
	a := &auditRec{}
	s, err := NewServer(Options{
		Listen: "127.0.0.1:0", Transports: []string{"udp"}, Realm: "plateau", NonceTTL: time.Minute,
		DigestAlgorithms: []string{"SHA-256", "MD5"}, MinExpires: time.Minute, MaxExpires: time.Hour, DefaultExpires: time.Hour,
		BanMaxFailures: 3, BanWindow: time.Minute, BanDuration: 10 * time.Minute,
	}, users, nopBindings{}, a, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(buf, nil)), clk.now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &regEnv{t: t, s: s, clk: clk, log: buf, audit: a}
}

var branchSeq atomic.Int64

// phone is a client whose requests the test hands to the server's handlers.
type phone struct {
	ext, pass, src, callID string
	cseq                   int
	ch                     *digest.Challenge
	nc                     int
}

func newPhone(ext, pass, src string) *phone {
	return &phone{ext: ext, pass: pass, src: src, callID: fmt.Sprintf("call-%s-%d@test", ext, branchSeq.Add(1))}
}

// request builds a REGISTER (or OPTIONS) with the given extra header lines,
// answering the last challenge when there is one.
func (p *phone) request(method string, extra ...string) *sip.Request {
	p.cseq++
	uri := "sip:127.0.0.1:5060"
	lines := []string{
		method + " " + uri + " SIP/2.0",
		fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=z9hG4bK-t%d", p.src, branchSeq.Add(1)),
		fmt.Sprintf("From: <sip:%s@127.0.0.1>;tag=t%s", p.ext, p.ext),
		fmt.Sprintf("To: <sip:%s@127.0.0.1>", p.ext),
		"Call-ID: " + p.callID,
		fmt.Sprintf("CSeq: %d %s", p.cseq, method),
		"Max-Forwards: 70",
	}
	lines = append(lines, extra...)
	if p.ch != nil {
		p.nc++
		cn := "cn" + p.ext
		resp := digestResponse(p.ch.Algorithm, p.ext, p.ch.Realm, p.pass, method, uri, p.ch.Nonce, p.nc, cn)
		lines = append(lines, fmt.Sprintf(`Authorization: Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s, qop=auth, nc=%08x, cnonce="%s"`,
			p.ext, p.ch.Realm, p.ch.Nonce, uri, resp, p.ch.Algorithm, p.nc, cn))
	}
	raw := strings.Join(lines, "\r\n") + "\r\nContent-Length: 0\r\n\r\n"
	m, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		panic(fmt.Sprintf("parse %q: %v", raw, err))
	}
	req := m.(*sip.Request)
	req.SetSource(p.src)
	return req
}

// send passes req through the server's guard and REGISTER/OPTIONS handler;
// nil means no answer. A 401 is remembered as the challenge to answer
// (the first one offered, as SIPp does, or the one with algorithm alg).
func (e *regEnv) send(p *phone, req *sip.Request, alg string) *sip.Response {
	e.t.Helper()
	rec := siptest.NewServerTxRecorder(req)
	defer rec.Terminate()
	h := e.s.guard(e.s.reg.handleRegister)
	if req.Method == sip.OPTIONS {
		h = e.s.guard(e.s.handleOptions)
	}
	h(req, rec)
	res := rec.Result()
	if len(res) == 0 {
		return nil
	}
	r := res[len(res)-1]
	if r.StatusCode == 401 {
		for _, h := range r.GetHeaders("WWW-Authenticate") {
			c, err := digest.ParseChallenge(h.Value())
			if err != nil {
				e.t.Fatalf("challenge %q: %v", h.Value(), err)
			}
			if alg == "" || c.Algorithm == alg {
				p.ch, p.nc = c, 0
				break
			}
		}
	}
	return r
}

// register does the REGISTER/401/REGISTER exchange and returns the last answer.
func (e *regEnv) register(p *phone, alg string, extra ...string) *sip.Response {
	e.t.Helper()
	if p.ch == nil {
		if r := e.send(p, p.request("REGISTER", extra...), alg); r == nil || r.StatusCode != 401 {
			e.t.Fatalf("first REGISTER: %v, want 401", r)
		}
	}
	return e.send(p, p.request("REGISTER", extra...), alg)
}

func status(r *sip.Response) int {
	if r == nil {
		return 0
	}
	return int(r.StatusCode)
}

func (e *regEnv) contacts(ext string) []string {
	var out []string
	for _, b := range e.s.reg.contacts(ext) {
		out = append(out, b.Contact)
	}
	slices.Sort(out)
	return out
}

func TestRegisterBothAlgorithms(t *testing.T) {
	for _, alg := range []string{"SHA-256", "MD5"} {
		t.Run(alg, func(t *testing.T) {
			e := newRegEnv(t)
			p := newPhone("101", "demo101", "127.0.0.1:5099")
			r := e.register(p, alg, "Contact: <sip:101@127.0.0.1:5099>", "Expires: 600")
			if status(r) != 200 {
				t.Fatalf("REGISTER = %v, want 200", r)
			}
			if c := r.GetHeader("Contact"); c == nil || !strings.Contains(c.Value(), "expires=600") {
				t.Errorf("200 Contact = %v, want the binding with expires=600", c)
			}
			if got := e.contacts("101"); len(got) != 1 {
				t.Errorf("bindings = %v", got)
			}
			if got := metricValue(e.s.metrics.registrations); got != 1 {
				t.Errorf("registrations gauge = %v", got)
			}
			// The same nonce serves the refresh with the next nonce count.
			if r := e.register(p, alg, "Contact: <sip:101@127.0.0.1:5099>", "Expires: 600"); status(r) != 200 {
				t.Fatalf("refresh = %v, want 200", r)
			}
		})
	}
}

func TestRegisterBindings(t *testing.T) {
	e := newRegEnv(t)
	p := newPhone("101", "demo101", "127.0.0.1:5099")
	for _, c := range []string{"<sip:101@127.0.0.1:5099>", "<sip:101@127.0.0.1:5098>"} {
		if r := e.register(p, "", "Contact: "+c); status(r) != 200 {
			t.Fatalf("REGISTER %s = %v", c, r)
		}
	}
	if got := e.contacts("101"); len(got) != 2 {
		t.Fatalf("bindings = %v, want 2", got)
	}
	if r := e.register(p, "", "Contact: <sip:101@127.0.0.1:5098>", "Expires: 0"); status(r) != 200 {
		t.Fatalf("Expires: 0 = %v", r)
	}
	if got := e.contacts("101"); len(got) != 1 || got[0] != "sip:101@127.0.0.1:5099" {
		t.Fatalf("after Expires: 0 bindings = %v", got)
	}
	if r := e.register(p, "", "Contact: <sip:101@127.0.0.1:5097>;expires=0"); status(r) != 200 || len(e.contacts("101")) != 1 {
		t.Fatalf("expires=0 on an unknown contact: %v, bindings %v", r, e.contacts("101"))
	}
	if r := e.register(p, "", "Contact: *", "Expires: 3600"); status(r) != 400 {
		t.Fatalf("Contact: * without Expires: 0 = %v, want 400", r)
	}
	if r := e.register(p, "", "Contact: <sip:101@127.0.0.1:5098>"); status(r) != 200 || len(e.contacts("101")) != 2 {
		t.Fatalf("re-adding: %v, bindings %v", r, e.contacts("101"))
	}
	if r := e.register(p, "", "Contact: *", "Expires: 0"); status(r) != 200 {
		t.Fatalf("Contact: * = %v", r)
	}
	if got := e.contacts("101"); len(got) != 0 {
		t.Fatalf("after Contact: * bindings = %v", got)
	}
	if got := metricValue(e.s.metrics.registrations); got != 0 {
		t.Errorf("registrations gauge = %v, want 0", got)
	}
	// A REGISTER without Contact lists the bindings (none now).
	if r := e.register(p, ""); status(r) != 200 || r.GetHeader("Contact") != nil {
		t.Fatalf("query = %v", r)
	}
}

func TestRegisterExpiry(t *testing.T) {
	e := newRegEnv(t)
	p := newPhone("101", "demo101", "127.0.0.1:5099")
	r := e.register(p, "", "Contact: <sip:101@127.0.0.1:5099>", "Expires: 59")
	if status(r) != 423 {
		t.Fatalf("Expires: 59 = %v, want 423", r)
	}
	if h := r.GetHeader("Min-Expires"); h == nil || h.Value() != "60" {
		t.Fatalf("423 Min-Expires = %v, want 60", h)
	}
	if r := e.register(p, "", "Contact: <sip:101@127.0.0.1:5099>;expires=30"); status(r) != 423 {
		t.Fatalf("expires=30 parameter = %v, want 423", r)
	}
	if r := e.register(p, "", "Contact: <sip:101@127.0.0.1:5099>", "Expires: soon"); status(r) != 400 {
		t.Fatalf("Expires: soon = %v, want 400", r)
	}
	r = e.register(p, "", "Contact: <sip:101@127.0.0.1:5099>", "Expires: 86400")
	if status(r) != 200 || !strings.Contains(r.GetHeader("Contact").Value(), "expires=3600") {
		t.Fatalf("Expires above max = %v, want 200 clamped to 3600", r)
	}
	e.clk.advance(3599 * time.Second)
	if len(e.contacts("101")) != 1 {
		t.Fatal("binding gone before it expired")
	}
	e.clk.advance(time.Second)
	if len(e.contacts("101")) != 0 {
		t.Fatal("binding still listed after expiry")
	}
	e.s.reg.expire()
	if got := metricValue(e.s.metrics.registrations); got != 0 {
		t.Errorf("registrations gauge after expire = %v, want 0", got)
	}
}

func TestRegisterRefusals(t *testing.T) {
	e := newRegEnv(t)
	// A user may register only their own address of record.
	p := newPhone("101", "demo101", "127.0.0.1:5099")
	req := p.request("REGISTER", "Contact: <sip:102@127.0.0.1:5099>")
	e.send(p, req, "")
	req = p.request("REGISTER", "Contact: <sip:102@127.0.0.1:5099>")
	req.To().Address.User = "102"
	if r := e.send(p, req, ""); status(r) != 403 {
		t.Fatalf("REGISTER for another AOR = %v, want 403", r)
	}
	// Suspended: 403 with the reason, even with the right password.
	s := newPhone("103", "demo103", "127.0.0.1:5096")
	r := e.register(s, "", "Contact: <sip:103@127.0.0.1:5096>")
	if status(r) != 403 || r.GetHeader("Reason") == nil || !strings.Contains(r.GetHeader("Reason").Value(), "OPERATOR_SUSPENDED") {
		t.Fatalf("suspended user = %v, want 403 with Reason OPERATOR_SUSPENDED", r)
	}
	// Too many contacts.
	q := newPhone("102", "demo102", "127.0.0.1:5095")
	for i := 0; i < 5; i++ {
		if r := e.register(q, "", fmt.Sprintf("Contact: <sip:102@127.0.0.1:%d>", 6000+i)); status(r) != 200 {
			t.Fatalf("contact %d = %v", i, r)
		}
	}
	if r := e.register(q, "", "Contact: <sip:102@127.0.0.1:6005>"); status(r) != 403 {
		t.Fatalf("sixth contact = %v, want 403", r)
	}
}

// An unknown user and a wrong password get the same answer.
func TestRegisterNoEnumeration(t *testing.T) {
	e := newRegEnv(t)
	shape := func(ext, pass, src string) (int, []string, []string) {
		p := newPhone(ext, pass, src)
		r := e.register(p, "", "Contact: <sip:"+ext+"@127.0.0.1:5099>")
		var names, chals []string
		for _, h := range r.Headers() {
			names = append(names, h.Name())
		}
		for _, h := range r.GetHeaders("WWW-Authenticate") {
			c, _ := digest.ParseChallenge(h.Value())
			chals = append(chals, fmt.Sprintf("%s qop=%v stale=%v realm=%s nonce-len=%d", c.Algorithm, c.QOP, c.Stale, c.Realm, len(c.Nonce)))
		}
		return status(r), names, chals
	}
	s1, n1, c1 := shape("101", "wrong", "127.0.0.1:5091")
	s2, n2, c2 := shape("4242", "wrong", "127.0.0.1:5092")
	if s1 != 401 || s1 != s2 || !slices.Equal(n1, n2) || !slices.Equal(c1, c2) {
		t.Fatalf("wrong password: %d %v %v\nunknown user: %d %v %v", s1, n1, c1, s2, n2, c2)
	}
}

func TestRegisterStaleNonce(t *testing.T) {
	e := newRegEnv(t)
	p := newPhone("101", "demo101", "127.0.0.1:5099")
	if r := e.register(p, "", "Contact: <sip:101@127.0.0.1:5099>"); status(r) != 200 {
		t.Fatalf("REGISTER = %v", r)
	}
	e.clk.advance(2 * time.Minute)
	r := e.send(p, p.request("REGISTER", "Contact: <sip:101@127.0.0.1:5099>"), "")
	if status(r) != 401 || !strings.Contains(strings.ToLower(r.GetHeader("WWW-Authenticate").Value()), "stale=true") {
		t.Fatalf("expired nonce = %v, want 401 stale=true", r)
	}
	if r := e.send(p, p.request("REGISTER", "Contact: <sip:101@127.0.0.1:5099>"), ""); status(r) != 200 {
		t.Fatalf("with the new nonce = %v", r)
	}
	if got := metricValue(e.s.metrics.authFailures); got != 0 {
		t.Errorf("a stale nonce counted as %v auth failures", got)
	}
}

func TestRegisterBan(t *testing.T) {
	e := newRegEnv(t)
	bad := newPhone("101", "guess", "198.51.100.9:5060")
	for i := 1; i <= 3; i++ {
		if r := e.register(bad, ""); status(r) != 401 {
			t.Fatalf("failure %d = %v, want 401", i, r)
		}
		bad.ch = nil
	}
	if got := metricValue(e.s.metrics.bans); got != 1 {
		t.Fatalf("bans metric = %v, want 1", got)
	}
	if !strings.Contains(e.log.String(), "sip source banned") || !strings.Contains(e.log.String(), "198.51.100.9") {
		t.Errorf("no ban log line:\n%s", e.log.String())
	}
	if !slices.Contains(e.audit.kinds, "sip.ban:AUTH_FAILURES") {
		t.Errorf("audit = %v, want the ban", e.audit.kinds)
	}
	// Banned: nothing is answered, even the right password or OPTIONS.
	good := newPhone("101", "demo101", "198.51.100.9:5061")
	if r := e.send(good, good.request("REGISTER"), ""); r != nil {
		t.Fatalf("banned source got %v", r)
	}
	if r := e.send(good, good.request("OPTIONS"), ""); r != nil {
		t.Fatalf("banned source got %v to OPTIONS", r)
	}
	// Another source is served, but not for the banned account: it failed
	// too often (from whatever sources) and is refused like a wrong password.
	other := newPhone("102", "demo102", "198.51.100.10:5060")
	if r := e.register(other, "", "Contact: <sip:102@198.51.100.10:5060>"); status(r) != 200 {
		t.Fatalf("other source = %v", r)
	}
	other101 := newPhone("101", "demo101", "198.51.100.10:5060")
	if r := e.register(other101, "", "Contact: <sip:101@198.51.100.10:5060>"); status(r) != 401 {
		t.Fatalf("banned account from another source = %v, want 401", r)
	}
	e.clk.advance(10 * time.Minute)
	if r := e.register(good, "", "Contact: <sip:101@198.51.100.9:5061>"); status(r) != 200 {
		t.Fatalf("after the ban = %v", r)
	}
}

func TestOptions(t *testing.T) {
	e := newRegEnv(t)
	p := newPhone("101", "", "127.0.0.1:5099")
	r := e.send(p, p.request("OPTIONS"), "")
	if status(r) != 200 || r.GetHeader("Allow") == nil {
		t.Fatalf("OPTIONS = %v, want 200 with Allow", r)
	}
}

// metricValue reads a counter or gauge.
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

// A Path is where Plateau later sends INVITEs: a phone that names one
// itself (say, the carrier) is refused, and so is a Path through a
// proxy that is not trusted; a trusted proxy's own Path is stored.
func TestRegisterPathOnlyFromTrustedProxy(t *testing.T) {
	e := newRegEnv(t)
	e.s.trusted = NewTrustedProxies([]netip.Prefix{netip.MustParsePrefix("127.0.0.5/32")})
	tests := []struct {
		name, src, via, path string
		want                 int
	}{
		{"phone names the carrier as its Path", "127.0.0.1:5099", "", "Path: <sip:127.0.0.2:5060;lr>", 403},
		{"phone names a trusted proxy it did not come through", "127.0.0.1:5098", "", "Path: <sip:127.0.0.5:5060;lr>", 403},
		{"trusted proxy naming the carrier", "127.0.0.5:5060", "Via: SIP/2.0/UDP 127.0.0.1:5097;branch=z9hG4bK-p1;rport=5097;received=127.0.0.1", "Path: <sip:127.0.0.2:5060;lr>", 403},
		{"trusted proxy naming itself", "127.0.0.5:5060", "Via: SIP/2.0/UDP 127.0.0.1:5096;branch=z9hG4bK-p2;rport=5096;received=127.0.0.1", "Path: <sip:127.0.0.5:5060;lr>", 200},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ext := []string{"101", "102"}[i%2]
			p := newPhone(ext, "demo"+ext, tt.src)
			contact := fmt.Sprintf("Contact: <sip:%s@127.0.0.1:%d>", ext, 5096+i)
			extra := []string{contact, tt.path}
			if tt.via != "" {
				extra = append(extra, tt.via)
			}
			r := e.register(p, "", extra...)
			if status(r) != tt.want {
				t.Fatalf("REGISTER = %v, want %d", r, tt.want)
			}
			if tt.want == 403 && (r.GetHeader("Reason") == nil || !strings.Contains(r.GetHeader("Reason").Value(), ReasonPathNotAllowed)) {
				t.Errorf("refusal without Reason %s: %v", ReasonPathNotAllowed, r)
			}
		})
	}
}
