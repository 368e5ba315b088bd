package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Helpers for the call tests: a server with trunks, open windows and an
// approved number; SIPp runs in the background (carriers) or against the
// server (operators); a raw UDP user agent for hand-written INVITEs.

const (
	opExt      = "101"
	opPass     = "call-secret-101"
	approved   = "+33240123456"
	unapproved = "+33240999999"
	callerID   = "+33240000000"
	pcapFile   = "/usr/share/sip-tester/g711a.pcap"
	// trunkSources are the carrier's inbound sources; never 127.0.0.1, or
	// every operator INVITE would be taken for an inbound call.
	trunkSources = "127.0.0.2/32"
)

// callOpts shape a call test's server.
type callOpts struct {
	trunkPorts []int  // carrier UDP ports on 127.0.0.1, in failover order
	sipYAML    string // extra sip: lines
	policyYAML string // extra policy: lines
	trunkYAML  string // extra keys of each trunk, e.g. "ring_timeout: 8s"
}

// startCallServer starts plateau with the given trunks, windows open all
// week, operator 101, two security officers (301 proposes, 302 approves)
// and approved on the allowlist.
func startCallServer(t *testing.T, o callOpts) *plateau {
	t.Helper()
	need(t, "sipp")
	var tr strings.Builder
	if len(o.trunkPorts) > 0 {
		tr.WriteString("trunks:\n")
		for i, port := range o.trunkPorts {
			fmt.Fprintf(&tr, "  - {name: carrier%d, address: \"127.0.0.1:%d\", transport: udp, caller_id: %q, allowed_sources: [%q], options_interval: 0s%s}\n",
				i+1, port, callerID, trunkSources, extraKeys(o.trunkYAML))
		}
	}
	p := startPlateau(t, serverOpts{
		users:      []user{{opExt, opPass}},
		sipYAML:    o.sipYAML,
		policyYAML: "  windows: [{days: mon-sun, from: \"00:00\", to: \"24:00\"}]\n" + o.policyYAML,
		extraYAML:  tr.String(),
	})
	approve(t, p, approved)
	return p
}

func extraKeys(yaml string) string {
	if yaml == "" {
		return ""
	}
	return ", " + yaml
}

// approve puts numbers on the allowlist: 301 proposes, 302 approves (the
// two security officers are created when missing).
func approve(t *testing.T, p *plateau, numbers ...string) {
	t.Helper()
	users, _ := p.plateauCmd("user", "list")
	cmds := [][]string{}
	if !strings.Contains(users, "\n301 ") {
		cmds = append(cmds,
			[]string{"user", "add", "--role", "security", "--name", "Sec1", "--web-password", "sec-301-password", "301"},
			[]string{"user", "add", "--role", "security", "--name", "Sec2", "--web-password", "sec-302-password", "302"})
	}
	cmds = append(cmds, append([]string{"allowlist", "add", "--by", "301"}, numbers...), []string{"allowlist", "approve", "--by", "302", "--all"})
	for _, args := range cmds {
		if out, err := p.plateauCmd(args...); err != nil {
			t.Fatalf("plateau %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// sippProc is a SIPp run in the background.
type sippProc struct {
	t    *testing.T
	name string
	dir  string
	out  lockedBuffer
	done chan struct{}
	res  sippResult
}

// startSipp starts SIPp with a scenario from e2e/sipp, bounded in time,
// its media on its own port; args add the remote address, -p, -inf, etc.
func startSipp(t *testing.T, name, scenario string, args ...string) *sippProc {
	t.Helper()
	bin := need(t, "sipp")
	s := &sippProc{t: t, name: name, dir: t.TempDir(), done: make(chan struct{})}
	// The caller's arguments come last so that they override the defaults
	// (SIPp keeps the last value of a repeated option, e.g. -m).
	all := []string{
		"-sf", filepath.Join(repoRoot, "e2e", "sipp", scenario),
		"-i", "127.0.0.1", "-mi", "127.0.0.1", "-mp", strconv.Itoa(freePort(t)),
		"-ci", "127.0.0.1", "-cp", strconv.Itoa(freePort(t)),
		"-m", "1", "-timeout", "40s", "-timeout_error", "-trace_err", "-nostdin",
		"-buff_size", "4194304"}
	all = append(all, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := exec.CommandContext(ctx, bin, all...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = &s.out, &s.out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("%s: %v", name, err)
	}
	go func() {
		defer close(s.done)
		defer cancel()
		err := cmd.Wait()
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			s.res.exit = ee.ExitCode()
		default:
			s.res.exit = -1
		}
		s.res.output = s.out.String()
		logs, _ := filepath.Glob(filepath.Join(s.dir, "*_errors.log"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			s.res.errLog += string(b)
		}
	}()
	// Never leave a SIPp behind a failed test.
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			cmd.Process.Kill()
			<-s.done
		}
	})
	return s
}

// wait returns the run's result, failing the test after limit.
func (s *sippProc) wait(limit time.Duration) sippResult {
	s.t.Helper()
	select {
	case <-s.done:
		return s.res
	case <-time.After(limit):
		s.t.Fatalf("%s still running after %v:\n%s", s.name, limit, tail(s.out.String(), 3000))
		return sippResult{}
	}
}

// mustSucceed waits and checks that SIPp ran its call successfully.
func (s *sippProc) mustSucceed(limit time.Duration) {
	s.t.Helper()
	r := s.wait(limit)
	if r.exit != 0 {
		s.t.Errorf("%s exited %d\nerrors: %s\noutput: %s", s.name, r.exit, tail(r.errLog, 3000), tail(r.output, 2000))
	}
}

// startCarrier runs a SIPp UAS scenario on a given port (the trunk's).
func startCarrier(t *testing.T, port int, scenario string, extra ...string) *sippProc {
	return startSipp(t, "carrier "+scenario, scenario, append([]string{"-p", strconv.Itoa(port)}, extra...)...)
}

// startOperator runs a SIPp UAC scenario as operator 101 dialling number.
func startOperator(t *testing.T, p *plateau, scenario, number string, extra ...string) *sippProc {
	t.Helper()
	csv := filepath.Join(t.TempDir(), "op.csv")
	if err := os.WriteFile(csv, []byte(fmt.Sprintf("SEQUENTIAL\n%s;%s;%s\n", opExt, opPass, number)), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{p.sipAddr(), "-inf", csv, "-p", strconv.Itoa(freePort(t))}, extra...)
	return startSipp(t, "operator "+scenario, scenario, args...)
}

// metricOf reads a sample, 0 when absent (a labelled child never used).
func (p *plateau) metricOf(name string) float64 {
	p.t.Helper()
	if v := p.metric(name); v >= 0 {
		return v
	}
	return 0
}

// waitMetric polls until a sample reaches want.
func waitMetric(t *testing.T, p *plateau, name string, want float64) {
	t.Helper()
	eventually(t, name+" = "+strconv.FormatFloat(want, 'f', -1, 64), func() (bool, string) {
		v := p.metricOf(name)
		return v == want, strconv.FormatFloat(v, 'f', -1, 64)
	})
}

// auditLines returns `plateau audit list` output for one kind.
func auditLines(t *testing.T, p *plateau, kind string) string {
	t.Helper()
	out, err := p.plateauCmd("audit", "list", "--kind", kind, "--limit", "100")
	if err != nil {
		t.Fatalf("plateau audit list: %v\n%s", err, out)
	}
	return out
}

// auditVerify checks the audit hash chain.
func auditVerify(t *testing.T, p *plateau) {
	t.Helper()
	out, err := p.plateauCmd("audit", "verify")
	if err != nil || !strings.Contains(out, "audit chain ok") {
		t.Errorf("plateau audit verify: %v\n%s", err, out)
	}
}

// recordingFiles lists files under data_dir/recordings by extension.
func recordingFiles(t *testing.T, p *plateau) map[string][]string {
	t.Helper()
	root := filepath.Join(filepath.Dir(p.cfg), "data", "recordings")
	files := map[string][]string{}
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files[filepath.Ext(path)] = append(files[filepath.Ext(path)], path)
		}
		return nil
	})
	return files
}

// pcapPackets counts the records of a classic pcap file.
func pcapPackets(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		skipOrFail(t, "pcap (from sip-tester): %v", err)
	}
	if len(b) < 24 {
		t.Fatalf("%s: not a pcap", path)
	}
	var order binary.ByteOrder = binary.LittleEndian
	if binary.BigEndian.Uint32(b) == 0xa1b2c3d4 {
		order = binary.BigEndian
	}
	n := 0
	for off := 24; off+16 <= len(b); n++ {
		off += 16 + int(order.Uint32(b[off+8:]))
	}
	return n
}

// silentCarrier is a UDP socket at a trunk's address that must hear nothing.
type silentCarrier struct {
	conn *net.UDPConn
	got  chan string
}

func newSilentCarrier(t *testing.T) (*silentCarrier, int) {
	t.Helper()
	for range 20 {
		port := freePort(t)
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			continue
		}
		c := &silentCarrier{conn: conn, got: make(chan string, 16)}
		t.Cleanup(func() { conn.Close() })
		go func() {
			buf := make([]byte, 65535)
			for {
				n, _, err := conn.ReadFromUDP(buf)
				if err != nil {
					return
				}
				select {
				case c.got <- string(buf[:n]):
				default:
				}
			}
		}()
		return c, port
	}
	t.Fatal("no port for the carrier")
	return nil, 0
}

// heardNothing fails if anything reached the carrier.
func (c *silentCarrier) heardNothing(t *testing.T, wait time.Duration) {
	t.Helper()
	select {
	case m := <-c.got:
		t.Errorf("the carrier received a message:\n%s", tail(m, 1500))
	case <-time.After(wait):
	}
}

// rawUA sends hand-written INVITEs over UDP from a chosen local address.
type rawUA struct {
	t      *testing.T
	conn   *net.UDPConn
	server *net.UDPAddr
}

func newRawUA(t *testing.T, p *plateau, ip string) *rawUA {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatalf("listen %s: %v", ip, err)
	}
	t.Cleanup(func() { conn.Close() })
	srv, _ := net.ResolveUDPAddr("udp", p.sipAddr())
	return &rawUA{t: t, conn: conn, server: srv}
}

// inviteTx is one INVITE transaction's identifiers.
type inviteTx struct {
	callID, fromTag, branch, from string
	cseq                          int
	uri                           string
}

func (u *rawUA) newInvite(from, number string, cseq int, callID, fromTag string) inviteTx {
	return inviteTx{callID: callID, fromTag: fromTag, branch: "z9hG4bK" + randHex(6), from: from,
		cseq: cseq, uri: fmt.Sprintf("sip:%s@%s", number, u.server)}
}

// invite sends an INVITE with a PCMA offer (extra are header lines) and
// returns the final response, ACKing it when it is a failure.
func (u *rawUA) invite(tx inviteTx, extra ...string) *response {
	u.t.Helper()
	local := u.conn.LocalAddr().(*net.UDPAddr)
	msg := inviteMessage(u.conn, tx, fmt.Sprintf("<sip:%s@%s>", tx.from, local), extra...)
	r := u.do(msg, 10*time.Second)
	if r != nil && r.status >= 300 {
		var a strings.Builder
		fmt.Fprintf(&a, "ACK %s SIP/2.0\r\n", tx.uri)
		fmt.Fprintf(&a, "Via: SIP/2.0/UDP %s;branch=%s;rport\r\n", local, tx.branch)
		fmt.Fprintf(&a, "From: <sip:%s@%s>;tag=%s\r\n", tx.from, local.IP, tx.fromTag)
		fmt.Fprintf(&a, "To: %s\r\n", r.get("To"))
		fmt.Fprintf(&a, "Call-ID: %s\r\nCSeq: %d ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", tx.callID, tx.cseq)
		u.conn.WriteToUDP([]byte(a.String()), u.server)
	}
	return r
}

// inviteMessage is rawUA's INVITE from c's address with a PCMA offer, the
// given Contact and extra header lines.
func inviteMessage(c *net.UDPConn, tx inviteTx, contact string, extra ...string) string {
	local := c.LocalAddr().(*net.UDPAddr)
	sdp := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n",
		local.IP, local.IP, local.Port+2)
	var b strings.Builder
	fmt.Fprintf(&b, "INVITE %s SIP/2.0\r\n", tx.uri)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;branch=%s;rport\r\n", local, tx.branch)
	fmt.Fprintf(&b, "From: <sip:%s@%s>;tag=%s\r\n", tx.from, local.IP, tx.fromTag)
	fmt.Fprintf(&b, "To: <%s>\r\n", tx.uri)
	fmt.Fprintf(&b, "Call-ID: %s\r\nCSeq: %d INVITE\r\nMax-Forwards: 70\r\n", tx.callID, tx.cseq)
	fmt.Fprintf(&b, "Contact: %s\r\n", contact)
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	fmt.Fprintf(&b, "Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", len(sdp), sdp)
	return b.String()
}

// do sends a request with UDP retransmissions until a final response.
func (u *rawUA) do(msg string, wait time.Duration) *response {
	u.t.Helper()
	deadline := time.Now().Add(wait)
	interval := 500 * time.Millisecond
	buf := make([]byte, 65535)
	provisional := false
	for time.Now().Before(deadline) {
		if !provisional {
			if _, err := u.conn.WriteToUDP([]byte(msg), u.server); err != nil {
				u.t.Fatalf("send: %v", err)
			}
		}
		next := time.Now().Add(interval)
		if next.After(deadline) {
			next = deadline
		}
		interval = min(2*interval, 4*time.Second)
		for {
			u.conn.SetReadDeadline(next)
			n, _, err := u.conn.ReadFromUDP(buf)
			if err != nil {
				break
			}
			r, err := parseResponse(buf[:n])
			if err != nil {
				continue // a request (e.g. a BYE) is not what we wait for
			}
			if r.status >= 200 {
				return r
			}
			provisional = true // stop retransmitting (RFC 3261 17.1.1.2)
		}
	}
	return nil
}

// authorization answers a Proxy-Authenticate challenge for an INVITE.
func authorization(r *response, ext, pass, uri string) string {
	ch := parseChallenge(r.get("Proxy-Authenticate"))
	cnonce := randHex(4)
	resp := digestResponse(ch["algorithm"], ext, ch["realm"], pass, "INVITE", uri, ch["nonce"], 1, cnonce)
	h := fmt.Sprintf(`Proxy-Authorization: Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s, qop=auth, nc=00000001, cnonce="%s"`,
		ext, ch["realm"], ch["nonce"], uri, resp, ch["algorithm"], cnonce)
	if ch["opaque"] != "" {
		h += fmt.Sprintf(`, opaque="%s"`, ch["opaque"])
	}
	return h
}
