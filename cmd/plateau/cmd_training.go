package main

import (
	"context"
	"fmt"

	"plateau/store"
)

// runUserTraining is "plateau user train|signoff --by EXT EXT": puts an
// operator in training (their calls are offered to an on-duty supervisor
// with a listen session) or records a supervisor's sign-off. Both are
// audited in the same transaction as the change.
func runUserTraining(ctx context.Context, e *env, args []string) error {
	sub := args[0]
	fs := newFlags(e, "user "+sub)
	path := configFlag(fs)
	by := fs.String("by", "", "extension of the supervisor (or admin) who decides")
	calls := fs.Int("calls", -1, "train: calls to coach (default monitoring.training_calls)")
	untilSignoff := fs.Bool("until-signoff", false, "train: coach every call until sign-off")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 || *by == "" {
		return usagef("user %s: want --by SUPERVISOR and one operator extension, e.g. plateau user %s --by 201 101", sub, sub)
	}
	ext := fs.Arg(0)
	cfg, st, err := openStore(ctx, *path)
	if err != nil {
		return err
	}
	defer st.Close()
	sup, err := st.User(ctx, *by)
	if err != nil {
		return usagef("user %s: --by %s: no such user", sub, *by)
	}
	if sup.Role != store.RoleSupervisor && sup.Role != store.RoleAdmin {
		return usagef("user %s: --by %s is a %s; only a supervisor or an admin may", sub, *by, sup.Role)
	}
	op, err := st.User(ctx, ext)
	if err != nil {
		return usagef("user %s: %s: no such user", sub, ext)
	}
	if op.Role != store.RoleOperator {
		return usagef("user %s: %s is a %s, not an operator", sub, ext, op.Role)
	}
	if sub == "signoff" {
		if err := st.SignOff(ctx, ext, *by, e.now()); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "operator %s signed off by %s\n", ext, *by)
		return nil
	}
	n := cfg.Monitoring.TrainingCalls
	switch {
	case *untilSignoff:
		n = 0
	case *calls == 0:
		return usagef("user train: --calls must be at least 1 (or use --until-signoff)")
	case *calls > 0:
		n = *calls
	}
	if err := st.StartTraining(ctx, ext, *by, n, e.now()); err != nil {
		return err
	}
	what := fmt.Sprintf("its next %d calls", n)
	if n == 0 {
		what = "every call until sign-off"
	}
	fmt.Fprintf(e.stdout, "operator %s in training: %s offered to a supervisor\n", ext, what)
	return nil
}
