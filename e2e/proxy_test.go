package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Kamailio 5.6 as an edge proxy in front of Plateau (issue 13 item 4):
// the phone registers through it (Path), and an inbound call rings the
// phone through it, not at its Contact directly.

// startKamailio runs e2e/testdata/kamailio/edge.cfg on 127.0.0.3:port,
// forwarding to Plateau; it stops at cleanup.
func startKamailio(t *testing.T, plateauAddr string) string {
	t.Helper()
	bin := need(t, "kamailio")
	tmpl, err := os.ReadFile(filepath.Join(repoRoot, "e2e", "testdata", "kamailio", "edge.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.3:%d", freePort(t))
	dir := t.TempDir()
	cfg := filepath.Join(dir, "edge.cfg")
	body := strings.ReplaceAll(strings.ReplaceAll(string(tmpl), "LISTEN_ADDR", addr), "PLATEAU_ADDR", plateauAddr)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	// -DD: foreground (its children are in its process group); -E: log to
	// stderr; -Y: runtime files in the test's directory.
	cmd := exec.Command(bin, "-f", cfg, "-DD", "-E", "-Y", dir, "-P", filepath.Join(dir, "kamailio.pid"), "-w", dir)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("kamailio:\n%s", tail(logs.String(), 4000))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for !strings.Contains(logs.String(), "INFO: <core>") && ctx.Err() == nil {
		select {
		case <-done:
			t.Fatalf("kamailio exited:\n%s", logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return addr
}

func TestProxyKamailioPath(t *testing.T) {
	// The edge proxy listens on 127.0.0.3: Plateau honours a Path only
	// from a trusted proxy (a phone could otherwise aim one at the carrier).
	p := startCallServer(t, callOpts{trunkPorts: []int{freePort(t)}, sipYAML: "  trusted_proxies: [\"127.0.0.3\"]\n"})
	edge := startKamailio(t, p.sipAddr())
	edgeHost, edgePort, _ := strings.Cut(edge, ":")

	// The phone registers through the edge proxy, which adds its Path.
	phonePort := strconv.Itoa(freePort(t))
	phoneCSV := filepath.Join(t.TempDir(), "phone.csv")
	os.WriteFile(phoneCSV, []byte(fmt.Sprintf("SEQUENTIAL\n%s;%s;3600\n", opExt, opPass)), 0o600)
	startSipp(t, "operator phone registers via the edge", "register_auth.xml", edgeHost+":"+edgePort,
		"-inf", phoneCSV, "-p", phonePort).mustSucceed(30 * time.Second)
	eventually(t, "operator 101 registered", func() (bool, string) {
		r := p.registered()
		return r[opExt] != "" && r[opExt] != "-", fmt.Sprint(r)
	})

	// An inbound call rings the phone; the phone accepts it only through
	// the edge proxy (its Record-Route), and the BYE comes the same way.
	phone := startSipp(t, "operator phone answers via the edge", "uas_answer_via_proxy.xml", "-p", phonePort)
	in := callIn(t, p, "carrier_call_in.xml", "-d", "1500")
	in.mustSucceed(40 * time.Second)
	phone.mustSucceed(20 * time.Second)
	waitMetric(t, p, mAnswer, 1)
	waitMetric(t, p, mActive, 0)
}
