package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"plateau/audit"
)

// errAuditBroken makes `plateau audit verify` exit 1 on a broken chain: it
// is a finding about the data, not a usage mistake.
type errAuditBroken struct{ rep audit.Report }

func (e errAuditBroken) Error() string {
	return fmt.Sprintf("audit chain broken at entry %d: %s", e.rep.BrokenAt, e.rep.Problem)
}

func runAudit(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usagef("audit: want verify or list")
	}
	fs := newFlags(e, "audit "+args[0])
	path := configFlag(fs)
	switch args[0] {
	case "verify":
		var heads []audit.Head
		fs.Func("head", "a head noted earlier, SEQ:SHA256 (repeatable): it must still be in the chain", func(v string) error {
			h, err := audit.ParseHead(v)
			heads = append(heads, h)
			return err
		})
		if err := parseInterleaved(e, fs, args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 0 {
			return usagef("audit verify: unexpected argument %q", fs.Arg(0))
		}
		_, st, err := openStore(ctx, *path)
		if err != nil {
			return err
		}
		defer st.Close()
		rep, err := audit.New(st.DB(), e.now).VerifyHeads(ctx, heads)
		if err != nil {
			return err
		}
		if !rep.OK {
			fmt.Fprintf(e.stdout, "audit chain broken at entry %d: %s\n", rep.BrokenAt, rep.Problem)
			return errAuditBroken{rep}
		}
		fmt.Fprintf(e.stdout, "audit chain ok: %d entries\n", rep.Entries)
		for _, h := range heads {
			fmt.Fprintf(e.stdout, "noted head %s: still in the chain\n", h)
		}
		// The head lets staff detect truncation or a rewrite later: note
		// it outside this machine and pass it back with --head.
		if rep.HeadSeq > 0 {
			fmt.Fprintf(e.stdout, "head: entry %d sha256 %s (check later with --head %s)\n", rep.HeadSeq, rep.Head, audit.Head{Seq: rep.HeadSeq, Hash: rep.Head})
		}
		return nil
	case "list":
		kind := fs.String("kind", "", "only entries of this kind, e.g. policy.decision, allowlist.approve")
		actor := fs.String("actor", "", "only entries by this actor")
		subject := fs.String("subject", "", "only entries about this subject (a number, a recording id)")
		limit := fs.Int("limit", 50, "at most this many entries, newest first")
		offset := fs.Int("offset", 0, "skip this many of the newest matching entries")
		if err := parseInterleaved(e, fs, args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 0 {
			return usagef("audit list: unexpected argument %q", fs.Arg(0))
		}
		if *limit < 1 || *offset < 0 {
			return usagef("audit list: --limit must be at least 1 and --offset not negative")
		}
		cfg, st, err := openStore(ctx, *path)
		if err != nil {
			return err
		}
		defer st.Close()
		recs, err := audit.New(st.DB(), e.now).List(ctx, audit.Filter{Kind: *kind, Actor: *actor, Subject: *subject, Limit: *limit, Offset: *offset})
		if err != nil {
			return err
		}
		loc := siteLocation(cfg)
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tTIME\tKIND\tACTOR\tSUBJECT\tOUTCOME\tREASON\tSOURCE\tDETAILS")
		for _, r := range recs {
			details := ""
			if len(r.Entry.Details) > 0 {
				b, _ := json.Marshal(r.Entry.Details)
				details = string(b)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Seq, localTime(r.Time, loc), r.Entry.Kind,
				dash(r.Entry.Actor), dash(r.Entry.Subject), dash(r.Entry.Outcome), dash(r.Entry.Reason), dash(r.Entry.Source), details)
		}
		return tw.Flush()
	}
	return usagef("audit: unknown subcommand %q (verify, list)", args[0])
}
