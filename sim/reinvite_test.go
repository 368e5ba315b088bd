package sim

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"plateau/config"
	"plateau/media"
)

// writeToneWAV writes a WAV the PSTN can play.
func writeToneWAV(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tone.wav")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := media.WriteWAV(f, media.Tone(300, 2*time.Second)); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPSTNHoldResumeAndMove(t *testing.T) {
	wav := writeToneWAV(t)
	p := startPSTN(t, func(c *Config) { c.Answer = AnswerConfig{Mode: "play", WAV: wav} })
	ph, _ := newTestPhone(t, p.Addr().String(), "udp", "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	call, err := ph.Dial(ctx, "0240123456")
	if err != nil {
		t.Fatal(err)
	}
	defer call.Hangup(ctx)
	waitFor(t, "RTP from the PSTN", func() bool { return call.Stats().Received > 5 })

	if err := call.Hold(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "hold", func() bool { c := lastCall(p); return c.Hold && c.ReInvites == 1 })
	time.Sleep(100 * time.Millisecond) // packets in flight
	before := call.Stats().Received
	time.Sleep(300 * time.Millisecond)
	if after := call.Stats().Received; after != before {
		t.Errorf("PSTN kept sending on hold: %d → %d packets", before, after)
	}

	if err := call.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "RTP after resume", func() bool { return call.Stats().Received > before+5 })

	old := call.Endpoint()
	if err := call.MoveMedia(ctx); err != nil {
		t.Fatal(err)
	}
	moved := call.Endpoint()
	if moved == old || moved.LocalAddr() == old.LocalAddr() {
		t.Fatal("MoveMedia kept the same endpoint")
	}
	waitFor(t, "RTP at the new address", func() bool { return moved.Received() > 5 })
	if c := lastCall(p); c.Hold || c.ReInvites != 3 {
		t.Errorf("PSTN stats %+v", c)
	}
}

func TestPSTNPlacesCall(t *testing.T) {
	callee := startPSTN(t, nil) // echo, no auth
	wav := writeToneWAV(t)
	caller := startPSTN(t, func(c *Config) { c.Answer = AnswerConfig{Mode: "play", WAV: wav} })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := caller.Call(ctx, callee.Addr().String(), "101", "+33240999999", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Answered || st.Status != 200 || st.HangupBy != "pstn" || st.RTPSent < 30 || st.RTPRecv < 25 {
		t.Errorf("caller stats %+v", st)
	}
	waitFor(t, "callee end", func() bool { c := lastCall(callee); return !c.End.IsZero() })
	if c := lastCall(callee); c.Number != "101" || c.From != "+33240999999" || c.HangupBy != "remote" || c.RTPRecv < 25 {
		t.Errorf("callee stats %+v", c)
	}
}

func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestSIPpUAC runs SIPp's built-in UAC scenario against the PSTN.
func TestSIPpUAC(t *testing.T) {
	sipp, err := exec.LookPath("sipp")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("sipp not installed (Debian package sip-tester)")
		}
		t.Skip("sipp not installed")
	}
	p := startPSTN(t, func(c *Config) { c.RingTime = config.Duration(200 * time.Millisecond) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sipp, "-sn", "uac", p.Addr().String(),
		"-s", "0240123456", "-m", "1", "-timeout", "20s", "-timeout_error",
		"-i", "127.0.0.1", "-ci", "127.0.0.1", "-cp", strconv.Itoa(freePort(t, "udp")),
		"-p", strconv.Itoa(freePort(t, "udp")), "-mp", strconv.Itoa(freePort(t, "udp")&^1),
		"-nostdin", "-trace_err", "-error_file", filepath.Join(t.TempDir(), "err.log"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sipp: %v\n%s", err, lastLines(out, 40))
	}
	waitFor(t, "PSTN call end", func() bool { c := lastCall(p); return !c.End.IsZero() })
	if c := lastCall(p); c.Status != 200 || c.Number != "0240123456" || c.HangupBy != "remote" {
		t.Errorf("PSTN stats %+v", c)
	}
}

func lastLines(b []byte, n int) string {
	lines := 0
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' {
			lines++
			if lines > n {
				return string(b[i+1:])
			}
		}
	}
	return string(b)
}
