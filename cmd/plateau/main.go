// Command plateau is the telephony gateway: `plateau serve` runs it, the
// other subcommands administer the same configuration and database.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"plateau/config"
	"plateau/policy"
	"plateau/store"
)

// exit codes: 1 runtime failure, 2 bad usage or configuration.
const (
	exitFail  = 1
	exitUsage = 2
)

// usageError marks errors caused by the command line; they exit 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// env is what every subcommand gets: its streams and the clock.
type env struct {
	stdout, stderr io.Writer
	stdin          io.Reader
	now            func() time.Time
	// drain is closed on SIGTERM: serve stops taking calls and lets the
	// calls in progress finish. SIGINT (or a second signal) cancels ctx.
	drain <-chan struct{}
	// policyNow, when set, is the time serve's call policy reads instead
	// of now: only in a test build (clock_fake.go).
	policyNow func() time.Time
}

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	drain := make(chan struct{})
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		draining := false
		for sig := range sigs {
			if sig == syscall.SIGTERM && !draining {
				draining = true
				close(drain)
				continue
			}
			cancel()
		}
	}()
	policyNow, err := policyClockFromEnv(os.Getenv, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "plateau:", err)
		os.Exit(exitUsage)
	}
	e := &env{stdout: os.Stdout, stderr: os.Stderr, stdin: os.Stdin, now: time.Now, policyNow: policyNow, drain: drain}
	code := run(ctx, e, os.Args[1:])
	signal.Stop(sigs)
	os.Exit(code)
}

func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		writeUsage(e.stderr)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	if isHelp(cmd) {
		if len(rest) == 0 {
			writeUsage(e.stdout)
			return 0
		}
		// plateau help COMMAND [SUB] is plateau COMMAND [SUB] --help.
		cmd, rest = rest[0], append(rest[1:], "--help")
	}
	var err error
	if c, ok := findCommand(commands, cmd); !ok {
		err = unknownName("unknown command", cmd, commands, "plateau --help")
	} else if len(c.subs) > 0 {
		switch {
		case len(rest) == 0:
			writeGroupUsage(e.stderr, c)
			n := names(c.subs)
			err = usagef("%s: want %s or %s", cmd, strings.Join(n[:len(n)-1], ", "), n[len(n)-1])
		case isHelp(rest[0]):
			writeGroupUsage(e.stdout, c)
			return 0
		default:
			if _, ok := findCommand(c.subs, rest[0]); !ok {
				err = unknownName(cmd+": unknown subcommand", rest[0], c.subs, "plateau "+cmd+" --help")
			}
		}
	}
	if err == nil {
		if cmd != "serve" && cmd != "recorder" {
			// Only the servers drain on SIGTERM; for every other command
			// (pstn-sim, dial, loadgen) it means stop, as for any program:
			// make run's clean-up kills pstn-sim with it.
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			defer cancel()
			go func() {
				select {
				case <-e.drain:
					cancel()
				case <-ctx.Done():
				}
			}()
		}
		err = dispatch(ctx, e, cmd, rest)
	}
	if err == nil || errors.Is(err, errHelpShown) || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(e.stderr, "plateau:", err)
	var ue usageError
	if errors.As(err, &ue) || errors.Is(err, config.ErrInvalid) {
		return exitUsage
	}
	return exitFail
}

// dispatch runs a command the table knows.
func dispatch(ctx context.Context, e *env, cmd string, rest []string) error {
	switch cmd {
	case "serve":
		return runServe(ctx, e, rest)
	case "check-config":
		return runCheckConfig(e, rest)
	case "user":
		return runUser(ctx, e, rest)
	case "allowlist":
		return runAllowlist(ctx, e, rest)
	case "audit":
		return runAudit(ctx, e, rest)
	case "campaign":
		return runCampaign(ctx, e, rest)
	case "recordings":
		return runRecordings(ctx, e, rest)
	case "recorder":
		return runRecorder(ctx, e, rest)
	case "pstn-sim":
		return runPSTNSim(ctx, e, rest)
	case "dial":
		return runDial(ctx, e, rest)
	case "loadgen":
		return runLoadgen(ctx, e, rest)
	}
	return usagef("command %q is in the help table but not dispatched", cmd)
}

// newFlags makes a flag set that reports errors instead of exiting.
func newFlags(e *env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	// Help goes to stdout (it was asked for); errors to stderr.
	fs.Usage = func() { printFlagHelp(e.stdout, fs) }
	return fs
}

// parseFlags parses and turns flag errors into usage errors. A --help
// anywhere prints the command's help and ends it with exit 0.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if wantsHelp(args) {
		fs.Usage()
		return errHelpShown
	}
	// A wrong flag is reported in one line, without the whole help.
	usage := fs.Usage
	fs.Usage = func() {}
	defer func() { fs.Usage = usage }()
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		if name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: -"); ok {
			var known []string
			fs.VisitAll(func(f *flag.Flag) { known = append(known, f.Name) })
			if c, ok := config.Closest(strings.TrimPrefix(name, "-"), known); ok {
				return usagef("%s: %v (did you mean --%s?)", fs.Name(), err, c)
			}
		}
		return usagef("%s: %v", fs.Name(), err)
	}
	return nil
}

// configFlag registers -c with the default config path.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("c", "configs/plateau.yaml", "configuration file")
}

func runCheckConfig(e *env, args []string) error {
	fs := newFlags(e, "check-config")
	path := configFlag(fs)
	recorder := fs.Bool("recorder", false, "check the file as plateau recorder would start it (implied when it has a recorder section)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err == nil && (*recorder || cfg.HasRecorder()) {
		err = cfg.ValidateRecorder()
	}
	if err != nil {
		return fmt.Errorf("%s: %w", *path, err)
	}
	// The policy's own checks (number_windows numbers) run at serve's
	// start; run them here too so check-config means serve would start.
	if _, err := policy.ConfigFrom(cfg); err != nil {
		return usagef("%s: %v", *path, err)
	}
	fmt.Fprintf(e.stdout, "%s: ok\n", *path)
	return nil
}

// openStore loads the config and opens its database.
func openStore(ctx context.Context, path string) (*config.Config, *store.Store, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	st, err := store.Open(ctx, cfg.DBPath())
	if err != nil {
		return nil, nil, err
	}
	// The config's users exist for every command, not only once serve ran.
	if _, err := bootstrapUsers(ctx, cfg, st, time.Now()); err != nil {
		st.Close()
		return nil, nil, err
	}
	return cfg, st, nil
}

func newLogger(w io.Writer, cfg config.Log, jsonFlag bool) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: level}
	if jsonFlag || cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
