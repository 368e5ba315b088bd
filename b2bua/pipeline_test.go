package b2bua

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"plateau/media"
	psip "plateau/sip"
)

// An inbound call goes through the whole pipeline and leaves nothing
// behind: slot, table entry, recording, audit trail.
func TestPipelineInboundConnectsAndTearsDown(t *testing.T) {
	e := newCallEnv(t)
	d, r := e.placeInbound("0240123456")
	if d == nil {
		t.Fatalf("inbound call not answered: %q", r)
	}
	if n, _, _ := e.active.Active(context.Background(), testOperator); n != 1 {
		t.Errorf("operator slots %d during the call, want 1", n)
	}
	if got := e.phone.invitesReceived(); len(got) != 1 || strings.Contains(got[0].contact, "answer-after") {
		t.Errorf("phone INVITEs %+v, want one", got)
	}
	e.trunkSrc.send(e.addr, e.request(e.trunkSrc, "BYE", d, "0240123456", "", "", ""))
	if r := e.trunkSrc.final("BYE", 5*time.Second); statusOf(r) != "200" {
		t.Fatalf("BYE answered %q", r)
	}
	waitFor(t, "the call's teardown", func() bool { return e.callsLeft() == 0 && e.active.Site() == 0 })
	waitFor(t, "BYE to the phone", func() bool { return e.phone.received("BYE") == 1 })
	// call.ended is written after the slots are released: wait for it.
	waitFor(t, "call.ended audited", func() bool { return len(e.audit.find("call.ended", "outside_hangup")) == 1 })
	if n := len(e.audit.find("policy.decision", "ALLOWED")); n != 1 {
		t.Errorf("%d allowed decisions audited, want 1: %+v", n, e.audit.find("", ""))
	}
	e.rec.mu.Lock()
	defer e.rec.mu.Unlock()
	if e.rec.open != 1 || e.rec.closed != 1 {
		t.Errorf("recordings opened %d closed %d, want 1 and 1", e.rec.open, e.rec.closed)
	}
}

// RECORDER_UNAVAILABLE is one refusal like any other: one audit entry,
// one metric, the Reason header, and nobody is rung.
func TestPipelineRecorderUnavailableRefusedOnce(t *testing.T) {
	e := newCallEnv(t)
	e.rec.mu.Lock()
	e.rec.fail = errors.New("disk full")
	e.rec.mu.Unlock()
	d, r := e.placeInbound("0240123456")
	if d != nil || statusOf(r) != "403" || !strings.Contains(r, `text="RECORDER_UNAVAILABLE"`) {
		t.Fatalf("answer %q, want 403 with Reason RECORDER_UNAVAILABLE", r)
	}
	if got := e.audit.find("policy.decision", "RECORDER_UNAVAILABLE"); len(got) != 1 || got[0].details["call_id"] == "" {
		t.Errorf("RECORDER_UNAVAILABLE audited %d times: %+v", len(got), got)
	}
	if v := metricValue(e.b.metrics.callsRefused.WithLabelValues("RECORDER_UNAVAILABLE")); v != 1 {
		t.Errorf("refused metric %v, want 1", v)
	}
	if n := len(e.phone.invitesReceived()); n != 0 {
		t.Errorf("phone rung %d times for a call that cannot be recorded", n)
	}
	waitFor(t, "the slot released", func() bool { return e.active.Site() == 0 && e.callsLeft() == 0 })
}

// A binding whose Contact is not a phone address (here: the carrier,
// stored behind the registrar's back, e.g. from before an upgrade) is
// refused at use: no INVITE reaches it, the refusal is audited.
func TestGateRefusesBindingAtTrunk(t *testing.T) {
	e := newCallEnvSetup(t, envSetup{bindings: func(e *callEnv) []psip.Binding {
		return []psip.Binding{{Extension: testOperator, Contact: fmt.Sprintf("sip:%s@%s", testOperator, e.carrier.addr()),
			Source: e.phone.addr().String(), Transport: "udp", ExpiresAt: time.Now().Add(2 * time.Hour)}}
	}})
	// The newest binding (the carrier's) is picked first.
	d, r := e.placeInbound("0240123456")
	if d != nil {
		t.Fatalf("call connected through a binding at the trunk: %q", r)
	}
	if n := e.carrier.received("INVITE"); n != 0 {
		t.Errorf("the carrier got %d INVITEs", n)
	}
	if len(e.audit.find("egress.refused", ReasonDestinationRefused)) == 0 {
		t.Errorf("no egress.refused entry: %+v", e.audit.entries)
	}
	if _, err := e.b.ClickToCall(context.Background(), ClickToCallRequest{Operator: testOperator, Number: testApproved}, nil); err == nil {
		t.Error("click-to-call rang a binding at the trunk")
	}
	if n := e.carrier.received("INVITE"); n != 0 {
		t.Errorf("the carrier got %d INVITEs", n)
	}
	waitFor(t, "slots released", func() bool { return e.active.Site() == 0 && e.callsLeft() == 0 })
}

// Click-to-call goes through the same pipeline: auto-answer only toward
// the operator's own binding, the permit's number at the trunk, the same
// connected step (answered metric) and teardown.
func TestPipelineClickToCall(t *testing.T) {
	e := newCallEnv(t)
	outcome := make(chan Outcome, 1)
	id, err := e.b.ClickToCall(context.Background(), ClickToCallRequest{Operator: testOperator, Number: "0240123456", Source: "web"},
		func(o Outcome) { outcome <- o })
	if err != nil {
		t.Fatal(err)
	}
	select {
	case o := <-outcome:
		if !o.Answered || o.CallID != id {
			t.Fatalf("outcome %+v", o)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no outcome")
	}
	inv := e.phone.invitesReceived()
	if len(inv) != 1 {
		t.Fatalf("phone INVITEs %d", len(inv))
	}
	if got := e.carrier.invitesReceived(); len(got) != 1 || !strings.Contains(got[0].uri, testApproved) {
		t.Fatalf("carrier INVITEs %+v", got)
	}
	if v := metricValue(e.b.metrics.callsAnswered); v != 1 {
		t.Errorf("answered %v, want 1 (click-to-call is connected like any call)", v)
	}
	if len(e.audit.find("call.dial", "click-to-call")) != 1 {
		t.Errorf("the trunk INVITE is not audited: %+v", e.audit.entries)
	}
	if err := e.b.Hangup(id, testOperator); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "teardown", func() bool { return e.callsLeft() == 0 && e.active.Site() == 0 })
	if e.carrier.received("BYE") != 1 || e.phone.received("BYE") != 1 {
		t.Errorf("BYEs: carrier %d phone %d", e.carrier.received("BYE"), e.phone.received("BYE"))
	}
}

// In-dialog requests with the right Call-ID and tags from another host are
// refused (481) and audited; the call goes on. Wrong tags from the right
// host are refused too.
func TestInDialogOnlyFromThePeer(t *testing.T) {
	e := newCallEnv(t)
	d, r := e.placeInbound("0240123456")
	if d == nil {
		t.Fatalf("not answered: %q", r)
	}
	// The operator leg, from another host.
	e.attacker.send(e.addr, e.phoneRequest(e.attacker, "BYE", 10, "", "", ""))
	if r := e.attacker.final("BYE", 5*time.Second); statusOf(r) != "481" || !strings.Contains(r, `text="NOT_DIALOG_PEER"`) {
		t.Errorf("BYE from another host answered %q, want 481 NOT_DIALOG_PEER", r)
	}
	// The trunk leg, from another host: a re-INVITE moving the media.
	att := *d
	e.attacker.send(e.addr, e.inviteMsg(e.attacker, &att, "0240123456", ""))
	if r := e.attacker.final("INVITE", 5*time.Second); statusOf(r) != "481" {
		t.Errorf("re-INVITE from another host answered %q, want 481", statusOf(r))
	}
	// The right host, a wrong tag.
	bad := *d
	bad.fromTag = "forged"
	e.trunkSrc.send(e.addr, e.request(e.trunkSrc, "BYE", &bad, "0240123456", "", "", ""))
	if r := e.trunkSrc.final("BYE", 5*time.Second); statusOf(r) != "481" {
		t.Errorf("BYE with a forged tag answered %q, want 481", statusOf(r))
	}
	if e.callsLeft() != 1 {
		t.Fatal("the call was ended by a forged request")
	}
	if len(e.audit.find("call.hijack_attempt", "")) < 2 {
		t.Errorf("hijack attempts not audited: %+v", e.audit.find("call.hijack_attempt", ""))
	}
	if v := metricValue(e.b.metrics.inDialogRejected.WithLabelValues("source")); v < 2 {
		t.Errorf("rejected-by-source metric %v", v)
	}
	// The real peer still can.
	e.phone.send(e.addr, e.phoneRequest(e.phone, "BYE", 10, "", "", ""))
	if r := e.phone.final("BYE", 5*time.Second); statusOf(r) != "200" {
		t.Errorf("the phone's own BYE answered %q", statusOf(r))
	}
	waitFor(t, "teardown", func() bool { return e.callsLeft() == 0 && e.active.Site() == 0 })
}

func referTo(n string) string {
	return "Refer-To: <sip:" + n + "@carrier.example>\r\nReferred-By: <sip:101@plateau>\r\n"
}

// REFER before the call is confirmed is refused with a reason (it used to
// BYE a nil leg and crash the process).
func TestReferBeforeAnswer(t *testing.T) {
	e := newCallEnv(t)
	d := &inboundDialog{callID: "early@carrier", fromTag: "early"}
	e.trunkSrc.send(e.addr, e.inviteMsg(e.trunkSrc, d, "0240123456", ""))
	r := e.trunkSrc.final("INVITE", 10*time.Second) // the 200, not yet ACKed
	if statusOf(r) != "200" {
		t.Fatalf("INVITE answered %q", r)
	}
	e.phone.send(e.addr, e.phoneRequest(e.phone, "REFER", 5, referTo(testApproved2), "", ""))
	rr := e.phone.final("REFER", 5*time.Second)
	if statusOf(rr) != "403" || !strings.Contains(rr, ReasonReferNotConfirmed) {
		t.Errorf("REFER before the confirmation answered %q", rr)
	}
	d.toTag = tagOf(header(r, toRE))
	e.trunkSrc.send(e.addr, e.request(e.trunkSrc, "ACK", d, "0240123456", "", "", ""))
	waitFor(t, "the call connected", func() bool { c := e.b.findCall(testOperator); return c != nil })
	if n := e.carrier.received("INVITE"); n != 0 {
		t.Errorf("carrier got %d INVITEs", n)
	}
	e.trunkSrc.send(e.addr, e.request(e.trunkSrc, "BYE", d, "0240123456", "", "", ""))
	waitFor(t, "teardown", func() bool { return e.callsLeft() == 0 && e.active.Site() == 0 })
}

// Several REFERs in one call: one transfer at a time, each new outside
// leg counted (the per-operator limit of 1 holds: one slot after each
// transfer), every replaced party hung up, only the operator may transfer.
func TestReferSeveral(t *testing.T) {
	e := newCallEnv(t)
	d, r := e.placeInbound("0240123456")
	if d == nil {
		t.Fatalf("not answered: %q", r)
	}
	// The outside party may not transfer.
	e.trunkSrc.send(e.addr, e.request(e.trunkSrc, "REFER", d, "0240123456", referTo(testApproved2), "", ""))
	if r := e.trunkSrc.final("REFER", 5*time.Second); statusOf(r) != "403" || !strings.Contains(r, ReasonReferForbidden) {
		t.Errorf("REFER from the outside party answered %q", r)
	}
	cseq := 20
	targets := []string{testApproved2, testApproved, testApproved2, testApproved}
	accepted := 0
	for i, target := range targets {
		// Four REFERs back to back: while one is pending the next is refused.
		var codes []string
		for range 2 {
			cseq++
			e.phone.send(e.addr, e.phoneRequest(e.phone, "REFER", cseq, referTo(target), "", ""))
			codes = append(codes, statusOf(e.phone.final("REFER", 5*time.Second)))
		}
		for _, c := range codes {
			switch c {
			case "202":
				accepted++
			case "491":
			default:
				t.Errorf("REFER %d answered %s", i, c)
			}
		}
		waitFor(t, "the transfer", func() bool {
			c := e.b.findCall(testOperator)
			if c == nil {
				return false
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			return !c.transfer
		})
		if n, _, _ := e.active.Active(context.Background(), testOperator); n != 1 {
			t.Errorf("after transfer %d the operator holds %d slots, want 1", i, n)
		}
	}
	if n := e.carrier.received("INVITE"); n != accepted {
		t.Errorf("carrier INVITEs %d for %d accepted REFERs", n, accepted)
	}
	// Every replaced party was hung up: the trunk source's leg and every
	// carrier leg but the current one.
	waitFor(t, "replaced legs hung up", func() bool {
		return e.trunkSrc.received("BYE") == 1 && e.carrier.received("BYE") == accepted-1
	})
	if got := len(e.audit.find("call.transferred", "")); got != accepted {
		t.Errorf("call.transferred %d, want %d", got, accepted)
	}
	if e.phone.received("NOTIFY") != accepted {
		t.Errorf("NOTIFYs %d, want %d", e.phone.received("NOTIFY"), accepted)
	}
	e.phone.send(e.addr, e.phoneRequest(e.phone, "BYE", 99, "", "", ""))
	waitFor(t, "teardown", func() bool { return e.callsLeft() == 0 && e.active.Site() == 0 })
	waitFor(t, "the last carrier leg hung up", func() bool { return e.carrier.received("BYE") == accepted })
	if v := metricValue(e.b.metrics.legsLeaked); v != 0 {
		t.Errorf("legs leaked: %v", v)
	}
}

// In detention mode the relay's notice gate opens only once the notice has
// been played to the outside party, and closes again for a transfer's new
// party until the notice has been played to it too.
func TestDetentionNoticeGate(t *testing.T) {
	notice := media.Tone(440, 200*time.Millisecond)
	e := newCallEnv(t, func(o *CallOptions) { o.Detention, o.Notice = true, notice })
	d, r := e.placeInbound("0240123456")
	if d == nil {
		t.Fatalf("not answered: %q", r)
	}
	relay := e.relayOf(t) // srtp_test.go
	waitFor(t, "the notice played to the caller", func() bool { return !relay.NoticePending() })
	e.phone.send(e.addr, e.phoneRequest(e.phone, "REFER", 30, referTo(testApproved2), "", ""))
	if r := e.phone.final("REFER", 5*time.Second); statusOf(r) != "202" {
		t.Fatalf("REFER answered %q", r)
	}
	waitFor(t, "the transfer", func() bool { return len(e.audit.find("call.transferred", "")) == 1 })
	waitFor(t, "the notice played to the new party", func() bool { return !relay.NoticePending() })
	e.phone.send(e.addr, e.phoneRequest(e.phone, "BYE", 31, "", "", ""))
	waitFor(t, "teardown", func() bool { return e.callsLeft() == 0 && e.active.Site() == 0 })
}
