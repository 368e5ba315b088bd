package store

import (
	"context"
	"database/sql"
	"fmt"

	"plateau/audit"
)

// The dialer imports a contact list and proposes its unapproved numbers in
// one transaction (an unreadable file or a failure half-way leaves nothing
// behind), and a "do not call" disposition lists the number in the same
// transaction as the disposition. These are the allowlist and do-not-call
// writes of allowlist.go, run inside a transaction the caller owns; the
// rules are the same (E.164 only, an active proposer, an audit entry per
// change in the same transaction). Approval stays in ApproveAllowlist: the
// dialer never approves anything.

// BeginTx starts a write transaction (BEGIN IMMEDIATE, from the DSN) for a
// package that keeps its own tables and must write them together with the
// allowlist or the do-not-call list.
func (s *Store) BeginTx(ctx context.Context) (*sql.Tx, error) { return s.db.BeginTx(ctx, nil) }

// ProposeAllowlistTx proposes numbers inside tx, as ProposeAllowlist does
// (E.164 only, an active proposer, a number already proposed or approved
// for the same campaign is ErrExists), for a bulk import: instead of one
// audit entry per number it writes a single "allowlist.propose.bulk" entry
// that lists every entry (id and number), with subject what (e.g. the
// campaign). One person's one decision is one entry; the allowlist rows
// themselves keep who proposed each number and when. Approval stays per
// entry, in ApproveAllowlist.
func ProposeAllowlistTx(ctx context.Context, tx *sql.Tx, c Change, what string, ps []Proposal) ([]AllowEntry, error) {
	if len(ps) == 0 {
		return nil, nil
	}
	if _, err := activeUser(ctx, tx, c.By); err != nil {
		return nil, fmt.Errorf("propose: %w", err)
	}
	ins, err := tx.PrepareContext(ctx, insertProposalSQL)
	if err != nil {
		return nil, err
	}
	defer ins.Close()
	out := make([]AllowEntry, 0, len(ps))
	listed := make([][2]any, 0, len(ps))
	at := formatTime(c.At)
	for _, p := range ps {
		if err := checkProposal(p, c); err != nil {
			return nil, err
		}
		id, err := insertProposal(ctx, ins, p, c)
		if err != nil {
			return nil, err
		}
		from := validFrom(p, c)
		out = append(out, AllowEntry{ID: id, E164: p.E164, Label: p.Label, Campaign: p.Campaign, Status: AllowProposed,
			ProposedBy: c.By, ProposedAt: ParseTime(at), ValidFrom: ParseTime(formatTime(from)), ValidUntil: p.ValidUntil, Note: p.Note})
		listed = append(listed, [2]any{id, p.E164})
	}
	d := map[string]any{"count": len(out), "entries": listed}
	if c.Note != "" {
		d["note"] = c.Note
	}
	_, err = audit.AppendTx(ctx, tx, c.At, audit.Entry{Kind: "allowlist.propose.bulk", Actor: c.By, Subject: what,
		Outcome: "ok", Source: c.Source, Details: d})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AddDNCTx is AddDNC inside tx; a number already listed is left as it is
// (added false, no error, no audit entry).
func AddDNCTx(ctx context.Context, tx *sql.Tx, c Change, e164, reason string) (added bool, err error) {
	if !ValidE164(e164) {
		return false, fmt.Errorf("dnc add %q: %w", e164, ErrInvalidE164)
	}
	if _, err := activeUser(ctx, tx, c.By); err != nil {
		return false, fmt.Errorf("dnc add: %w", err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO dnc (e164, reason, added_by, added_at) VALUES (?,?,?,?)
		ON CONFLICT (e164) DO NOTHING`, e164, reason, c.By, formatTime(c.At))
	if err != nil {
		return false, fmt.Errorf("dnc add %s: %w", e164, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	_, err = audit.AppendTx(ctx, tx, c.At, audit.Entry{Kind: "dnc.add", Actor: c.By, Subject: e164,
		Outcome: "ok", Reason: reason, Source: c.Source})
	return err == nil, err
}

// ActiveUserTx returns the user ext if it exists and is active, else
// ErrUserInactive.
func ActiveUserTx(ctx context.Context, tx *sql.Tx, ext string) (User, error) {
	return activeUser(ctx, tx, ext)
}
