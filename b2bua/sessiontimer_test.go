package b2bua

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"plateau/media"
	psip "plateau/sip"
)

func TestParseSessionExpires(t *testing.T) {
	tests := []struct {
		in      string
		want    sessionExpires
		wantErr bool
	}{
		{"1800", sessionExpires{Interval: 1800 * time.Second}, false},
		{"90;refresher=uac", sessionExpires{Interval: 90 * time.Second, Refresher: "uac"}, false},
		{" 90 ; Refresher = UAS ", sessionExpires{Interval: 90 * time.Second, Refresher: "uas"}, false},
		{"90;foo=bar", sessionExpires{Interval: 90 * time.Second}, false},
		{"0", sessionExpires{}, true},
		{"-5", sessionExpires{}, true},
		{"86401", sessionExpires{}, true},
		{"99999999999999999999", sessionExpires{}, true},
		{"10000000000", sessionExpires{}, true}, // overflows time.Duration once multiplied
		{"9223372036", sessionExpires{}, true},
		{"abc", sessionExpires{}, true},
		{"90;refresher=proxy", sessionExpires{}, true},
		{"", sessionExpires{}, true},
	}
	for _, tt := range tests {
		got, err := parseSessionExpires(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseSessionExpires(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestUASSessionTimer(t *testing.T) {
	tests := []struct {
		name        string
		hdrs        map[string]string
		wantOK      bool
		wantSE      string
		wantRequire bool
	}{
		{"no timer asked", map[string]string{"Supported": "timer"}, false, "", false},
		{"UAC supports timers: it refreshes", map[string]string{"Session-Expires": "1800", "Supported": "100rel, timer"}, true, "1800;refresher=uac", true},
		{"UAC asks us to refresh", map[string]string{"Session-Expires": "600;refresher=uas", "Supported": "timer"}, true, "600;refresher=uas", true},
		{"proxy-inserted, UAC without timer: we refresh", map[string]string{"Session-Expires": "900"}, true, "900;refresher=uas", false},
		{"compact forms", map[string]string{"x": "120", "k": "timer"}, true, "120;refresher=uac", true},
		{"bad value ignored", map[string]string{"Session-Expires": "soon", "Supported": "timer"}, false, "", false},
		// A refresh storm asked: held to the floor (Min-SE), and said so.
		{"1 s raised to Min-SE", map[string]string{"Session-Expires": "1;refresher=uas", "Supported": "timer"}, true, "90;refresher=uas", true},
		{"89 s raised to Min-SE", map[string]string{"Session-Expires": "89", "Supported": "timer"}, true, "90;refresher=uac", true},
		{"Min-SE itself kept", map[string]string{"x": "90", "k": "timer"}, true, "90;refresher=uac", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := sip.NewRequest(sip.INVITE, sip.Uri{Host: "127.0.0.1"})
			for k, v := range tt.hdrs {
				req.AppendHeader(sip.NewHeader(k, v))
			}
			se, hdrs, ok := uasSessionTimer(req, minSE)
			if ok != tt.wantOK {
				t.Fatalf("ok %v, want %v", ok, tt.wantOK)
			}
			if !ok {
				return
			}
			if se.String() != tt.wantSE || hdrs[0].Value() != tt.wantSE {
				t.Errorf("Session-Expires %q (header %q), want %q", se.String(), hdrs[0].Value(), tt.wantSE)
			}
			if gotRequire := len(hdrs) == 2 && hdrs[1].Value() == "timer"; gotRequire != tt.wantRequire {
				t.Errorf("Require: timer %v, want %v", gotRequire, tt.wantRequire)
			}
		})
	}
}

func FuzzParseSessionExpires(f *testing.F) {
	for _, s := range []string{"1800", "90;refresher=uac", " 90 ; Refresher = UAS ", "0", "86401", "90;refresher=", ";;", "1;refresher=uac;refresher=uas"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		se, err := parseSessionExpires(s)
		if err != nil {
			return
		}
		if se.Interval < time.Second || se.Interval > maxSessionExpires {
			t.Fatalf("%q: interval %v out of bounds", s, se.Interval)
		}
		// What Plateau writes back parses to the same.
		again, err := parseSessionExpires(se.String())
		if err != nil || again != se {
			t.Fatalf("%q -> %q -> %+v, %v", s, se.String(), again, err)
		}
	})
}

func TestUnsupportedRequire(t *testing.T) {
	tests := []struct {
		require []string
		want    string
	}{
		{nil, ""},
		{[]string{"timer"}, ""},
		{[]string{"100rel"}, "100rel"},
		{[]string{"timer, precondition", "100rel"}, "precondition,100rel"},
	}
	for _, tt := range tests {
		req := sip.NewRequest(sip.INVITE, sip.Uri{Host: "127.0.0.1"})
		for _, v := range tt.require {
			req.AppendHeader(sip.NewHeader("Require", v))
		}
		req.AppendHeader(sip.NewHeader("Proxy-Require", "sec-agree")) // not ours to honour
		if got := strings.Join(unsupportedRequire(req), ","); got != tt.want {
			t.Errorf("Require %q: unsupported %q, want %q", tt.require, got, tt.want)
		}
	}
}

// Plateau is the UAC of the operator leg of an inbound call: its INVITE
// offers a session timer, a 422 is retried with the phone's Min-SE, and the
// phone's 2xx decides who refreshes (RFC 4028 §7). A phone without timers
// just works.
func TestSessionTimerTowardRungPhone(t *testing.T) {
	seRE := hdrRE("Session-Expires|x")
	tests := []struct {
		name     string
		onInvite func(n int, msg string) (string, string)
		// check runs once the call is connected.
		check func(t *testing.T, e *callEnv, d *inboundDialog)
	}{
		{
			name:     "phone without timer support: no timer, the call stays up",
			onInvite: nil,
			check: func(t *testing.T, e *callEnv, d *inboundDialog) {
				c := e.b.findCall(testOperator)
				c.mu.Lock()
				st := c.sessionTimers[media.LegOperator]
				c.mu.Unlock()
				if st != nil {
					t.Error("a session timer runs toward a phone that answered without Session-Expires")
				}
			},
		},
		{
			name: "422: retried once with the phone's Min-SE, same Call-ID and From tag, next CSeq",
			onInvite: func(n int, msg string) (string, string) {
				if header(msg, seRE) == "1800" {
					return "422 Session Interval Too Small", "Min-SE: 3600\r\n"
				}
				return "", ""
			},
			check: func(t *testing.T, e *callEnv, d *inboundDialog) {
				inv := e.phone.invitesReceived()
				if len(inv) != 1 {
					t.Fatalf("%d INVITEs answered 200, want 1", len(inv))
				}
				if n := e.phone.received("INVITE"); n != 2 {
					t.Errorf("%d INVITEs, want 2 (the first refused 422)", n)
				}
				e.phone.mu.Lock()
				defer e.phone.mu.Unlock()
				if len(e.phone.raw) != 2 {
					t.Fatalf("%d raw INVITEs recorded", len(e.phone.raw))
				}
				first, second := e.phone.raw[0], e.phone.raw[1]
				if header(second, seRE) != "3600" || header(first, seRE) != "1800" {
					t.Errorf("Session-Expires %q then %q, want 1800 then 3600", header(first, seRE), header(second, seRE))
				}
				if header(first, callIDRE) != header(second, callIDRE) || tagOf(header(first, fromRE)) != tagOf(header(second, fromRE)) {
					t.Error("the retry is not the same Call-ID and From tag")
				}
				if header(first, cseqRE) != "1 INVITE" || header(second, cseqRE) != "2 INVITE" {
					t.Errorf("CSeq %q then %q, want 1 and 2", header(first, cseqRE), header(second, cseqRE))
				}
			},
		},
		{
			name: "refresher=uac: Plateau refreshes the phone by UPDATE",
			onInvite: func(n int, msg string) (string, string) {
				return "", "Session-Expires: 2;refresher=uac\r\nRequire: timer\r\nAllow: INVITE, ACK, BYE, CANCEL, UPDATE\r\n"
			},
			check: func(t *testing.T, e *callEnv, d *inboundDialog) {
				waitFor(t, "two UPDATEs at the phone", func() bool { return e.phone.received("UPDATE") >= 2 })
				if e.b.findCall(testOperator) == nil {
					t.Error("the call ended although Plateau refreshed")
				}
			},
		},
		{
			name: "refresher=uac, no UPDATE allowed: re-INVITE with our SDP, its 2xx ACKed with its CSeq",
			onInvite: func(n int, msg string) (string, string) {
				return "", "Session-Expires: 2;refresher=uac\r\nRequire: timer\r\n"
			},
			check: func(t *testing.T, e *callEnv, d *inboundDialog) {
				waitFor(t, "two re-INVITEs acknowledged", func() bool {
					e.phone.mu.Lock()
					defer e.phone.mu.Unlock()
					return len(e.phone.raw) >= 3 && len(e.phone.acks) >= 3
				})
				if n := e.phone.received("UPDATE"); n != 0 {
					t.Errorf("%d UPDATEs to a phone that does not allow UPDATE", n)
				}
				e.phone.mu.Lock()
				defer e.phone.mu.Unlock()
				re := e.phone.raw[1]
				if !strings.Contains(re, "m=audio") || header(re, seRE) != "2;refresher=uac" {
					t.Errorf("the refresh re-INVITE has no SDP or no Session-Expires:\n%s", re)
				}
				var seqs []string
				for _, a := range e.phone.acks {
					seqs = append(seqs, header(a, cseqRE))
				}
				want := strings.Fields(header(re, cseqRE))[0] + " ACK"
				found := false
				for _, s := range seqs {
					found = found || s == want
				}
				if !found {
					t.Errorf("ACK CSeqs %q, want one %q (the re-INVITE's)", seqs, want)
				}
			},
		},
		{
			name: "refresher=uas: the phone never refreshes, the call ends, audited",
			onInvite: func(n int, msg string) (string, string) {
				return "", "Session-Expires: 3;refresher=uas\r\nRequire: timer\r\n"
			},
			check: func(t *testing.T, e *callEnv, d *inboundDialog) {
				waitFor(t, "the call's teardown", func() bool { return e.callsLeft() == 0 && e.active.Site() == 0 })
				waitFor(t, "call.ended session_expired audited", func() bool { return len(e.audit.find("call.ended", "session_expired")) == 1 })
				waitFor(t, "BYE to the phone", func() bool { return e.phone.received("BYE") == 1 })
				if n := e.phone.received("UPDATE") + e.phone.received("INVITE"); n != 1 {
					t.Errorf("Plateau sent %d INVITE/UPDATEs to the phone, want only the INVITE (the phone refreshes)", n)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newCallEnv(t)
			e.phone.mu.Lock()
			e.phone.onInvite = tt.onInvite
			e.phone.mu.Unlock()
			d, r := e.placeInbound("0240123456")
			if d == nil {
				t.Fatalf("inbound call not answered: %q", r)
			}
			e.phone.mu.Lock()
			inv := e.phone.raw[0]
			e.phone.mu.Unlock()
			for re, want := range map[*regexp.Regexp]string{hdrRE("Supported|k"): "timer", seRE: "1800", hdrRE("Min-SE"): "90"} {
				if got := header(inv, re); got != want {
					t.Errorf("INVITE to the phone: %v = %q, want %q", re, got, want)
				}
			}
			tt.check(t, e, d)
		})
	}
}

// A supervisor's monitor leg rung from the console is a phone Plateau rings
// too: the same offer and the same policing. The phone's refresh by UPDATE
// is answered with the timer (not 481), and when refreshes stop the
// monitor session ends (audited monitor.end session_expired) while the
// operator's call goes on.
func TestSessionTimerTowardSupervisor(t *testing.T) {
	const supExt = "201"
	tests := []struct {
		name      string
		answer    string // the supervisor phone's 200 timer headers
		weRefresh bool
	}{
		{"phone refreshes, then stops", "Session-Expires: 3;refresher=uas\r\nRequire: timer\r\n", false},
		{"Plateau refreshes by UPDATE", "Session-Expires: 2;refresher=uac\r\nRequire: timer\r\nAllow: INVITE, ACK, BYE, UPDATE\r\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sup := newUDPAgent(t, "127.0.0.1", true)
			t.Cleanup(sup.close)
			sup.mu.Lock()
			sup.onInvite = func(int, string) (string, string) { return "", tt.answer }
			sup.mu.Unlock()
			e := newCallEnvSetup(t, envSetup{
				users: func(u fakeUsers) {
					u[supExt] = psip.Account{Extension: supExt, Role: psip.RoleSupervisor, Active: true}
				},
				bindings: func(e *callEnv) []psip.Binding {
					return []psip.Binding{{Extension: supExt, Contact: fmt.Sprintf("sip:%s@%s", supExt, sup.addr()),
						Source: sup.addr().String(), Transport: "udp", ExpiresAt: time.Now().Add(time.Hour)}}
				},
			})
			if d, r := e.placeInbound("0240123456"); d == nil {
				t.Fatalf("inbound call not answered: %q", r)
			}
			if _, err := e.b.Monitor(context.Background(), supExt, testOperator, media.Listen); err != nil {
				t.Fatalf("monitor: %v", err)
			}
			waitFor(t, "monitor started", func() bool { return len(e.audit.find("monitor.start", "listen")) == 1 })
			sup.mu.Lock()
			inv := sup.raw[0]
			sup.mu.Unlock()
			if header(inv, hdrRE("Session-Expires|x")) != "1800" || !strings.Contains(header(inv, hdrRE("Supported|k")), "timer") {
				t.Errorf("INVITE to the supervisor offers no session timer:\n%s", inv)
			}
			if tt.weRefresh {
				waitFor(t, "two UPDATEs at the supervisor's phone", func() bool { return sup.received("UPDATE") >= 2 })
				if len(e.audit.find("monitor.end", "session_expired")) != 0 {
					t.Fatal("the session expired although Plateau refreshed")
				}
				return
			}
			// The phone refreshes once, by UPDATE in its dialog.
			got := sup.invitesReceived()[0]
			upd := fmt.Sprintf("UPDATE sip:plateau@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bKsup%d;rport\r\n"+
				"From: <sip:%s@127.0.0.1>;tag=%s\r\nTo: <sip:monitor@%s>;tag=%s\r\nCall-ID: %s\r\nCSeq: 1 UPDATE\r\nMax-Forwards: 70\r\n"+
				"Contact: <sip:%s@%s>\r\nSession-Expires: 3;refresher=uac\r\nSupported: timer\r\nContent-Length: 0\r\n\r\n",
				e.addr, sup.addr(), time.Now().UnixNano(), supExt, got.toTag, e.addr, got.fromTag, got.callID, supExt, sup.addr())
			sup.send(e.addr, upd)
			if r := sup.final("UPDATE", 5*time.Second); statusOf(r) != "200" || !strings.Contains(r, "Session-Expires: 3;refresher=uac") {
				t.Fatalf("the supervisor's refresh answered %q, want 200 with its Session-Expires", r)
			}
			waitFor(t, "monitor.end session_expired", func() bool { return len(e.audit.find("monitor.end", "session_expired")) == 1 })
			waitFor(t, "BYE to the supervisor", func() bool { return sup.received("BYE") == 1 })
			if e.b.findCall(testOperator) == nil {
				t.Error("the operator's call ended with the supervisor's session")
			}
			if n := sup.received("UPDATE") + sup.received("INVITE"); n != 1 {
				t.Errorf("Plateau sent %d INVITE/UPDATEs to the supervisor, want only the INVITE", n)
			}
		})
	}
}

// A 422's Min-SE is followed only when it is a valid interval larger than
// the one asked (RFC 4028 §7.4): anything else ends the attempt.
func TestRetryInterval(t *testing.T) {
	tests := []struct {
		minSE  string // "" : no header
		asked  time.Duration
		want   time.Duration
		wantOK bool
	}{
		{"3600", 1800 * time.Second, 3600 * time.Second, true},
		{" 1900 ", 1800 * time.Second, 1900 * time.Second, true},
		{"", 1800 * time.Second, 0, false},
		{"1800", 1800 * time.Second, 0, false}, // not larger: the phone contradicts itself
		{"90", 1800 * time.Second, 0, false},
		{"86401", 1800 * time.Second, 0, false}, // over a day
		{"soon", 1800 * time.Second, 0, false},
		{"-1", 1800 * time.Second, 0, false},
	}
	for _, tt := range tests {
		res := sip.NewResponse(422, "Session Interval Too Small")
		if tt.minSE != "" {
			res.AppendHeader(sip.NewHeader("Min-SE", tt.minSE))
		}
		got, ok := retryInterval(res, tt.asked)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("Min-SE %q after %v: %v, %v; want %v, %v", tt.minSE, tt.asked, got, ok, tt.want, tt.wantOK)
		}
	}
}

// The offer in an INVITE to a phone: Supported, Session-Expires without a
// refresher (the phone chooses), Min-SE never above the interval.
func TestOfferSessionTimer(t *testing.T) {
	for _, tt := range []struct {
		interval        time.Duration
		wantSE, wantMin string
	}{
		{30 * time.Minute, "1800", "90"},
		{time.Hour, "3600", "90"},
		{60 * time.Second, "60", "60"},
	} {
		req := sip.NewRequest(sip.INVITE, sip.Uri{Host: "127.0.0.1"})
		offerSessionTimer(req, tt.interval)
		offerSessionTimer(req, tt.interval) // a retry's request is built again; never two headers
		if got := req.GetHeaders("Supported"); len(got) != 1 || got[0].Value() != "timer" {
			t.Errorf("Supported %v, want one: timer", got)
		}
		if se, min := req.GetHeader("Session-Expires").Value(), req.GetHeader("Min-SE").Value(); se != tt.wantSE || min != tt.wantMin {
			t.Errorf("%v: Session-Expires %q Min-SE %q, want %q %q", tt.interval, se, min, tt.wantSE, tt.wantMin)
		}
	}
}

// Click-to-call rings the operator's phone through the same code: the
// offer goes with the auto-answer headers, and a phone that stops
// refreshing ends the call (both legs hung up).
func TestSessionTimerClickToCall(t *testing.T) {
	e := newCallEnv(t)
	e.phone.mu.Lock()
	e.phone.onInvite = func(int, string) (string, string) {
		return "", "Session-Expires: 3;refresher=uas\r\nRequire: timer\r\n"
	}
	e.phone.mu.Unlock()
	if _, err := e.b.ClickToCall(context.Background(), ClickToCallRequest{Operator: testOperator, Number: "0240123456", Source: "web"}, nil); err != nil {
		t.Fatal(err)
	}
	e.phone.mu.Lock()
	inv := e.phone.raw[0]
	e.phone.mu.Unlock()
	if header(inv, hdrRE("Session-Expires|x")) != "1800" || !strings.Contains(inv, "answer-after=0") {
		t.Errorf("click-to-call INVITE lacks the timer offer or auto-answer:\n%s", inv)
	}
	waitFor(t, "call.ended session_expired", func() bool { return len(e.audit.find("call.ended", "session_expired")) == 1 })
	waitFor(t, "BYE to both legs", func() bool { return e.phone.received("BYE") == 1 && e.carrier.received("BYE") == 1 })
}

// A peer cannot set a session interval below the floor
// (sip.min_session_expires): neither a refresh storm from Plateau
// (refresher=uac, Session-Expires: 1 would refresh twice a second) nor a
// call ended within a second because the peer "did not refresh".
func TestSessionTimerFloor(t *testing.T) {
	t.Run("set holds the interval to the floor", func(t *testing.T) {
		for _, tt := range []struct{ in, floor, want time.Duration }{
			{time.Second, 90 * time.Second, 90 * time.Second},
			{0, 90 * time.Second, 90 * time.Second},
			{89 * time.Second, 90 * time.Second, 90 * time.Second},
			{2 * time.Hour, 90 * time.Second, 2 * time.Hour},
			{0, 0, time.Second}, // never a zero timer, whatever the floor
		} {
			st := newSessionTimer(sessionLeg{floor: tt.floor})
			st.set(tt.in, true)
			if got, _ := st.get(); got != tt.want {
				t.Errorf("set(%v) with floor %v runs %v, want %v", tt.in, tt.floor, got, tt.want)
			}
		}
	})
	const floor = 10 * time.Second
	tests := []struct {
		name   string
		answer string // the rung phone's 2xx headers
		check  func(t *testing.T, e *callEnv)
	}{
		{
			name:   "Session-Expires: 1;refresher=uac: Plateau refreshes at half the floor, not twice a second",
			answer: "Session-Expires: 1;refresher=uac\r\nRequire: timer\r\nAllow: INVITE, ACK, BYE, CANCEL, UPDATE\r\n",
			check: func(t *testing.T, e *callEnv) {
				time.Sleep(1500 * time.Millisecond) // the first refresh is due at floor/2 = 5 s
				if n := e.phone.received("UPDATE") + e.phone.received("INVITE") - 1; n != 0 {
					t.Fatalf("%d refreshes within 1.5 s of a 1 s interval; want none before %v", n, floor/2)
				}
				waitFor(t, "the refresh at half the floor", func() bool { return e.phone.received("UPDATE") >= 1 })
				if e.b.findCall(testOperator) == nil {
					t.Error("the call ended although Plateau refreshed")
				}
			},
		},
		{
			name:   "Session-Expires: 1;refresher=uas: the call is not ended within a second",
			answer: "Session-Expires: 1;refresher=uas\r\nRequire: timer\r\n",
			check: func(t *testing.T, e *callEnv) {
				time.Sleep(1500 * time.Millisecond) // expiry is due at floor - floor/3 ≈ 6.7 s
				if e.b.findCall(testOperator) == nil || e.phone.received("BYE") != 0 {
					t.Fatal("the call ended within 1.5 s on a peer's 1 s interval")
				}
				// The floor still polices the phone: no refresh, the call ends.
				waitFor(t, "call.ended session_expired audited", func() bool { return len(e.audit.find("call.ended", "session_expired")) == 1 })
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newCallEnv(t, func(o *CallOptions) { o.MinSessionExpires = floor })
			e.phone.mu.Lock()
			e.phone.onInvite = func(int, string) (string, string) { return "", tt.answer }
			e.phone.mu.Unlock()
			if d, r := e.placeInbound("0240123456"); d == nil {
				t.Fatalf("inbound call not answered: %q", r)
			}
			tt.check(t, e)
		})
	}
}
