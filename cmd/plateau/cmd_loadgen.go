package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"plateau/loadgen"
	"plateau/media"
)

// runLoadgen places concurrent G.711 calls through Plateau and measures
// loss and latency: `plateau loadgen --server ADDR --first-ext N --count N
// --password-prefix P --calls N --number NUMBER`; with `--monitors M`,
// supervisors listen to (or whisper into, barge into) the first M calls.
func runLoadgen(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "loadgen")
	server := fs.String("server", "127.0.0.1:5060", "Plateau's SIP address (UDP); pstn-sim's with --direct")
	direct := fs.Bool("direct", false, "baseline: call --server as the carrier itself (no REGISTER, no auth)")
	usersFile := fs.String("users", "", "operators, one per line: EXT;PASSWORD (SIPp CSV; other lines skipped)")
	firstExt := fs.Int("first-ext", 1000, "first operator extension, when --users is not given")
	count := fs.Int("count", 0, "number of operators from --first-ext (default: the largest step)")
	prefix := fs.String("password-prefix", "pw", "operator password: this prefix followed by the extension")
	calls := fs.Int("calls", 100, "concurrent calls to hold (one step)")
	steps := fs.String("steps", "", "comma-separated increasing call counts, each held and measured (overrides --calls)")
	rate := fs.Float64("rate", 50, "call setups per second while ramping")
	hold := fs.Duration("hold", 30*time.Second, "measurement window per step")
	settle := fs.Duration("settle", 6*time.Second, "wait after a step's calls are up before measuring (notice prompt)")
	number := fs.String("number", "+33240123456", "number every call dials (approved on Plateau's allowlist)")
	mediaIP := fs.String("media-ip", "127.0.0.1", "address of the RTP sockets")
	sockets := fs.Int("sockets", 16, "RTP sockets shared by the calls")
	maxFail := fs.Int("max-failures", 10, "stop ramping after this many failed calls")
	pid := fs.Int("server-pid", 0, "Plateau's process id: its CPU is read from /proc per step")
	metrics := fs.String("metrics-url", "", "Plateau's /metrics URL, read around each window (recorder drops)")
	jsonOut := fs.String("json", "", "write the result as JSON to this file")
	baseline := fs.String("baseline", "", "JSON of a --direct run: subtract its round trip to estimate Plateau's added one-way latency")
	monitors := fs.Int("monitors", 0, "supervisors monitoring calls, one each: supervisor j joins operator j's call once the calls are up")
	monitorMode := fs.String("monitor-mode", "listen", "monitor mode: listen (*1<ext>), whisper (*2<ext>) or barge (*3<ext>)")
	supUsersFile := fs.String("supervisor-users", "", "supervisors, one per line: EXT;PASSWORD (as --users)")
	supFirstExt := fs.Int("supervisor-first-ext", 2000, "first supervisor extension, when --supervisor-users is not given")
	supPrefix := fs.String("supervisor-password-prefix", "pw", "supervisor password: this prefix followed by the extension")
	watched := fs.Int("watched", 0, "report the loss and round trip of the first N calls apart (default: --monitors, the monitored calls)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("loadgen: unexpected argument %q (flags only)", fs.Arg(0))
	}
	stepList, err := parseSteps(*calls, *steps)
	if err != nil {
		return err
	}
	mode, err := media.ParseMonitorMode(*monitorMode)
	if err != nil {
		return usagef("loadgen: --monitor-mode: %v", err)
	}
	if *monitors < 0 || *watched < 0 {
		return usagef("loadgen: --monitors and --watched must not be negative")
	}
	if *monitors > 0 && *direct {
		return usagef("loadgen: --monitors needs Plateau: drop --direct")
	}
	if *rate <= 0 || *hold <= 0 || *sockets < 1 {
		return usagef("loadgen: --rate, --hold and --sockets must be positive")
	}
	ip, err := netip.ParseAddr(*mediaIP)
	if err != nil {
		return usagef("loadgen: --media-ip %q is not an IP address", *mediaIP)
	}
	need := stepList[len(stepList)-1]
	var users []loadgen.User
	if *usersFile != "" {
		if users, err = readUsers(*usersFile); err != nil {
			return err
		}
	} else {
		n := *count
		if n == 0 {
			n = need
		}
		users = numberedUsers(*firstExt, n, *prefix)
	}
	if len(users) < need {
		return usagef("loadgen: %d operators for %d calls: one call per operator (raise --count or add users)", len(users), need)
	}
	if *monitors > need || *watched > need {
		return usagef("loadgen: --monitors %d and --watched %d must not exceed the %d calls", *monitors, *watched, need)
	}
	var sups []loadgen.User
	if *supUsersFile != "" {
		if sups, err = readUsers(*supUsersFile); err != nil {
			return err
		}
	} else {
		sups = numberedUsers(*supFirstExt, *monitors, *supPrefix)
	}
	if len(sups) < *monitors {
		return usagef("loadgen: %d supervisors for %d monitors: one session per supervisor", len(sups), *monitors)
	}
	var base *loadgen.Result
	if *baseline != "" {
		b, err := os.ReadFile(*baseline)
		if err != nil {
			return err
		}
		base = new(loadgen.Result)
		if err := json.Unmarshal(b, base); err != nil {
			return fmt.Errorf("%s: %w", *baseline, err)
		}
	}

	path := "through Plateau " + *server
	if *direct {
		path = "direct to pstn-sim " + *server + " (baseline)"
	}
	fmt.Fprintf(e.stdout, "loadgen: G.711 PCMU 20 ms, %s, steps %v, %.0f setups/s, %s per step after %s settle, %d RTP sockets\n",
		path, stepList, *rate, *hold, *settle, *sockets)
	if *monitors > 0 {
		fmt.Fprintf(e.stdout, "loadgen: %d supervisors monitor (%s) the first %d calls, from the first step that has them\n", *monitors, mode, *monitors)
	}
	printStepHeader(e.stdout)
	res, err := loadgen.Run(ctx, loadgen.Config{
		Server: *server, Direct: *direct, Users: users, Steps: stepList, Rate: *rate, Hold: *hold, Settle: *settle,
		Number: *number, MediaIP: ip, Sockets: *sockets, MaxSetupFailures: *maxFail, ServerPID: *pid, MetricsURL: *metrics,
		Monitors: *monitors, Supervisors: sups, MonitorMode: mode, Watched: *watched,
		OnStep: func(st loadgen.StepResult) {
			printStep(e.stdout, st, base)
			printStepDetail(e.stdout, st, *monitors > 0)
		},
		Log: slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if res != nil {
		fmt.Fprintf(e.stdout, "calls answered %d, failed %d, setup rate %.0f/s, hangup errors %d, call time %.1f min\n",
			res.Placed, res.Failed, res.SetupRate, res.HangupErrors, res.CallTime.Minutes())
		for _, m := range res.FirstErrors {
			fmt.Fprintln(e.stdout, "  setup error:", m)
		}
		if *monitors > 0 {
			fmt.Fprintf(e.stdout, "monitor sessions answered %d, failed %d, hangup errors %d\n",
				res.MonitorsPlaced, res.MonitorsFailed, res.MonitorHangupErrors)
			for _, m := range res.MonitorErrors {
				fmt.Fprintln(e.stdout, "  monitor error:", m)
			}
		}
		if *jsonOut != "" {
			b, _ := json.MarshalIndent(res, "", "  ")
			if werr := os.WriteFile(*jsonOut, b, 0o644); werr != nil && err == nil {
				err = werr
			}
		}
	}
	if err != nil {
		return fmt.Errorf("loadgen: %w", err)
	}
	if len(res.Steps) == 0 {
		return fmt.Errorf("loadgen: no step measured (%d calls failed)", res.Failed)
	}
	return nil
}

func printStepHeader(w io.Writer) {
	fmt.Fprintf(w, "%6s %9s %6s %7s %8s %8s %6s %9s %9s %9s %9s %11s %11s %9s %9s\n",
		"calls", "sent", "pace%", "lost", "loss %", "worst %", "lossy", "rtt p50", "rtt p99", "rtt max", "late tick",
		"+1way p50", "+1way p99", "%core/cl", "rec drop")
}

func printStep(w io.Writer, st loadgen.StepResult, base *loadgen.Result) {
	us := func(d time.Duration) string { return fmt.Sprintf("%.0fµs", float64(d)/1e3) }
	add50, add99 := "-", "-"
	if b := baselineFor(base, st.Calls); b != nil {
		add50 = us((st.RTT.P50 - b.RTT.P50) / 2)
		add99 = us((st.RTT.P99 - b.RTT.P99) / 2)
	}
	cpu, drop := "-", "-"
	if st.ServerCPU > 0 {
		cpu = fmt.Sprintf("%.3f", st.CPUPerCall)
	}
	if v, ok := st.Metrics["plateau_recorder_dropped_packets_total"]; ok {
		drop = fmt.Sprintf("%.0f", v)
	}
	// pace: packets sent against one per call per 20 ms over the window;
	// below 100 the generator itself could not keep up.
	pace := 0.0
	if st.Calls > 0 && st.Window > 0 {
		pace = 100 * float64(st.Loss.Sent) / (float64(st.Calls) * float64(st.Window/(20*time.Millisecond)))
	}
	fmt.Fprintf(w, "%6d %9d %6.1f %7d %8.3f %8.2f %6d %9s %9s %9s %9d %11s %11s %9s %9s\n",
		st.Calls, st.Loss.Sent, pace, st.Loss.Lost, st.Loss.LossPct, st.Loss.WorstPct, st.Loss.Lossy,
		us(st.RTT.P50), us(st.RTT.P99), us(st.RTT.Max), st.LateTicks, add50, add99, cpu, drop)
}

// printStepDetail prints, under a step's row, Plateau's CPU, the watched
// calls apart and what the supervisors' phones received. Indented lines:
// scripts/bench-media.sh reads only the rows; bench-monitor.sh reads
// these by their first word.
func printStepDetail(w io.Writer, st loadgen.StepResult, monitoring bool) {
	us := func(d time.Duration) string { return fmt.Sprintf("%.0fµs", float64(d)/1e3) }
	if st.ServerCPU > 0 || st.MetricsEnd != nil {
		fmt.Fprintf(w, "  plateau %.1f %% of a core", st.CPUPct)
		if v, ok := st.MetricsEnd["plateau_monitor_sessions_active"]; ok {
			fmt.Fprintf(w, ", plateau_monitor_sessions_active %.0f", v)
		}
		fmt.Fprintln(w)
	}
	if st.Watched > 0 {
		l, r := st.WatchedLoss, st.WatchedRTT
		fmt.Fprintf(w, "  watched first %d calls: sent %d lost %d loss %.3f %% worst %.2f %% rtt p50 %s p99 %s max %s\n",
			st.Watched, l.Sent, l.Lost, l.LossPct, l.WorstPct, us(r.P50), us(r.P99), us(r.Max))
	}
	if monitoring {
		m := st.Monitor
		fmt.Fprintf(w, "  monitors %d up, %d receiving: %.2f packets/s each (expected 50), lost %d by sequence (%.3f %%, worst %.2f %%), max gap %s\n",
			m.Up, m.Receiving, m.PerSecond, m.Lost, m.LossPct, m.WorstPct, m.MaxGap.Round(time.Millisecond))
	}
}

// parseSteps reads --steps (comma-separated increasing counts), or makes
// the one step of --calls.
func parseSteps(calls int, steps string) ([]int, error) {
	if steps == "" {
		if calls < 1 {
			return nil, usagef("loadgen: --calls must be at least 1")
		}
		return []int{calls}, nil
	}
	var list []int
	for _, f := range strings.Split(steps, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || (len(list) > 0 && n <= list[len(list)-1]) {
			return nil, usagef("loadgen: --steps %q: want increasing positive counts, e.g. 250,500,1000", steps)
		}
		list = append(list, n)
	}
	return list, nil
}

// numberedUsers is n users from extension first, password prefix+ext.
func numberedUsers(first, n int, prefix string) []loadgen.User {
	users := make([]loadgen.User, 0, n)
	for i := range n {
		ext := strconv.Itoa(first + i)
		users = append(users, loadgen.User{Ext: ext, Password: prefix + ext})
	}
	return users
}

// baselineFor is the baseline step with the same number of calls, or the
// largest below it.
func baselineFor(base *loadgen.Result, calls int) *loadgen.StepResult {
	if base == nil {
		return nil
	}
	var best *loadgen.StepResult
	for i := range base.Steps {
		if s := &base.Steps[i]; s.Calls <= calls && (best == nil || s.Calls > best.Calls) {
			best = s
		}
	}
	return best
}

// readUsers reads EXT;PASSWORD lines (SIPp injection CSV: a SEQUENTIAL or
// RANDOM first line and further fields are ignored).
func readUsers(path string) ([]loadgen.User, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var users []loadgen.User
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") || !strings.Contains(t, ";") {
			continue
		}
		f := strings.Split(t, ";")
		if f[0] == "" || f[1] == "" {
			return nil, usagef("%s:%d: want EXT;PASSWORD", path, line)
		}
		users = append(users, loadgen.User{Ext: f[0], Password: f[1]})
	}
	return users, sc.Err()
}
