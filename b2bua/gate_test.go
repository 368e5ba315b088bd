package b2bua

import (
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/emiago/sipgo/siptest"

	"plateau/media"
	"plateau/policy"
	psip "plateau/sip"
)

// Nothing but the egress gate sends an INVITE: the sources of both layers
// (this package and the signalling layer, ../sip) are grepped for every
// sipgo call that can originate one. The trunk keepalive and registration
// (../sip/trunk.go, ../sip/trunkreg.go) may send requests, but never an
// INVITE.
func TestOnlyTheGateSendsInvites(t *testing.T) {
	files := callLayerSources(t)
	if len(files) < 40 {
		t.Fatalf("only %d source files found: the test must run in the b2bua directory", len(files))
	}
	send := regexp.MustCompile(`\b(WriteInvite|TransactionRequest|WriteRequest)\(|\.Invite\(|\bDo\(ctx`)
	dial := regexp.MustCompile(`\bdialTrunkLeg\(`)
	// The trunk leg (trunkleg.go) runs the INVITE transaction that only
	// inviteTrunk starts (dialTrunkLeg, called from gate.go alone) and the
	// in-dialog requests of an answered trunk dialog; session timers
	// (sessiontimer.go) refresh dialogs that exist. None can start one.
	inDialog := map[string]bool{"trunkleg.go": true, "sessiontimer.go": true}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || f == "gate.go" {
			continue
		}
		if src, err := os.ReadFile(f); err == nil {
			for i, line := range strings.Split(string(src), "\n") {
				code, _, _ := strings.Cut(line, "//")
				if dial.MatchString(code) && !(f == "trunkleg.go" && strings.HasPrefix(code, "func dialTrunkLeg(")) {
					t.Errorf("%s:%d starts a trunk INVITE outside the egress gate (gate.go): %s", f, i+1, strings.TrimSpace(line))
				}
			}
		}
		if inDialog[f] {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(src), "\n") {
			code, _, _ := strings.Cut(line, "//")
			if !send.MatchString(code) {
				continue
			}
			if (f == "../sip/trunk.go" || f == "../sip/trunkreg.go") && !strings.Contains(string(src), "sip.INVITE") {
				continue // OPTIONS keepalive, REGISTER of a registration trunk
			}
			t.Errorf("%s:%d sends a request outside the egress gate (gate.go): %s", f, i+1, strings.TrimSpace(line))
		}
	}
}

// Every place in both layers that puts a request (or a connection) on the
// wire, found by parsing the sources rather than grepping lines: each is
// listed here with the check that decides where it goes. A new send path
// fails this test until it is reviewed and listed; a listed one that is
// gone fails too, so the list stays the true inventory. Responses are not
// requests (they follow the request's Via) and are not listed.
func TestEverySendPathIsReviewed(t *testing.T) {
	reviewed := map[string]string{
		// The egress gate (this file's subject): new dialogs.
		"gate.go B2BUA.inviteTrunk dialTrunkLeg": "Permit from admit; Request-URI = the trunk's URI for the permitted number",
		"gate.go B2BUA.invitePhone WriteInvite":  "the binding of ext, PhoneBindingAllowed, Request-URI = the binding, Path through trusted proxies",
		"gate.go B2BUA.notifyPhone Do":           "the operator's dialog target (checked at creation) from its peer, never a trunk",
		// The gate's mark, without which the client sends no new INVITE
		// (../sip/transport_client.go): minted here only.
		"gate.go B2BUA.inviteTrunk ThroughEgressGate": "the mark of a trunk INVITE the gate let out",
		"gate.go B2BUA.invitePhone ThroughEgressGate": "the mark of a phone INVITE the gate let out",
		// Requests in a phone dialog: its Contact and route set were
		// checked when it was created (phoneInviteRefusal for an INVITE
		// Plateau received, checkPhoneAnswer for one it sent).
		"pipeline.go B2BUA.ringOperator Ack":                    "checkPhoneAnswer before the ACK",
		"monitor_api.go B2BUA.inviteSupervisor Ack":             "checkPhoneAnswer before the ACK",
		"reason.go byeWith Bye":                                 "the leg's checked dialog target (phone, or trunk: TargetOK / trunkInviteRefusal)",
		"reason.go byeWith WriteBye":                            "the leg's checked dialog target",
		"sessiontimer.go sessionTimer.sendRefresh Do":           "the leg's checked dialog target",
		"sessiontimer.go sessionTimer.sendRefresh WriteRequest": "the ACK of the refresh, same target",
		"sessiontimer.go ackClientReinvite WriteRequest":        "the re-INVITE's own destination",
		"sessiontimer.go trunkDialog.ackReinvite WriteRequest":  "trunkDialog.build: the target TargetOK accepted",
		// The trunk leg (trunkleg.go): the INVITE that only inviteTrunk
		// starts, then requests to the target TargetOK accepted (learn).
		"trunkleg.go legRun.send TransactionRequest":     "the INVITE inviteTrunk checked (dialTrunkLeg is called from gate.go only)",
		"trunkleg.go trunkDialog.Do TransactionRequest":  "trunkDialog.build: the target TargetOK accepted",
		"trunkleg.go trunkDialog.bye Do":                 "trunkDialog.Do",
		"trunkleg.go trunkDialog.writeAck WriteRequest":  "trunkDialog.build",
		"trunkleg.go trunkDialog.resendAck WriteRequest": "the ACK writeAck built",
		"trunkleg.go legRun.prack Do":                    "trunkDialog.Do, after learn checked the 1xx",
		"trunkleg.go legRun.giveUp Do":                   "CANCEL: the INVITE's own destination",
		"trunkleg.go legRun.hangUpFork Bye":              "the fork's dialog, learn checked by TargetOK",
		"trunkleg.go legRun.lateAnswer Bye":              "trunkDialog.Do, after learn checked the 2xx",
		// The signalling layer's own requests: to a trunk's configured
		// address only, never an INVITE.
		"../sip/trunk.go Trunk.ping Do":                             "OPTIONS to the trunk's configured address",
		"../sip/trunkreg.go trunkRegistrar.register Do":             "REGISTER to the trunk's configured address",
		"../sip/transport_client.go clientBinding.Request WriteMsg": "where every request above passes: transport (chooseTransport), TLS connection (routeTLS)",
		"../sip/transport_tls_client.go dialTCP DialContext":        "a TLS trunk's address only (routeTLS → tlsOutbound.ensure)",
	}
	// What puts a request or a connection on the wire: sipgo's client,
	// dialog and transport calls, the trunk leg's dialler, net's.
	sends := map[string]bool{
		"WriteInvite": true, "Invite": true, "ReInvite": true, "TransactionRequest": true, "WriteRequest": true,
		"Do": true, "DoDigestAuth": true, "TransactionDigestAuth": true, "WriteMsg": true, "WriteBye": true,
		"WriteAck": true, "Bye": true, "Ack": true, "dialTrunkLeg": true,
		"Dial": true, "DialContext": true, "DialUDP": true, "DialTCP": true, "DialTimeout": true,
		"ThroughEgressGate": true,
	}
	files := callLayerSources(t)
	found := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		fset := token.NewFileSet()
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			fd, ok := n.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				return true
			}
			fn := fd.Name.Name
			if fd.Recv != nil && len(fd.Recv.List) > 0 {
				rt := fd.Recv.List[0].Type
				if st, ok := rt.(*ast.StarExpr); ok {
					rt = st.X
				}
				if id, ok := rt.(*ast.Ident); ok {
					fn = id.Name + "." + fn
				}
			}
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				ce, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				name := ""
				switch x := ce.Fun.(type) {
				case *ast.SelectorExpr:
					name = x.Sel.Name
				case *ast.Ident:
					name = x.Name
				}
				if !sends[name] {
					return true
				}
				if len(ce.Args) == 1 {
					if _, ok := ce.Args[0].(*ast.FuncLit); ok {
						return true // sync.Once.Do
					}
				}
				site := f + " " + fn + " " + name
				found[site] = true
				if _, ok := reviewed[site]; !ok {
					t.Errorf("%s: %s sends with %s, a path nobody reviewed: route it through the egress gate (gate.go) or a dialog whose target was checked, then list it here", fset.Position(ce.Pos()), fn, name)
				}
				return true
			})
			return false
		})
	}
	for site := range reviewed {
		if !found[site] {
			t.Errorf("%s is listed but sends nothing any more: remove it from the list", site)
		}
	}
}

// A trunk permit cannot be forged or reused for another number or call.
func TestPermitOnlyFromAdmit(t *testing.T) {
	var zero Permit
	if zero.valid() || zero.E164() != "" {
		t.Error("the zero Permit is valid")
	}
	e := newCallEnv(t)
	c := e.b.newCall(testOperator, testApproved, "test")
	tr := e.b.trunks[0]
	for _, tt := range []struct {
		name string
		p    Permit
		uri  string
	}{
		{"no permit", Permit{}, testApproved},
		{"permit of another call", Permit{&permit{decision: allowed(testApproved), operator: testOperator, callID: "other"}}, testApproved},
		{"another number", Permit{&permit{decision: allowed(testApproved), operator: testOperator, callID: c.id}}, testApproved2},
		{"refused decision", Permit{&permit{decision: refusedDecision(testApproved), operator: testOperator, callID: c.id}}, testApproved},
	} {
		req := sip.NewRequest(sip.INVITE, tr.URI(tt.uri))
		if _, err := e.b.inviteTrunk(c.ctx, tt.p, c, tr, req, e.b.trunkLegOptions(c, tr, nil)); err == nil {
			t.Errorf("%s: INVITE sent", tt.name)
		}
	}
	if n := e.carrier.received("INVITE"); n != 0 {
		t.Errorf("the carrier got %d INVITEs", n)
	}
	if got := len(e.audit.find("egress.refused", "")); got != 4 {
		t.Errorf("egress.refused entries %d, want 4", got)
	}
	c.cancel()
}

func allowed(e164 string) policy.Decision {
	return policy.Decision{Allow: true, Reason: "ALLOWED", Rule: "all", E164: e164}
}

func refusedDecision(e164 string) policy.Decision {
	return policy.Decision{Reason: "NOT_ALLOWLISTED", Rule: "allowlist", E164: e164}
}

// In-dialog matching: Call-ID, both tags and the source.
func TestLegMatches(t *testing.T) {
	l := &leg{callID: "c1", localTag: "ours", remoteTag: "theirs", peerOK: hostIs(netip.MustParseAddr("192.168.1.50"))}
	mk := func(fromTag, toTag, src string) *sip.Request {
		req := sip.NewRequest(sip.BYE, sip.Uri{Host: "x"})
		f := &sip.FromHeader{Address: sip.Uri{Host: "a"}, Params: sip.NewParams()}
		if fromTag != "" {
			f.Params.Add("tag", fromTag)
		}
		to := &sip.ToHeader{Address: sip.Uri{Host: "b"}, Params: sip.NewParams()}
		if toTag != "" {
			to.Params.Add("tag", toTag)
		}
		req.AppendHeader(f)
		req.AppendHeader(to)
		req.SetSource(src)
		return req
	}
	tests := []struct {
		name         string
		req          *sip.Request
		tags, source bool
	}{
		{"the peer", mk("theirs", "ours", "192.168.1.50:5060"), true, true},
		{"the peer from another port", mk("theirs", "ours", "192.168.1.50:6000"), true, true},
		{"another host with the tags", mk("theirs", "ours", "192.168.1.66:5060"), true, false},
		{"tags swapped", mk("ours", "theirs", "192.168.1.50:5060"), false, true},
		{"no To tag", mk("theirs", "", "192.168.1.50:5060"), false, true},
		{"no tags", mk("", "", "192.168.1.50:5060"), false, true},
		{"no source", mk("theirs", "ours", ""), true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := sourceAddr(tt.req)
			tags, src := l.matches(tt.req, a)
			if tags != tt.tags || src != tt.source {
				t.Errorf("matches = tags %v source %v, want %v %v", tags, src, tt.tags, tt.source)
			}
		})
	}
	// A leg whose remote tag is unknown (still ringing) matches nothing.
	ringing := &leg{callID: "c2", localTag: "ours", peerOK: hostIs(netip.MustParseAddr("192.168.1.50"))}
	if tags, _ := ringing.matches(mk("", "ours", "192.168.1.50:5060"), netip.MustParseAddr("192.168.1.50")); tags {
		t.Error("a ringing leg matched a request without its remote tag")
	}
}

// refuse writes the response with its Reason, the audit entry and the
// metric, whatever the refusal.
func TestRefuseWritesAllThree(t *testing.T) {
	e := newCallEnv(t)
	tests := []struct {
		r          *Refusal
		kind       string
		countsCall bool
	}{
		{&Refusal{Status: 403, Reason: "NOT_ALLOWLISTED", Rule: "allowlist", Detail: "x"}, "policy.decision", true},
		{&Refusal{Status: 503, Reason: ReasonNoMediaPorts, Rule: ruleMedia}, "policy.decision", true},
		{&Refusal{Status: 491, Reason: ReasonReferPending, Rule: ruleRefer}, "policy.decision", true},
		{ErrMonitorBusy, "monitor.refused", false},
	}
	for _, tt := range tests {
		req := sip.NewRequest(sip.INVITE, sip.Uri{User: "0240", Host: "127.0.0.1"})
		req.AppendHeader(&sip.FromHeader{Address: sip.Uri{User: "101", Host: "h"}, Params: sip.NewParams()})
		req.AppendHeader(&sip.ToHeader{Address: sip.Uri{User: "0240", Host: "h"}, Params: sip.NewParams()})
		req.AppendHeader(sip.NewHeader("Call-ID", "refuse-"+tt.r.Reason))
		req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.INVITE})
		req.AppendHeader(&sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "127.0.0.1", Port: 5060, Params: sip.NewParams()})
		req.Via().Params.Add("branch", "z9hG4bK-"+tt.r.Reason)
		req.SetSource("127.0.0.1:5060")
		tx := siptest.NewServerTxRecorder(req)
		before := metricValue(e.b.metrics.callsRefused.WithLabelValues(tt.r.Reason))
		got := e.b.refuse(refusalSite{req: req, tx: tx, operator: "101", subject: "0240"}, tt.r)
		if got != tt.r {
			t.Errorf("%s: refuse returned %v", tt.r.Reason, got)
		}
		res := tx.Result()
		if len(res) != 1 || int(res[0].StatusCode) != tt.r.Status {
			t.Fatalf("%s: responses %v", tt.r.Reason, res)
		}
		if h := res[0].GetHeader("Reason"); h == nil || !strings.Contains(h.Value(), `text="`+tt.r.Reason+`"`) {
			t.Errorf("%s: Reason header %v", tt.r.Reason, h)
		}
		if n := len(e.audit.find(tt.kind, tt.r.Reason)); n != 1 {
			t.Errorf("%s: %d %s entries", tt.r.Reason, n, tt.kind)
		}
		after := metricValue(e.b.metrics.callsRefused.WithLabelValues(tt.r.Reason))
		if tt.countsCall != (after == before+1) {
			t.Errorf("%s: refused metric %v -> %v", tt.r.Reason, before, after)
		}
	}
}

// A phone INVITE goes only to the named user's own binding, at its
// registered address; auto-answer headers never go anywhere else.
func TestInvitePhoneOnlyToOwnBinding(t *testing.T) {
	e := newCallEnv(t)
	ph := e.phone.addr()
	own := psip.Binding{Extension: testOperator, Contact: "sip:101@" + ph.String(), Source: ph.String()}
	mk := func(target string) *sip.Request {
		var u sip.Uri
		if err := sip.ParseUri(target, &u); err != nil {
			t.Fatal(err)
		}
		return sip.NewRequest(sip.INVITE, u)
	}
	c := e.b.newCall(testOperator, testApproved, "test")
	defer c.cancel()
	for _, tt := range []struct {
		name string
		ext  string
		bnd  psip.Binding
		uri  string
	}{
		{"another user's binding", "102", own, own.Contact},
		{"Request-URI elsewhere than the binding", testOperator, own, "sip:101@127.0.0.3:5060"},
		{"binding at the trunk", testOperator, psip.Binding{Extension: testOperator, Contact: "sip:101@" + e.carrier.addr().String(), Source: ph.String()}, "sip:101@" + e.carrier.addr().String()},
		// A Contact's transport changes how, never where (sip/transport_route.go).
		{"binding at the trunk, over TLS", testOperator, psip.Binding{Extension: testOperator, Contact: "sip:101@" + e.carrier.addr().String() + ";transport=tls", Source: ph.String(), Transport: "tls"}, "sip:101@" + e.carrier.addr().String() + ";transport=tls"},
		{"binding at the trunk, over TCP", testOperator, psip.Binding{Extension: testOperator, Contact: "sip:101@" + e.carrier.addr().String() + ";transport=tcp", Source: ph.String(), Transport: "tcp"}, "sip:101@" + e.carrier.addr().String() + ";transport=tcp"},
		{"sips: binding at the trunk", testOperator, psip.Binding{Extension: testOperator, Contact: "sips:101@" + e.carrier.addr().String(), Source: ph.String(), Transport: "tls"}, "sips:101@" + e.carrier.addr().String()},
		{"Request-URI elsewhere, transport=tcp", testOperator, own, "sip:101@127.0.0.3:5060;transport=tcp"},
		{"Request-URI elsewhere, transport=tls", testOperator, own, "sip:101@127.0.0.3:5061;transport=tls"},
		{"binding off the phone networks, over TLS", testOperator, psip.Binding{Extension: testOperator, Contact: "sip:101@192.0.2.50:5061;transport=tls", Source: ph.String(), Transport: "tls"}, "sip:101@192.0.2.50:5061;transport=tls"},
	} {
		req := mk(tt.uri)
		if _, err := e.b.invitePhone(c.ctx, c, tt.ext, tt.bnd, req, true); err == nil {
			t.Errorf("%s: INVITE sent", tt.name)
		}
		if req.GetHeader("Call-Info") != nil || req.GetHeader("Alert-Info") != nil {
			t.Errorf("%s: auto-answer headers added to a refused INVITE", tt.name)
		}
	}
	if n := e.carrier.received("INVITE") + e.attacker.received("INVITE") + e.phone.received("INVITE"); n != 0 {
		t.Errorf("%d INVITEs sent", n)
	}
}

// A REFER's NOTIFY goes to the operator's phone only: never to the
// trunk (the phone and the carrier share 127.0.0.1 here: host and port
// tell them apart), another host, or a host name.
func TestNotifyPhoneOnlyToThePhone(t *testing.T) {
	e := newCallEnv(t)
	c := e.b.newCall(testOperator, testApproved, "test")
	defer c.cancel()
	op := &leg{side: media.LegOperator, peerOK: hostIs(e.phone.addr().Addr())}
	for _, target := range []string{
		"sip:" + testOperator + "@" + e.carrier.addr().String(),
		"sip:" + testOperator + "@" + e.attacker.addr().String(),
		"sip:" + testOperator + "@phone.example",
	} {
		var u sip.Uri
		if err := sip.ParseUri(target, &u); err != nil {
			t.Fatal(err)
		}
		if err := e.b.notifyPhone(c.ctx, c, op, sip.NewRequest(sip.NOTIFY, u)); !errors.Is(err, errEgress) {
			t.Errorf("NOTIFY to %s: %v, want refused by the gate", target, err)
		}
	}
	if n := e.carrier.received("NOTIFY") + e.attacker.received("NOTIFY"); n != 0 {
		t.Errorf("%d NOTIFYs sent", n)
	}
	if got := len(e.audit.find("egress.refused", "")); got != 3 {
		t.Errorf("egress.refused entries %d, want 3", got)
	}
}

// The console's click-to-call gets the policy's refusal as a RefusedError
// (the web console shows its reason), audited once like any refusal.
func TestClickToCallRefusal(t *testing.T) {
	e := newCallEnv(t)
	_, err := e.b.ClickToCall(context.Background(), ClickToCallRequest{Operator: testOperator, Number: "0240999999", Source: "web"}, nil)
	var re *RefusedError
	if !errors.As(err, &re) || re.Decision.Reason != "NOT_ALLOWLISTED" || !errors.Is(err, ErrRefused) {
		t.Fatalf("err %v, want a RefusedError NOT_ALLOWLISTED", err)
	}
	if got := e.audit.find("policy.decision", "NOT_ALLOWLISTED"); len(got) != 1 || got[0].subject != "+33240999999" {
		t.Errorf("audit %+v", got)
	}
	if n := e.phone.received("INVITE"); n != 0 {
		t.Errorf("the phone was rung %d times for a refused call", n)
	}
}

// callLayerSources lists the Go files of this package and of the
// signalling layer (../sip), tests included.
func callLayerSources(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, glob := range []string{"*.go", "../sip/*.go"} {
		fs, err := filepath.Glob(glob)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, fs...)
	}
	return files
}
