package sim

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"plateau/config"
	"plateau/media"
)

// syncBuffer is an io.Writer safe for the phone's concurrent steps.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("SIM_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(&tWriter{t}, nil))
}

type tWriter struct{ t *testing.T }

func (w *tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// startPSTN runs a PSTN on a free port until the test ends.
func startPSTN(t *testing.T, mutate func(*Config)) *PSTN {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.RingTime = config.Duration(100 * time.Millisecond)
	if mutate != nil {
		mutate(&cfg)
	}
	p, err := New(cfg, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("PSTN did not stop")
		}
	})
	return p
}

func newTestPhone(t *testing.T, server string, transport, password string) (*Phone, *syncBuffer) {
	t.Helper()
	out := &syncBuffer{}
	ph, err := NewPhone(PhoneConfig{Server: server, Transport: transport, User: "101", Password: password, Out: out}, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ph.Close()
		if t.Failed() {
			t.Logf("phone steps:\n%s", out.String())
		}
	})
	return ph, out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func lastCall(p *PSTN) CallStats {
	cs := p.Calls()
	if len(cs) == 0 {
		return CallStats{}
	}
	return cs[len(cs)-1]
}

func TestPhoneCallEcho(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			p := startPSTN(t, nil)
			ph, out := newTestPhone(t, p.Addr().String(), transport, "")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			call, err := ph.Dial(ctx, "0240123456")
			if err != nil {
				t.Fatal(err)
			}
			if err := call.Play(ctx, media.Tone(440, time.Second)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond) // the echo's last packets
			if err := call.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			st := call.Stats()
			if !st.Answered || st.Sent != 50 || st.Received < 45 || st.Received > st.Sent {
				t.Errorf("stats %+v: want answered, 50 sent, about as many echoed", st)
			}
			waitFor(t, "PSTN call end", func() bool { return !lastCall(p).End.IsZero() })
			pc := lastCall(p)
			if pc.Status != 200 || pc.Number != "0240123456" || pc.From != "101" || pc.HangupBy != "remote" || pc.RTPRecv < 45 || pc.RTPSent != pc.RTPRecv {
				t.Errorf("PSTN stats %+v", pc)
			}
			for _, step := range []string{"→ INVITE sip:0240123456@", "← 100 Trying", "← 180 Ringing", "← 200 OK", "→ ACK", "→ BYE"} {
				if !strings.Contains(out.String(), step) {
					t.Errorf("steps lack %q:\n%s", step, out)
				}
			}
		})
	}
}

func TestPhoneFailures(t *testing.T) {
	p := startPSTN(t, func(c *Config) {
		c.Rules = []Rule{{Prefix: "+3399", Action: ActionReject}}
	})
	ph, _ := newTestPhone(t, p.Addr().String(), "udp", "")
	for _, tc := range []struct {
		number string
		status int
	}{
		{"0240120486", 486},
		{"0240120404", 404},
		{"0240120503", 503},
		{"+33990000", 403},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := ph.Dial(ctx, tc.number)
		cancel()
		var se *StatusError
		if !errors.As(err, &se) || se.Status != tc.status || !errors.Is(err, ErrNotAnswered) {
			t.Errorf("%s: err %v, want status %d", tc.number, err, tc.status)
		}
	}
}

func TestPhoneAuth(t *testing.T) {
	p := startPSTN(t, func(c *Config) {
		c.Auth = AuthConfig{Username: "101", Password: "right", Realm: "pstn-sim"}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	ph, out := newTestPhone(t, p.Addr().String(), "udp", "right")
	call, err := ph.Dial(ctx, "0240123456")
	if err != nil {
		t.Fatal(err)
	}
	call.Hangup(ctx)
	if !strings.Contains(out.String(), "← 407") {
		t.Errorf("no 407 step:\n%s", out)
	}
	waitFor(t, "auth ok", func() bool { return lastCall(p).Auth == "ok" })

	bad, _ := newTestPhone(t, p.Addr().String(), "udp", "wrong")
	_, err = bad.Dial(ctx, "0240123457")
	var se *StatusError
	if !errors.As(err, &se) || se.Status != 407 {
		t.Fatalf("wrong password: err %v, want 407", err)
	}
	if a := lastCall(p).Auth; a != "failed" {
		t.Errorf("auth %q, want failed", a)
	}

	none, _ := newTestPhone(t, p.Addr().String(), "udp", "")
	if _, err = none.Dial(ctx, "0240123458"); !errors.As(err, &se) || se.Status != 407 {
		t.Fatalf("no password: err %v, want 407", err)
	}
}

func TestPhoneCancel(t *testing.T) {
	p := startPSTN(t, func(c *Config) { c.RingTime = config.Duration(10 * time.Second) })
	ph, _ := newTestPhone(t, p.Addr().String(), "udp", "")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := ph.Dial(ctx, "0240123456")
	var se *StatusError
	if !errors.As(err, &se) || se.Status != 487 {
		t.Fatalf("err %v, want 487", err)
	}
	waitFor(t, "PSTN 487", func() bool { c := lastCall(p); return c.Status == 487 && !c.End.IsZero() })
}

func TestPhoneNoAnswer(t *testing.T) {
	p := startPSTN(t, func(c *Config) {
		c.Rules = []Rule{{Suffix: "0480", Action: ActionNoAnswer, Timeout: config.Duration(300 * time.Millisecond)}}
	})
	ph, _ := newTestPhone(t, p.Addr().String(), "udp", "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := ph.Dial(ctx, "0240120480")
	var se *StatusError
	if !errors.As(err, &se) || se.Status != 480 {
		t.Fatalf("err %v, want 480", err)
	}
}

func TestPhoneEarlyMedia(t *testing.T) {
	p := startPSTN(t, func(c *Config) {
		c.Rules = []Rule{{Suffix: "0183", Action: ActionEarly, RingTime: config.Duration(500 * time.Millisecond)}}
	})
	ph, out := newTestPhone(t, p.Addr().String(), "udp", "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	played := make(chan struct{})
	var call *Call
	var err error
	go func() {
		defer close(played)
		call, err = ph.Dial(ctx, "0240120183")
	}()
	<-played
	if err != nil {
		t.Fatal(err)
	}
	defer call.Hangup(ctx)
	st := call.Stats()
	if !st.Early || !st.Answered {
		t.Errorf("stats %+v: want early media then answer", st)
	}
	s := out.String()
	i183, i200 := strings.Index(s, "← 183 Session Progress [SDP]"), strings.Index(s, "← 200 OK")
	if i183 < 0 || i200 < i183 {
		t.Errorf("want 183 with SDP before 200:\n%s", s)
	}
}

func TestPSTNHangupAfter(t *testing.T) {
	p := startPSTN(t, func(c *Config) {
		c.Rules = []Rule{{Suffix: "0777", Action: ActionRing, HangupAfter: config.Duration(400 * time.Millisecond)}}
	})
	ph, out := newTestPhone(t, p.Addr().String(), "udp", "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	call, err := ph.Dial(ctx, "0240120777")
	if err != nil {
		t.Fatal(err)
	}
	if err := call.Play(ctx, media.Tone(440, 3*time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-call.Done():
	case <-ctx.Done():
		t.Fatal("no BYE from the PSTN")
	}
	st := call.Stats()
	if !st.RemoteHangup || st.Received == 0 || st.Sent >= 150 {
		t.Errorf("stats %+v: want remote hangup after some RTP", st)
	}
	if err := call.Hangup(ctx); err != nil {
		t.Errorf("hangup after remote BYE: %v", err)
	}
	if !strings.Contains(out.String(), "← BYE") {
		t.Errorf("no BYE step:\n%s", out)
	}
	waitFor(t, "PSTN stats", func() bool { return lastCall(p).HangupBy == "pstn" })
}

func TestPSTNOptions(t *testing.T) {
	p := startPSTN(t, nil)
	ua, err := sipgo.NewUA()
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	cli, _ := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	req := sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: int(p.Addr().Port())})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := cli.Do(ctx, req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("OPTIONS: %v %v", res, err)
	}
}

// TestNoGoroutineLeak: a PSTN and a Phone that placed a call stop every
// goroutine they started once closed.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Run("call", TestPhoneCallEcho)
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before+2 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// plateau dial toward an IPv6 server: the URIs carry the address in
// brackets and the call goes through (issue 13 item 9).
func TestPhoneIPv6(t *testing.T) {
	p := startPSTN(t, func(c *Config) { c.Listen = "[::1]:0" })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ph, out := newTestPhone(t, p.Addr().String(), "udp", "")
	call, err := ph.Dial(ctx, "0240123456")
	if err != nil {
		t.Fatalf("dial %s: %v", p.Addr(), err)
	}
	if err := call.Hangup(ctx); err != nil {
		t.Fatalf("hangup: %v", err)
	}
	if !strings.Contains(out.String(), "@[::1]") {
		t.Errorf("no bracketed IPv6 URI in the steps:\n%s", out)
	}
	waitFor(t, "PSTN call end", func() bool { return !lastCall(p).End.IsZero() })
	if pc := lastCall(p); pc.Status != 200 || pc.HangupBy != "remote" {
		t.Errorf("PSTN stats %+v, want 200 and hung up by the phone", pc)
	}
}

func TestURIHost(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1": "127.0.0.1", "::1": "[::1]", "2001:db8::5": "[2001:db8::5]",
		"pbx.example": "pbx.example", "::ffff:192.0.2.1": "::ffff:192.0.2.1",
	} {
		if got := uriHost(in); got != want {
			t.Errorf("uriHost(%q) = %q, want %q", in, got, want)
		}
	}
}
