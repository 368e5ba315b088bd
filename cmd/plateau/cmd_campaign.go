package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"plateau/config"
	"plateau/dialer"
	"plateau/policy"
	"plateau/store"
)

// windowsFlag collects repeated --window "mon-fri 09:00-12:00" flags.
type windowsFlag []dialer.Window

func (w *windowsFlag) String() string { return fmt.Sprint(*w) }

func (w *windowsFlag) Set(s string) error {
	days, hours, ok := strings.Cut(strings.TrimSpace(s), " ")
	from, to, ok2 := strings.Cut(strings.TrimSpace(hours), "-")
	if !ok || !ok2 {
		return fmt.Errorf("%q: want DAYS HH:MM-HH:MM, e.g. \"mon-fri 09:00-12:00\"", s)
	}
	win := dialer.Window{Days: days, From: strings.TrimSpace(from), To: strings.TrimSpace(to)}
	if _, err := (config.Window{Days: win.Days, From: win.From, To: win.To}).Parse(); err != nil {
		return fmt.Errorf("%q: %v", s, err)
	}
	*w = append(*w, win)
	return nil
}

// runCampaign administers dialer campaigns. As with the allowlist, --by is
// the extension of the person acting (a supervisor or admin), asserted by
// whoever has shell access; every change is audited in its transaction.
func runCampaign(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usagef("campaign: want create, list, import, export, results, activate, pause or finish")
	}
	sub := args[0]
	fs := newFlags(e, "campaign "+sub)
	path := configFlag(fs)
	open := func() (*store.Store, *dialer.Service, error) {
		cfg, st, err := openStore(ctx, *path)
		if err != nil {
			return nil, nil, err
		}
		pcfg, err := policy.ConfigFrom(cfg)
		if err != nil {
			st.Close()
			return nil, nil, fmt.Errorf("%s: %w", *path, err)
		}
		svc, err := dialer.New(st, pcfg.Windows, pcfg.Region, dialer.WithClock(e.now))
		if err != nil {
			st.Close()
			return nil, nil, err
		}
		return st, svc, nil
	}
	// openCampaign opens the store and finds the named campaign; on error
	// nothing is left open.
	openCampaign := func(name string) (*store.Store, *dialer.Service, dialer.Campaign, error) {
		st, svc, err := open()
		if err != nil {
			return nil, nil, dialer.Campaign{}, err
		}
		c, err := svc.CampaignByName(ctx, name)
		if errors.Is(err, dialer.ErrNotFound) {
			err = usagef("campaign %q does not exist (see plateau campaign list)", name)
		}
		if err != nil {
			st.Close()
			return nil, nil, c, err
		}
		return st, svc, c, nil
	}
	switch sub {
	case "create":
		by := fs.String("by", "", "extension of the supervisor or admin creating it (required)")
		client := fs.String("client", "", "client company")
		script := fs.String("script", "", "Markdown file with the script shown to operators")
		ops := fs.String("operators", "", "comma-separated extensions of the operators assigned")
		maxAttempts := fs.Int("max-attempts", 0, "calls at most per contact, whatever the dispositions say (default 5)")
		var wins windowsFlag
		fs.Var(&wins, "window", "calling hours inside the site's, e.g. \"mon-fri 09:00-12:00\" (repeatable; default: the site's)")
		if err := parseInterleaved(e, fs, args[1:]); err != nil {
			return err
		}
		if *by == "" || fs.NArg() != 1 {
			return usagef("campaign create: want --by EXT and one name, e.g. plateau campaign create --by 201 --client \"ACME\" --operators 101,102 \"Architectes Ouest\"")
		}
		sp := dialer.CampaignSpec{Name: fs.Arg(0), Client: *client, Windows: wins, MaxAttempts: *maxAttempts}
		if *ops != "" {
			sp.Operators = strings.Split(*ops, ",")
		}
		if *script != "" {
			b, err := os.ReadFile(*script)
			if err != nil {
				return usagef("campaign create: --script: %v", err)
			}
			sp.Script = string(b)
		}
		st, svc, err := open()
		if err != nil {
			return err
		}
		defer st.Close()
		c, err := svc.CreateCampaign(ctx, change(e, *by, ""), sp)
		if err != nil {
			return campaignErr(err)
		}
		fmt.Fprintf(e.stdout, "created campaign #%d %q (draft); activate it with: plateau campaign activate --by %s %q\n", c.ID, c.Name, *by, c.Name)
		return nil
	case "list":
		if err := parseInterleaved(e, fs, args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 0 {
			return usagef("campaign list: unexpected argument %q", fs.Arg(0))
		}
		st, svc, err := open()
		if err != nil {
			return err
		}
		defer st.Close()
		cs, err := svc.Campaigns(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tCLIENT\tSTATUS\tOPERATORS\tCONTACTS\tOPEN\tAWAITING APPROVAL")
		for _, c := range cs {
			r, err := svc.Results(ctx, c.ID)
			if err != nil {
				return err
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%d\t%d\n", c.ID, c.Name, dash(c.Client), c.Status,
				dash(strings.Join(c.Operators, ",")), r.Contacts, r.Open, r.AwaitingApproval)
		}
		return tw.Flush()
	case "import":
		by := fs.String("by", "", "extension of the supervisor or admin importing (required)")
		name := fs.String("campaign", "", "campaign to import into (required)")
		if err := parseInterleaved(e, fs, args[1:]); err != nil {
			return err
		}
		if *by == "" || *name == "" || fs.NArg() != 1 {
			return usagef("campaign import: want --campaign NAME --by EXT and one CSV file")
		}
		data, err := os.ReadFile(fs.Arg(0))
		if err != nil {
			return usagef("campaign import: %v", err)
		}
		st, svc, c, err := openCampaign(*name)
		if err != nil {
			return err
		}
		defer st.Close()
		rep, err := svc.Import(ctx, change(e, *by, "file "+fs.Arg(0)), c.ID, data)
		if err != nil {
			return campaignErr(err)
		}
		for _, r := range rep.Rejected {
			fmt.Fprintf(e.stdout, "line %d: %s: %s", r.Line, r.Reason, r.Phone)
			if r.Detail != "" {
				fmt.Fprintf(e.stdout, " (%s)", r.Detail)
			}
			fmt.Fprintln(e.stdout)
		}
		fmt.Fprintf(e.stdout, "%s, %s-separated, %d rows: %d added, %d rejected, %d numbers proposed for the allowlist\n",
			rep.Encoding, sepName(rep.Separator), rep.Rows, rep.Added, len(rep.Rejected), rep.Proposed)
		if rep.Proposed > 0 {
			fmt.Fprintf(e.stdout, "a security officer other than %s must approve them: plateau allowlist approve --by EXT --campaign %q\n", *by, c.Name)
		}
		return nil
	case "export":
		name := fs.String("campaign", "", "campaign to export (required)")
		out := fs.String("o", "", "write CSV to this file instead of standard output")
		if err := parseInterleaved(e, fs, args[1:]); err != nil {
			return err
		}
		if *name == "" || fs.NArg() != 0 {
			return usagef("campaign export: want --campaign NAME [-o FILE]")
		}
		st, svc, c, err := openCampaign(*name)
		if err != nil {
			return err
		}
		defer st.Close()
		if *out == "" {
			return svc.Export(ctx, c.ID, e.stdout)
		}
		if err := writeFileAtomic(*out, func(w io.Writer) error { return svc.Export(ctx, c.ID, w) }); err != nil {
			return fmt.Errorf("campaign export: %w", err)
		}
		fmt.Fprintf(e.stdout, "exported campaign %q to %s\n", c.Name, *out)
		return nil
	case "results":
		name := fs.String("campaign", "", "campaign (required)")
		if err := parseInterleaved(e, fs, args[1:]); err != nil {
			return err
		}
		if *name == "" || fs.NArg() != 0 {
			return usagef("campaign results: want --campaign NAME")
		}
		st, svc, c, err := openCampaign(*name)
		if err != nil {
			return err
		}
		defer st.Close()
		r, err := svc.Results(ctx, c.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "campaign %q (%s): %d contacts (%d open, %d awaiting approval, %d awaiting a disposition, %d done), %d calls, %d reached\n",
			r.Campaign, r.Status, r.Contacts, r.Open, r.AwaitingApproval, r.Pending, r.Done, r.Attempts, r.Reached)
		for _, d := range c.Dispositions {
			fmt.Fprintf(e.stdout, "  %s: %d\n", d.Name, r.ByDisposition[d.Name])
		}
		return nil
	case "activate", "pause", "finish":
		by := fs.String("by", "", "extension of the supervisor or admin (required)")
		note := fs.String("note", "", "reason, kept in the audit log")
		name := fs.String("campaign", "", "campaign (or give its name as the argument)")
		if err := parseInterleaved(e, fs, args[1:]); err != nil {
			return err
		}
		if *name == "" && fs.NArg() == 1 {
			*name = fs.Arg(0)
		} else if fs.NArg() != 0 {
			return usagef("campaign %s: want --by EXT and one campaign name", sub)
		}
		if *by == "" || *name == "" {
			return usagef("campaign %s: want --by EXT and one campaign name", sub)
		}
		to := map[string]dialer.Status{"activate": dialer.Active, "pause": dialer.Paused, "finish": dialer.Finished}[sub]
		st, svc, c, err := openCampaign(*name)
		if err != nil {
			return err
		}
		defer st.Close()
		if c, err = svc.SetStatus(ctx, change(e, *by, *note), c.ID, to); err != nil {
			return campaignErr(err)
		}
		fmt.Fprintf(e.stdout, "campaign %q is %s\n", c.Name, c.Status)
		return nil
	}
	return usagef("campaign: unknown subcommand %q (create, list, import, export, results, activate, pause, finish)", sub)
}

func sepName(s string) string {
	switch s {
	case ";":
		return "semicolon"
	case "\t":
		return "tab"
	}
	return "comma"
}

// campaignErr turns errors a user causes into usage errors (exit 2, one
// line saying what to change).
func campaignErr(err error) error {
	for _, target := range []error{dialer.ErrInvalid, dialer.ErrForbidden, dialer.ErrExists, dialer.ErrNotFound,
		dialer.ErrUnreadableFile, store.ErrUserInactive} {
		if errors.Is(err, target) {
			return usagef("campaign %v", err)
		}
	}
	return err
}

var _ flag.Value = (*windowsFlag)(nil)
