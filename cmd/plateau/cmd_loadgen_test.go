package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"plateau/loadgen"
)

func TestParseSteps(t *testing.T) {
	for _, c := range []struct {
		calls int
		steps string
		want  []int // nil: a usage error
	}{
		{100, "", []int{100}},
		{100, "250,500, 1000", []int{250, 500, 1000}},
		{0, "", nil},
		{100, "250,250", nil},
		{100, "500,250", nil},
		{100, "0,10", nil},
		{100, "10,x", nil},
		{100, "10,", nil},
	} {
		got, err := parseSteps(c.calls, c.steps)
		if c.want == nil {
			if _, ok := err.(usageError); !ok {
				t.Errorf("parseSteps(%d, %q) = %v, %v; want a usage error", c.calls, c.steps, got, err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("parseSteps(%d, %q) = %v, %v; want %v", c.calls, c.steps, got, err, c.want)
		}
	}
}

func TestNumberedUsers(t *testing.T) {
	for _, c := range []struct {
		first, n int
		prefix   string
		want     []loadgen.User
	}{
		{2000, 2, "pw", []loadgen.User{{Ext: "2000", Password: "pw2000"}, {Ext: "2001", Password: "pw2001"}}},
		{1000, 0, "pw", []loadgen.User{}},
		{7, 1, "", []loadgen.User{{Ext: "7", Password: "7"}}},
	} {
		if got := numberedUsers(c.first, c.n, c.prefix); !slices.Equal(got, c.want) {
			t.Errorf("numberedUsers(%d, %d, %q) = %v, want %v", c.first, c.n, c.prefix, got, c.want)
		}
	}
}

// Monitor flags that cannot work are refused before any packet is sent.
func TestLoadgenMonitorFlags(t *testing.T) {
	sups := filepath.Join(t.TempDir(), "sups.csv")
	if err := os.WriteFile(sups, []byte("SEQUENTIAL\n2000;pw2000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		err  string
	}{
		{[]string{"--monitors", "2", "--monitor-mode", "spy"}, "--monitor-mode"},
		{[]string{"--monitors", "2", "--direct"}, "drop --direct"},
		{[]string{"--monitors", "-1"}, "must not be negative"},
		{[]string{"--calls", "10", "--monitors", "11"}, "must not exceed the 10 calls"},
		{[]string{"--steps", "5,10", "--watched", "11"}, "must not exceed the 10 calls"},
		{[]string{"--monitors", "2", "--supervisor-users", sups}, "1 supervisors for 2 monitors"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, _, stderr := plateau(t, "", append([]string{"loadgen", "--server", "127.0.0.1:9"}, c.args...)...)
			if code != 2 || !strings.Contains(stderr, c.err) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, c.err)
			}
		})
	}
}

// bench-monitor.sh reads these lines by their first word: keep them.
func TestPrintStepDetail(t *testing.T) {
	st := loadgen.StepResult{
		ServerCPU: 12, CPUPct: 41.25,
		MetricsEnd:  map[string]float64{"plateau_monitor_sessions_active": 100},
		Watched:     100,
		WatchedLoss: loadgen.Loss{Sent: 50000, Lost: 5, LossPct: 0.01, WorstPct: 0.2},
		WatchedRTT:  loadgen.RTTSummary{P50: 612 * time.Microsecond, P99: 2100 * time.Microsecond, Max: 9 * time.Millisecond},
		Monitor: loadgen.MonitorStats{Up: 100, Receiving: 100, PerSecond: 49.98, Lost: 3, LossPct: 0.006,
			WorstPct: 0.2, MaxGap: 41 * time.Millisecond},
	}
	for _, c := range []struct {
		name       string
		st         loadgen.StepResult
		monitoring bool
		want       []string
	}{
		{"monitored", st, true, []string{
			"  plateau 41.2 % of a core, plateau_monitor_sessions_active 100",
			"  watched first 100 calls: sent 50000 lost 5 loss 0.010 % worst 0.20 % rtt p50 612µs p99 2100µs max 9000µs",
			"  monitors 100 up, 100 receiving: 49.98 packets/s each (expected 50), lost 3 by sequence (0.006 %, worst 0.20 %), max gap 41ms",
		}},
		{"watched, no monitors", loadgen.StepResult{ServerCPU: 1, CPUPct: 30, Watched: 2}, false, []string{
			"  plateau 30.0 % of a core",
			"  watched first 2 calls: sent 0 lost 0 loss 0.000 % worst 0.00 % rtt p50 0µs p99 0µs max 0µs",
		}},
		{"plain media bench", loadgen.StepResult{}, false, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			printStepDetail(&b, c.st, c.monitoring)
			got := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
			if b.Len() == 0 {
				got = nil
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("printStepDetail:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}
