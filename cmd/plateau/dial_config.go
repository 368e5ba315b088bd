package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"plateau/config"
	"plateau/recordings"
	"plateau/store"
)

// explicitConfig reports whether -c was given on the command line.
func explicitConfig(fs *flag.FlagSet) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "c" })
	return set
}

// dialConfig loads dial's configuration: -c, or configs/plateau.yaml like
// every command. The default file may be missing when --password is given
// (dialling another host's Plateau); then cfg is nil.
func dialConfig(path string, explicit, needPassword bool) (*config.Config, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) && !explicit {
		if needPassword {
			return nil, usagef("dial: no password: %s is not here; pass --password, or -c FILE whose users: has the extension's sip_password", path)
		}
		return nil, nil
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// sipPasswordOf is the SIP password of ext among the config's bootstrap
// users, or a usage error naming the flag to pass.
func sipPasswordOf(cfg *config.Config, path, ext string) (string, error) {
	for _, u := range cfg.Users {
		if u.Extension != ext {
			continue
		}
		pw, err := cfg.Secret(u.SIPPassword, u.SIPPasswordFile)
		if err != nil {
			return "", fmt.Errorf("%s: users %s: %w", path, ext, err)
		}
		if pw == "" {
			return "", usagef("dial: %s's users: entry for %s has no sip_password; pass --password", path, ext)
		}
		return pw, nil
	}
	return "", usagef("dial: %s has no users: entry for %s; pass --password (or dial as one of its users)", path, ext)
}

// printRecording finds the call's recording in the index of the config's
// database (when this host has it) and prints its id and files. The
// recording is closed just after the hang-up, so wait a little for it.
func printRecording(ctx context.Context, e *env, cfg *config.Config, operator, callID string) {
	if _, err := os.Stat(cfg.DBPath()); err != nil {
		fmt.Fprintf(e.stdout, "… recording: no database at %s here; see plateau recordings list where plateau serve runs\n", cfg.DBPath())
		return
	}
	st, err := store.Open(ctx, cfg.DBPath())
	if err != nil {
		fmt.Fprintf(e.stdout, "… recording: %v\n", err)
		return
	}
	defer st.Close()
	idx := recordings.NewDBIndex(st.DB())
	deadline := time.Now().Add(5 * time.Second)
	for {
		// The operator's newest recordings, whatever the server's clock.
		rs, err := idx.Search(ctx, recordings.Filter{Operator: operator, Limit: 20})
		if err != nil {
			fmt.Fprintf(e.stdout, "… recording: %v\n", err)
			return
		}
		for _, r := range rs {
			if !slices.Contains(r.CallIDs, callID) {
				continue
			}
			if r.State == recordings.StateOpen && time.Now().Before(deadline) {
				break // still being closed: look again
			}
			wav := filepath.Join(cfg.RecordingsDir(), filepath.FromSlash(r.Path))
			fmt.Fprintf(e.stdout, "… recording %s (%s, %.1f s): %s\n", r.ID, r.State, float64(r.DurationMS)/1000, wav)
			fmt.Fprintf(e.stdout, "  sidecar %s; plateau recordings list --operator %s\n",
				filepath.Join(cfg.RecordingsDir(), filepath.FromSlash(r.SidecarRel())), operator)
			return
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(e.stdout, "… recording: none indexed for Call-ID %s in %s (recordings.remote?)\n", callID, cfg.DBPath())
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}
