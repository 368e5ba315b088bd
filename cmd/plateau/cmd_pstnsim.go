package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"plateau/sim"
)

// runPSTNSim runs the simulated outside world: `plateau pstn-sim -c FILE`.
// With --call it also places one call toward Plateau and exits when it ends.
func runPSTNSim(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "pstn-sim")
	path := fs.String("c", "configs/pstn-sim.yaml", "pstn-sim configuration file")
	listen := fs.String("listen", "", "override the config's listen address (host:port)")
	call := fs.String("call", "", "place one call to this number toward Plateau, then exit")
	from := fs.String("from", "+33240999999", "caller number for --call")
	to := fs.String("to", "127.0.0.1:5060", "where --call sends its INVITE (Plateau's SIP address, UDP)")
	seconds := fs.Int("seconds", 10, "how long the --call stays up before the simulator hangs up")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("pstn-sim: unexpected argument %q (flags only, e.g. plateau pstn-sim -c configs/pstn-sim.yaml)", fs.Arg(0))
	}
	if *seconds < 1 {
		return usagef("pstn-sim: --seconds must be at least 1")
	}
	cfg, err := sim.LoadConfig(*path)
	if err != nil {
		return fmt.Errorf("%s: %w", *path, err)
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	// Labelled: make run prints these lines among Plateau's own.
	log := slog.New(slog.NewTextHandler(e.stdout, nil)).With("component", "pstn-sim")
	p, err := sim.New(cfg, sim.WithLogger(log), sim.WithClock(e.now))
	if err != nil {
		return fmt.Errorf("%s: %w", *path, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- p.Serve(ctx) }()
	if *call == "" {
		return <-served
	}
	st, callErr := p.Call(ctx, *to, *call, *from, time.Duration(*seconds)*time.Second)
	cancel()
	if err := <-served; err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "call %s → %s: status %d, RTP: sent %d, received %d packets\n", *from, *call, st.Status, st.RTPSent, st.RTPRecv)
	if callErr != nil {
		return callErr
	}
	if st.RTPRecv == 0 {
		return fmt.Errorf("call %s: answered but no RTP received", *call)
	}
	return nil
}
