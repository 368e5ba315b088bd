package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// plateauBin is the binary TestMain builds; repoRoot the module root.
var plateauBin, repoRoot string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	repoRoot = filepath.Dir(wd)
	dir, err := os.MkdirTemp("", "plateau-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	plateauBin = filepath.Join(dir, "plateau")
	build := exec.Command("go", "build", "-o", plateauBin, "./cmd/plateau")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building plateau: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// need skips a test when a tool is missing, except under CI where every
// tool must be there (make deps installs them).
func need(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err == nil {
		return p
	}
	skipOrFail(t, "%s is not installed (make deps installs it)", tool)
	return ""
}

// skipOrFail skips a test whose environment lacks something it needs (a
// tool, CAP_NET_RAW, a route), but fails it under CI, which provides all
// of them: a skip there would hide a failure.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("CI is set, yet: "+format, args...)
	}
	t.Skipf(format, args...)
}

// lockedBuffer collects a process's output safely.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// portMu hands out ports once per test binary; the random base keeps
// parallel test binaries (other packages, other engineers) apart.
var (
	portMu   sync.Mutex
	portUsed = map[int]bool{}
)

// freePort returns a port in 20000-59999 that is free for UDP and TCP on
// 127.0.0.1 right now. A later bind may still lose a race; callers retry.
func freePort(t *testing.T) int {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	for range 200 {
		p := 20000 + rand.IntN(40000)
		if portUsed[p] {
			continue
		}
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		u.Close()
		if err != nil {
			continue
		}
		l.Close()
		portUsed[p] = true
		return p
	}
	t.Fatal("no free port found")
	return 0
}

// user is a bootstrap user of the temporary config.
type user struct {
	ext, password string
}

// serverOpts shape a test server's configuration.
type serverOpts struct {
	users       []user
	maxFailures int    // policy.ban.max_failures; 0 means 1000 (never bans)
	algorithms  string // sip.digest_algorithms; default [MD5] for SIPp
	uriCheck    string // sip.digest_uri_check; default server: SIPp's digest uri is the server's address
	sipYAML     string // extra lines under sip:, indented two spaces
	transports  string // sip.transports; default [udp, tcp]
	policyYAML  string // extra lines under policy:, indented two spaces
	extraYAML   string // extra top-level keys (e.g. trunks:)
	// tlsYAML is http.tls's keys besides listen; default self_signed: true
	// (the consoles and the API over HTTPS, as shipped).
	tlsYAML string

	// cmdPrefix runs plateau under this command (e.g. prlimit).
	cmdPrefix []string
}

// plateau is a running `plateau serve`.
type plateau struct {
	t        *testing.T
	cfg      string
	sipPort  int
	httpPort int
	logs     *lockedBuffer
	cmd      *exec.Cmd
	done     chan struct{}
	exitErr  error
	// prefix is the command plateau runs under (serverOpts.cmdPrefix).
	prefix []string
	// stopsItself is set by a test that ends the server itself (SIGTERM
	// drain): cleanup then only checks that it has exited.
	stopsItself bool

	// httpsPort serves the consoles and the API (http.tls); 0 when the
	// test's config has no http.tls (all over plain HTTP on httpPort).
	httpsPort int
	dataDir   string
}

func (p *plateau) sipAddr() string { return fmt.Sprintf("127.0.0.1:%d", p.sipPort) }

// startPlateau writes a config and starts the server, retrying on port
// conflicts; it stops the server with SIGTERM at cleanup and checks that
// it exits 0 within 10 s.
func startPlateau(t *testing.T, o serverOpts) *plateau {
	t.Helper()
	var lastErr error
	for attempt := range 5 {
		p, err := tryStart(t, o)
		if err == nil {
			return p
		}
		lastErr = err
		t.Logf("start attempt %d: %v", attempt+1, err)
	}
	t.Fatalf("plateau did not start: %v", lastErr)
	return nil
}

func tryStart(t *testing.T, o serverOpts) (*plateau, error) {
	dir := t.TempDir()
	p := &plateau{t: t, sipPort: freePort(t), httpPort: freePort(t), httpsPort: freePort(t), dataDir: filepath.Join(dir, "data"), prefix: o.cmdPrefix}
	if o.tlsYAML == "" {
		o.tlsYAML = "self_signed: true"
	}
	if o.maxFailures == 0 {
		o.maxFailures = 1000
	}
	if o.algorithms == "" {
		o.algorithms = "[MD5]"
	}
	if o.uriCheck == "" {
		o.uriCheck = "server"
	}
	if o.transports == "" {
		o.transports = "[udp, tcp]"
	}
	rtp := 30000 + rand.IntN(15000)*2
	var b strings.Builder
	fmt.Fprintf(&b, `site: {name: "e2e", timezone: Europe/Paris, default_region: FR}
sip:
  listen: "127.0.0.1:%d"
  transports: %s
  realm: plateau
  external_address: 127.0.0.1
  digest_algorithms: %s
  digest_uri_check: %s
  min_expires: 60s
  max_expires: 1h
  default_expires: 1h
  min_session_expires: 5s
%smedia: {ip: 127.0.0.1, rtp_ports: "%d-%d"}
http: {listen: "127.0.0.1:%d", tls: {listen: "127.0.0.1:%d", %s}}
data_dir: %q
log: {format: text, level: info}
policy:
  ban: {max_failures: %d, window: 1m, duration: 15m}
%srecordings:
  notice_prompt: %q
%susers:
`, p.sipPort, o.transports, o.algorithms, o.uriCheck, o.sipYAML, rtp, rtp+9, p.httpPort, p.httpsPort, o.tlsYAML, p.dataDir, o.maxFailures, o.policyYAML,
		filepath.Join(repoRoot, "configs", "prompts", "notice-fr.wav"), o.extraYAML)
	for _, u := range o.users {
		fmt.Fprintf(&b, "  - {extension: %q, role: operator, sip_password: %q}\n", u.ext, u.password)
	}
	p.cfg = filepath.Join(dir, "plateau.yaml")
	if err := os.WriteFile(p.cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p.start(t)
}

// start runs `plateau serve` on p's config and waits until it is ready;
// cleanup stops it like the harness does.
func (p *plateau) start(t *testing.T) (*plateau, error) {
	q := &plateau{t: t, cfg: p.cfg, sipPort: p.sipPort, httpPort: p.httpPort, httpsPort: p.httpsPort, dataDir: p.dataDir, prefix: p.prefix, logs: &lockedBuffer{}, done: make(chan struct{})}
	argv := append(append([]string{}, q.prefix...), plateauBin, "serve", "-c", q.cfg)
	q.cmd = exec.Command(argv[0], argv[1:]...)
	q.cmd.Stdout, q.cmd.Stderr = q.logs, q.logs
	if err := q.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { q.exitErr = q.cmd.Wait(); close(q.done) }()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		select {
		case <-q.done:
			return nil, fmt.Errorf("plateau exited (%v):\n%s", q.exitErr, q.logs.String())
		default:
		}
		if res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", q.httpPort)); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			q.cmd.Process.Kill()
			<-q.done
			return nil, fmt.Errorf("not ready after 60 s:\n%s", q.logs.String())
		}
	}
	t.Cleanup(q.stop)
	return q, nil
}

func (p *plateau) stop() {
	t := p.t
	if p.stopsItself {
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
			t.Errorf("plateau did not exit by the end of the test:\n%s", p.logs.String())
		}
		return
	}
	select {
	case <-p.done:
		t.Errorf("plateau exited before the end of the test (%v):\n%s", p.exitErr, p.logs.String())
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.exitErr != nil {
			t.Errorf("plateau exited with %v after SIGTERM:\n%s", p.exitErr, p.logs.String())
		}
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		t.Errorf("plateau did not exit within 10 s of SIGTERM:\n%s", p.logs.String())
	}
	if t.Failed() {
		t.Logf("plateau log:\n%s", p.logs.String())
	}
}

// web is where the consoles and the API are, and a transport that trusts
// the server's certificate (data_dir/tls/https.crt, self-signed at its
// first start, or the test's own CA file): HTTPS unless the test's config
// has no http.tls.
func (p *plateau) web(caFile string) (string, *http.Transport) {
	p.t.Helper()
	if p.httpsPort == 0 {
		return fmt.Sprintf("http://127.0.0.1:%d", p.httpPort), &http.Transport{}
	}
	if caFile == "" {
		caFile = filepath.Join(p.dataDir, "tls", "https.crt")
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		p.t.Fatalf("the HTTPS certificate: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		p.t.Fatalf("%s: no PEM certificate", caFile)
	}
	return fmt.Sprintf("https://127.0.0.1:%d", p.httpsPort), &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
}

// metric reads one unlabelled sample from /metrics (-1 when absent).
func (p *plateau) metric(name string) float64 {
	p.t.Helper()
	return scrapeMetric(p.t, fmt.Sprintf("http://127.0.0.1:%d/metrics", p.httpPort), name)
}

// scrapeMetric reads one sample, name with its labels as exposed (e.g.
// plateau_recorder_refused_total{reason="source"}), from a Prometheus
// text page at url; -1 when absent.
func scrapeMetric(t *testing.T, url, name string) float64 {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == name {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	return -1
}

// plateauCmd runs an admin subcommand on the server's config.
func (p *plateau) plateauCmd(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args = append(args[:1:1], append([]string{args[1], "-c", p.cfg}, args[2:]...)...)
	out, err := exec.CommandContext(ctx, plateauBin, args...).CombinedOutput()
	return string(out), err
}

// registered returns the REGISTERED column of `plateau user list` by extension.
func (p *plateau) registered() map[string]string {
	p.t.Helper()
	out, err := p.plateauCmd("user", "list")
	if err != nil {
		p.t.Fatalf("plateau user list: %v\n%s", err, out)
	}
	regs := map[string]string{}
	for _, line := range strings.Split(out, "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 7 {
			continue
		}
		// EXTENSION NAME ROLE STATUS SIP WEB REGISTERED...; names have no spaces here.
		regs[f[0]] = strings.Join(f[6:], " ")
	}
	return regs
}

// eventually polls cond for up to 15 s (bindings are persisted in batches).
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %s after 15 s", what, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sippResult is a bounded SIPp run's outcome.
type sippResult struct {
	exit   int
	errLog string // -trace_err file(s)
	output string
}

// runSipp runs SIPp against the server with a scenario from e2e/sipp,
// users from rows ("ext;password;expires"), bounded in time.
func runSipp(t *testing.T, p *plateau, scenario string, rows []string, extra ...string) sippResult {
	t.Helper()
	sipp := need(t, "sipp")
	dir := t.TempDir()
	csv := filepath.Join(dir, "users.csv")
	if err := os.WriteFile(csv, []byte("SEQUENTIAL\n"+strings.Join(rows, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var res sippResult
	for attempt := range 3 {
		args := []string{p.sipAddr(),
			"-sf", filepath.Join(repoRoot, "e2e", "sipp", scenario),
			"-inf", csv, "-m", strconv.Itoa(len(rows)),
			"-i", "127.0.0.1", "-p", strconv.Itoa(freePort(t)),
			"-ci", "127.0.0.1", "-cp", strconv.Itoa(freePort(t)),
			"-timeout", "30s", "-timeout_error", "-trace_err", "-nostdin",
			"-buff_size", "4194304",
		}
		args = append(args, extra...)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, sipp, args...)
		cmd.Dir = dir
		cmd.WaitDelay = 5 * time.Second
		out, err := cmd.CombinedOutput()
		cancel()
		res = sippResult{output: string(out)}
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			res.exit = ee.ExitCode()
		default:
			t.Fatalf("sipp: %v\n%s", err, out)
		}
		logs, _ := filepath.Glob(filepath.Join(dir, "*_errors.log"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			res.errLog += string(b)
			os.Remove(l)
		}
		// Exit 255 with a bind error: the port was taken meanwhile; retry.
		if res.exit != 0 && strings.Contains(res.output, "already in use") {
			t.Logf("sipp attempt %d: port in use, retrying", attempt+1)
			continue
		}
		break
	}
	return res
}

// tail keeps the end of a long text for a failure message.
func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
