package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// Faults: kill -9 during calls, a full recordings disk, a dead trunk and a
// busy database. Nothing may be lost: every finished call keeps its
// recording and audit entry, unfinished recordings are repaired and
// marked, and both integrity checks pass afterwards.

// faultOpts shape a fault test's server.
type faultOpts struct {
	operators  int    // operators 201.. with password pw-EXT
	trunkYAML  string // the trunks: block; default one carrier at trunkPort
	trunkPort  int
	recordings string // extra lines under recordings:, indented two spaces
}

// startFaultServer is startCallServer with several operators, 100 RTP
// ports (the harness's 10 hold two calls) and extra recordings settings.
func startFaultServer(t *testing.T, o faultOpts) *plateau {
	t.Helper()
	need(t, "sipp")
	trunks := o.trunkYAML
	if trunks == "" {
		trunks = fmt.Sprintf("trunks:\n  - {name: carrier1, address: \"127.0.0.1:%d\", transport: udp, caller_id: %q, allowed_sources: [%q], options_interval: 0s}\n",
			o.trunkPort, callerID, trunkSources)
	}
	var p *plateau
	for attempt := range 5 {
		dir := t.TempDir()
		q := &plateau{t: t, sipPort: freePort(t), httpPort: freePort(t), cfg: filepath.Join(dir, "plateau.yaml")}
		rtp := 30000 + rand.IntN(7000)*4
		var b strings.Builder
		fmt.Fprintf(&b, `site: {name: "e2e", timezone: Europe/Paris, default_region: FR}
sip:
  listen: "127.0.0.1:%d"
  transports: [udp, tcp]
  realm: plateau
  external_address: 127.0.0.1
  digest_algorithms: [MD5]
  digest_uri_check: server  # SIPp writes the server's address as the digest uri
media: {ip: 127.0.0.1, rtp_ports: "%d-%d"}
http: {listen: "127.0.0.1:%d"}
data_dir: %q
log: {format: text, level: info}
policy:
  ban: {max_failures: 1000, window: 1m, duration: 15m}
  windows: [{days: mon-sun, from: "00:00", to: "24:00"}]
  limits: {per_operator: 1, per_site: 100}
recordings:
  notice_prompt: %q
%s%susers:
`, q.sipPort, rtp, rtp+99, q.httpPort, filepath.Join(dir, "data"), filepath.Join(repoRoot, "configs", "prompts", "notice-fr.wav"), o.recordings, trunks)
		for i := range o.operators {
			ext := strconv.Itoa(201 + i)
			fmt.Fprintf(&b, "  - {extension: %q, role: operator, sip_password: %q}\n", ext, "pw-"+ext)
		}
		if err := os.WriteFile(q.cfg, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		var err error
		if p, err = q.start(t); err == nil {
			break
		}
		t.Logf("start attempt %d: %v", attempt+1, err)
	}
	if p == nil {
		t.Fatal("plateau did not start")
	}
	for _, args := range [][]string{
		{"user", "add", "--role", "security", "--name", "Sec1", "--web-password", "sec-301-password", "301"},
		{"user", "add", "--role", "security", "--name", "Sec2", "--web-password", "sec-302-password", "302"},
		{"allowlist", "add", "--by", "301", approved},
		{"allowlist", "approve", "--by", "302", "--all"},
	} {
		if out, err := p.plateauCmd(args...); err != nil {
			t.Fatalf("plateau %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return p
}

// restart starts plateau again on the same config after it was killed.
func (p *plateau) restart(t *testing.T) *plateau {
	t.Helper()
	q, err := p.start(t)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	return q
}

// operatorsCSV writes a SIPp injection file: EXT;PASSWORD;NUMBER per operator.
func operatorsCSV(t *testing.T, first, n int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("SEQUENTIAL\n")
	for i := range n {
		ext := strconv.Itoa(first + i)
		fmt.Fprintf(&b, "%s;pw-%s;%s\n", ext, ext, approved)
	}
	path := filepath.Join(t.TempDir(), "ops.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// recordingStates returns `plateau recordings list` rows: id -> state.
func recordingStates(t *testing.T, p *plateau) map[string]string {
	t.Helper()
	out, err := p.plateauCmd("recordings", "list")
	if err != nil {
		t.Fatalf("plateau recordings list: %v\n%s", err, out)
	}
	states := map[string]string{}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) == 0 {
		return states
	}
	col := -1
	for i, h := range strings.Fields(lines[0]) {
		if h == "STATE" {
			col = i
		}
	}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if col >= 0 && len(f) > col {
			states[f[0]] = f[col]
		}
	}
	return states
}

func TestFaultsKill9DuringCalls(t *testing.T) {
	const finished, inProgress = 3, 4
	carrierPort := freePort(t)
	p := startFaultServer(t, faultOpts{operators: finished + inProgress, trunkPort: carrierPort})
	carrier := startCarrier(t, carrierPort, "uas_answer.xml", "-m", strconv.Itoa(finished+inProgress), "-l", "10")

	// Three calls that end normally (3 s of RTP each)...
	csv1 := operatorsCSV(t, 201, finished)
	startSipp(t, "finished calls", "uac_talk.xml", p.sipAddr(), "-inf", csv1, "-p", strconv.Itoa(freePort(t)),
		"-m", strconv.Itoa(finished), "-l", strconv.Itoa(finished), "-r", "10", "-d", "3000").mustSucceed(60 * time.Second)
	waitMetric(t, p, mEnded("operator_hangup"), finished)
	eventually(t, "the finished calls' recordings closed", func() (bool, string) {
		st := recordingStates(t, p)
		n := 0
		for _, s := range st {
			if s == "closed" {
				n++
			}
		}
		return n == finished, fmt.Sprint(st)
	})
	before := recordingStates(t, p)

	// ...then four in progress (30 s each) when the server is killed.
	csv2 := operatorsCSV(t, 201+finished, inProgress)
	ops := startSipp(t, "calls in progress", "uac_talk.xml", p.sipAddr(), "-inf", csv2, "-p", strconv.Itoa(freePort(t)),
		"-m", strconv.Itoa(inProgress), "-l", strconv.Itoa(inProgress), "-r", "10", "-d", "30000")
	waitMetric(t, p, mAnswer, finished+inProgress)
	time.Sleep(3 * time.Second) // RTP flows and is recorded
	p.stopsItself = true
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	ops.wait(60 * time.Second) // they fail: nobody answers their BYE
	carrier.wait(60 * time.Second)

	q := p.restart(t)
	// Start-up repair marks the four open recordings repaired.
	after := recordingStates(t, q)
	t.Logf("recordings after restart: %v", after)
	closed, repaired := 0, 0
	for id, s := range after {
		switch s {
		case "closed":
			closed++
			if before[id] != "closed" {
				t.Errorf("recording %s closed after the crash but was not before", id)
			}
		case "repaired":
			repaired++
		default:
			t.Errorf("recording %s is %s after restart, want closed or repaired", id, s)
		}
	}
	if closed != finished || repaired != inProgress {
		t.Errorf("after restart: %d closed, %d repaired; want %d and %d", closed, repaired, finished, inProgress)
	}
	files := recordingFiles(t, q)
	if len(files[".wav"]) != finished+inProgress || len(files[".json"]) != finished+inProgress {
		t.Errorf("recording files %v, want %d WAV and %d sidecars", files, finished+inProgress, finished+inProgress)
	}
	marked := 0
	for _, f := range files[".json"] {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var side struct {
			Repaired bool   `json:"repaired"`
			SHA256   string `json:"sha256"`
		}
		if err := json.Unmarshal(b, &side); err != nil {
			t.Errorf("sidecar %s: %v\n%s", f, err, b)
		}
		if side.Repaired {
			marked++
		}
		if side.SHA256 == "" {
			t.Errorf("sidecar %s has no sha256:\n%s", f, b)
		}
	}
	if marked != inProgress {
		t.Errorf("%d sidecars marked repaired: true, want %d", marked, inProgress)
	}
	// Every finished call has its audit entry; every repair is audited.
	ended := auditLines(t, q, "call.ended")
	if n := strings.Count(ended, "operator_hangup"); n != finished {
		t.Errorf("%d call.ended operator_hangup entries, want %d:\n%s", n, finished, ended)
	}
	rep := auditLines(t, q, "recording.repaired")
	if n := strings.Count(rep, "recording.repaired"); n != inProgress {
		t.Errorf("%d recording.repaired entries, want %d:\n%s", n, inProgress, rep)
	}
	if out, err := q.plateauCmd("recordings", "verify"); err != nil || !strings.Contains(out, fmt.Sprintf("%d recordings verified, 0 problems", finished+inProgress)) {
		t.Errorf("plateau recordings verify after repair: %v\n%s", err, out)
	}
	auditVerify(t, q)
	// And the server works again.
	c2 := startCarrier(t, carrierPort, "uas_answer.xml")
	startSipp(t, "a call after restart", "uac_talk.xml", q.sipAddr(), "-inf", operatorsCSV(t, 201, 1), "-p", strconv.Itoa(freePort(t)),
		"-d", "1000").mustSucceed(40 * time.Second)
	c2.mustSucceed(15 * time.Second)
}

func TestFaultsRecorderDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	carrier := newGoCarrier(t, "")
	p := startFaultServer(t, faultOpts{operators: 2, trunkPort: carrier.port, recordings: "  min_free_mb: 1\n"})
	recDir := filepath.Join(filepath.Dir(p.cfg), "data", "recordings")
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", recDir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v): %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", recDir).Run() })

	ua := newRawUA(t, p, "127.0.0.1")
	r, d := placeCallAs(t, ua, "201", "pw-201", approved)
	if d == nil {
		t.Fatalf("first call: %v, want 200", r)
	}
	// The carrier sends RTP: the recorder has audio to write.
	time.Sleep(1500 * time.Millisecond)
	// Fill the disk.
	fill := filepath.Join(recDir, "fill")
	out, _ := exec.Command("dd", "if=/dev/zero", "of="+fill, "bs=64k").CombinedOutput()
	t.Logf("dd: %s", strings.TrimSpace(string(out)))
	eventually(t, "the call in progress ended (recording_failed)", func() (bool, string) {
		v := p.metricOf(mEnded("recording_failed"))
		return v == 1, strconv.FormatFloat(v, 'f', -1, 64)
	})
	auditHas(t, p, "call.ended", "recording_failed", approved)
	if carrier.count("BYE") != 1 {
		t.Errorf("carrier got %d BYE, want 1 (the outside leg hung up)", carrier.count("BYE"))
	}
	// New calls are refused while the disk is full.
	ua2 := newRawUA(t, p, "127.0.0.1")
	r2, d2 := placeCallAs(t, ua2, "202", "pw-202", approved)
	if d2 != nil {
		d2.requestAs("202", "BYE", "", "")
	}
	if !reasonIs(r2, 403, "RECORDER_UNAVAILABLE") {
		t.Errorf("call with the disk full: %v, want 403 RECORDER_UNAVAILABLE", r2)
	}
	auditHas(t, p, "policy.decision", "refused", "RECORDER_UNAVAILABLE")
	if n := len(carrier.inviteURIs()); n != 1 {
		t.Errorf("the carrier got %d INVITEs, want 1 (the refused call never dialled)", n)
	}
	// Nothing corrupt is left: what was written verifies (the failed
	// recording is repaired up to the failure and marked).
	os.Remove(fill)
	waitMetric(t, p, mActive, 0)
	out2, err := p.plateauCmd("recordings", "verify")
	t.Logf("recordings verify, space freed: %v\n%s", err, out2)
	if err != nil || !strings.Contains(out2, " 0 problems") {
		// What the failed recording left: the WAV up to the failure; its
		// sidecar could not be written on a full disk. The operator's
		// fix is `plateau recordings repair`; after it, verify passes.
		rep, rerr := p.plateauCmd("recordings", "repair")
		t.Logf("recordings repair: %v\n%s", rerr, rep)
		out3, err := p.plateauCmd("recordings", "verify")
		if err != nil || !strings.Contains(out3, " 0 problems") {
			t.Errorf("plateau recordings verify after disk full and repair: %v\n%s", err, out3)
		}
	}
	t.Logf("recordings: %v", recordingStates(t, p))
	auditVerify(t, p)
}

// placeCallAs is placeCall for another operator.
func placeCallAs(t *testing.T, ua *rawUA, ext, pass, number string) (*response, *opDialog) {
	t.Helper()
	callID, tag := randHex(8)+"@e2e", randHex(4)
	tx := ua.newInvite(ext, number, 1, callID, tag)
	r := ua.invite(tx)
	if r == nil || r.status != 407 {
		return r, nil
	}
	tx2 := ua.newInvite(ext, number, 2, callID, tag)
	r = ua.invite(tx2, authorization(r, ext, pass, tx2.uri))
	if r == nil || r.status != 200 {
		return r, nil
	}
	d := &opDialog{ua: ua, callID: callID, tag: tag, uri: tx2.uri, to: r.get("To"), cseq: 2, from: ext}
	d.send("ACK", 2, "z9hG4bK"+randHex(6), "", "")
	return r, d
}

func (d *opDialog) requestAs(ext, method, ctype, body string) *response {
	d.from = ext
	return d.request(method, ctype, body)
}

// The trunk stops answering OPTIONS: it is marked down and calls fail fast
// with 503.
func TestFaultsTrunkDown(t *testing.T) {
	deadPort := freePort(t) // nothing listens there
	trunks := fmt.Sprintf("trunks:\n  - {name: carrier1, address: \"127.0.0.1:%d\", transport: udp, caller_id: %q, allowed_sources: [%q], options_interval: 1s}\n",
		deadPort, callerID, trunkSources)
	p := startFaultServer(t, faultOpts{operators: 1, trunkYAML: trunks})
	const up = `plateau_trunk_up{trunk="carrier1"}`
	eventually(t, "trunk marked down", func() (bool, string) {
		v := p.metric(up)
		return v == 0, strconv.FormatFloat(v, 'f', -1, 64)
	})
	auditHas(t, p, "trunk.state", "carrier1", "down")
	ua := newRawUA(t, p, "127.0.0.1")
	start := time.Now()
	r, d := placeCallAs(t, ua, "201", "pw-201", approved)
	took := time.Since(start)
	if d != nil {
		d.requestAs("201", "BYE", "", "")
	}
	if r == nil || r.status != 503 {
		t.Fatalf("call with the trunk down: %v, want 503", r)
	}
	t.Logf("503 after %v (challenge included)", took)
	if took > 3*time.Second {
		t.Errorf("503 took %v, want a fast failure (< 3 s)", took)
	}
	waitMetric(t, p, mActive, 0)
	auditVerify(t, p)
}

// A second connection holds SQLite's write lock for 2 s while calls are
// decided: every call still gets its answer and no audit entry is lost.
func TestFaultsDatabaseBusy(t *testing.T) {
	carrier := newGoCarrier(t, "")
	p := startFaultServer(t, faultOpts{operators: 4, trunkPort: carrier.port})
	dbPath := filepath.Join(filepath.Dir(p.cfg), "data", "plateau.db")
	count := func() int {
		db, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM audit_log`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	n0 := count()

	db, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatalf("taking the write lock: %v", err)
	}
	locked := time.Now()
	released := make(chan struct{})
	go func() {
		time.Sleep(2 * time.Second)
		conn.ExecContext(ctx, "ROLLBACK")
		conn.Close()
		close(released)
	}()

	// While locked: three refused calls and one allowed call, at once.
	type result struct {
		ext  string
		r    *response
		took time.Duration
	}
	results := make(chan result, 4)
	for i, number := range []string{unapproved, unapproved, unapproved, approved} {
		ext := strconv.Itoa(201 + i)
		go func() {
			ua := newRawUA(t, p, "127.0.0.1")
			start := time.Now()
			r, d := placeCallAs(t, ua, ext, "pw-"+ext, number)
			took := time.Since(start)
			if d != nil {
				time.Sleep(500 * time.Millisecond)
				d.requestAs(ext, "BYE", "", "")
			}
			results <- result{ext, r, took}
		}()
	}
	allowed, refused := 0, 0
	for range 4 {
		res := <-results
		t.Logf("operator %s: %v after %v (lock taken %v before)", res.ext, res.r, res.took, time.Since(locked)-res.took)
		switch {
		case res.r == nil:
			t.Errorf("operator %s got no answer while the database was busy", res.ext)
		case res.r.status == 200:
			allowed++
		case reasonIs(res.r, 403, "NOT_ALLOWLISTED"):
			refused++
		default:
			t.Errorf("operator %s: %v", res.ext, res.r)
		}
	}
	<-released
	if allowed != 1 || refused != 3 {
		t.Errorf("%d allowed, %d refused; want 1 and 3", allowed, refused)
	}
	waitMetric(t, p, mActive, 0)
	// Every decision (4) and the allowed call's end are in the log.
	eventually(t, "audit entries written", func() (bool, string) {
		dec := strings.Count(auditLines(t, p, "policy.decision"), "policy.decision")
		ended := strings.Count(auditLines(t, p, "call.ended"), "call.ended")
		return dec == 4 && ended == 1, fmt.Sprintf("%d decisions, %d call.ended (total %d -> %d)", dec, ended, n0, count())
	})
	auditVerify(t, p)
}

// plateau_media_ports_in_use counts the RTP port pairs a call holds (the
// soak watches it for leaks): two pairs during a call, none after.
func TestFaultsPortsGauge(t *testing.T) {
	carrier := newGoCarrier(t, "")
	p := startFaultServer(t, faultOpts{operators: 1, trunkPort: carrier.port})
	const gauge = "plateau_media_ports_in_use"
	ua := newRawUA(t, p, "127.0.0.1")
	r, d := placeCallAs(t, ua, "201", "pw-201", approved)
	if d == nil {
		t.Fatalf("call: %v, want 200", r)
	}
	inCall := p.metricOf(gauge)
	d.requestAs("201", "BYE", "", "")
	waitMetric(t, p, mActive, 0)
	// Bug: cmd/plateau/serve.go creates the pool with media.NewPortPool
	// but never calls pool.SetMetrics, so the exported gauge stays 0.
	if inCall < 2 {
		t.Errorf("%s = %v during a call, want >= 2 (operator and outside pairs)", gauge, inCall)
	}
	eventually(t, gauge+" back to 0 after the drain", func() (bool, string) {
		v := p.metricOf(gauge)
		return v == 0, strconv.FormatFloat(v, 'f', -1, 64)
	})
}
