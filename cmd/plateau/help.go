package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"plateau/config"
)

// command is one line of the help: what a command does and an example.
// The table is the only list of commands: `plateau help`, `plateau X
// --help`, the flag usage of each command and the "did you mean" of a
// mistyped one all read it, and TestHelpTable runs every entry, so a
// command cannot be missing from the help.
type command struct {
	name    string
	summary string
	example string
	subs    []command // a group's subcommands; nil for a plain command
}

var commands = []command{
	{name: "serve", summary: "run the gateway: SIP, media, recorder, web (SIGTERM drains, SIGINT stops)",
		example: "plateau serve -c configs/plateau.yaml"},
	{name: "check-config", summary: "validate a configuration and exit",
		example: "plateau check-config -c configs/plateau.yaml"},
	{name: "dial", summary: "a test phone: register, place one call through Plateau, print each SIP step and the recording",
		example: "plateau dial --as 101 '02 40 12 34 56'"},
	{name: "user", summary: "operators, supervisors, security officers, admins", subs: []command{
		{name: "add", summary: "create a user", example: `plateau user add --role operator --name "Jean" 103`},
		{name: "list", summary: "list users", example: "plateau user list"},
		{name: "suspend", summary: "suspend a user: no calls, no login", example: "plateau user suspend 103"},
		{name: "activate", summary: "reactivate a suspended user", example: "plateau user activate 103"},
		{name: "passwd", summary: "set a user's SIP and/or web password (- reads stdin)", example: "plateau user passwd --sip-password - 103"},
		{name: "train", summary: "put an operator in training: supervisors are offered their calls", example: "plateau user train --by 201 101"},
		{name: "signoff", summary: "a supervisor signs an operator's training off", example: "plateau user signoff --by 201 101"},
	}},
	{name: "allowlist", summary: "approved numbers: one person proposes, a security officer approves", subs: []command{
		{name: "add", summary: "propose numbers", example: `plateau allowlist add --by 301 --label "Cabinet A" "02 40 12 34 56"`},
		{name: "approve", summary: "approve proposed entries (another person than the proposer)", example: "plateau allowlist approve --by 302 --all"},
		{name: "reject", summary: "reject proposed entries", example: `plateau allowlist reject --by 302 --note "unknown firm" 7`},
		{name: "revoke", summary: "revoke an approved number", example: `plateau allowlist revoke --by 302 "02 40 12 34 56"`},
		{name: "list", summary: "list entries", example: "plateau allowlist list --status approved"},
		{name: "export", summary: "export entries as CSV", example: "plateau allowlist export -o allowlist.csv"},
	}},
	{name: "campaign", summary: "preview-dialer campaigns and their contacts", subs: []command{
		{name: "create", summary: "create a campaign", example: `plateau campaign create --by 201 --client "ACME" --operators 101,102 "Architectes Ouest"`},
		{name: "list", summary: "list campaigns", example: "plateau campaign list"},
		{name: "import", summary: "import contacts from CSV (UTF-8 or Windows-1252, ; or ,)", example: `plateau campaign import --campaign "Architectes Ouest" --by 201 contacts.csv`},
		{name: "export", summary: "export contacts and outcomes as CSV for the client", example: `plateau campaign export --campaign "Architectes Ouest" -o results.csv`},
		{name: "results", summary: "outcome counts of a campaign", example: `plateau campaign results --campaign "Architectes Ouest"`},
		{name: "activate", summary: "start handing out contacts", example: `plateau campaign activate --by 201 "Architectes Ouest"`},
		{name: "pause", summary: "stop handing out contacts for a while", example: `plateau campaign pause --by 201 "Architectes Ouest"`},
		{name: "finish", summary: "close a campaign for good", example: `plateau campaign finish --by 201 "Architectes Ouest"`},
	}},
	{name: "recordings", summary: "the call recordings and their index", subs: []command{
		{name: "list", summary: "list recordings (id, start of the audio, duration, path)", example: "plateau recordings list --operator 101"},
		{name: "verify", summary: "check every file against its SHA-256 in the index and audit chain", example: "plateau recordings verify"},
		{name: "repair", summary: "close recordings left open by a crash (server stopped)", example: "plateau recordings repair"},
		{name: "hold", summary: "set or clear a legal hold (retention keeps held recordings)", example: "plateau recordings hold --on --by 301 ID"},
	}},
	{name: "audit", summary: "the tamper-evident audit log", subs: []command{
		{name: "verify", summary: "check the hash chain; --head proves nothing was removed since", example: "plateau audit verify --head SEQ:SHA256"},
		{name: "list", summary: "list entries: every decision, recording and access", example: "plateau audit list"},
	}},
	{name: "recorder", summary: "the recorder alone on another host, for recordings.remote (SIPREC)",
		example: "plateau recorder -c configs/recorder.yaml"},
	{name: "pstn-sim", summary: "the simulated outside world of the demo and tests (answers, echoes; 0486 busy, …)",
		example: "plateau pstn-sim -c configs/pstn-sim.yaml"},
	{name: "loadgen", summary: "concurrent G.711 calls through Plateau: loss, latency (make bench)",
		example: "plateau loadgen --server 127.0.0.1:5060 --calls 100"},
	{name: "help", summary: "this help; plateau COMMAND --help for a command's subcommands and flags",
		example: "plateau campaign --help"},
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "help"
}

func findCommand(list []command, name string) (command, bool) {
	i := slices.IndexFunc(list, func(c command) bool { return c.name == name })
	if i < 0 {
		return command{}, false
	}
	return list[i], true
}

func names(list []command) []string {
	out := make([]string, len(list))
	for i, c := range list {
		out[i] = c.name
	}
	return out
}

// unknownName is the usage error of a mistyped (sub)command: the nearest
// name when there is one, else the list.
func unknownName(what, name string, list []command, helpCmd string) error {
	if c, ok := config.Closest(name, names(list)); ok {
		return usagef("%s %q (did you mean %s?); see %s", what, name, c, helpCmd)
	}
	return usagef("%s %q (%s); see %s", what, name, strings.Join(names(list), ", "), helpCmd)
}

// writeUsage prints the top-level help: every command and subcommand, one
// line each, with an example.
func writeUsage(w io.Writer) {
	fmt.Fprint(w, "usage: plateau COMMAND [SUBCOMMAND] [flags]\n\n"+
		"Every command reads -c FILE (default configs/plateau.yaml) and exits 0 on success,\n"+
		"1 on failure, 2 on bad usage or configuration. plateau COMMAND --help lists its flags.\n\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-14s %s\n", c.name, c.summary)
		if len(c.subs) == 0 {
			fmt.Fprintf(w, "  %-14s   e.g. %s\n", "", c.example)
			continue
		}
		for _, s := range c.subs {
			fmt.Fprintf(w, "    %-12s %s\n", s.name, s.summary)
			fmt.Fprintf(w, "    %-12s   e.g. %s\n", "", s.example)
		}
	}
}

// writeGroupUsage prints a group's subcommands.
func writeGroupUsage(w io.Writer, c command) {
	fmt.Fprintf(w, "usage: plateau %s SUBCOMMAND [flags]   (%s)\n\n", c.name, c.summary)
	for _, s := range c.subs {
		fmt.Fprintf(w, "  %-10s %s\n  %-10s   e.g. %s\n", s.name, s.summary, "", s.example)
	}
	fmt.Fprintf(w, "\nplateau %s SUBCOMMAND --help lists its flags.\n", c.name)
}

// lookupHelp finds the table entry of a flag set's name ("dial",
// "allowlist add").
func lookupHelp(name string) (command, bool) {
	group, sub, hasSub := strings.Cut(name, " ")
	c, ok := findCommand(commands, group)
	if !ok || !hasSub {
		return c, ok
	}
	return findCommand(c.subs, sub)
}

// wantsHelp reports whether args ask a command for its help, wherever the
// flag is: "plateau dial 0240123456 --help" too. Arguments after "--" are
// operands.
func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "-h" || a == "-help" || a == "--help" {
			return true
		}
	}
	return false
}

// printFlagHelp prints a command's help to w: its line of the table, its
// example and its flags.
func printFlagHelp(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: plateau %s [flags]\n", fs.Name())
	if c, ok := lookupHelp(fs.Name()); ok {
		fmt.Fprintf(w, "  %s\n  e.g. %s\n", c.summary, c.example)
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintln(w, "\nflags:")
		out := fs.Output()
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(out)
	}
}

// errHelpShown: the help was printed on request; the command exits 0.
var errHelpShown = errors.New("help shown")
