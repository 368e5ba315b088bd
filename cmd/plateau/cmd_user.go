package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"plateau/auth"
	"plateau/config"
	"plateau/store"
)

var extensionRE = regexp.MustCompile(`^[0-9]{2,8}$`)

func runUser(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usagef("user: want add, list, suspend, activate or passwd")
	}
	if args[0] == "train" || args[0] == "signoff" {
		return runUserTraining(ctx, e, args) // cmd_training.go
	}
	fs := newFlags(e, "user "+args[0])
	path := configFlag(fs)
	switch args[0] {
	case "add":
		name := fs.String("name", "", "display name")
		role := fs.String("role", "operator", "operator, supervisor, security or admin")
		sipPass := fs.String("sip-password", "", "SIP digest password (or - to read from stdin)")
		webPass := fs.String("web-password", "", "web console password (or - to read from stdin)")
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 || !extensionRE.MatchString(fs.Arg(0)) {
			return usagef("user add: want one extension of 2 to 8 digits, e.g. plateau user add --role operator --name \"Jean\" 103")
		}
		if !store.ValidRole(store.Role(*role)) {
			return usagef("user add: --role %q is not operator, supervisor, security or admin", *role)
		}
		sp, wp, err := readSecrets(e, *sipPass, *webPass)
		if err != nil {
			return err
		}
		cfg, st, err := openStore(ctx, *path)
		if err != nil {
			return err
		}
		defer st.Close()
		u, err := newUser(cfg, fs.Arg(0), *name, store.Role(*role), sp, wp)
		if err != nil {
			return err
		}
		if err := st.AddUser(ctx, u, e.now()); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "user %s added (%s)\n", u.Extension, u.Role)
		return nil
	case "list":
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		_, st, err := openStore(ctx, *path)
		if err != nil {
			return err
		}
		defer st.Close()
		return listUsers(ctx, e, st)
	case "suspend", "activate":
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return usagef("user %s: want one extension", args[0])
		}
		_, st, err := openStore(ctx, *path)
		if err != nil {
			return err
		}
		defer st.Close()
		status := store.StatusSuspended
		if args[0] == "activate" {
			status = store.StatusActive
		}
		if err := st.SetUserStatus(ctx, fs.Arg(0), status, e.now()); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "user %s %s\n", fs.Arg(0), status)
		return nil
	case "passwd":
		sipPass := fs.String("sip-password", "", "new SIP digest password (or - for stdin)")
		webPass := fs.String("web-password", "", "new web password (or - for stdin)")
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 || (*sipPass == "" && *webPass == "") {
			return usagef("user passwd: want --sip-password and/or --web-password and one extension")
		}
		sp, wp, err := readSecrets(e, *sipPass, *webPass)
		if err != nil {
			return err
		}
		cfg, st, err := openStore(ctx, *path)
		if err != nil {
			return err
		}
		defer st.Close()
		ext := fs.Arg(0)
		if _, err := st.User(ctx, ext); err != nil {
			return err
		}
		// auth.NewSecrets checks and hashes before anything is written, so
		// a bad password changes nothing; the admin console does the same.
		sec, err := auth.NewSecrets(ext, cfg.SIP.Realm, sp, wp)
		if err != nil {
			return usagef("user passwd: %v", err)
		}
		if err := st.SetSecrets(ctx, ext, sec.HA1MD5, sec.HA1SHA256, sec.WebHash, e.now()); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "user %s: password changed\n", ext)
		return nil
	}
	return usagef("user: unknown subcommand %q (add, list, suspend, activate, passwd)", args[0])
}

// readSecrets reads "-" values from stdin, one line each, so that passwords
// need not appear in the process list.
func readSecrets(e *env, sip, web string) (string, string, error) {
	var lines []string
	if sip == "-" || web == "-" {
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := e.stdin.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		lines = strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	}
	next := func(v string) (string, error) {
		if v != "-" {
			return v, nil
		}
		if len(lines) == 0 || lines[0] == "" {
			return "", usagef("expected a password on standard input")
		}
		l := lines[0]
		lines = lines[1:]
		return l, nil
	}
	s, err := next(sip)
	if err != nil {
		return "", "", err
	}
	w, err := next(web)
	return s, w, err
}

// newUser builds a user with hashed secrets.
func newUser(cfg *config.Config, ext, name string, role store.Role, sipPass, webPass string) (store.User, error) {
	u := store.User{Extension: ext, DisplayName: name, Role: role, Status: store.StatusActive}
	if u.DisplayName == "" {
		u.DisplayName = ext
	}
	if sipPass != "" {
		u.HA1MD5 = auth.HA1MD5(ext, cfg.SIP.Realm, sipPass)
		u.HA1SHA256 = auth.HA1SHA256(ext, cfg.SIP.Realm, sipPass)
	}
	if webPass != "" {
		h, err := auth.HashPassword(webPass)
		if err != nil {
			return u, usagef("user %s: web password: %v", ext, err)
		}
		u.WebPassword = h
	}
	return u, nil
}

func listUsers(ctx context.Context, e *env, st *store.Store) error {
	users, err := st.Users(ctx)
	if err != nil {
		return err
	}
	bindings, err := st.Bindings(ctx, "", e.now())
	if err != nil {
		return err
	}
	byExt := map[string][]store.Binding{}
	for _, b := range bindings {
		byExt[b.Extension] = append(byExt[b.Extension], b)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EXTENSION\tNAME\tROLE\tSTATUS\tSIP\tWEB\tREGISTERED")
	for _, u := range users {
		reg := "-"
		for i, b := range byExt[u.Extension] {
			if i == 0 {
				reg = ""
			} else {
				reg += ", "
			}
			reg += fmt.Sprintf("%s (%s, %ds)", b.Contact, b.Transport, int(b.ExpiresAt.Sub(e.now())/time.Second))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", u.Extension, u.DisplayName, u.Role, u.Status,
			yesNo(u.HA1MD5 != ""), yesNo(u.WebPassword != ""), reg)
	}
	return tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// bootstrapUsers creates the config's users that do not exist yet; existing
// users are left as they are (the database is the source of truth).
func bootstrapUsers(ctx context.Context, cfg *config.Config, st *store.Store, now time.Time) (int, error) {
	n := 0
	for i, cu := range cfg.Users {
		if _, err := st.User(ctx, cu.Extension); err == nil {
			continue
		} else if !errors.Is(err, store.ErrNotFound) {
			return n, err
		}
		sp, err := cfg.Secret(cu.SIPPassword, cu.SIPPasswordFile)
		if err != nil {
			return n, fmt.Errorf("users[%d].sip_password_file: %w", i, err)
		}
		wp, err := cfg.Secret(cu.WebPassword, cu.WebPasswordFile)
		if err != nil {
			return n, fmt.Errorf("users[%d].web_password_file: %w", i, err)
		}
		u, err := newUser(cfg, cu.Extension, cu.Name, store.Role(cu.Role), sp, wp)
		if err != nil {
			return n, fmt.Errorf("users[%d]: %w", i, err)
		}
		if err := st.AddUser(ctx, u, now); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
