package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The harness's phones: one way to start each kind (a SIPp phone
// registered as the operator, a headless baresip), used by every test that
// needs one.

// registerSippPhone registers operator opExt from a SIPp on a free port and
// returns that port, where a SIPp UAS (startSipp ... "-p", port) then
// answers what Plateau rings.
func registerSippPhone(t *testing.T, p *plateau) string {
	t.Helper()
	phonePort := strconv.Itoa(freePort(t))
	phoneCSV := filepath.Join(t.TempDir(), "phone.csv")
	if err := os.WriteFile(phoneCSV, []byte(fmt.Sprintf("SEQUENTIAL\n%s;%s;3600\n", opExt, opPass)), 0o600); err != nil {
		t.Fatal(err)
	}
	startSipp(t, "operator phone registers", "register_auth.xml", p.sipAddr(), "-inf", phoneCSV, "-p", phonePort).mustSucceed(30 * time.Second)
	eventually(t, "operator 101 registered", func() (bool, string) {
		r := p.registered()
		return r[opExt] != "" && r[opExt] != "-", fmt.Sprint(r)
	})
	return phonePort
}

// registeredPhone registers operator 101 from a SIPp on a free port, then
// runs scenario (a UAS) on that port to answer what Plateau rings there.
func registeredPhone(t *testing.T, p *plateau, scenario string) *sippProc {
	t.Helper()
	phonePort := registerSippPhone(t, p)
	return startSipp(t, "operator phone "+scenario, scenario, "-p", phonePort)
}

// callIn has the carrier (from the trunk's source 127.0.0.2) call approved
// with scenario; extra SIPp arguments follow (e.g. -d).
func callIn(t *testing.T, p *plateau, scenario string, extra ...string) *sippProc {
	t.Helper()
	csv := filepath.Join(t.TempDir(), "in.csv")
	os.WriteFile(csv, []byte(fmt.Sprintf("SEQUENTIAL\n%s;+33240000000\n", approved)), 0o600)
	args := append([]string{p.sipAddr(), "-inf", csv, "-i", "127.0.0.2", "-mi", "127.0.0.2", "-p", strconv.Itoa(freePort(t))}, extra...)
	return startSipp(t, "carrier "+scenario, scenario, args...)
}

// baresipOpts shape one headless baresip (Debian's 1.0).
type baresipOpts struct {
	// account is the accounts file's line, e.g.
	// "<sip:101@127.0.0.1:5060;transport=udp>;auth_pass=...;regint=600".
	account string
	// config are config lines besides the module path, sip_listen,
	// net_interface, g711 and the account and menu modules (an audio
	// source, sip_cafile, ...).
	config []string
	// args follow -f DIR (e.g. -s, -e "/dial N").
	args []string
	// quit is baresip's own -t: it exits after that long; timeout kills
	// it (exec.CommandContext) if it has not.
	quit, timeout time.Duration
}

// baresip is a running baresip.
type baresip struct {
	t    *testing.T
	port int // its sip_listen port on 127.0.0.1 (it takes port+1 too, for TLS)
	out  *lockedBuffer
	done chan struct{}
	stop func()
}

// startBaresip runs baresip on 127.0.0.1. It is killed by b.stop() or at
// cleanup, whichever comes first; its output is logged then if the test
// failed (or E2E_SHOW is set).
func startBaresip(t *testing.T, o baresipOpts) *baresip {
	t.Helper()
	bin := need(t, "baresip")
	dir := t.TempDir()
	b := &baresip{t: t, port: baresipPort(t), out: &lockedBuffer{}, done: make(chan struct{})}
	// No audio device or UI module unless asked: account, menu and a codec
	// are enough to register. net_interface keeps baresip on 127.0.0.1
	// (with an interface name it finds no address in a container).
	config := fmt.Sprintf("module_path /usr/lib/baresip/modules\nsip_listen 127.0.0.1:%d\nnet_interface 127.0.0.1\n", b.port)
	for _, l := range o.config {
		config += l + "\n"
	}
	config += "module g711.so\nmodule_app account.so\nmodule_app menu.so\n"
	for name, content := range map[string]string{"accounts": o.account + "\n", "config": config} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	args := append([]string{"-f", dir}, o.args...)
	args = append(args, "-t", strconv.Itoa(int(o.quit/time.Second)))
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = b.out, b.out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("baresip (installed at %s) does not start: %v", bin, err)
	}
	go func() { cmd.Wait(); close(b.done) }()
	stopped := false
	b.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cmd.Process.Kill()
		<-b.done
		cancel()
		if t.Failed() || os.Getenv("E2E_SHOW") != "" {
			t.Logf("baresip:\n%s", tail(b.out.String(), 12000))
		}
	}
	t.Cleanup(b.stop)
	return b
}

// waitRegistered waits up to within until Plateau's binding of ext
// contains want (case-insensitively), failing at once if baresip exits.
func (b *baresip) waitRegistered(p *plateau, ext, want string, within time.Duration) string {
	b.t.Helper()
	deadline := time.Now().Add(within)
	for {
		reg := p.registered()[ext]
		if strings.Contains(strings.ToLower(reg), strings.ToLower(want)) {
			b.t.Logf("baresip registered: %s", reg)
			return reg
		}
		select {
		case <-b.done:
			b.t.Fatalf("baresip exited before registering (%s: %q):\n%s", ext, reg, b.out.String())
		default:
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("baresip did not register within %v (%s: %q, want %q):\n%s", within, ext, reg, want, b.out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// baresipPort is a free port whose next one is free too: baresip 1.0 also
// listens for SIP/TLS on its sip_listen port + 1, and cannot be told not to.
func baresipPort(t *testing.T) int {
	t.Helper()
	for range 50 {
		p := freePort(t)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+1))
		if err != nil {
			continue
		}
		l.Close()
		portMu.Lock()
		portUsed[p+1] = true
		portMu.Unlock()
		return p
	}
	t.Fatal("no two free ports in a row for baresip")
	return 0
}
