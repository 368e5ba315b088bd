package siprec

import (
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/zaf/g711"

	"plateau/audit"
	"plateau/media"
	"plateau/recordings"
)

// memIndex is an in-memory recordings.Index.
type memIndex struct {
	mu   sync.Mutex
	rows map[string]recordings.Record
}

func (x *memIndex) Begin(_ context.Context, r recordings.Record, _ time.Time, _ audit.Entry) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, ok := x.rows[r.ID]; ok {
		return recordings.ErrExists
	}
	x.rows[r.ID] = r
	return nil
}

func (x *memIndex) Finish(_ context.Context, id string, _ time.Time, f recordings.Final) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	r := x.rows[id]
	r.State, r.SHA256 = f.State, f.SHA256
	x.rows[id] = r
	return nil
}

type nopAudit struct{}

func (nopAudit) Audit(context.Context, string, string, string, string, string, string, map[string]any) {
}

func testLog(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

type testRecorder struct {
	dir string
	mgr *recordings.Manager
	srv *Server
	idx *memIndex
}

// startRecorder runs an SRS on 127.0.0.1 recording into a temporary
// directory; minFreeMB above the disk's free space makes it unready.
func startRecorder(t *testing.T, minFreeMB int) *testRecorder {
	t.Helper()
	return startRecorderWith(t, minFreeMB, nil)
}

// startRecorderWith is startRecorder with its options changed by opt.
func startRecorderWith(t *testing.T, minFreeMB int, opt func(*ServerOptions)) *testRecorder {
	t.Helper()
	dir := t.TempDir()
	idx := &memIndex{rows: map[string]recordings.Record{}}
	mgr := recordings.NewManager(dir, minFreeMB, idx, nopAudit{}, testLog(t), time.Now, nil)
	pool, err := media.NewPortPool(31000, 31998, 0, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	opts := ServerOptions{Listen: "127.0.0.1:0", MediaIP: netip.MustParseAddr("127.0.0.1"),
		Ports: pool, RTPTimeout: 5 * time.Second, Log: testLog(t)}
	if opt != nil {
		opt(&opts)
	}
	srv, err := NewServer(opts, mgr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &testRecorder{dir: dir, mgr: mgr, srv: srv, idx: idx}
}

func newTestClient(t *testing.T, addr, transport string) *Client {
	t.Helper()
	c, err := NewClient(ClientOptions{Address: addr, Transport: transport, Timeout: time.Second, Log: testLog(t),
		ProbeInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// tonePackets makes n 20 ms G.711 packets of a sine at freq.
func tonePackets(pt uint8, freq float64, n int, ssrc uint32) []rtp.Packet {
	out := make([]rtp.Packet, n)
	for i := range out {
		pl := make([]byte, 160)
		for j := range pl {
			v := int16(8000 * math.Sin(2*math.Pi*freq*float64(i*160+j)/8000))
			if pt == ptPCMU {
				pl[j] = g711.EncodeUlawFrame(v)
			} else {
				pl[j] = g711.EncodeAlawFrame(v)
			}
		}
		out[i] = rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: uint16(1000 + i),
			Timestamp: uint32(5000 + i*160), SSRC: ssrc}, Payload: pl}
	}
	return out
}

// goertzel is the energy of x at freq, summed over 20 ms blocks so that
// a phase jump between segments (a new source) does not cancel it out.
func goertzel(x []int16, freq float64) float64 {
	k := 2 * math.Cos(2*math.Pi*freq/8000)
	var e float64
	for b := 0; b+160 <= len(x); b += 160 {
		var s1, s2 float64
		for _, v := range x[b : b+160] {
			s := float64(v) + k*s1 - s2
			s2, s1 = s1, s
		}
		e += s1*s1 + s2*s2 - k*s1*s2
	}
	return e
}

func readStereo(t *testing.T, path string) (left, right []int16) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 44 || string(b[:4]) != "RIFF" || binary.LittleEndian.Uint16(b[22:]) != 2 {
		t.Fatalf("%s is not a stereo WAV", path)
	}
	for i := 44; i+4 <= len(b); i += 4 {
		left = append(left, int16(binary.LittleEndian.Uint16(b[i:])))
		right = append(right, int16(binary.LittleEndian.Uint16(b[i+2:])))
	}
	return left, right
}

func findFile(t *testing.T, dir, suffix string) string {
	t.Helper()
	var found string
	deadline := time.Now().Add(5 * time.Second)
	for found == "" && time.Now().Before(deadline) {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, suffix) && !strings.HasPrefix(d.Name(), ".") {
				found = p
			}
			return nil
		})
		if found == "" {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if found == "" {
		t.Fatalf("no %s file under %s", suffix, dir)
	}
	return found
}

func TestClientServerRecording(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			rec := startRecorder(t, 0)
			c := newTestClient(t, rec.srv.Addr().String(), transport)
			recordAndCheck(t, rec, c)
		})
	}
}

// recordAndCheck records one second of two tones through c into rec and
// checks the sidecar and that each tone is on its channel.
func recordAndCheck(t *testing.T, rec *testRecorder, c *Client) {
	t.Helper()
	if err := c.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	start := time.Now()
	info := recordings.Info{ID: "0f8c2a44-5f6e-4d5e-9a1b-2c3d4e5f6a7b", CallIDs: []string{"op-leg@10.0.0.5"},
		Operator: "101", Number: "+33123456789", Campaign: "archi", Start: start}
	s, err := c.Start(context.Background(), info)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	// Operator: 440 Hz in PCMU; outside: 1000 Hz in PCMA, then
	// an SSRC change (a prompt) to check the re-stamping.
	op := tonePackets(ptPCMU, 440, 50, 0x1111)
	out := append(tonePackets(ptPCMA, 1000, 25, 0x2222), tonePackets(ptPCMA, 1000, 25, 0x3333)...)
	tick := time.NewTicker(20 * time.Millisecond)
	for i := range op {
		<-tick.C
		now := time.Now()
		if err := s.TapRTP(media.LegOperator, &op[i], now); err != nil {
			t.Fatalf("TapRTP operator: %v", err)
		}
		if err := s.TapRTP(media.LegOutside, &out[i], now); err != nil {
			t.Fatalf("TapRTP outside: %v", err)
		}
	}
	tick.Stop()
	if err := s.Close(time.Now()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	sc := findFile(t, rec.dir, ".json")
	wav := strings.TrimSuffix(sc, ".json") + ".wav"
	side, err := recordings.ReadSidecar(sc)
	if err != nil {
		t.Fatal(err)
	}
	if side.ID != info.ID || side.Operator != "101" || side.Number != "+33123456789" || side.Campaign != "archi" || side.SHA256 == "" {
		t.Errorf("sidecar = %+v", side)
	}
	if len(side.CallIDs) < 2 || side.CallIDs[0] != "op-leg@10.0.0.5" {
		t.Errorf("sidecar call ids = %v, want the leg's and the SIPREC session's", side.CallIDs)
	}
	left, right := readStereo(t, wav)
	if d := time.Duration(len(left)) * sampleDur; d < 900*time.Millisecond || d > 1500*time.Millisecond {
		t.Errorf("recording lasts %v, want about 1 s", d)
	}
	l440, l1k := goertzel(left, 440), goertzel(left, 1000)
	r440, r1k := goertzel(right, 440), goertzel(right, 1000)
	if l440 < 100*l1k || r1k < 100*r440 {
		t.Errorf("channels mixed up: left 440 Hz %.3g / 1 kHz %.3g, right 440 Hz %.3g / 1 kHz %.3g", l440, l1k, r440, r1k)
	}
	if rec.srv.Open() != 0 || c.Open() != 0 {
		t.Errorf("sessions left open: server %d, client %d", rec.srv.Open(), c.Open())
	}
}

func TestClientRefusedWhenRecorderUnready(t *testing.T) {
	rec := startRecorder(t, 1<<40) // more free space than any disk
	c := newTestClient(t, rec.srv.Addr().String(), "udp")
	err := c.Ready()
	if !errors.Is(err, recordings.ErrRecorderUnavailable) || !strings.Contains(err.Error(), "503") {
		t.Fatalf("Ready = %v, want recorder unavailable (503)", err)
	}
	if _, err := c.Start(context.Background(), recordings.Info{ID: "x1", Operator: "101", Number: "+33123456789", Start: time.Now()}); !errors.Is(err, recordings.ErrRecorderUnavailable) {
		t.Fatalf("Start = %v, want recorder unavailable", err)
	}
}

func TestClientRefusedWhenRecorderDown(t *testing.T) {
	c := newTestClient(t, "127.0.0.1:9", "udp") // discard: nobody answers SIP
	t0 := time.Now()
	err := c.Ready()
	if !errors.Is(err, recordings.ErrRecorderUnavailable) {
		t.Fatalf("Ready = %v, want recorder unavailable", err)
	}
	if d := time.Since(t0); d > 3*time.Second {
		t.Errorf("Ready took %v, want about the 1 s timeout", d)
	}
	// Cached for a second: the next call does not wait again.
	t0 = time.Now()
	if err := c.Ready(); err == nil || time.Since(t0) > 100*time.Millisecond {
		t.Errorf("second Ready = %v after %v, want the cached error at once", err, time.Since(t0))
	}
}

// TestRecorderByeEndsCall: when the recorder stops (BYE to the SRC), the
// next packet fails, which ends the call.
func TestRecorderByeEndsCall(t *testing.T) {
	dir := t.TempDir()
	idx := &memIndex{rows: map[string]recordings.Record{}}
	mgr := recordings.NewManager(dir, 0, idx, nopAudit{}, testLog(t), time.Now, nil)
	pool, _ := media.NewPortPool(32000, 32100, 0, time.Now)
	srv, err := NewServer(ServerOptions{Listen: "127.0.0.1:0", MediaIP: netip.MustParseAddr("127.0.0.1"),
		Ports: pool, Log: testLog(t)}, mgr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	c := newTestClient(t, srv.Addr().String(), "udp")
	s, err := c.Start(context.Background(), recordings.Info{ID: "bye-test", Operator: "101", Number: "+33123456789", Start: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	pkts := tonePackets(ptPCMU, 440, 200, 1)
	if err := s.TapRTP(media.LegOperator, &pkts[0], time.Now()); err != nil {
		t.Fatal(err)
	}
	cancel() // the recorder shuts down: BYE to every SRC
	<-done
	tapErr := tapUntilError(s, pkts)
	if !errors.Is(tapErr, ErrSessionEnded) {
		t.Fatalf("TapRTP after the recorder's BYE = %v, want ErrSessionEnded", tapErr)
	}
	s.Close(time.Now())
	findFile(t, dir, ".json") // the recorder closed its file properly
}

func TestAssignChannels(t *testing.T) {
	audio := func(label string) mediaStream {
		return mediaStream{Media: "audio", Proto: "RTP/AVP", Formats: []string{"0"}, Label: label, Addr: netip.MustParseAddrPort("10.0.0.1:4000")}
	}
	video := mediaStream{Media: "video", Proto: "RTP/AVP", Formats: []string{"96"}, Addr: netip.MustParseAddrPort("10.0.0.1:4002")}
	md := NewMetadata(recordings.Info{ID: "c", Operator: "101", Number: "+33123456789", Start: time.Now()}, "")
	cases := []struct {
		name    string
		streams []mediaStream
		md      *Metadata
		want    []int
	}{
		{"plateau order", []mediaStream{audio("1"), audio("2")}, md, []int{0, 1}},
		{"plateau reversed", []mediaStream{audio("2"), audio("1")}, md, []int{1, 0}},
		{"standard SRC by order", []mediaStream{audio("a"), video, audio("b"), audio("c")}, nil, []int{0, -1, 1, -1}},
		{"one stream", []mediaStream{audio("")}, nil, []int{0}},
		{"no audio", []mediaStream{video}, nil, []int{-1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := assignChannels(c.streams, c.md)
			for i := range c.want {
				if p.ch[i] != c.want[i] {
					t.Fatalf("channels = %v, want %v", p.ch, c.want)
				}
			}
		})
	}
	p := assignChannels([]mediaStream{audio("2"), audio("1")}, md)
	info := recordingInfo(p, md, "siprec-call@h", time.Now())
	if info.Operator != "101" || info.Number != "+33123456789" || info.ID != "c" {
		t.Errorf("recordingInfo = %+v", info)
	}
}

func TestTapRTPAllocs(t *testing.T) {
	rec := startRecorder(t, 0)
	c := newTestClient(t, rec.srv.Addr().String(), "udp")
	s, err := c.Start(context.Background(), recordings.Info{ID: "allocs", Operator: "101", Number: "+33123456789", Start: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(time.Now())
	pkts := tonePackets(ptPCMU, 440, 1, 7)
	now := time.Now()
	allocs := testing.AllocsPerRun(200, func() {
		pkts[0].SequenceNumber++
		pkts[0].Timestamp += 160
		now = now.Add(20 * time.Millisecond)
		if err := s.TapRTP(media.LegOutside, &pkts[0], now); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("TapRTP allocates %.1f times per packet, want 0", allocs)
	}
}

// tapUntilError taps pkts (cycling through them, with their sequence
// numbers moving on) every 10 ms until TapRTP fails or 15 s pass: the
// recorder's BYE may take a while on a loaded machine.
func tapUntilError(s *Session, pkts []rtp.Packet) error {
	deadline := time.Now().Add(15 * time.Second)
	for i := 1; time.Now().Before(deadline); i++ {
		time.Sleep(10 * time.Millisecond)
		p := pkts[i%len(pkts)]
		p.SequenceNumber += uint16(i / len(pkts) * len(pkts))
		if err := s.TapRTP(media.LegOperator, &p, time.Now()); err != nil {
			return err
		}
	}
	return nil
}
