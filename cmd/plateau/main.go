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
	"syscall"
	"time"

	"plateau/config"
	"plateau/store"
)

const usage = `usage: plateau COMMAND [flags]

commands:
  serve -c FILE              run the gateway (SIP, media, recorder, web)
  check-config -c FILE       validate a configuration and exit
  user add|list|suspend|activate|passwd
  allowlist add|approve|reject|revoke|list|export
  campaign create|list|import|export|results|activate|pause|finish
  audit verify
  recorder -c FILE           the recorder alone, for plateau serve's recordings.remote (SIPREC)
  pstn-sim -c FILE           the simulated outside world (demo, tests)
  dial --as EXT NUMBER       place one test call through Plateau
  loadgen --server ADDR ...  concurrent G.711 calls through Plateau: loss, latency
`

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
	e := &env{stdout: os.Stdout, stderr: os.Stderr, stdin: os.Stdin, now: time.Now, drain: drain}
	code := run(ctx, e, os.Args[1:])
	signal.Stop(sigs)
	os.Exit(code)
}

func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage)
		return exitUsage
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		err = runServe(ctx, e, rest)
	case "check-config":
		err = runCheckConfig(e, rest)
	case "user":
		err = runUser(ctx, e, rest)
	case "allowlist":
		err = runAllowlist(ctx, e, rest)
	case "audit":
		err = runAudit(ctx, e, rest)
	case "campaign":
		err = runCampaign(ctx, e, rest)
	case "recordings":
		err = runRecordings(ctx, e, rest)
	case "recorder":
		err = runRecorder(ctx, e, rest)
	case "pstn-sim":
		err = runPSTNSim(ctx, e, rest)
	case "dial":
		err = runDial(ctx, e, rest)
	case "loadgen":
		err = runLoadgen(ctx, e, rest)
	case "help", "-h", "--help":
		fmt.Fprint(e.stdout, usage)
		return 0
	default:
		err = usagef("unknown command %q (see plateau help)", cmd)
	}
	if err == nil {
		return 0
	}
	fmt.Fprintln(e.stderr, "plateau:", err)
	var ue usageError
	if errors.As(err, &ue) || errors.Is(err, config.ErrInvalid) || errors.Is(err, flag.ErrHelp) {
		return exitUsage
	}
	return exitFail
}

// newFlags makes a flag set that reports errors instead of exiting.
func newFlags(e *env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

// parseFlags parses and turns flag errors into usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
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
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if _, err := config.Load(*path); err != nil {
		return fmt.Errorf("%s: %w", *path, err)
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
