package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"plateau/config"
	"plateau/sim"
)

// Debian's Linphone (package linphone-cli, linphonec 5.1.65) as an
// operator's softphone, with its own defaults: it registers with
// Plateau's digest challenges, calls out through Plateau and is rung by
// Plateau for an inbound call, over UDP and TCP. linphonec runs headless:
// "soundcard use files" replaces the sound card by WAV files (a tone as
// microphone, a file for what the operator hears), commands go to its
// stdin, its SIP trace to its log file (-d 6 -l).

// linphoneOpts shape one linphonec.
type linphoneOpts struct {
	transport  string // udp (default), tcp or tls: the account's and the listener's
	server     string // Plateau as the phone names it (host:port); default p.sipAddr()
	rootCA     string // tls: the certificate the phone trusts for Plateau's
	play       string // WAV sent as the microphone (8 kHz mono 16-bit)
	record     string // WAV written with what the phone hears during a call
	autoAnswer bool
}

// linphone is a running linphonec.
type linphone struct {
	t     *testing.T
	stdin io.WriteCloser
	out   *lockedBuffer
	log   string // linphonec's log file: every SIP message it sends and receives
	done  chan struct{}
	// server is Plateau's address as linphonec names it in its log.
	server string
}

// startLinphone runs linphonec as ext (password pass) registered to p,
// bounded in time; cleanup quits it (it unregisters) and kills it if it
// does not exit.
func startLinphone(t *testing.T, p *plateau, ext, pass string, o linphoneOpts) *linphone {
	t.Helper()
	bin := need(t, "linphonec")
	linphoneNeedsRoute(t)
	if o.transport == "" {
		o.transport = "udp"
	}
	if o.server == "" {
		o.server = p.sipAddr()
	}
	// -1: a random port chosen by linphonec (no race with other tests);
	// 0: transport off. One transport per phone.
	udpPort, tcpPort, tlsPort := -1, 0, 0
	switch o.transport {
	case "tcp":
		udpPort, tcpPort = 0, -1
	case "tls":
		udpPort, tlsPort = 0, -1
	}
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	// linphonec 5.1 does nothing at all (no REGISTER, no call) when it
	// cannot open its database: HOME must hold ~/.local/share/linphone.
	if err := os.MkdirAll(filepath.Join(home, ".local", "share", "linphone"), 0o700); err != nil {
		t.Fatal(err)
	}
	// The account as a user would fill it in: identity sip:EXT@host:port,
	// Plateau as registrar and outbound proxy (reg_route), no realm (any
	// realm Plateau names is answered with this password).
	server := fmt.Sprintf("<sip:%s;transport=%s>", o.server, o.transport)
	rootCA := "" // linphonec's default: the system's roots
	if o.rootCA != "" {
		rootCA = "root_ca=" + o.rootCA
	}
	rc := fmt.Sprintf(`[sip]
sip_port=%d
sip_tcp_port=%d
sip_tls_port=%d
default_proxy=0
%s
[rtp]
audio_rtp_port=-1
video_rtp_port=-1
text_rtp_port=-1
[proxy_0]
reg_proxy=%s
reg_route=%s
reg_identity=sip:%s@%s
reg_expires=600
reg_sendregister=1
[auth_info_0]
username=%s
passwd=%s
`, udpPort, tcpPort, tlsPort, rootCA, server, server, ext, o.server, ext, pass)
	rcFile := filepath.Join(dir, "linphonerc")
	if err := os.WriteFile(rcFile, []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	l := &linphone{t: t, out: &lockedBuffer{}, log: filepath.Join(dir, "linphonec.log"), done: make(chan struct{}), server: o.server}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	cmd := exec.CommandContext(ctx, bin, "-c", rcFile, "-d", "6", "-l", l.log)
	cmd.Env = append(os.Environ(), "HOME="+home)
	cmd.Stdout, cmd.Stderr = l.out, l.out
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	l.stdin = stdin
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("linphonec: %v", err)
	}
	go func() { cmd.Wait(); cancel(); close(l.done) }()
	t.Cleanup(func() {
		l.send("quit") // unregisters, then exits
		select {
		case <-l.done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-l.done
		}
		if t.Failed() || os.Getenv("E2E_SHOW") != "" {
			t.Logf("linphonec output:\n%s\nlinphonec SIP trace:\n%s", tail(l.out.String(), 4000), tail(l.sipTrace(), 12000))
		}
	})
	l.send("soundcard use files") // no sound card: WAV files, or silence
	if o.play != "" {
		l.send("play " + o.play)
	}
	if o.record != "" {
		l.send("record " + o.record)
	}
	if o.autoAnswer {
		l.send("autoanswer enable")
	}
	return l
}

// linphoneNeedsRoute skips the test, saying why, on a host whose only
// address is loopback: linphonec 5.1 then declares its network down a few
// seconds after start and unregisters (it looks for the address it would
// use toward the internet). No packet is sent here: connecting a UDP
// socket only asks the kernel for a route.
func linphoneNeedsRoute(t *testing.T) {
	t.Helper()
	c, err := net.Dial("udp", "198.51.100.1:9")
	if err == nil {
		defer c.Close()
		if !c.LocalAddr().(*net.UDPAddr).IP.IsLoopback() {
			return
		}
	}
	// A limit of linphonec and of the host, not of Plateau, and not one
	// make deps can install: skipped loudly wherever it happens (a CI
	// host with no network at all included).
	t.Skipf("SKIPPED: this host has no route off loopback (%v): linphonec 5.1 then declares its network down and unregisters; give the host a non-loopback address and a default route to run it", err)
}

// send writes one command line to linphonec's stdin.
func (l *linphone) send(cmd string) {
	select {
	case <-l.done:
		return
	default:
	}
	if _, err := io.WriteString(l.stdin, cmd+"\n"); err != nil {
		l.t.Logf("linphonec %q: %v", cmd, err)
	}
}

// waitOutput waits until linphonec's console output matches re.
func (l *linphone) waitOutput(what string, re *regexp.Regexp, limit time.Duration) {
	l.t.Helper()
	deadline := time.Now().Add(limit)
	for !re.MatchString(l.out.String()) {
		select {
		case <-l.done:
			l.t.Fatalf("%s: linphonec exited", what)
		default:
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sipTrace is the SIP messages of linphonec's log, with the log line
// that says where each went or came from.
func (l *linphone) sipTrace() string {
	b, err := os.ReadFile(l.log)
	if err != nil {
		return err.Error()
	}
	var out strings.Builder
	inMsg := false
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.Contains(line, "message sent to [") || strings.Contains(line, "new bytes from ["):
			inMsg = true
			out.WriteString(line + "\n")
		case inMsg && strings.HasPrefix(line, "20") && strings.Contains(line, "-message-"):
			inMsg = false
		case inMsg:
			out.WriteString(line + "\n")
		}
	}
	return out.String()
}

// sent reports whether linphonec sent a request starting with start over
// proto (UDP, TCP, TLS) to Plateau's address.
func (l *linphone) sent(proto, start string) bool {
	lines := strings.Split(l.sipTrace(), "\n")
	to := fmt.Sprintf("message sent to [%s://%s]", proto, l.server)
	for i := 1; i < len(lines); i++ {
		if strings.HasPrefix(lines[i], start) && strings.Contains(lines[i-1], to) {
			return true
		}
	}
	return false
}

// authorizations returns the algorithm= of each Authorization header
// linphonec sent (REGISTER), in order.
func (l *linphone) authorizations() []string {
	var algs []string
	re := regexp.MustCompile(`(?i)algorithm=("?)([A-Za-z0-9-]+)`)
	for _, line := range strings.Split(l.sipTrace(), "\n") {
		if strings.HasPrefix(line, "Authorization:") {
			if m := re.FindStringSubmatch(line); m != nil {
				algs = append(algs, strings.ToUpper(m[2]))
			} else {
				algs = append(algs, "MD5") // RFC 2617: no algorithm means MD5
			}
		}
	}
	return algs
}

// waitRegistered waits for Plateau's binding of ext at 127.0.0.1 over transport.
func waitRegistered(t *testing.T, p *plateau, ext, transport string) string {
	t.Helper()
	var reg string
	deadline := time.Now().Add(30 * time.Second)
	for {
		reg = p.registered()[ext]
		if strings.Contains(reg, "@127.0.0.1:") && strings.Contains(reg, "("+transport) {
			return reg
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not registered over %s within 30 s: %q", ext, transport, reg)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Which digest challenge linphonec answers, for the shipped setting and
// the stronger ones configs/plateau.yaml suggests: it registers with each
// (it reads every challenge of a 401, unlike baresip 1.0, which refuses a
// 401 that offers SHA-256) and answers the first one it knows, in the
// order Plateau offers them: [MD5, SHA-256] gets MD5 from it, so list
// SHA-256 first to have it used.
func TestLinphoneDigestAlgorithms(t *testing.T) {
	need(t, "linphonec")
	shipped := shippedDigestAlgorithms(t)
	for _, tc := range []struct {
		name, algorithms, want string
	}{
		// The shipped list's first algorithm (MD5 and SHA-256 are the two
		// Plateau offers; linphonec knows both).
		{"shipped " + shipped, shipped, strings.Trim(strings.Split(shipped, ",")[0], "[] ")},
		{"SHA-256 then MD5", "[SHA-256, MD5]", "SHA-256"},
		{"MD5 then SHA-256", "[MD5, SHA-256]", "MD5"},
		{"SHA-256 only", "[SHA-256]", "SHA-256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			p := startPlateau(t, serverOpts{users: []user{{opExt, opPass}}, algorithms: tc.algorithms, uriCheck: "request_uri"})
			l := startLinphone(t, p, opExt, opPass, linphoneOpts{})
			reg := waitRegistered(t, p, opExt, "udp")
			algs := l.authorizations()
			t.Logf("digest_algorithms %s: registered %s, linphonec answered %v", tc.algorithms, reg, algs)
			if len(algs) == 0 {
				t.Fatalf("linphonec sent no Authorization")
			}
			for _, a := range algs {
				if a != want {
					t.Errorf("linphonec answered a %s challenge, want %s", a, want)
				}
			}
			if n := p.metricOf("plateau_sip_auth_failures_total"); n != 0 {
				t.Errorf("plateau_sip_auth_failures_total = %v, want 0", n)
			}
		})
	}
}

// writeTone writes seconds of a sine at freq Hz as an 8 kHz mono 16-bit
// WAV (what linphonec plays as its microphone, pstn-sim as its party).
func writeTone(t *testing.T, path string, freq float64, seconds int) {
	t.Helper()
	n := 8000 * seconds
	b := make([]byte, 44+2*n)
	copy(b, "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+2*n))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1) // PCM
	binary.LittleEndian.PutUint16(b[22:], 1) // mono
	binary.LittleEndian.PutUint32(b[24:], 8000)
	binary.LittleEndian.PutUint32(b[28:], 16000)
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(2*n))
	for i := range n {
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(int16(8000*math.Sin(2*math.Pi*freq*float64(i)/8000))))
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// toneLevel is the amplitude of the freq Hz component (Goertzel) of
// channel ch of 16-bit PCM at rate Hz with channels interleaved channels,
// over frames [from, to): about 8000 for the tones writeTone writes.
func toneLevel(pcm []byte, rate, channels, ch, from, to int, freq float64) float64 {
	coeff := 2 * math.Cos(2*math.Pi*freq/float64(rate))
	var s1, s2 float64
	n := 0
	for f := from; f < to && (f*channels+ch)*2+1 < len(pcm); f++ {
		x := float64(int16(binary.LittleEndian.Uint16(pcm[(f*channels+ch)*2:])))
		s1, s2 = x+coeff*s1-s2, s1
		n++
	}
	if n == 0 {
		return 0
	}
	power := s1*s1 + s2*s2 - coeff*s1*s2
	return 2 * math.Sqrt(math.Max(power, 0)) / float64(n)
}

// toneBlocks looks at channel ch over frames [from, to) in 100 ms blocks:
// share is the fraction of blocks where the want tone is loud (over 2000)
// and the other at most a tenth of it; worst is the other tone's loudest
// block. Blocks, not the whole span, because a packet lost or late on a
// loaded host shifts the tone's phase (the recording keeps wall-clock
// time), which a single long Goertzel sum would count as a weaker tone.
func toneBlocks(pcm []byte, rate, channels, ch, from, to int, want, other float64) (share, worst float64) {
	block := rate / 10
	n, good := 0, 0
	for f := from; f+block <= to; f += block {
		w, o := toneLevel(pcm, rate, channels, ch, f, f+block, want), toneLevel(pcm, rate, channels, ch, f, f+block, other)
		n++
		if w > 2000 && o <= w/10 {
			good++
		}
		worst = math.Max(worst, o)
	}
	if n == 0 {
		return 0, 0
	}
	return float64(good) / float64(n), worst
}

// Tones told apart in the recordings: the operator's microphone
// (linphonec) and the outside party (pstn-sim playing).
const (
	operatorHz = 440.0
	outsideHz  = 1000.0
)

// linphoneCallServer is Plateau with the shipped digest settings, a trunk
// to pstn-sim playing a 1 kHz tone (calls to approved hang up after
// hangup), operator 101 and approved on the allowlist. Over tls, Plateau
// also listens for SIP over TLS with a certificate for localhost, which
// the phone (options returned) verifies: linphonec's TLS library matches
// the name it dials against the certificate's DNS names only, never an
// IP address, so the phone names Plateau localhost.
func linphoneCallServer(t *testing.T, hangup time.Duration, transport string) (*plateau, *sim.PSTN, linphoneOpts) {
	t.Helper()
	o := linphoneOpts{transport: transport}
	transports, sipYAML := "", ""
	if transport == "tls" {
		var port int
		var cert pemPair
		sipYAML, port, cert = sipTLS(t, "localhost", "127.0.0.1")
		transports = "[udp, tcp, tls]"
		o.server, o.rootCA = fmt.Sprintf("localhost:%d", port), cert.cert
	}
	tone := filepath.Join(t.TempDir(), "outside.wav")
	writeTone(t, tone, outsideHz, 30)
	carrier := playingCarrier(t, tone, hangup)
	p := startPlateau(t, serverOpts{
		users:      []user{{opExt, opPass}},
		algorithms: shippedDigestAlgorithms(t),
		uriCheck:   "request_uri",
		transports: transports,
		sipYAML:    sipYAML,
		policyYAML: "  windows: [{days: mon-sun, from: \"00:00\", to: \"24:00\"}]\n",
		extraYAML: fmt.Sprintf("trunks:\n  - {name: carrier, address: %q, transport: udp, caller_id: %q, allowed_sources: [%q], options_interval: 0s}\n",
			carrier.Addr().String(), callerID, trunkSources),
	})
	approve(t, p, approved)
	return p, carrier, o
}

// playingCarrier is pstn-sim on 127.0.0.2 (the trunk's source) playing
// tone to the calls it answers; calls to approved hang up after hangup
// (never when 0).
func playingCarrier(t *testing.T, tone string, hangup time.Duration) *sim.PSTN {
	t.Helper()
	return startSim(t, func(cfg *sim.Config) {
		cfg.Answer = sim.AnswerConfig{Mode: "play", WAV: tone}
		cfg.Rules = []sim.Rule{{Prefix: approved, Action: sim.ActionRing, HangupAfter: config.Duration(hangup)}}
	})
}

// checkLinphoneRecording checks the call's one recording as security
// would (recordings verify) and that its channels are not mixed up: after
// the notice, the operator's tone on the left, the outside party's on the
// right. It also checks that what linphonec heard (heard) is the outside
// party: media went both ways through Plateau. last, when not 0, judges
// only the recording's last seconds (what followed a re-INVITE).
func checkLinphoneRecording(t *testing.T, p *plateau, heard string, last time.Duration) {
	t.Helper()
	eventually(t, "the recording closed", func() (bool, string) {
		f := recordingFiles(t, p)
		return len(f[".wav"]) == 1 && len(f[".json"]) == 1, fmt.Sprint(f)
	})
	if out, err := p.plateauCmd("recordings", "verify"); err != nil || !strings.Contains(out, "1 recordings verified, 0 problems") {
		t.Errorf("recordings verify: %v\n%s", err, out)
	}
	wav, err := os.ReadFile(recordingFiles(t, p)[".wav"][0])
	if err != nil || len(wav) < 44 || binary.LittleEndian.Uint16(wav[22:]) != 2 {
		t.Fatalf("the recording is not a stereo WAV: %v", err)
	}
	pcm := wav[44:]
	frames := len(pcm) / 4
	// From 6 s (the notice lasts 3.9 s, the bridge tone 150 ms after it,
	// both later on a loaded host) to the last half second (hang-up).
	from, to := 6*8000, frames-4000
	if last > 0 {
		from = frames - int(last.Seconds()*8000)
	}
	if to-from < 8000 {
		t.Fatalf("the recording lasts %v: too short to hear both parties", time.Duration(frames)*time.Second/8000)
	}
	// Each party on its own channel most of the time (a loaded host
	// loses a few packets: silence), and never on the other's.
	lShare, lWorst := toneBlocks(pcm, 8000, 2, 0, from, to, operatorHz, outsideHz)
	rShare, rWorst := toneBlocks(pcm, 8000, 2, 1, from, to, outsideHz, operatorHz)
	t.Logf("recording %v: left: operator's tone in %.0f%% of 100 ms blocks, the outside's at most %.0f; right: outside's tone in %.0f%%, the operator's at most %.0f",
		time.Duration(frames)*time.Second/8000, 100*lShare, lWorst, 100*rShare, rWorst)
	if lShare < 0.6 || lWorst > 1000 {
		t.Errorf("left channel (operator): their %0.f Hz tone in %.0f%% of blocks, the outside's %0.f Hz up to %.0f: want the operator alone", operatorHz, 100*lShare, outsideHz, lWorst)
	}
	if rShare < 0.6 || rWorst > 1000 {
		t.Errorf("right channel (outside): their %0.f Hz tone in %.0f%% of blocks, the operator's %0.f Hz up to %.0f: want the outside party alone", outsideHz, 100*rShare, operatorHz, rWorst)
	}
	// What linphonec recorded (mono): the outside party.
	h, err := os.ReadFile(heard)
	if err != nil || len(h) < 44 {
		t.Fatalf("linphonec's record file: %v", err)
	}
	channels, rate := int(binary.LittleEndian.Uint16(h[22:])), int(binary.LittleEndian.Uint32(h[24:]))
	if channels < 1 || rate < 8000 {
		t.Fatalf("linphonec's record file: %d channels at %d Hz", channels, rate)
	}
	hpcm := h[44:]
	hframes := len(hpcm) / (2 * channels)
	if share, _ := toneBlocks(hpcm, rate, channels, 0, hframes/2, hframes, outsideHz, operatorHz); share < 0.5 {
		t.Errorf("linphonec heard the outside party's tone in %.0f%% of the second half of the call: want it most of the time", 100*share)
	}
}

// An operator dials an approved number on linphonec: the call goes
// through Plateau to the carrier (pstn-sim), is answered, both parties
// hear each other, the carrier hangs up, and the recording verifies with
// each party on its channel. Over UDP, TCP and TLS (Plateau's certificate
// verified by the phone).
func TestLinphoneCallOut(t *testing.T) {
	need(t, "linphonec")
	for _, transport := range []string{"udp", "tcp", "tls"} {
		t.Run(transport, func(t *testing.T) {
			p, carrier, o := linphoneCallServer(t, 12*time.Second, transport)
			dir := t.TempDir()
			o.play, o.record = filepath.Join(dir, "mic.wav"), filepath.Join(dir, "heard.wav")
			writeTone(t, o.play, operatorHz, 30)
			l := startLinphone(t, p, opExt, opPass, o)
			waitRegistered(t, p, opExt, transport)
			// The number as the operator types it: linphonec makes it
			// sip:+33240123456@<Plateau> and sends it through reg_route.
			l.send("call " + approved)
			l.waitOutput("linphonec connected", regexp.MustCompile(`Call \d+ with .* connected`), 30*time.Second)
			waitMetric(t, p, mAnswer, 1)
			l.waitOutput("the carrier's hang-up reached linphonec", regexp.MustCompile(`Call \d+ with .* ended`), 30*time.Second)
			waitMetric(t, p, mEnded("outside_hangup"), 1)
			waitMetric(t, p, mActive, 0)
			if !l.sent(strings.ToUpper(transport), "INVITE sip:"+approved+"@") {
				t.Errorf("linphonec's INVITE to %s did not go to Plateau over %s", approved, transport)
			}
			calls := carrier.Calls()
			if len(calls) != 1 || !calls[0].Answered || calls[0].RTPRecv < 100 {
				t.Fatalf("carrier calls %+v: want one answered, with the operator's audio", calls)
			}
			checkLinphoneRecording(t, p, o.record, 0)
			auditVerify(t, p)
		})
	}
}

// The carrier calls in from an approved number: Plateau rings linphonec,
// which answers by itself (autoanswer); both parties hear each other, then
// the operator hangs up (linphonec's BYE, sent to Plateau's Contact), and
// the recording verifies. Over UDP, TCP and TLS (Plateau rings the phone
// on the connection it registered over).
func TestLinphoneCallIn(t *testing.T) {
	need(t, "linphonec")
	for _, transport := range []string{"udp", "tcp", "tls"} {
		t.Run(transport, func(t *testing.T) {
			p, carrier, o := linphoneCallServer(t, 0, transport)
			dir := t.TempDir()
			o.play, o.record, o.autoAnswer = filepath.Join(dir, "mic.wav"), filepath.Join(dir, "heard.wav"), true
			writeTone(t, o.play, operatorHz, 30)
			l := startLinphone(t, p, opExt, opPass, o)
			reg := waitRegistered(t, p, opExt, transport)
			if !strings.Contains(reg, "transport="+transport) {
				t.Errorf("linphonec's binding %q does not say transport=%s", reg, transport)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			type result struct {
				st  sim.CallStats
				err error
			}
			done := make(chan result, 1)
			go func() {
				// The carrier would hang up after a minute: the operator does first.
				st, err := carrier.Call(ctx, p.sipAddr(), "0240000000", approved, time.Minute)
				done <- result{st, err}
			}()
			l.waitOutput("linphonec rung", regexp.MustCompile(`Receiving new incoming call from .*`+regexp.QuoteMeta(approved)), 30*time.Second)
			l.waitOutput("linphonec answered", regexp.MustCompile(`Call \d+ with .* connected`), 30*time.Second)
			waitMetric(t, p, mAnswer, 1)
			// Twelve seconds of call: the notice, then both parties talking.
			time.Sleep(12 * time.Second)
			l.send("terminate")
			var r result
			select {
			case r = <-done:
			case <-time.After(60 * time.Second):
				t.Fatalf("the carrier's call did not end after the operator hung up")
			}
			if r.err != nil || !r.st.Answered || r.st.HangupBy != "remote" {
				t.Fatalf("the carrier's call: %+v, %v: want answered and hung up by the far end", r.st, r.err)
			}
			if r.st.RTPRecv < 100 {
				t.Errorf("the carrier received %d RTP packets: want the operator's audio", r.st.RTPRecv)
			}
			l.waitOutput("linphonec hung up", regexp.MustCompile(`Call \d+ with .* ended`), 30*time.Second)
			waitMetric(t, p, mEnded("operator_hangup"), 1)
			waitMetric(t, p, mActive, 0)
			if !l.sent(strings.ToUpper(transport), "BYE sip:plateau@") {
				t.Errorf("linphonec's BYE did not go to Plateau's Contact over %s", transport)
			}
			checkLinphoneRecording(t, p, o.record, 0)
			auditVerify(t, p)
		})
	}
}

// linphonec puts the call on hold ("pause": a re-INVITE saying sendonly)
// and takes it back ("resume": sendrecv): Plateau applies both to the
// operator's leg, the call survives, and after the resume both parties
// are heard again, each on its channel of the recording.
func TestLinphoneHoldResume(t *testing.T) {
	need(t, "linphonec")
	p, _, o := linphoneCallServer(t, 0, "udp")
	dir := t.TempDir()
	o.play, o.record = filepath.Join(dir, "mic.wav"), filepath.Join(dir, "heard.wav")
	writeTone(t, o.play, operatorHz, 40)
	l := startLinphone(t, p, opExt, opPass, o)
	waitRegistered(t, p, opExt, "udp")
	l.send("call " + approved)
	l.waitOutput("linphonec connected", regexp.MustCompile(`Call \d+ with .* connected`), 30*time.Second)
	waitMetric(t, p, mAnswer, 1)
	time.Sleep(6 * time.Second) // past the notice
	l.send("pause")
	l.waitOutput("linphonec paused the call", regexp.MustCompile(`Call \d+ with .* is now paused`), 30*time.Second)
	eventually(t, "Plateau applied the hold", func() (bool, string) {
		return regexp.MustCompile(`media updated".*leg=operator.*direction=sendonly`).MatchString(p.logs.String()), "no sendonly update in its log"
	})
	time.Sleep(2 * time.Second)
	l.send("resume")
	l.waitOutput("linphonec resumed the call", regexp.MustCompile(`(?s)Media streams established.*Media streams established`), 30*time.Second)
	eventually(t, "Plateau applied the resume", func() (bool, string) {
		return regexp.MustCompile(`(?s)direction=sendonly.*media updated"[^\n]*leg=operator[^\n]*direction=sendrecv`).MatchString(p.logs.String()), "no sendrecv update after the hold in its log"
	})
	time.Sleep(6 * time.Second)
	l.send("terminate")
	l.waitOutput("linphonec hung up", regexp.MustCompile(`Call \d+ with .* ended`), 30*time.Second)
	waitMetric(t, p, mEnded("operator_hangup"), 1)
	waitMetric(t, p, mActive, 0)
	if n := p.metricOf(mAnswer); n != 1 {
		t.Errorf("%s = %v: the hold must not make another call", mAnswer, n)
	}
	// After the resume: both parties, each on its channel.
	checkLinphoneRecording(t, p, o.record, 4*time.Second)
	auditVerify(t, p)
}
