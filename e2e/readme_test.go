package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"plateau/config"
	"plateau/policy"
)

// The README's demo, run as a newcomer runs it: the commands of its first
// screen, copied from README.md and scripts/demo.sh (not restated here), in
// a directory laid out like the repository (bin/plateau, configs/), against
// configs/plateau.yaml with only its ports and data directory changed, and
// pstn-sim on configs/pstn-sim.yaml. Twice: at a closed hour (a Saturday)
// and at an open one (Monday 07:30), with the server's clock set by
// PLATEAU_FAKE_TIME in a binary built with -tags plateau_fakeclock.

// fakeClockBin is plateau built with the test-only fake clock.
var fakeClockBin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "plateau-fakeclock-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "plateau")
	build := exec.Command("go", "build", "-tags", "plateau_fakeclock", "-o", bin, "./cmd/plateau")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build -tags plateau_fakeclock: %v\n%s", err, out)
	}
	return bin, nil
})

// outcome is what a README command must do at one hour.
type outcome struct {
	exit int
	want []string // substrings of its output
}

// readmeCall is what each dial of the README must do, by its number as the
// README writes it; a dial the README adds or drops fails the test.
var readmeCalls = map[string]struct{ closed, open outcome }{
	// The demo number answers round the clock: recorded at any hour.
	"'02 40 12 34 56'": {
		closed: outcome{0, []string{"← 200 OK", "… recording "}},
		open:   outcome{0, []string{"← 200 OK", "… recording "}},
	},
	// The site's hours: refused on Saturday, saying when calling opens.
	"'02 40 12 07 30'": {
		closed: outcome{1, []string{"403 Forbidden (OUTSIDE_WINDOW)", "calling opens {opens}"}},
		open:   outcome{0, []string{"← 200 OK", "… recording "}},
	},
	"'02 40 99 99 99'": {
		closed: outcome{1, []string{"403 Forbidden (NOT_ALLOWLISTED)"}},
		open:   outcome{1, []string{"403 Forbidden (NOT_ALLOWLISTED)"}},
	},
}

var (
	readmeCmdRE = regexp.MustCompile(`(?m)^(bin/plateau [^#\n]*?)\s*(?:#.*)?$`)
	dialNumRE   = regexp.MustCompile(`^bin/plateau dial --as 101 ('[0-9 ]+')$`)
	recordingRE = regexp.MustCompile(`… recording (\S+) \((\w+), ([0-9.]+) s\): (\S+\.wav)`)
	demoSetupRE = regexp.MustCompile(`(?m)^("\$bin" allowlist .*?)(?:\s*>/dev/null 2>&1 \|\| true)?$`)
)

func TestReadmeDemoCommands(t *testing.T) {
	bin, err := fakeClockBin()
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	// The first screen's commands: up to the first section heading.
	first, _, _ := strings.Cut(string(readme), "\n## ")
	var cmds []string
	for _, m := range readmeCmdRE.FindAllStringSubmatch(first, -1) {
		cmds = append(cmds, m[1])
	}
	dials := map[string]bool{}
	for _, c := range cmds {
		if strings.HasPrefix(c, "bin/plateau dial") {
			m := dialNumRE.FindStringSubmatch(c)
			if m == nil {
				t.Fatalf("README command %q: not a dial this test knows how to check", c)
			}
			if _, ok := readmeCalls[m[1]]; !ok {
				t.Fatalf("README dials %s: add what it must do to readmeCalls", m[1])
			}
			dials[m[1]] = true
		}
	}
	for n := range readmeCalls {
		if !dials[n] {
			t.Errorf("README's first screen no longer dials %s", n)
		}
	}
	demo, err := os.ReadFile(filepath.Join(repoRoot, "scripts", "demo.sh"))
	if err != nil {
		t.Fatal(err)
	}
	var setup []string
	for _, m := range demoSetupRE.FindAllStringSubmatch(string(demo), -1) {
		setup = append(setup, m[1])
	}
	if len(setup) == 0 {
		t.Fatal("scripts/demo.sh approves no numbers")
	}

	// The hours are ahead of the real clock: an allowlist entry is valid
	// from its approval (real time), and the policy asks at the fake time.
	sat, mon := closedAndOpenHours(t)
	opens := expectedOpens(t, sat)
	hours := []struct {
		name, fake string
		open       bool
	}{
		{"saturday_closed", sat.Format(time.RFC3339), false},
		// 07:30:00: the instant work starts.
		{"monday_0730_open", mon.Format(time.RFC3339), true},
	}
	for _, h := range hours {
		t.Run(h.name, func(t *testing.T) {
			d := newDemoDir(t, bin)
			sim := d.startPSTNSim(t)
			srv := d.startServe(t, h.fake)
			for _, line := range setup {
				if out, code := d.sh(t, line); code != 0 {
					t.Fatalf("demo.sh's %s: exit %d\n%s", line, code, out)
				}
			}
			for _, c := range cmds {
				out, code := d.sh(t, c)
				if !strings.HasPrefix(c, "bin/plateau dial") {
					if code != 0 {
						t.Errorf("%s: exit %d\n%s", c, code, out)
					}
					continue
				}
				want := readmeCalls[dialNumRE.FindStringSubmatch(c)[1]].closed
				if h.open {
					want = readmeCalls[dialNumRE.FindStringSubmatch(c)[1]].open
				}
				if code != want.exit {
					t.Errorf("%s: exit %d, want %d\n%s", c, code, want.exit, out)
				}
				for _, w := range want.want {
					w = strings.ReplaceAll(w, "{opens}", opens)
					if !strings.Contains(out, w) {
						t.Errorf("%s: output lacks %q\n%s", c, w, out)
					}
				}
				if strings.Contains(out, "sim:") {
					t.Errorf("%s: output has the sim: prefix\n%s", c, out)
				}
				if m := recordingRE.FindStringSubmatch(out); want.exit == 0 {
					if m == nil {
						t.Errorf("%s: no recording id and path printed\n%s", c, out)
						continue
					}
					if m[2] != "closed" {
						t.Errorf("%s: recording %s is %s, want closed", c, m[1], m[2])
					}
					// 10 s by default: a few seconds of talk after the notice.
					if secs, _ := strconv.ParseFloat(m[3], 64); secs < 8 {
						t.Errorf("%s: recording lasts %s s, want about 10", c, m[3])
					}
					if fi, err := os.Stat(filepath.Join(d.dir, m[4])); err != nil || fi.Size() < 8000*4*8 {
						t.Errorf("%s: recording file %s: %v", c, m[4], err)
					}
				}
			}
			// Each decision is a line of the terminal; pstn-sim's are labelled.
			logs := srv.String()
			for _, w := range []string{`msg="call refused"`, "reason=NOT_ALLOWLISTED", `msg="call allowed"`} {
				if !strings.Contains(logs, w) {
					t.Errorf("serve's log lacks %q", w)
				}
			}
			if !h.open && !strings.Contains(logs, "reason=OUTSIDE_WINDOW") {
				t.Error("serve's log has no OUTSIDE_WINDOW refusal")
			}
			if h.open {
				d.baresipCall(t, string(readme))
			}
			if !strings.Contains(sim.String(), "component=pstn-sim") {
				t.Errorf("pstn-sim's lines are not labelled:\n%s", tail(sim.String(), 5))
			}
			if t.Failed() {
				t.Logf("serve:\n%s\npstn-sim:\n%s", tail(logs, 12000), tail(sim.String(), 4000))
			}
		})
	}
}

// demoDir is a directory laid out like the repository for the README's
// relative paths: bin/plateau, configs/plateau.yaml, configs/pstn-sim.yaml,
// configs/prompts; data/ is created by the commands.
type demoDir struct {
	dir               string
	sipPort, httpPort int
	simAddr           string
	httpsPort         int // http.tls.listen's
}

func newDemoDir(t *testing.T, bin string) *demoDir {
	t.Helper()
	d := &demoDir{dir: t.TempDir(), sipPort: freePort(t), httpPort: freePort(t), httpsPort: freePort(t)}
	d.simAddr = fmt.Sprintf("127.0.0.2:%d", freePort(t))
	for _, sub := range []string{"bin", "configs"} {
		if err := os.Mkdir(filepath.Join(d.dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(bin, filepath.Join(d.dir, "bin", "plateau")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(repoRoot, "configs", "prompts"), filepath.Join(d.dir, "configs", "prompts")); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(repoRoot, "configs", "plateau.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rtp := 40000 + 2*(d.sipPort%5000)
	s := string(cfg)
	for _, r := range [][2]string{
		{`listen: "127.0.0.1:5060"`, fmt.Sprintf(`listen: "127.0.0.1:%d"`, d.sipPort)},
		{`listen: "127.0.0.1:8080"`, fmt.Sprintf(`listen: "127.0.0.1:%d"`, d.httpPort)},
		{`listen: "127.0.0.1:8443"`, fmt.Sprintf(`listen: "127.0.0.1:%d"`, d.httpsPort)},
		{`rtp_ports: "20000-29999"`, fmt.Sprintf(`rtp_ports: "%d-%d"`, rtp, rtp+39)},
		{`address: "127.0.0.2:5070"`, fmt.Sprintf(`address: %q`, d.simAddr)},
	} {
		if !strings.Contains(s, r[0]) {
			t.Fatalf("configs/plateau.yaml no longer has %s: update this test", r[0])
		}
		s = strings.Replace(s, r[0], r[1], 1)
	}
	if err := os.WriteFile(filepath.Join(d.dir, "configs", "plateau.yaml"), []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	sim, err := os.ReadFile(filepath.Join(repoRoot, "configs", "pstn-sim.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.dir, "configs", "pstn-sim.yaml"), sim, 0o600); err != nil {
		t.Fatal(err)
	}
	return d
}

// sh runs one command line as the README reads, in the demo directory.
func (d *demoDir) sh(t *testing.T, line string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", line)
	cmd.Dir = d.dir
	cmd.Env = append(os.Environ(), "bin=bin/plateau", "cfg=configs/plateau.yaml")
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("%s: %v\n%s", line, err, out)
	return "", -1
}

// background starts a long-running command of the demo and stops it with
// SIGTERM at cleanup.
func (d *demoDir) background(t *testing.T, env []string, args ...string) (*lockedBuffer, chan struct{}) {
	t.Helper()
	logs := &lockedBuffer{}
	cmd := exec.Command(filepath.Join(d.dir, "bin", "plateau"), args...)
	cmd.Dir = d.dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("%s did not stop within 15 s of SIGTERM", args[0])
		}
	})
	return logs, done
}

func (d *demoDir) startPSTNSim(t *testing.T) *lockedBuffer {
	t.Helper()
	logs, done := d.background(t, nil, "pstn-sim", "-c", "configs/pstn-sim.yaml", "--listen", d.simAddr)
	if err := waitFor(done, func() bool { return strings.Contains(logs.String(), "pstn-sim listening") }); err != nil {
		t.Fatalf("pstn-sim %v:\n%s", err, logs.String())
	}
	return logs
}

// startServe starts plateau serve, retrying like the harness does when it
// stops before it is ready (a start-up self-test on a loaded machine).
func (d *demoDir) startServe(t *testing.T, fake string) *lockedBuffer {
	t.Helper()
	ready := fmt.Sprintf("http://127.0.0.1:%d/readyz", d.httpPort)
	var logs *lockedBuffer
	for attempt := 1; ; attempt++ {
		var done chan struct{}
		logs, done = d.background(t, []string{"PLATEAU_FAKE_TIME=" + fake}, "serve")
		err := waitFor(done, func() bool {
			res, err := http.Get(ready)
			if err != nil {
				return false
			}
			res.Body.Close()
			return res.StatusCode == http.StatusOK
		})
		if err == nil {
			break
		}
		if attempt == 3 {
			t.Fatalf("plateau serve %v:\n%s", err, logs.String())
		}
		t.Logf("plateau serve %v (attempt %d), retrying:\n%s", err, attempt, logs.String())
	}
	if !strings.Contains(logs.String(), "fake policy clock: now is "+fake) {
		t.Fatalf("serve did not announce its fake clock:\n%s", logs.String())
	}
	return logs
}

// waitFor polls cond until it holds, the process exits, or 60 s pass.
func waitFor(done chan struct{}, cond func() bool) error {
	for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		select {
		case <-done:
			return errors.New("exited")
		default:
		}
		if time.Now().After(deadline) {
			return errors.New("not ready after 60 s")
		}
	}
	return nil
}

// baresipCall runs the README's headless baresip call (its ports and
// directory moved to the test's) and checks that the call was answered and
// recorded.
func (d *demoDir) baresipCall(t *testing.T, readme string) {
	t.Helper()
	need(t, "baresip")
	_, rest, ok := strings.Cut(readme, "A headless baresip call")
	if !ok {
		t.Fatal("README has no headless baresip call")
	}
	_, rest, _ = strings.Cut(rest, "```sh\n")
	block, _, _ := strings.Cut(rest, "```\n")
	dir := t.TempDir()
	for _, r := range [][2]string{
		{"127.0.0.1:5060", fmt.Sprintf("127.0.0.1:%d", d.sipPort)},
		{"127.0.0.1:5080", fmt.Sprintf("127.0.0.1:%d", baresipPort(t))},
		{"/tmp/baresip-demo", dir},
	} {
		if !strings.Contains(block, r[0]) {
			t.Fatalf("the README's baresip block no longer has %s: update this test\n%s", r[0], block)
		}
		block = strings.ReplaceAll(block, r[0], r[1])
	}
	before, _ := d.sh(t, "bin/plateau recordings list --operator 101 --state closed")
	out, code := d.sh(t, block)
	if code != 0 || !strings.Contains(out, "Call established") {
		t.Fatalf("README's baresip call: exit %d\n%s", code, out)
	}
	// The recording is closed just after the hang-up.
	eventually(t, "baresip call recorded", func() (bool, string) {
		after, _ := d.sh(t, "bin/plateau recordings list --operator 101 --state closed")
		return strings.Count(after, "\n") > strings.Count(before, "\n"), after
	})
}

// closedAndOpenHours are the next Saturday 10:40 in Paris at least a day
// ahead, and the Monday 07:30 after it.
func closedAndOpenHours(t *testing.T) (sat, mon time.Time) {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	d := time.Now().In(loc).AddDate(0, 0, 1)
	for d.Weekday() != time.Saturday {
		d = d.AddDate(0, 0, 1)
	}
	sat = time.Date(d.Year(), d.Month(), d.Day(), 10, 40, 0, 0, loc)
	m := sat.AddDate(0, 0, 2)
	mon = time.Date(m.Year(), m.Month(), m.Day(), 7, 30, 0, 0, loc)
	return sat, mon
}

// expectedOpens is what a refusal at sat must say, from the shipped
// configuration's hours for the site-hours number.
func expectedOpens(t *testing.T, sat time.Time) string {
	t.Helper()
	cfg, err := config.Load(filepath.Join(repoRoot, "configs", "plateau.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	pc, err := policy.ConfigFrom(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ws := pc.Windows
	if w, ok := pc.NumberWindows["+33240120730"]; ok {
		ws = w
	}
	next, ok := ws.NextOpen(sat)
	if !ok {
		t.Fatal("the shipped configuration never opens")
	}
	return policy.FormatOpens(next.In(ws.Location()))
}
