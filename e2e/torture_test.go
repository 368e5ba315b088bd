package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// Hostile input against the real binary: RFC 4475 torture messages,
// malformed SDP from an authenticated operator, oversized messages, header
// floods, an RTP flood and SIP scanners. After each, the server must be
// alive and answering (OPTIONS and /healthz) within a bounded time.

// alive fails the test when the server has exited, does not answer
// OPTIONS over UDP within 3 s or /healthz is not 200.
func alive(t *testing.T, p *plateau, after string) {
	t.Helper()
	select {
	case <-p.done:
		t.Fatalf("plateau exited after %s (%v):\n%s", after, p.exitErr, tail(p.logs.String(), 3000))
	default:
	}
	c := newClient(t, p, "101", "x")
	if r := c.do(c.build("OPTIONS"), 3*time.Second); r == nil || r.status != 200 {
		t.Fatalf("after %s, OPTIONS: %v, want 200", after, r)
	}
	cl := http.Client{Timeout: 3 * time.Second}
	res, err := cl.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", p.httpPort))
	if err != nil {
		t.Fatalf("after %s, /healthz: %v", after, err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("after %s, /healthz: %s", after, res.Status)
	}
}

// sendUDP sends one datagram from a fresh socket and returns the first
// answer within wait ("" when none).
func sendUDP(t *testing.T, p *plateau, msg []byte, wait time.Duration) string {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	srv, _ := net.ResolveUDPAddr("udp", p.sipAddr())
	if _, err := conn.WriteToUDP(msg, srv); err != nil {
		return "send error: " + err.Error()
	}
	buf := make([]byte, 65535)
	conn.SetReadDeadline(time.Now().Add(wait))
	n, _, err := conn.ReadFromUDP(buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

// sendTCP writes msg on a new connection and returns what came back
// within wait (the connection may be closed by the server).
func sendTCP(t *testing.T, p *plateau, msg []byte, wait time.Duration) (string, error) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", p.sipAddr(), 3*time.Second)
	if err != nil {
		t.Fatalf("dial tcp: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(wait))
	_, werr := conn.Write(msg)
	buf := make([]byte, 65535)
	n, _ := conn.Read(buf)
	return string(buf[:n]), werr
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\r\n")
	return l
}

func TestTortureRFC4475(t *testing.T) {
	p := startPlateau(t, serverOpts{users: []user{{opExt, opPass}}})
	files, _ := filepath.Glob(filepath.Join("testdata", "torture", "*", "*.dat"))
	if len(files) < 50 {
		t.Fatalf("%d torture messages in testdata/torture, want the 53 of sipgo", len(files))
	}
	for _, f := range files {
		msg, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(filepath.Dir(f)) + "/" + filepath.Base(f)
		got := sendUDP(t, p, msg, 300*time.Millisecond)
		t.Logf("UDP %-22s -> %s", name, firstLine(got))
		if strings.HasPrefix(got, "SIP/2.0 2") && strings.HasPrefix(name, "invalid/") && !strings.HasPrefix(string(msg), "OPTIONS") {
			t.Errorf("%s: an invalid request was accepted: %s", name, firstLine(got))
		}
		alive(t, p, "UDP "+name)
	}
	// A few over TCP, one message per connection; then all of them on one
	// connection (the stream parser must resynchronise or close).
	for _, name := range []string{"valid/longreq.dat", "valid/mpart01.dat", "invalid/clerr.dat", "invalid/ncl.dat",
		"invalid/mcl01.dat", "invalid/scalarlg.dat", "invalid/badinv01.dat", "valid/wsinv.dat"} {
		msg, err := os.ReadFile(filepath.Join("testdata", "torture", name))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := sendTCP(t, p, msg, time.Second)
		t.Logf("TCP %-22s -> %s", name, firstLine(got))
		alive(t, p, "TCP "+name)
	}
	var all []byte
	for _, f := range files {
		b, _ := os.ReadFile(f)
		all = append(all, b...)
	}
	sendTCP(t, p, all, 2*time.Second)
	alive(t, p, "every torture message on one TCP connection")
	if v := p.metricOf(mActive); v != 0 {
		t.Errorf("%s = %v after the torture messages, want 0", mActive, v)
	}
}

// Malformed SDP in an authenticated INVITE is refused (488 or 400; 403
// MEDIA_ADDRESS_MISMATCH when it parses but points elsewhere), never
// dialled and never a crash.
func TestTortureMalformedSDP(t *testing.T) {
	carrier, carrierPort := newSilentCarrier(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}})
	base := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
	bodies := map[string]string{
		"empty":             "",
		"garbage":           "this is not SDP at all\r\n",
		"binary":            "\x00\x01\x02\xff\xfe\r\n\x00",
		"no m line":         base,
		"no c line":         "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 40000 RTP/AVP 8\r\n",
		"port out of range": base + "m=audio 99999999 RTP/AVP 8\r\n",
		"negative port":     base + "m=audio -5 RTP/AVP 8\r\n",
		"bad address":       "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 999.1.1.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 8\r\n",
		"hostname address":  "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 carrier.example.com\r\nt=0 0\r\nm=audio 40000 RTP/AVP 8\r\n",
		"ipv6 mismatch":     "v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 8\r\n",
		"no codec":          base + "m=audio 40000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n",
		"video only":        base + "m=video 40000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n",
		"payload 999":       base + "m=audio 40000 RTP/AVP 999\r\na=rtpmap:999 PCMA/8000\r\n",
		"no payload":        base + "m=audio 40000 RTP/AVP\r\n",
		"truncated":         base + "m=aud",
		"lf only, junk":     "v=0\nthis=is junk\n\x00\n",
		"huge rtpmap":       base + "m=audio 40000 RTP/AVP 8\r\na=rtpmap:8 " + strings.Repeat("A", 8000) + "/8000\r\n",
		"1000 m lines":      base + strings.Repeat("m=audio 40000 RTP/AVP 18\r\n", 1000),
		"rtpmap overflow":   base + "m=audio 40000 RTP/AVP 8\r\na=rtpmap:8 PCMA/99999999999999999999\r\n",
		"fmtp junk":         base + "m=audio 40000 RTP/AVP 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-99999999999\r\n",
		"other host":        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 8\r\n",
		"media-level other": base + "m=audio 40000 RTP/AVP 8\r\nc=IN IP4 192.0.2.1\r\n",
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			ua := newRawUA(t, p, "127.0.0.1")
			callID, tag := randHex(8)+"@e2e", randHex(4)
			r := ua.inviteSDP(ua.newInvite(opExt, approved, 1, callID, tag), body)
			if r == nil || r.status != 407 {
				t.Fatalf("first INVITE: %v, want 407", r)
			}
			tx := ua.newInvite(opExt, approved, 2, callID, tag)
			r = ua.inviteSDP(tx, body, authorization(r, opExt, opPass, tx.uri))
			switch {
			case r == nil:
				t.Errorf("no answer")
			case r.status == 488 || r.status == 400:
			case r.status == 403 && strings.Contains(r.get("Reason"), "MEDIA_ADDRESS_MISMATCH"):
			default:
				t.Errorf("answer %v, want 488 or 400 (or 403 MEDIA_ADDRESS_MISMATCH)", r)
			}
			if r != nil {
				t.Logf("%d %s %s", r.status, r.reason, r.get("Reason"))
			}
		})
	}
	alive(t, p, "malformed SDP")
	carrier.heardNothing(t, time.Second)
	if v := p.metricOf(mActive); v != 0 {
		t.Errorf("%s = %v, want 0", mActive, v)
	}
}

// Oversized messages and header floods are dropped or refused; the server
// stays up and answers.
func TestTortureOversizedAndFlood(t *testing.T) {
	p := startPlateau(t, serverOpts{users: []user{{opExt, opPass}}})
	srv := p.sipAddr()
	invite := func(transport string, extraHeaders string, body string) []byte {
		return []byte(fmt.Sprintf("INVITE sip:%s@%s SIP/2.0\r\nVia: SIP/2.0/%s 127.0.0.1:5999;branch=z9hG4bK%s;rport\r\n"+
			"From: <sip:101@127.0.0.1>;tag=%s\r\nTo: <sip:%s@%s>\r\nCall-ID: %s@e2e\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"+
			"Contact: <sip:101@127.0.0.1:5999>\r\n%sContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
			approved, srv, transport, randHex(6), randHex(4), approved, srv, randHex(8), extraHeaders, len(body), body))
	}
	refusedOrDropped := func(t *testing.T, what, got string) {
		t.Helper()
		t.Logf("%s -> %q", what, firstLine(got))
		if strings.HasPrefix(got, "SIP/2.0 1") || strings.HasPrefix(got, "SIP/2.0 2") || strings.HasPrefix(got, "SIP/2.0 407") {
			t.Errorf("%s was processed: %s", what, firstLine(got))
		}
	}
	t.Run("70 kB over TCP", func(t *testing.T) {
		got, _ := sendTCP(t, p, invite("TCP", "", strings.Repeat("a=x-pad:"+strings.Repeat("z", 90)+"\r\n", 700)), 3*time.Second)
		refusedOrDropped(t, "70 kB INVITE over TCP", got)
		alive(t, p, "70 kB over TCP")
	})
	t.Run("1 MB over TCP", func(t *testing.T) {
		got, _ := sendTCP(t, p, invite("TCP", "", strings.Repeat("a=x-pad:"+strings.Repeat("z", 90)+"\r\n", 10500)), 3*time.Second)
		refusedOrDropped(t, "1 MB INVITE over TCP", got)
		alive(t, p, "1 MB over TCP")
	})
	t.Run("65 kB over UDP", func(t *testing.T) {
		msg := invite("UDP", "", strings.Repeat("a=x-pad:"+strings.Repeat("z", 90)+"\r\n", 650))
		msg = msg[:min(len(msg), 65000)]
		got := sendUDP(t, p, msg, time.Second)
		refusedOrDropped(t, "65 kB INVITE over UDP", got)
		alive(t, p, "65 kB over UDP")
	})
	t.Run("header flood over UDP", func(t *testing.T) {
		var h strings.Builder
		for i := 0; h.Len() < 60000; i++ {
			fmt.Fprintf(&h, "X-F%d: y\r\n", i)
		}
		got := sendUDP(t, p, invite("UDP", h.String(), ""), time.Second)
		t.Logf("header flood over UDP (%d bytes) -> %q", h.Len(), firstLine(got))
		alive(t, p, "header flood over UDP")
	})
	t.Run("Via flood over TCP", func(t *testing.T) {
		var h strings.Builder
		for i := 0; h.Len() < 200000; i++ {
			fmt.Fprintf(&h, "Via: SIP/2.0/TCP 10.0.%d.%d:5060;branch=z9hG4bK%d\r\n", i/250%250, i%250, i)
		}
		got, _ := sendTCP(t, p, invite("TCP", h.String(), ""), 3*time.Second)
		refusedOrDropped(t, "200 kB of Via over TCP", got)
		alive(t, p, "Via flood over TCP")
	})
	t.Run("endless header line over TCP", func(t *testing.T) {
		// A slow-loris header that never ends: the server must not buffer
		// without bound; we stop after 4 MB or when it closes.
		conn, err := net.DialTimeout("tcp", srv, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.Write([]byte("INVITE sip:x@127.0.0.1 SIP/2.0\r\nX-Endless: "))
		chunk := []byte(strings.Repeat("A", 64*1024))
		sent := 0
		conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		for sent < 4<<20 {
			n, err := conn.Write(chunk)
			sent += n
			if err != nil {
				break
			}
		}
		t.Logf("endless header: %d bytes accepted before close/limit", sent)
		alive(t, p, "endless header over TCP")
	})
	t.Run("request flood over UDP", func(t *testing.T) {
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		dst, _ := net.ResolveUDPAddr("udp", srv)
		start := time.Now()
		for i := range 20000 {
			conn.WriteToUDP(invite("UDP", "", ""), dst)
			if i%500 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		t.Logf("20,000 INVITEs sent in %v", time.Since(start))
		alive(t, p, "a flood of 20,000 INVITEs")
	})
}

// An RTP flood from unknown sources at a live call's relay port is dropped
// and counted; the call goes on and ends normally, recorded.
func TestTortureRTPFlood(t *testing.T) {
	carrierPort := freePort(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}})
	drop0 := p.metricOf(mUnknown)
	carrier := startCarrier(t, carrierPort, "uas_answer.xml")
	op := startOperator(t, p, "uac_talk.xml", approved, "-d", "6000")
	port := op.relayPort(t)
	time.Sleep(1500 * time.Millisecond) // the relay latches the operator first
	const perSource = 5000
	sent := 0
	for _, ip := range []string{"127.0.0.1", "127.0.0.3"} {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
		if err != nil {
			t.Fatal(err)
		}
		dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
		for i := range perSource {
			pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SequenceNumber: uint16(i), Timestamp: uint32(160 * i), SSRC: 0xf100d},
				Payload: make([]byte, 160)}
			b, _ := pkt.Marshal()
			if _, err := c.WriteToUDP(b, dst); err == nil {
				sent++
			}
			if i%50 == 0 {
				time.Sleep(time.Millisecond) // fast, but within the socket buffer
			}
		}
		c.Close()
	}
	eventually(t, "flood counted as unknown_source", func() (bool, string) {
		v := p.metricOf(mUnknown) - drop0
		return v >= 0.95*float64(sent), fmt.Sprintf("%v of %d", v, sent)
	})
	op.mustSucceed(30 * time.Second)
	carrier.mustSucceed(15 * time.Second)
	waitMetric(t, p, mEnded("operator_hangup"), 1)
	eventually(t, "one recording", func() (bool, string) {
		f := recordingFiles(t, p)
		return len(f[".wav"]) == 1 && len(f[".json"]) == 1, fmt.Sprint(f)
	})
	if out, err := p.plateauCmd("recordings", "verify"); err != nil {
		t.Errorf("plateau recordings verify: %v\n%s", err, out)
	}
}

// SIP scanners from sipvicious: svmap cannot fingerprint the server, svwar
// cannot tell real extensions from missing ones, svcrack is banned after
// max_failures.
func TestTortureSipvicious(t *testing.T) {
	svmap := need(t, "svmap")
	svwar := need(t, "svwar")
	svcrack := need(t, "svcrack")
	users := []user{{"101", "Str0ng-101"}, {"105", "Str0ng-105"}, {"110", "Str0ng-110"}, {"119", "Str0ng-119"}}
	p := startPlateau(t, serverOpts{users: users, maxFailures: 5})
	run := func(name string, limit time.Duration, bin string, args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Dir = t.TempDir()
		cmd.Env = append(os.Environ(), "HOME="+cmd.Dir) // svwar saves sessions under ~/.sipvicious
		cmd.WaitDelay = 3 * time.Second
		out, err := cmd.CombinedOutput()
		t.Logf("%s (%v):\n%s", name, err, tail(string(out), 3000))
		return string(out)
	}
	port := strconv.Itoa(p.sipPort)
	// svmap finds a SIP server (answering is its job) but learns nothing to
	// fingerprint it with: Plateau sends no User-Agent or Server header.
	for _, method := range []string{"OPTIONS", "INVITE"} {
		out := run("svmap "+method, 60*time.Second, svmap, "-p"+port, "-m", method, "-b", "127.0.0.1",
			"-P", strconv.Itoa(freePort(t)), "-t", "0.05", "127.0.0.1")
		if !strings.Contains(out, "127.0.0.1:"+port) {
			t.Errorf("svmap -m %s did not list the server:\n%s", method, out)
		}
		if !regexp.MustCompile(`127\.0\.0\.1:` + port + ` +\| unknown +\|`).MatchString(out) {
			t.Errorf("svmap -m %s fingerprinted the server (want User Agent unknown):\n%s", method, out)
		}
	}
	for _, method := range []string{"REGISTER", "INVITE", "OPTIONS"} {
		out := run("svwar "+method, 90*time.Second, svwar, "-e100-130", "-m", method, "-p", port, "-b", "127.0.0.1", "-t", "0.05", "--maximumtime", "10", "127.0.0.1")
		// svwar prints a table of the extensions it found; a real user
		// must not stand out: none found, or all 31 alike.
		found := map[string]string{}
		for _, line := range strings.Split(out, "\n") {
			f := strings.Split(line, "|")
			if len(f) >= 3 {
				ext := strings.TrimSpace(f[1])
				if _, err := strconv.Atoi(ext); err == nil {
					found[ext] = strings.TrimSpace(f[2])
				}
			}
		}
		// svwar's own sanity probe (a random extension) may be listed;
		// what must not happen is a real user standing out.
		real := 0
		for _, u := range users {
			if _, ok := found[u.ext]; ok {
				real++
			}
		}
		if real > 0 && len(found) < 31 {
			t.Errorf("svwar -m %s singled out real extensions: %v", method, found)
		}
		states := map[string]bool{}
		for _, s := range found {
			states[s] = true
		}
		if len(states) > 1 {
			t.Errorf("svwar -m %s sees different states: %v", method, found)
		}
	}
	alive(t, p, "svwar")

	// svcrack ignores -b (sipvicious 0.3.x does not pass bindingip to
	// its scanner), so it guesses from 127.0.0.1 and gets that address
	// banned: this runs last, and the checks after it use 127.0.0.6.
	bans0 := p.metricOf("plateau_sip_bans_total")
	dict := filepath.Join(t.TempDir(), "words.txt")
	var words []string
	for i := range 40 {
		words = append(words, fmt.Sprintf("guess%02d", i))
	}
	words = append(words, "Str0ng-101") // the right one, after the ban
	os.WriteFile(dict, []byte(strings.Join(words, "\n")+"\n"), 0o600)
	out := run("svcrack", 90*time.Second, svcrack, "-u", "101", "-d", dict, "-p", port, "-t", "0.05", "--maximumtime", "8", "127.0.0.1")
	if strings.Contains(out, "Str0ng-101") {
		t.Errorf("svcrack found the password after the ban should have stopped it:\n%s", out)
	}
	if v := p.metricOf("plateau_sip_bans_total") - bans0; v < 1 {
		t.Errorf("plateau_sip_bans_total grew by %v, want >= 1", v)
	}
	if v := p.metricOf("plateau_sip_auth_failures_total"); v > 10 {
		t.Errorf("plateau_sip_auth_failures_total = %v: guesses after the ban (max_failures 5) were still checked", v)
	}
	auditHas(t, p, "sip.ban", "banned", "127.0.0.1", "AUTH_FAILURES")
	srv, _ := net.ResolveUDPAddr("udp", p.sipAddr())
	from := func(ip string) *sipClient {
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return &sipClient{t: t, conn: conn, server: srv, ext: "101", pass: "Str0ng-101", callID: randHex(8) + "@e2e"}
	}
	// The scanner's address gets no answer at all, even with the right
	// password; another address is served.
	banned := from("127.0.0.1")
	if r := banned.do(banned.build("OPTIONS"), 2*time.Second); r != nil {
		t.Errorf("banned scanner address, OPTIONS: %v, want no answer", r)
	}
	other := from("127.0.0.6")
	if r := other.do(other.build("OPTIONS"), 3*time.Second); r == nil || r.status != 200 {
		t.Errorf("another address after the ban, OPTIONS: %v, want 200", r)
	}
	select {
	case <-p.done:
		t.Fatalf("plateau exited during the scans: %v", p.exitErr)
	default:
	}
}

// viaRE matches the first Via header field, folded lines included.
var viaRE = regexp.MustCompile(`(?im)^(via|v)[ \t]*:.*(\r?\n[ \t]+.*)*`)

// aimAt rewrites a torture message's first Via to local with rport, so
// the answer comes back to the test (RFC 4475's hosts are example.com).
func aimAt(msg []byte, local string) []byte {
	done := false
	return viaRE.ReplaceAllFunc(msg, func(v []byte) []byte {
		if done {
			return v
		}
		done = true
		return []byte("Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK" + randHex(6) + ";rport")
	})
}

// RFC 4475's answers, each from the server itself (the messages' Via
// aimed back at the test): a version we do not speak gets 505, an unknown
// Request-URI scheme 416, missing, repeated or inconsistent mandatory
// headers 400 naming the problem — before any handler, one of which
// crashed on a missing Call-ID. Valid messages never get those refusals.
func TestTortureRFC4475Answers(t *testing.T) {
	p := startPlateau(t, serverOpts{users: []user{{opExt, opPass}}})
	want := map[string]string{
		"invalid/badvers.dat":    "SIP/2.0 505 Version Not Supported",
		"invalid/unkscm.dat":     "SIP/2.0 416 Unsupported URI Scheme",
		"invalid/insuf.dat":      "SIP/2.0 400 Missing From Header",
		"invalid/multi01.dat":    "SIP/2.0 400 Multiple From Headers",
		"invalid/mismatch01.dat": "SIP/2.0 400 CSeq Method Does Not Match Request",
		"invalid/mismatch02.dat": "SIP/2.0 400 CSeq Method Does Not Match Request",
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "torture", "*", "*.dat"))
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	srv, _ := net.ResolveUDPAddr("udp", p.sipAddr())
	seen := 0
	for _, f := range files {
		name := filepath.Base(filepath.Dir(f)) + "/" + filepath.Base(f)
		msg, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r := exchangeUDP(t, conn, srv, string(aimAt(msg, conn.LocalAddr().String())), 1200*time.Millisecond)
		got := ""
		if r != nil {
			got = fmt.Sprintf("SIP/2.0 %d %s", r.status, r.reason)
		}
		t.Logf("%-24s -> %s", name, got)
		if w, ok := want[name]; ok {
			seen++
			if got != w {
				t.Errorf("%s: %q, want %q", name, got, w)
			}
		}
		if strings.HasPrefix(name, "valid/") && r != nil && (r.status == 505 || r.status == 416 ||
			strings.HasPrefix(r.reason, "Missing") || strings.HasPrefix(r.reason, "Multiple") || strings.HasPrefix(r.reason, "CSeq")) {
			t.Errorf("%s is valid but was refused: %s", name, got)
		}
		if exited(p) {
			t.Fatalf("plateau exited after %s (%v):\n%s", name, p.exitErr, tail(p.logs.String(), 3000))
		}
	}
	if seen != len(want) {
		t.Errorf("%d of the %d expected torture files found", seen, len(want))
	}
	alive(t, p, "the torture messages aimed back")
}
