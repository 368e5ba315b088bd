package e2e

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// recorderProc is a running `plateau recorder`.
type recorderProc struct {
	t           *testing.T
	cfg         string
	dir         string // its recordings directory
	sipPort     int
	metricsPort int // recorder.metrics_listen on 127.0.0.1
	logs        *lockedBuffer
	cmd         *exec.Cmd
	done        chan struct{}
	exitErr     error
}

// startRecorder runs `plateau recorder` on 127.0.0.1 with its own data
// directory; it is stopped (SIGTERM) at cleanup if the test did not.
func startRecorder(t *testing.T) *recorderProc {
	t.Helper()
	return startRecorderWith(t, nil)
}

// startRecorderWith is startRecorder with the recorder section's keys
// after listen, rtp_timeout and metrics_listen given by extra (e.g. a
// tls: block; its listen then takes the SIP port).
func startRecorderWith(t *testing.T, extra func(sipPort int) string) *recorderProc {
	t.Helper()
	dir := t.TempDir()
	r := &recorderProc{t: t, sipPort: freePort(t), metricsPort: freePort(t), logs: &lockedBuffer{}, done: make(chan struct{}),
		dir: filepath.Join(dir, "data", "recordings")}
	rtp := 30000 + rand.IntN(15000)*2
	keys := ""
	if extra != nil {
		keys = ", " + extra(r.sipPort)
	}
	cfg := fmt.Sprintf(`site: {name: "e2e recorder", timezone: Europe/Paris}
recorder: {listen: "127.0.0.1:%d", rtp_timeout: 20s, metrics_listen: "127.0.0.1:%d"%s}
media: {ip: 127.0.0.1, rtp_ports: "%d-%d"}
data_dir: %q
log: {format: text, level: debug}
recordings: {min_free_mb: 1, notice_prompt: %q}
`, r.sipPort, r.metricsPort, keys, rtp, rtp+19, filepath.Join(dir, "data"), filepath.Join(repoRoot, "configs", "prompts", "notice-fr.wav"))
	r.cfg = filepath.Join(dir, "recorder.yaml")
	if err := os.WriteFile(r.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r.cmd = exec.Command(plateauBin, "recorder", "-c", r.cfg)
	r.cmd.Stdout, r.cmd.Stderr = r.logs, r.logs
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.exitErr = r.cmd.Wait(); close(r.done) }()
	eventually(t, "plateau recorder started", func() (bool, string) {
		select {
		case <-r.done:
			t.Fatalf("plateau recorder exited (%v):\n%s", r.exitErr, r.logs.String())
		default:
		}
		return strings.Contains(r.logs.String(), "plateau recorder started"), tail(r.logs.String(), 500)
	})
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			t.Logf("recorder logs:\n%s", tail(r.logs.String(), 6000))
		}
	})
	return r
}

// stop sends SIGTERM and checks a clean exit within 10 s.
func (r *recorderProc) stop() {
	select {
	case <-r.done:
		return
	default:
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
		if r.exitErr != nil {
			r.t.Errorf("plateau recorder exited with %v:\n%s", r.exitErr, tail(r.logs.String(), 3000))
		}
	case <-time.After(10 * time.Second):
		r.cmd.Process.Kill()
		<-r.done
		r.t.Errorf("plateau recorder did not stop within 10 s")
	}
}

func (r *recorderProc) files() map[string][]string {
	files := map[string][]string{}
	filepath.WalkDir(r.dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasPrefix(d.Name(), ".") {
			files[filepath.Ext(path)] = append(files[filepath.Ext(path)], path)
		}
		return nil
	})
	return files
}

// startRemoteCallServer is startCallServer with recordings.remote set.
func startRemoteCallServer(t *testing.T, rec *recorderProc, carrierPort int) *plateau {
	t.Helper()
	return startRemoteCallServerWith(t, rec, carrierPort, "transport: udp, timeout: 1s")
}

// startRemoteCallServerWith sets recordings.remote's keys after address.
func startRemoteCallServerWith(t *testing.T, rec *recorderProc, carrierPort int, remoteKeys string) *plateau {
	t.Helper()
	need(t, "sipp")
	// extraYAML follows recordings.notice_prompt in the harness's config:
	// its first, indented line belongs to recordings:.
	extra := fmt.Sprintf("  remote: {address: \"127.0.0.1:%d\", %s}\n", rec.sipPort, remoteKeys) +
		fmt.Sprintf("trunks:\n  - {name: carrier1, address: \"127.0.0.1:%d\", transport: udp, caller_id: %q, allowed_sources: [%q], options_interval: 0s}\n",
			carrierPort, callerID, trunkSources)
	p := startPlateau(t, serverOpts{
		users:      []user{{opExt, opPass}},
		policyYAML: "  windows: [{days: mon-sun, from: \"00:00\", to: \"24:00\"}]\n",
		extraYAML:  extra,
	})
	approve(t, p, approved)
	return p
}

// refusedCall places one call that Plateau must refuse with 403
// RECORDER_UNAVAILABLE (the recorder would not take its recording).
func refusedCall(t *testing.T, p *plateau) {
	t.Helper()
	ua := newRawUA(t, p, "127.0.0.1")
	tx := ua.newInvite(opExt, approved, 1, "reclink-refused-"+randHex(4), randHex(4))
	res := ua.invite(tx)
	if res != nil && res.status == 407 {
		tx.cseq, tx.branch = 2, "z9hG4bK"+randHex(6)
		res = ua.invite(tx, authorization(res, opExt, opPass, tx.uri))
	}
	if res == nil || res.status != 403 || !strings.Contains(res.get("Reason"), "RECORDER_UNAVAILABLE") {
		t.Fatalf("call: %+v, want 403 with Reason RECORDER_UNAVAILABLE", res)
	}
}

// remoteRecordedCall places a 6 s SIPp call through p, checks that its
// recording is whole (both channels, ~6 s, a sidecar naming the
// participants, verified) and on the recorder only, and returns its WAV.
func remoteRecordedCall(t *testing.T, p *plateau, rec *recorderProc, carrierPort int) (wav string) {
	t.Helper()
	carrier := startCarrier(t, carrierPort, "uas_answer.xml")
	op := startOperator(t, p, "uac_talk.xml", approved, "-d", "6000")
	op.mustSucceed(45 * time.Second)
	carrier.mustSucceed(15 * time.Second)
	waitMetric(t, p, mActive, 0)
	var files map[string][]string
	eventually(t, "recording on the recorder", func() (bool, string) {
		files = rec.files()
		return len(files[".wav"]) == 1 && len(files[".json"]) == 1, fmt.Sprint(files)
	})
	if local := recordingFiles(t, p); len(local[".wav"]) != 0 {
		t.Errorf("the gateway recorded locally too: %v", local)
	}
	side, _ := os.ReadFile(files[".json"][0])
	for _, want := range []string{approved, `"operator": "` + opExt + `"`, `"sha256": "`} {
		if !strings.Contains(string(side), want) {
			t.Errorf("sidecar lacks %s:\n%s", want, side)
		}
	}
	l, r, secs := channelRMS(t, files[".wav"][0])
	t.Logf("recording %s: %.1f s, RMS left %.0f, right %.0f", filepath.Base(files[".wav"][0]), secs, l, r)
	if secs < 5 || secs > 12 {
		t.Errorf("recording lasts %.1f s, want the call's ~6-8 s", secs)
	}
	// Both sides play the same pcap; the notice prompt is on the left too.
	if l < 100 || r < 100 {
		t.Errorf("a channel is silent: RMS left %.0f, right %.0f", l, r)
	}
	if out, err := exec.Command(plateauBin, "recordings", "verify", "-c", rec.cfg).CombinedOutput(); err != nil {
		t.Errorf("plateau recordings verify on the recorder: %v\n%s", err, out)
	}
	return files[".wav"][0]
}

// channelRMS reads a stereo 16-bit WAV's channels' RMS levels.
func channelRMS(t *testing.T, path string) (left, right float64, seconds float64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 44 || string(b[:4]) != "RIFF" || binary.LittleEndian.Uint16(b[22:]) != 2 {
		t.Fatalf("%s is not a stereo WAV", path)
	}
	var l, r float64
	n := 0
	for i := 44; i+4 <= len(b); i += 4 {
		lv, rv := float64(int16(binary.LittleEndian.Uint16(b[i:]))), float64(int16(binary.LittleEndian.Uint16(b[i+2:])))
		l += lv * lv
		r += rv * rv
		n++
	}
	if n == 0 {
		return 0, 0, 0
	}
	return math.Sqrt(l / float64(n)), math.Sqrt(r / float64(n)), float64(n) / 8000
}

// TestSIPRECRemoteRecorder: plateau serve records a SIPp call on a
// separate `plateau recorder` over SIPREC; the recording (both channels,
// sidecar with the participants) is on the recorder's disk, not the
// gateway's. With the recorder stopped, calls are refused with 403
// RECORDER_UNAVAILABLE.
func TestSIPRECRemoteRecorder(t *testing.T) {
	rec := startRecorder(t)
	carrierPort := freePort(t)
	p := startRemoteCallServer(t, rec, carrierPort)

	// The capture's control: on this plain link the recording streams
	// carry the call's audio as is (TestRecorderLinkTLS finds none).
	capture := startUDPCapture(t)
	remoteRecordedCall(t, p, rec, carrierPort)
	capture.stop()
	if capture == nil {
		// startUDPCapture logged why.
	} else if link, leaks := linkLeaks(capture.packets(), rec.rtpPorts()); link < 200 || leaks < link/2 {
		t.Errorf("plain recorder link: %d packets captured, %d with the call's audio; want most of ~600", link, leaks)
	}

	// The recorder goes away: the next call is refused before dialling.
	rec.stop()
	time.Sleep(1100 * time.Millisecond) // past the cached readiness
	refusedCall(t, p)
	if dec := auditLines(t, p, "policy.decision"); !strings.Contains(dec, "RECORDER_UNAVAILABLE") {
		t.Errorf("audit has no RECORDER_UNAVAILABLE refusal:\n%s", dec)
	}
}
