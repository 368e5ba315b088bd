package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"

	"plateau/audit"
	"plateau/config"
	"plateau/recordings"
)

// record makes a closed recording of dur in the fixture's recordings
// directory, through the same Manager the server uses.
func (f *cliFixture) record(id, operator, number string, start time.Time, dur time.Duration) *recordings.Session {
	f.t.Helper()
	st := f.store()
	dir := filepath.Join(f.dir, "data", "recordings")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		f.t.Fatal(err)
	}
	m := recordings.NewManager(dir, 0, recordings.NewDBIndex(st.DB()), nil,
		slog.New(slog.NewTextHandler(io.Discard, nil)), func() time.Time { return start }, nil)
	s, err := m.Start(context.Background(), recordings.Info{ID: id, Operator: operator, Number: number, Campaign: "archi", Start: start})
	if err != nil {
		f.t.Fatal(err)
	}
	payload := bytes.Repeat([]byte{0x7f}, 160)
	for i := range int(dur / (20 * time.Millisecond)) {
		for ch, ssrc := range []uint32{1, 2} {
			p := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: uint32(i * 160), SSRC: ssrc}, Payload: payload}
			if err := s.WriteRTP(recordings.Channel(ch), p, start.Add(time.Duration(i)*20*time.Millisecond)); err != nil {
				f.t.Fatal(err)
			}
		}
	}
	return s
}

func TestCLIRecordings(t *testing.T) {
	f := newCLI(t)
	day := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	for i, r := range [][]string{{"rec-a", "101", "+33240123456"}, {"rec-b", "102", "+33240654321"}} {
		start := day.Add(time.Duration(i) * time.Hour)
		if err := f.record(r[0], r[1], r[2], start, 2*time.Second).Close(start.Add(2 * time.Second)); err != nil {
			t.Fatal(err)
		}
	}

	out := f.ok("recordings", "list")
	if !strings.Contains(out, "rec-a") || !strings.Contains(out, "rec-b") || !strings.HasPrefix(out, "ID") {
		t.Errorf("list:\n%s", out)
	}
	out = f.ok("recordings", "list", "--number", "02 40 12 34 56", "--since", "2026-11-20", "--until", "2026-11-20")
	if !strings.Contains(out, "rec-a") || strings.Contains(out, "rec-b") {
		t.Errorf("list --number (national format):\n%s", out)
	}
	if out := f.ok("recordings", "list", "--operator", "102", "--limit", "5"); strings.Contains(out, "rec-a") || !strings.Contains(out, "rec-b") {
		t.Errorf("list --operator 102:\n%s", out)
	}
	if out := f.ok("recordings", "list", "--until", "2026-11-19"); strings.Contains(out, "rec-") {
		t.Errorf("list --until before both:\n%s", out)
	}
	f.fails(exitUsage, "--since", "recordings", "list", "--since", "yesterday")
	f.fails(exitUsage, "--state", "recordings", "list", "--state", "lost")

	out = f.ok("recordings", "verify")
	if !strings.Contains(out, "2 recordings verified, 0 problems") {
		t.Errorf("verify:\n%s", out)
	}
	// Flip one byte of rec-a: verify names the file and exits 1.
	wav := filepath.Join(f.dir, "data", "recordings", "2026", "11", "20", "rec-a.wav")
	b, err := os.ReadFile(wav)
	if err != nil {
		t.Fatal(err)
	}
	b[100] ^= 0x80
	if err := os.WriteFile(wav, b, 0o640); err != nil {
		t.Fatal(err)
	}
	if code := f.run("recordings", "verify", "--by", "301"); code != exitFail {
		t.Fatalf("verify after a flipped byte: exit %d, want %d", code, exitFail)
	}
	if !strings.Contains(f.last.stdout, "modified 2026/11/20/rec-a.wav") || !strings.Contains(f.last.stdout, "2 recordings verified, 1 problems") {
		t.Errorf("verify output:\n%s", f.last.stdout)
	}
	recs, err := audit.New(f.store().DB(), time.Now).List(context.Background(), audit.Filter{Kind: "recordings.verified"})
	if err != nil || len(recs) != 2 || recs[0].Entry.Outcome != "problems" || recs[0].Entry.Actor != "301" {
		t.Errorf("verification runs audited: %+v, %v", recs, err)
	}
	// --since after rec-a skips it.
	if out := f.ok("recordings", "verify", "--since", "2026-11-20T09:30:00Z"); !strings.Contains(out, "1 recordings verified, 0 problems") {
		t.Errorf("verify --since:\n%s", out)
	}

	f.fails(exitUsage, "only active security officers", "recordings", "hold", "--on", "--by", "101", "rec-b")
	f.fails(exitUsage, "want --on or --off", "recordings", "hold", "--by", "301", "rec-b")
	f.fails(exitUsage, "no such recording", "recordings", "hold", "--on", "--by", "301", "nope")
	if out := f.ok("recordings", "hold", "--on", "--by", "301", "rec-b"); !strings.Contains(out, "legal hold on for rec-b") {
		t.Errorf("hold: %s", out)
	}
	f.fails(exitUsage, "already", "recordings", "hold", "rec-b", "--on", "--by", "302")
	if out := f.ok("recordings", "list", "--operator", "102"); !strings.Contains(out, "yes") {
		t.Errorf("list does not show the hold:\n%s", out)
	}
	f.fails(exitUsage, "unknown subcommand", "recordings", "play")
}

// TestCLIRecordingsRepair: repair refuses while the server's lock is held,
// and otherwise repairs a recording left open by a crash.
func TestCLIRecordingsRepair(t *testing.T) {
	f := newCLI(t)
	start := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	s := f.record("crashed", "101", "+33240123456", start, 3*time.Second)
	_ = s // abandoned without Close, as by kill -9 (the descriptor leaks until the test ends)

	lock, err := recordings.LockDir(filepath.Join(f.dir, "data", "recordings"))
	if err != nil {
		t.Fatal(err)
	}
	f.fails(exitFail, "stop plateau serve first", "recordings", "repair")
	lock.Close()

	out := f.ok("recordings", "repair", "--by", "301")
	if !strings.Contains(out, "repaired 2026/11/20/crashed.wav") || !strings.Contains(out, "1 recordings repaired, 0 problems") {
		t.Errorf("repair:\n%s", out)
	}
	if out := f.ok("recordings", "list", "--state", "repaired"); !strings.Contains(out, "crashed") {
		t.Errorf("list --state repaired:\n%s", out)
	}
	if out := f.ok("recordings", "verify"); !strings.Contains(out, "1 recordings verified, 0 problems") {
		t.Errorf("verify after repair:\n%s", out)
	}
	if out := f.ok("recordings", "repair"); !strings.Contains(out, "0 recordings repaired") {
		t.Errorf("second repair:\n%s", out)
	}
}

// TestStartRecordings is what `plateau serve` does before accepting calls:
// take the directory and repair what a crash left open.
func TestStartRecordings(t *testing.T) {
	f := newCLI(t)
	start := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	f.record("crashed", "101", "+33240123456", start, 3*time.Second)
	cfg, err := config.Load(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	idx, lock, err := startRecordings(context.Background(), cfg, f.store(), log, func() time.Time { return f.now })
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if r, err := idx.Get(context.Background(), "crashed"); err != nil || r.State != recordings.StateRepaired {
		t.Errorf("after start: %+v, %v; want repaired", r, err)
	}
	// A second server on the same directory is refused.
	if _, _, err := startRecordings(context.Background(), cfg, f.store(), log, time.Now); !errors.Is(err, recordings.ErrServerRunning) {
		t.Errorf("second start = %v, want ErrServerRunning", err)
	}
}
