package main

import (
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"plateau/config"
	"plateau/policy"
	"plateau/store"
)

// runAllowlist administers the allowlist. Every change goes through the
// store, which enforces the two-person rule and writes the audit entry in
// the same transaction, so a refused or failed command leaves nothing
// behind. The --by extension is asserted by whoever runs the command: the
// CLI is for administrators with shell access, whose own access is logged
// by the host.
func runAllowlist(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usagef("allowlist: want add, approve, reject, revoke, list or export")
	}
	sub := args[0]
	fs := newFlags(e, "allowlist "+sub)
	path := configFlag(fs)
	switch sub {
	case "add":
		by := fs.String("by", "", "extension of the person proposing (required)")
		label := fs.String("label", "", "who the number is, e.g. \"Cabinet Martin, architectes\"")
		campaign := fs.String("campaign", "", "campaign the numbers belong to")
		until := fs.String("valid-until", "", "last day the numbers may be called, YYYY-MM-DD in the site's time zone")
		note := fs.String("note", "", "free text kept with the entries")
		if err := parseInterleaved(e, fs, args[1:]); err != nil {
			return err
		}
		if *by == "" || fs.NArg() == 0 {
			return usagef("allowlist add: want --by EXT and at least one number, e.g. plateau allowlist add --by 101 --label \"Cabinet A\" \"02 40 12 34 56\"")
		}
		cfg, st, err := openStore(ctx, *path)
		if err != nil {
			return err
		}
		defer st.Close()
		var validUntil time.Time
		if *until != "" {
			if validUntil, err = endOfDay(cfg, *until); err != nil {
				return err
			}
		}
		// Normalise every number before writing any, so one typo proposes none.
		var ps []store.Proposal
		for _, raw := range fs.Args() {
			n, err := policy.Normalize(raw, cfg.Site.DefaultRegion)
			if err != nil {
				return usagef("allowlist add: %v", err)
			}
			ps = append(ps, store.Proposal{E164: n, Label: *label, Campaign: *campaign, ValidUntil: validUntil, Note: *note})
		}
		es, err := st.ProposeAllowlist(ctx, change(e, *by, *note), ps)
		if err != nil {
			return allowlistErr(err)
		}
		ids := make([]string, len(es))
		for i, en := range es {
			ids[i] = strconv.FormatInt(en.ID, 10)
			fmt.Fprintf(e.stdout, "proposed #%d %s%s\n", en.ID, en.E164, campaignSuffix(en.Campaign))
		}
		fmt.Fprintf(e.stdout, "a security officer other than %s must approve: plateau allowlist approve --by EXT %s\n", *by, strings.Join(ids, " "))
		return nil
	case "approve", "reject":
		by := fs.String("by", "", "extension of the security officer deciding (required)")
		note := fs.String("note", "", "reason, kept with the entries and in the audit log")
		var campaign *string
		var all *bool
		if sub == "approve" {
			campaign = fs.String("campaign", "", "approve every proposed entry of this campaign")
			all = fs.Bool("all", false, "approve every proposed entry")
		}
		if err := parseInterleaved(e, fs, args[1:]); err != nil {
			return err
		}
		var sel store.Selection
		for _, a := range fs.Args() {
			id, err := strconv.ParseInt(strings.TrimPrefix(a, "#"), 10, 64)
			if err != nil || id <= 0 {
				return usagef("allowlist %s: %q is not an entry id (see plateau allowlist list)", sub, a)
			}
			sel.IDs = append(sel.IDs, id)
		}
		if campaign != nil {
			sel.Campaign, sel.All = *campaign, *all
		}
		picks := 0
		for _, p := range []bool{len(sel.IDs) > 0, sel.Campaign != "", sel.All} {
			if p {
				picks++
			}
		}
		if *by == "" || picks != 1 {
			if sub == "approve" {
				return usagef("allowlist approve: want --by EXT and one of: ids, --campaign C, --all")
			}
			return usagef("allowlist reject: want --by EXT and entry ids")
		}
		_, st, err := openStore(ctx, *path)
		if err != nil {
			return err
		}
		defer st.Close()
		var es []store.AllowEntry
		if sub == "approve" {
			es, err = st.ApproveAllowlist(ctx, change(e, *by, *note), sel)
		} else {
			es, err = st.RejectAllowlist(ctx, change(e, *by, *note), sel.IDs)
		}
		if err != nil {
			return allowlistErr(err)
		}
		for _, en := range es {
			fmt.Fprintf(e.stdout, "%s #%d %s%s (proposed by %s)\n", en.Status, en.ID, en.E164, campaignSuffix(en.Campaign), en.ProposedBy)
		}
		return nil
	case "revoke":
		by := fs.String("by", "", "extension of the security officer revoking (required)")
		note := fs.String("note", "", "reason, kept with the entries and in the audit log")
		if err := parseInterleaved(e, fs, args[1:]); err != nil {
			return err
		}
		if *by == "" || fs.NArg() != 1 {
			return usagef("allowlist revoke: want --by EXT and one number")
		}
		cfg, st, err := openStore(ctx, *path)
		if err != nil {
			return err
		}
		defer st.Close()
		n, err := policy.Normalize(fs.Arg(0), cfg.Site.DefaultRegion)
		if err != nil {
			return usagef("allowlist revoke: %v", err)
		}
		es, err := st.RevokeAllowlist(ctx, change(e, *by, *note), n)
		if err != nil {
			return allowlistErr(err)
		}
		for _, en := range es {
			fmt.Fprintf(e.stdout, "revoked #%d %s%s\n", en.ID, en.E164, campaignSuffix(en.Campaign))
		}
		return nil
	case "list":
		status := fs.String("status", "", "only entries in this state: proposed, approved, rejected, revoked")
		campaign := fs.String("campaign", "", "only entries of this campaign")
		if err := parseInterleaved(e, fs, args[1:]); err != nil {
			return err
		}
		if *status != "" && !store.ValidAllowStatus(store.AllowStatus(*status)) {
			return usagef("allowlist list: --status %q is not proposed, approved, rejected or revoked", *status)
		}
		if fs.NArg() != 0 {
			return usagef("allowlist list: unexpected argument %q", fs.Arg(0))
		}
		cfg, st, err := openStore(ctx, *path)
		if err != nil {
			return err
		}
		defer st.Close()
		es, err := st.Allowlist(ctx, store.AllowFilter{Status: store.AllowStatus(*status), Campaign: *campaign})
		if err != nil {
			return err
		}
		loc := siteLocation(cfg)
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNUMBER\tLABEL\tCAMPAIGN\tSTATUS\tPROPOSED BY\tDECIDED BY\tVALID UNTIL")
		for _, en := range es {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", en.ID, en.E164, dash(en.Label), dash(en.Campaign),
				en.Status, en.ProposedBy, dash(en.DecidedBy), dash(localTime(en.ValidUntil, loc)))
		}
		return tw.Flush()
	case "export":
		out := fs.String("o", "", "write CSV to this file instead of standard output")
		status := fs.String("status", "", "only entries in this state")
		if err := parseInterleaved(e, fs, args[1:]); err != nil {
			return err
		}
		if *status != "" && !store.ValidAllowStatus(store.AllowStatus(*status)) {
			return usagef("allowlist export: --status %q is not proposed, approved, rejected or revoked", *status)
		}
		cfg, st, err := openStore(ctx, *path)
		if err != nil {
			return err
		}
		defer st.Close()
		es, err := st.Allowlist(ctx, store.AllowFilter{Status: store.AllowStatus(*status)})
		if err != nil {
			return err
		}
		if *out == "" {
			return writeAllowlistCSV(e.stdout, es, siteLocation(cfg))
		}
		if err := writeFileAtomic(*out, func(w io.Writer) error { return writeAllowlistCSV(w, es, siteLocation(cfg)) }); err != nil {
			return fmt.Errorf("allowlist export: %w", err)
		}
		fmt.Fprintf(e.stdout, "exported %d entries to %s\n", len(es), *out)
		return nil
	}
	return usagef("allowlist: unknown subcommand %q (add, approve, reject, revoke, list, export)", sub)
}

// parseInterleaved accepts flags after positional arguments too
// ("approve 3 4 --by 302"), which the flag package alone stops at. A bad
// flag is one line on stderr; the flag list is printed only for -h.
func parseInterleaved(e *env, fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(e.stderr)
				fmt.Fprintf(e.stderr, "usage of plateau %s:\n", fs.Name())
				fs.PrintDefaults()
			}
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return fs.Parse(append([]string{"--"}, pos...))
}

func change(e *env, by, note string) store.Change {
	return store.Change{By: by, Source: "cli", At: e.now(), Note: note}
}

// allowlistErr turns the store's rule violations into usage errors (exit 2,
// one line saying what to change); anything else is a runtime failure.
func allowlistErr(err error) error {
	for _, target := range []error{store.ErrSelfApproval, store.ErrNotApprover, store.ErrNotProposed, store.ErrInvalidE164,
		store.ErrNoSelection, store.ErrUserInactive, store.ErrNotFound, store.ErrExists} {
		if errors.Is(err, target) {
			return usagef("allowlist %v", err)
		}
	}
	return err
}

func siteLocation(cfg *config.Config) *time.Location {
	loc, err := time.LoadLocation(cfg.Site.Timezone)
	if err != nil { // validated at load; UTC only if the zone database vanished since
		return time.UTC
	}
	return loc
}

// endOfDay reads a date in the site's zone as "valid through that day": the
// entry ends at the following local midnight.
func endOfDay(cfg *config.Config, s string) (time.Time, error) {
	d, err := time.ParseInLocation(time.DateOnly, s, siteLocation(cfg))
	if err != nil {
		return time.Time{}, usagef("--valid-until %q is not a date YYYY-MM-DD", s)
	}
	return d.AddDate(0, 0, 1), nil
}

func localTime(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	return t.In(loc).Format(time.RFC3339)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func campaignSuffix(c string) string {
	if c == "" {
		return ""
	}
	return " (campaign " + c + ")"
}

func writeAllowlistCSV(w io.Writer, es []store.AllowEntry, loc *time.Location) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"number", "label", "campaign", "status", "proposed_by", "proposed_at", "approved_by", "approved_at", "valid_from", "valid_until"})
	for _, en := range es {
		var approvedBy, approvedAt string
		if en.Status == store.AllowApproved || en.Status == store.AllowRevoked {
			approvedBy, approvedAt = en.DecidedBy, localTime(en.DecidedAt, loc)
		}
		cw.Write([]string{en.E164, csvText(en.Label), csvText(en.Campaign), string(en.Status), csvText(en.ProposedBy),
			localTime(en.ProposedAt, loc), csvText(approvedBy), approvedAt, localTime(en.ValidFrom, loc), localTime(en.ValidUntil, loc)})
	}
	cw.Flush()
	return cw.Error()
}

// csvText defuses spreadsheet formulas in free text: security staff open
// these exports in spreadsheets, and a label is typed by anyone who may
// propose. (Numbers are E.164, "+" then digits, and are left alone.)
func csvText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// writeFileAtomic writes through a temporary file and a rename, so a failed
// export never leaves a truncated file where the previous one was.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".export-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
