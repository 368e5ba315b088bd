package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"text/tabwriter"
	"time"

	"plateau/audit"
	"plateau/config"
	"plateau/policy"
	"plateau/recordings"
	"plateau/store"
)

// errRecordingsProblems makes verify and repair exit 1 when they find
// something wrong with the data: a finding, not a usage mistake.
var errRecordingsProblems = errors.New("recordings problems found")

// runRecordings administers recordings on the same config and database as
// the server. list, verify and hold are safe while it runs; repair is not
// (it would race files being written) and refuses while the server holds
// the recordings directory's lock.
func runRecordings(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usagef("recordings: want list, verify, repair or hold")
	}
	sub := args[0]
	fs := newFlags(e, "recordings "+sub)
	path := configFlag(fs)
	switch sub {
	case "list":
		operator := fs.String("operator", "", "only recordings of this operator extension")
		number := fs.String("number", "", "only recordings of this number (any format the site understands)")
		campaign := fs.String("campaign", "", "only recordings of this campaign")
		disposition := fs.String("disposition", "", "only recordings with this disposition")
		state := fs.String("state", "", "only recordings in this state: open, closed, repaired, failed, deleted")
		since := fs.String("since", "", "only recordings started on or after this day (YYYY-MM-DD, site time zone) or time (RFC 3339)")
		until := fs.String("until", "", "only recordings started up to this day included, or before this time")
		limit := fs.Int("limit", 50, "at most this many recordings, newest first")
		if err := parseInterleaved(e, fs, args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 0 {
			return usagef("recordings list: unexpected argument %q", fs.Arg(0))
		}
		if *limit < 1 {
			return usagef("recordings list: --limit must be at least 1")
		}
		if *state != "" && !validState(recordings.State(*state)) {
			return usagef("recordings list: --state %q is not open, closed, repaired, failed or deleted", *state)
		}
		cfg, st, err := openStore(ctx, *path)
		if err != nil {
			return err
		}
		defer st.Close()
		f := recordings.Filter{Operator: *operator, Campaign: *campaign, Disposition: *disposition,
			State: recordings.State(*state), Limit: *limit}
		if *number != "" {
			if f.Number, err = policy.Normalize(*number, cfg.Site.DefaultRegion); err != nil {
				return usagef("recordings list: --number: %v", err)
			}
		}
		if f.Since, err = parseDay(cfg, "--since", *since, false); err != nil {
			return err
		}
		if f.Until, err = parseDay(cfg, "--until", *until, true); err != nil {
			return err
		}
		rs, err := recordings.NewDBIndex(st.DB()).Search(ctx, f)
		if err != nil {
			return err
		}
		loc := siteLocation(cfg)
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTART\tDURATION\tOPERATOR\tNUMBER\tCAMPAIGN\tSTATE\tHOLD\tSHA256\tPATH")
		for _, r := range rs {
			hold := "-"
			if r.LegalHold {
				hold = "yes"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, localTime(r.Start, loc),
				(time.Duration(r.DurationMS) * time.Millisecond).String(), dash(r.Operator), dash(r.Number),
				dash(r.Campaign), r.State, hold, dash(short(r.SHA256)), r.Path)
		}
		return tw.Flush()
	case "verify":
		since := fs.String("since", "", "only recordings started on or after this day (YYYY-MM-DD, site time zone) or time (RFC 3339)")
		by := fs.String("by", "cli", "who runs the verification, for the audit log")
		if err := parseInterleaved(e, fs, args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 0 {
			return usagef("recordings verify: unexpected argument %q", fs.Arg(0))
		}
		cfg, st, err := openStore(ctx, *path)
		if err != nil {
			return err
		}
		defer st.Close()
		from, err := parseDay(cfg, "--since", *since, false)
		if err != nil {
			return err
		}
		rep, err := recordings.Verify(ctx, cfg.RecordingsDir(), recordings.NewDBIndex(st.DB()), from)
		if err != nil {
			return err
		}
		for _, p := range rep.Problems {
			fmt.Fprintln(e.stdout, p)
		}
		fmt.Fprintf(e.stdout, "%d recordings verified, %d problems", rep.Verified, len(rep.Problems))
		if rep.Open > 0 {
			fmt.Fprintf(e.stdout, ", %d open (in progress, or awaiting plateau recordings repair)", rep.Open)
		}
		fmt.Fprintln(e.stdout)
		if err := auditVerify(ctx, e, st, *by, *since, rep); err != nil {
			return err
		}
		if !rep.OK() {
			return fmt.Errorf("%w: %d (listed above)", errRecordingsProblems, len(rep.Problems))
		}
		return nil
	case "repair":
		by := fs.String("by", "cli", "who runs the repair, for the audit log")
		if err := parseInterleaved(e, fs, args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 0 {
			return usagef("recordings repair: unexpected argument %q", fs.Arg(0))
		}
		cfg, st, err := openStore(ctx, *path)
		if err != nil {
			return err
		}
		defer st.Close()
		lock, err := recordings.LockDir(cfg.RecordingsDir())
		if err != nil {
			return err
		}
		defer lock.Close()
		outs, err := recordings.RepairOpen(ctx, cfg.RecordingsDir(), recordings.NewDBIndex(st.DB()), *by, e.now)
		bad := 0
		for _, o := range outs {
			if o.Err != nil {
				bad++
				fmt.Fprintf(e.stdout, "%s %s: %v\n", o.State, o.Path, o.Err)
				continue
			}
			fmt.Fprintf(e.stdout, "repaired %s: %v of audio, %d bytes cut\n", o.Path, o.Result.Duration, o.Result.TruncatedBytes)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%d recordings repaired, %d problems\n", len(outs)-bad, bad)
		if bad > 0 {
			return fmt.Errorf("%w: %d (listed above)", errRecordingsProblems, bad)
		}
		return nil
	case "hold":
		on := fs.Bool("on", false, "set the legal hold: the recording is never deleted by retention")
		off := fs.Bool("off", false, "clear the legal hold")
		by := fs.String("by", "", "extension of the security officer or admin (required)")
		if err := parseInterleaved(e, fs, args[1:]); err != nil {
			return err
		}
		if *on == *off || *by == "" || fs.NArg() != 1 {
			return usagef("recordings hold: want --on or --off, --by EXT and one recording id, e.g. plateau recordings hold --on --by 301 ID")
		}
		_, st, err := openStore(ctx, *path)
		if err != nil {
			return err
		}
		defer st.Close()
		u, err := st.User(ctx, *by)
		if errors.Is(err, store.ErrNotFound) {
			return usagef("recordings hold: --by %s is not a user", *by)
		} else if err != nil {
			return err
		}
		if u.Status != store.StatusActive || (u.Role != store.RoleSecurity && u.Role != store.RoleAdmin) {
			return usagef("recordings hold: %s is a %s %s user; only active security officers and admins may change a legal hold", *by, u.Status, u.Role)
		}
		err = recordings.NewDBIndex(st.DB()).SetHold(ctx, fs.Arg(0), *on, *by, "cli", e.now())
		if errors.Is(err, recordings.ErrUnknown) || errors.Is(err, recordings.ErrDeleted) || errors.Is(err, recordings.ErrNoChange) {
			return usagef("recordings hold: %v", err)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "legal hold %s for %s\n", onOff(*on), fs.Arg(0))
		return nil
	}
	return usagef("recordings: unknown subcommand %q (list, verify, repair, hold)", sub)
}

// auditVerify chains the verification run (recordings.verified).
func auditVerify(ctx context.Context, e *env, st *store.Store, by, since string, rep recordings.VerifyReport) error {
	if _, err := audit.New(st.DB(), e.now).Append(ctx, rep.AuditEntry(by, "cli", since)); err != nil {
		return fmt.Errorf("recordings verify: audit: %w", err)
	}
	return nil
}

// startRecordings prepares the recorder for `plateau serve`: it takes the
// recordings directory's lock (held until the server exits, so an offline
// repair or a second server cannot touch live files) and repairs every
// recording left open, which at this point can only be a crash's, before
// any call is accepted.
func startRecordings(ctx context.Context, cfg *config.Config, st *store.Store, log *slog.Logger, now func() time.Time) (*recordings.DBIndex, *recordings.DirLock, error) {
	lock, err := recordings.LockDir(cfg.RecordingsDir())
	if err != nil {
		return nil, nil, fmt.Errorf("recordings.dir: %w", err)
	}
	idx := recordings.NewDBIndex(st.DB())
	outs, err := recordings.RepairOpen(ctx, cfg.RecordingsDir(), idx, "system", now)
	if err != nil {
		lock.Close()
		return nil, nil, fmt.Errorf("recordings repair: %w", err)
	}
	for _, o := range outs {
		if o.Err != nil {
			log.Error("recording left by a crash could not be repaired", "recording", o.ID, "path", o.Path, "state", o.State, "err", o.Err)
			continue
		}
		log.Warn("recording left by a crash repaired", "recording", o.ID, "path", o.Path, "duration", o.Result.Duration)
	}
	return idx, lock, nil
}

// parseDay reads a day in the site's zone (YYYY-MM-DD) or an RFC 3339
// time. As an upper bound, a day means "through that day".
func parseDay(cfg *config.Config, flag, s string, endOfDay bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseInLocation(time.DateOnly, s, siteLocation(cfg))
	if err != nil {
		return time.Time{}, usagef("%s %q is not a date YYYY-MM-DD or a time such as 2026-05-01T07:30:00+02:00", flag, s)
	}
	if endOfDay {
		d = d.AddDate(0, 0, 1)
	}
	return d, nil
}

func validState(s recordings.State) bool {
	switch s {
	case recordings.StateOpen, recordings.StateClosed, recordings.StateRepaired, recordings.StateFailed, recordings.StateDeleted:
		return true
	}
	return false
}

func short(sum string) string {
	if len(sum) > 16 {
		return sum[:16]
	}
	return sum
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}
