package e2e

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

// A recorded call, checked as security would: the WAV lasts as long as the
// call, the operator's voice is on the left only, sidecar and audit agree,
// recordings verify passes, and fails naming the file once a byte changes.
func TestRecordingContent(t *testing.T) {
	// The carrier stays silent; the operator talks (SIPp's PCMA pcap).
	p, files := recordedCall(t, "uac_talk.xml", "uas_answer_silent.xml")
	wavPath := files[".wav"][0]
	wav, err := os.ReadFile(wavPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(wav) < 44 || string(wav[:4]) != "RIFF" || binary.LittleEndian.Uint16(wav[22:]) != 2 || binary.LittleEndian.Uint32(wav[24:]) != 8000 {
		t.Fatalf("%s is not an 8 kHz stereo WAV", wavPath)
	}
	pcm := wav[44:]
	frames := len(pcm) / 4
	wavDur := time.Duration(frames) * time.Second / 8000

	var side struct {
		DurationMS int64  `json:"duration_ms"`
		SHA256     string `json:"sha256"`
		Number     string `json:"number"`
		Operator   string `json:"operator"`
	}
	b, _ := os.ReadFile(files[".json"][0])
	if err := json.Unmarshal(b, &side); err != nil {
		t.Fatalf("sidecar: %v\n%s", err, b)
	}
	if d := time.Duration(side.DurationMS) * time.Millisecond; absDur(d-wavDur) > 25*time.Millisecond {
		t.Errorf("sidecar says %v, the WAV holds %v", d, wavDur)
	}
	// The call's duration from the audit (answer to hang-up): the recording
	// starts with the first media, at the answer.
	var callMS int64
	for _, line := range strings.Split(auditLines(t, p, "call.ended"), "\n") {
		if i := strings.Index(line, `"duration_ms":`); i >= 0 {
			// The digits only: other details may follow it (outside_srtp).
			v := line[i+len(`"duration_ms":`):]
			json.Unmarshal([]byte(v[:len(v)-len(strings.TrimLeft(v, "0123456789"))]), &callMS)
		}
	}
	if callMS == 0 {
		t.Fatalf("no call duration in the audit:\n%s", auditLines(t, p, "call.ended"))
	}
	if diff := absDur(wavDur - time.Duration(callMS)*time.Millisecond); diff > 60*time.Millisecond {
		t.Errorf("WAV lasts %v, the call %v ms: %v apart (want ±60 ms)", wavDur, callMS, diff)
	}

	// After the notice (left: what the outside party hears, 3.9 s) the
	// operator's voice is on the left; the right channel (what the
	// operator heard) holds the 150 ms bridge tone that follows the
	// notice (later on a loaded host), then the silent carrier: at most
	// 10 loud 20 ms blocks.
	left := rms(pcm, 0, 4*8000, frames)
	loud := 0
	for f := 4 * 8000; f+160 <= frames; f += 160 {
		if rms(pcm, 1, f, f+160) > 300 {
			loud++
		}
	}
	t.Logf("after 4 s: left RMS %.0f, %d loud 20 ms blocks on the right", left, loud)
	if left < 500 || loud > 10 {
		t.Errorf("channels mixed up: left RMS %.0f, %d loud blocks on the right", left, loud)
	}

	if out, err := p.plateauCmd("recordings", "verify"); err != nil {
		t.Fatalf("recordings verify: %v\n%s", err, out)
	}
	wav[len(wav)/2] ^= 0xff
	if err := os.WriteFile(wavPath, wav, 0o640); err != nil {
		t.Fatal(err)
	}
	out, err := p.plateauCmd("recordings", "verify")
	if err == nil || !strings.Contains(out, wavPath[strings.LastIndex(wavPath, "/")+1:]) {
		t.Errorf("verify after a flipped byte: err %v, output does not name the file:\n%s", err, out)
	}
}

// The other way round: a silent operator, a talking carrier. After the
// notice, the outside party's voice is on the right only.
func TestRecordingOutsideOnTheRight(t *testing.T) {
	_, files := recordedCall(t, "uac_silent.xml", "uas_answer.xml")
	wav, err := os.ReadFile(files[".wav"][0])
	if err != nil || len(wav) < 44 {
		t.Fatalf("read %v: %v", files[".wav"], err)
	}
	pcm := wav[44:]
	frames := len(pcm) / 4
	left, right := rms(pcm, 0, 4*8000, frames), rms(pcm, 1, 4*8000, frames)
	t.Logf("after 4 s: left RMS %.0f, right RMS %.0f", left, right)
	if right < 500 || left > right/50 {
		t.Errorf("channels mixed up: left RMS %.0f, right RMS %.0f", left, right)
	}
}

// rms of one channel of 16-bit stereo PCM over frames [from, to).
func rms(pcm []byte, ch, from, to int) float64 {
	var sum float64
	n := 0
	for f := from; f < to && (f*4+ch*2+1) < len(pcm); f++ {
		v := float64(int16(binary.LittleEndian.Uint16(pcm[f*4+ch*2:])))
		sum += v * v
		n++
	}
	if n == 0 {
		return 0
	}
	return math.Sqrt(sum / float64(n))
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// recordedCall places one 7 s call, the operator playing the SIPp scenario
// opScenario and the carrier carrierScenario, the operator hanging up, and
// returns the server and the recording's files (one WAV, one sidecar).
func recordedCall(t *testing.T, opScenario, carrierScenario string) (*plateau, map[string][]string) {
	t.Helper()
	carrierPort := freePort(t)
	p := startCallServer(t, callOpts{trunkPorts: []int{carrierPort}})
	carrier := startCarrier(t, carrierPort, carrierScenario)
	op := startOperator(t, p, opScenario, approved, "-d", "7000")
	op.mustSucceed(45 * time.Second)
	carrier.mustSucceed(15 * time.Second)
	waitMetric(t, p, mEnded("operator_hangup"), 1)
	var files map[string][]string
	eventually(t, "recording WAV and sidecar", func() (bool, string) {
		files = recordingFiles(t, p)
		return len(files[".wav"]) == 1 && len(files[".json"]) == 1, "no recording yet"
	})
	return p, files
}
