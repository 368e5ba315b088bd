package b2bua

import (
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// FuzzDialogs drives whole dialogs against the call layer over real UDP:
// a carrier's inbound call rung to operator 101's phone, then random
// sequences of INVITE, CANCEL, ACK, BYE, re-INVITE, UPDATE, INFO, REFER
// and PRACK from the carrier, the phone or another host on the LAN, with
// Call-ID missing, headers duplicated or malformed, tags wrong, bodies
// garbage. After each sequence the calls are torn down and the invariants
// checked: no panic (the process would die), no INVITE to anything but
// the phone or (with a permit, audited) the trunk for an approved number,
// and nothing left in the calls table or the slot counts.
//
// Each input is a list of 2-byte steps: an operation and mutation flags.
func FuzzDialogs(f *testing.F) {
	f.Add([]byte{0, 0, 2, 0})                       // a call, hung up by the carrier
	f.Add([]byte{0, 0, 8, 0, 8, 0, 3, 0})           // two transfers, the phone hangs up
	f.Add([]byte{0, 0, 10, 0, 4, 0x40, 5, 0, 2, 0}) // hijack attempt, bad re-INVITE
	f.Add([]byte{0, 1, 1, 0, 0, 8, 9, 0})           // malformed INVITE, CANCEL, PRACK
	f.Add([]byte{0, 0, 8, 0x10, 7, 0, 6, 4, 3, 2})  // REFER from another host, INFO, UPDATE
	env := newCallEnv(f)
	f.Fuzz(func(t *testing.T, steps []byte) {
		if len(steps) > 24 {
			steps = steps[:24]
		}
		// Go's fuzz worker panics ("deadlocked!") on an input that runs
		// over 10 s: the steps get a budget, what is left is skipped.
		fz := &dialogFuzzer{e: env, t: t, deadline: time.Now().Add(stepBudget)}
		for i := 0; i+1 < len(steps) && time.Now().Before(fz.deadline); i += 2 {
			fz.step(steps[i], steps[i+1])
		}
		fz.teardown()
	})
}

type dialogFuzzer struct {
	e        *callEnv
	t        *testing.T
	d        *inboundDialog // the carrier's current dialog
	answered bool
	cseq     int       // the phone's CSeq in the operator leg
	deadline time.Time // no step starts after it
}

// stepBudget and teardownBudget keep one input under the 10 s after which
// Go's fuzz worker declares itself deadlocked (an answered call takes
// milliseconds on a quiet host, seconds on a loaded one).
const (
	stepBudget     = 3 * time.Second
	teardownBudget = 5 * time.Second
)

var fuzzSeq atomic.Int64

// Mutation flags.
const (
	mutNoCallID = 1 << iota
	mutDupFrom
	mutWrongToTag
	mutBadCSeq
	mutAttacker
	mutNoToTag
	mutBadBody
)

var (
	callIDLineRE = regexp.MustCompile(`(?m)^Call-ID:[^\r\n]*\r\n`)
	cseqLineRE   = regexp.MustCompile(`(?m)^CSeq:[^\r\n]*\r\n`)
	toTagRE      = regexp.MustCompile(`(?m)^(To:[^\r\n]*?);tag=[^\r\n;]*`)
	bodyRE       = regexp.MustCompile(`(?s)Content-Length: \d+\r\n\r\n.*$`)
)

// mutate applies the flags to a raw message.
func mutate(msg string, flags byte) string {
	if flags&mutNoCallID != 0 {
		msg = callIDLineRE.ReplaceAllString(msg, "")
	}
	if flags&mutDupFrom != 0 {
		msg = strings.Replace(msg, "From: ", "From: <sip:evil@x>;tag=dup\r\nFrom: ", 1)
	}
	if flags&mutWrongToTag != 0 {
		msg = toTagRE.ReplaceAllString(msg, "$1;tag=forged")
	}
	if flags&mutNoToTag != 0 {
		msg = toTagRE.ReplaceAllString(msg, "$1")
	}
	if flags&mutBadCSeq != 0 {
		msg = cseqLineRE.ReplaceAllString(msg, "CSeq: x1 BYE BYE\r\n")
	}
	if flags&mutBadBody != 0 {
		body := "v=0\r\nc=IN IP4 300.1.1.1\r\nm=audio -1 RTP/AVP 999\r\n"
		msg = bodyRE.ReplaceAllString(msg, fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body))
	}
	return msg
}

func (fz *dialogFuzzer) drain() {
	for _, a := range []*udpAgent{fz.e.trunkSrc, fz.e.phone, fz.e.attacker} {
		for len(a.resp) > 0 {
			<-a.resp
		}
	}
}

const fuzzWait = 300 * time.Millisecond

func (fz *dialogFuzzer) step(op, flags byte) {
	e := fz.e
	fz.drain()
	sender := e.trunkSrc
	if flags&mutAttacker != 0 {
		sender = e.attacker
	}
	caller := "0240123456"
	switch op % 11 {
	case 0: // a new inbound call
		if flags&0x80 != 0 {
			caller = "0240999999" // not approved
		}
		d := &inboundDialog{callID: fmt.Sprintf("fz%d@carrier", fuzzSeq.Add(1)), fromTag: fmt.Sprintf("f%d", fuzzSeq.Add(1))}
		e.trunkSrc.send(e.addr, mutate(e.inviteMsg(e.trunkSrc, d, caller, ""), flags&^mutAttacker))
		// The whole wait, whatever the budget: a 200 left without its ACK
		// keeps the call until Timer H (32 s, RFC 3261 §13.3.1.4).
		wait := 5 * time.Second
		if flags&(mutNoCallID|mutBadCSeq|mutDupFrom) != 0 {
			wait = fuzzWait
		}
		r := e.trunkSrc.final("INVITE", wait)
		if r == "" {
			return
		}
		d.toTag = tagOf(header(r, toRE))
		d.ackFailure = statusOf(r) != "200"
		e.trunkSrc.send(e.addr, e.request(e.trunkSrc, "ACK", d, caller, "", "", ""))
		if !d.ackFailure {
			fz.d, fz.answered = d, true
		}
	case 1: // CANCEL of the last INVITE
		if fz.d != nil {
			sender.send(e.addr, mutate(e.request(sender, "CANCEL", fz.d, caller, "", "", ""), flags))
			sender.final("CANCEL", fuzzWait)
		}
	case 2: // BYE from the carrier's side
		if fz.d != nil {
			sender.send(e.addr, mutate(e.request(sender, "BYE", fz.d, caller, "", "", ""), flags))
			sender.final("BYE", fuzzWait)
		}
	case 3: // BYE from the phone's side
		fz.phoneSide(sender, flags, "BYE", "", "", "")
	case 4: // re-INVITE from the carrier's side
		if fz.d != nil {
			d := *fz.d
			sender.send(e.addr, mutate(e.inviteMsg(sender, &d, caller, ""), flags))
			fz.d.cseq = d.cseq
			if r := sender.final("INVITE", fuzzWait); r != "" {
				d.ackFailure = statusOf(r) != "200"
				sender.send(e.addr, e.request(sender, "ACK", &d, caller, "", "", ""))
			}
		}
	case 5: // re-INVITE from the phone's side
		ap := sender.addr()
		sdp := fmt.Sprintf("v=0\r\no=- 1 2 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=sendonly\r\n", ap.Addr(), ap.Addr(), ap.Port()+1)
		fz.phoneSide(sender, flags, "INVITE", "", "application/sdp", sdp)
	case 6: // UPDATE
		fz.phoneSide(sender, flags, "UPDATE", "", "", "")
	case 7: // INFO (DTMF)
		fz.phoneSide(sender, flags, "INFO", "", "application/dtmf-relay", "Signal=5\r\nDuration=160\r\n")
	case 8: // REFER from the phone's side
		target := testApproved2
		if flags&0x80 != 0 {
			target = "+33240999999"
		}
		fz.phoneSide(sender, flags, "REFER", referTo(target), "", "")
	case 9: // PRACK
		fz.phoneSide(sender, flags, "PRACK", "RAck: 1 1 INVITE\r\n", "", "")
	case 10: // any in-dialog request from another host, tags right
		fz.phoneSide(e.attacker, flags&^mutAttacker, "BYE", "", "", "")
		if fz.d != nil {
			e.attacker.send(e.addr, e.request(e.attacker, "BYE", fz.d, caller, "", "", ""))
			e.attacker.final("BYE", fuzzWait)
		}
	}
}

// phoneSide sends an in-dialog request of the operator leg, if the phone
// was ever rung.
func (fz *dialogFuzzer) phoneSide(sender *udpAgent, flags byte, method, extra, ctype, body string) {
	e := fz.e
	if len(e.phone.invitesReceived()) == 0 {
		return
	}
	fz.cseq++
	msg := mutate(e.phoneRequest(sender, method, 1000+fz.cseq, extra, ctype, body), flags)
	sender.send(e.addr, msg)
	if r := sender.final(method, fuzzWait); r != "" && method == "INVITE" {
		// ACK the re-INVITE's answer (2xx: new transaction; else same).
		ack := strings.Replace(e.phoneRequest(sender, "ACK", 1000+fz.cseq, "", "", ""), "CSeq: ", "CSeq: ", 1)
		sender.send(e.addr, ack)
	}
}

// teardown hangs up what is left and checks the invariants.
func (fz *dialogFuzzer) teardown() {
	e, t := fz.e, fz.t
	if fz.d != nil {
		e.trunkSrc.send(e.addr, e.request(e.trunkSrc, "BYE", fz.d, "0240123456", "", "", ""))
		e.trunkSrc.final("BYE", fuzzWait)
	}
	e.b.hangupAll("fuzz_teardown")
	for end := time.Now().Add(teardownBudget); e.callsLeft() != 0 || e.active.Site() != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%v after the hang-up: %d calls left, %d slots held", teardownBudget, e.callsLeft(), e.active.Site())
		}
	}
	if e.trunkSrc.received("INVITE") != 0 || e.attacker.received("INVITE") != 0 {
		t.Fatalf("an INVITE was sent to a host that is not a phone or a trunk")
	}
	dials := e.audit.find("call.dial", "")
	carrier := e.carrier.invitesReceived()
	if len(carrier) > len(dials) {
		t.Fatalf("the carrier got %d INVITEs for %d permits", len(carrier), len(dials))
	}
	for _, inv := range carrier {
		if !strings.Contains(inv.uri, testApproved2) && !strings.Contains(inv.uri, testApproved) {
			t.Fatalf("the carrier was asked for %s", inv.uri)
		}
	}
	for _, w := range []string{"supervise", "announce", "transfer", "dial", "end", "coaching"} {
		if v := panicsIn(e.reg, w); v != 0 {
			t.Fatalf("panic in %s", w)
		}
	}
}
