package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"plateau/audit"
)

// Allowlist and do-not-call errors. (Kept here rather than in an errors.go
// because the store's other sentinels live beside their repositories.)
var (
	ErrSelfApproval = errors.New("two-person rule: the proposer of an entry may not decide on it")
	ErrNotApprover  = errors.New("only an active security officer or admin may approve, reject or revoke")
	ErrNotProposed  = errors.New("entry is not awaiting a decision")
	ErrInvalidE164  = errors.New("not an E.164 number such as +33240123456")
	ErrNoSelection  = errors.New("nothing selected")
	ErrUserInactive = errors.New("user is unknown or suspended")
	ErrNotApproved  = errors.New("entry is not approved")
	ErrValidityPast = errors.New("the validity end is not in the future")
)

// AllowStatus is the state of an allowlist entry.
type AllowStatus string

const (
	AllowProposed AllowStatus = "proposed"
	AllowApproved AllowStatus = "approved"
	AllowRejected AllowStatus = "rejected"
	AllowRevoked  AllowStatus = "revoked"
)

// ValidAllowStatus reports whether st is one of the four states.
func ValidAllowStatus(st AllowStatus) bool {
	switch st {
	case AllowProposed, AllowApproved, AllowRejected, AllowRevoked:
		return true
	}
	return false
}

// AllowEntry is one number on the allowlist, in whatever state.
type AllowEntry struct {
	ID         int64
	E164       string
	Label      string
	Campaign   string
	Status     AllowStatus
	ProposedBy string
	ProposedAt time.Time
	DecidedBy  string // approver or rejecter
	DecidedAt  time.Time
	RevokedBy  string
	RevokedAt  time.Time
	ValidFrom  time.Time
	ValidUntil time.Time // zero: no end
	Note       string
}

// Proposal is a number someone asks to be approved.
type Proposal struct {
	E164       string
	Label      string
	Campaign   string
	ValidFrom  time.Time // zero: from the proposal
	ValidUntil time.Time // zero: no end
	Note       string
}

// Change says who makes a change, from where and when. It is written to the
// audit log in the same transaction as the change itself, so a change is
// never committed without its audit entry, nor an entry without its change.
type Change struct {
	By     string // extension of the person
	Source string // "cli", an IP address…
	At     time.Time
	Note   string
}

// Selection picks proposed entries to approve: IDs, a campaign, or all.
type Selection struct {
	IDs      []int64
	Campaign string
	All      bool
}

// AllowFilter selects entries for Allowlist; zero fields match everything.
type AllowFilter struct {
	Status   AllowStatus
	Campaign string
	E164     string
}

var e164RE = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)

// ValidE164 reports whether s is in E.164 form. The store does not parse
// numbers as typed (that is policy.Normalize); it refuses anything else.
func ValidE164(s string) bool { return e164RE.MatchString(s) }

// ProposeAllowlist adds proposals by c.By, all or none. The proposer must
// be an active user; a number already proposed or approved for the same
// campaign is refused with ErrExists.
func (s *Store) ProposeAllowlist(ctx context.Context, c Change, ps []Proposal) ([]AllowEntry, error) {
	if len(ps) == 0 {
		return nil, fmt.Errorf("propose: %w", ErrNoSelection)
	}
	for _, p := range ps {
		if err := checkProposal(p, c); err != nil {
			return nil, err
		}
	}
	var out []AllowEntry
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := activeUser(ctx, tx, c.By); err != nil {
			return fmt.Errorf("propose: %w", err)
		}
		ins, err := tx.PrepareContext(ctx, insertProposalSQL)
		if err != nil {
			return err
		}
		defer ins.Close()
		for _, p := range ps {
			id, err := insertProposal(ctx, ins, p, c)
			if err != nil {
				return err
			}
			e, err := entryTx(ctx, tx, id)
			if err != nil {
				return err
			}
			if err := auditChange(ctx, tx, c, "allowlist.propose", e); err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// insertProposalSQL writes one proposed entry (ProposeAllowlist, and the
// dialer's bulk import through ProposeAllowlistTx).
const insertProposalSQL = `INSERT INTO allowlist
	(e164, label, campaign, status, proposed_by, proposed_at, valid_from, valid_until, note)
	VALUES (?,?,?,?,?,?,?,?,?)`

// checkProposal applies the rules every proposal follows, before anything
// is written: E.164 only, a validity that ends after it starts.
func checkProposal(p Proposal, c Change) error {
	if !ValidE164(p.E164) {
		return fmt.Errorf("propose %q: %w", p.E164, ErrInvalidE164)
	}
	if from := validFrom(p, c); !p.ValidUntil.IsZero() && !p.ValidUntil.After(from) {
		return fmt.Errorf("propose %s: valid until %s is not after valid from %s", p.E164, FormatTime(p.ValidUntil), FormatTime(from))
	}
	return nil
}

// insertProposal writes a checked proposal with ins (insertProposalSQL
// prepared in the caller's transaction) and returns its id; a number
// already proposed or approved for the campaign is ErrExists.
func insertProposal(ctx context.Context, ins *sql.Stmt, p Proposal, c Change) (int64, error) {
	res, err := ins.ExecContext(ctx, p.E164, p.Label, p.Campaign, string(AllowProposed), c.By, formatTime(c.At),
		formatTime(validFrom(p, c)), optTime(p.ValidUntil), p.Note)
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE constraint") {
			return 0, fmt.Errorf("propose %s (campaign %q): already proposed or approved: %w", p.E164, p.Campaign, ErrExists)
		}
		return 0, fmt.Errorf("propose %s: %w", p.E164, err)
	}
	return res.LastInsertId()
}

func validFrom(p Proposal, c Change) time.Time {
	if p.ValidFrom.IsZero() {
		return c.At
	}
	return p.ValidFrom
}

// ApproveAllowlist approves the selected proposed entries, all or none.
// c.By must be an active security officer or admin who proposed none of
// them (ErrNotApprover, ErrSelfApproval); an unknown id is ErrNotFound and
// an entry already decided is ErrNotProposed.
func (s *Store) ApproveAllowlist(ctx context.Context, c Change, sel Selection) ([]AllowEntry, error) {
	return s.decide(ctx, c, sel, AllowApproved)
}

// RejectAllowlist rejects proposed entries, with the same rules as approval:
// a decision is a decision, and a proposer withdrawing their own entry would
// be a way to probe the rule.
func (s *Store) RejectAllowlist(ctx context.Context, c Change, ids []int64) ([]AllowEntry, error) {
	return s.decide(ctx, c, Selection{IDs: ids}, AllowRejected)
}

func (s *Store) decide(ctx context.Context, c Change, sel Selection, to AllowStatus) ([]AllowEntry, error) {
	verb := map[AllowStatus]string{AllowApproved: "approve", AllowRejected: "reject"}[to]
	n := 0
	if len(sel.IDs) > 0 {
		n++
	}
	if sel.Campaign != "" {
		n++
	}
	if sel.All {
		n++
	}
	if n != 1 {
		return nil, fmt.Errorf("%s: give ids, a campaign or all (exactly one): %w", verb, ErrNoSelection)
	}
	var out []AllowEntry
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := checkApprover(ctx, tx, c.By); err != nil {
			return fmt.Errorf("%s: %w", verb, err)
		}
		entries, err := selectEntries(ctx, tx, sel)
		if err != nil {
			return fmt.Errorf("%s: %w", verb, err)
		}
		for _, e := range entries {
			if e.Status != AllowProposed {
				return fmt.Errorf("%s entry %d (%s): it is %s: %w", verb, e.ID, e.E164, e.Status, ErrNotProposed)
			}
			if e.ProposedBy == c.By {
				return fmt.Errorf("%s entry %d (%s): %s proposed it, another officer must decide: %w", verb, e.ID, e.E164, c.By, ErrSelfApproval)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE allowlist SET status = ?, decided_by = ?, decided_at = ?,
				note = CASE WHEN ? = '' THEN note ELSE ? END WHERE id = ?`,
				string(to), c.By, formatTime(c.At), c.Note, c.Note, e.ID); err != nil {
				return fmt.Errorf("%s entry %d: %w", verb, e.ID, err)
			}
			e, err = entryTx(ctx, tx, e.ID)
			if err != nil {
				return err
			}
			if err := auditChange(ctx, tx, c, "allowlist."+verb, e); err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	if errors.Is(err, ErrSelfApproval) || errors.Is(err, ErrNotApprover) {
		// The change is refused and rolled back, but the attempt itself is
		// what security staff want to see: record it on its own.
		s.auditRefusal(ctx, c, "allowlist."+verb, err)
	}
	return out, err
}

// RevokeAllowlist revokes every approved entry of a number (all campaigns).
// Any active security officer or admin may revoke, including one who
// proposed the entry: taking a number away needs no second person.
func (s *Store) RevokeAllowlist(ctx context.Context, c Change, e164 string) ([]AllowEntry, error) {
	if !ValidE164(e164) {
		return nil, fmt.Errorf("revoke %q: %w", e164, ErrInvalidE164)
	}
	var out []AllowEntry
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := checkApprover(ctx, tx, c.By); err != nil {
			return fmt.Errorf("revoke: %w", err)
		}
		entries, err := queryEntries(ctx, tx, `WHERE e164 = ? AND status = ?`, e164, string(AllowApproved))
		if err != nil {
			return err
		}
		if len(entries) == 0 {
			return fmt.Errorf("revoke %s: no approved entry: %w", e164, ErrNotFound)
		}
		for _, e := range entries {
			if _, err := tx.ExecContext(ctx, `UPDATE allowlist SET status = ?, revoked_by = ?, revoked_at = ?,
				note = CASE WHEN ? = '' THEN note ELSE ? END WHERE id = ?`,
				string(AllowRevoked), c.By, formatTime(c.At), c.Note, c.Note, e.ID); err != nil {
				return fmt.Errorf("revoke entry %d: %w", e.ID, err)
			}
			if e, err = entryTx(ctx, tx, e.ID); err != nil {
				return err
			}
			if err := auditChange(ctx, tx, c, "allowlist.revoke", e); err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	if errors.Is(err, ErrNotApprover) {
		s.auditRefusal(ctx, c, "allowlist.revoke", err)
	}
	return out, err
}

// SetAllowlistValidity sets or changes the end of validity of one approved
// entry (the entry stops allowing calls at until), all or nothing, audited
// allowlist.validity with the previous end. until must be in the future
// (after c.At) and after the entry's start (ErrValidityPast). Shortening
// a permission needs one officer, like a revocation; lengthening it (a
// later end than the current one) widens what was approved, so the
// entry's proposer may not do it alone (ErrSelfApproval, two-person rule).
func (s *Store) SetAllowlistValidity(ctx context.Context, c Change, id int64, until time.Time) (AllowEntry, error) {
	var out AllowEntry
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := checkApprover(ctx, tx, c.By); err != nil {
			return fmt.Errorf("validity: %w", err)
		}
		e, err := entryTx(ctx, tx, id)
		if err != nil {
			return fmt.Errorf("validity: %w", err)
		}
		if e.Status != AllowApproved {
			return fmt.Errorf("validity of entry %d (%s): it is %s: %w", e.ID, e.E164, e.Status, ErrNotApproved)
		}
		if until.IsZero() || !until.After(c.At) || !until.After(e.ValidFrom) {
			return fmt.Errorf("validity of entry %d (%s): %s: %w", e.ID, e.E164, FormatTime(until), ErrValidityPast)
		}
		// No end yet means no limit: any end shortens it.
		longer := !e.ValidUntil.IsZero() && until.After(e.ValidUntil)
		if longer && e.ProposedBy == c.By {
			return fmt.Errorf("validity of entry %d (%s): %s proposed it, another officer must extend it: %w", e.ID, e.E164, c.By, ErrSelfApproval)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE allowlist SET valid_until = ?,
			note = CASE WHEN ? = '' THEN note ELSE ? END WHERE id = ?`, formatTime(until), c.Note, c.Note, e.ID); err != nil {
			return fmt.Errorf("validity of entry %d: %w", e.ID, err)
		}
		previous := e.ValidUntil
		if e, err = entryTx(ctx, tx, e.ID); err != nil {
			return err
		}
		extra := map[string]any{"previous_valid_until": ""}
		if !previous.IsZero() {
			extra["previous_valid_until"] = FormatTime(previous)
		}
		if err := auditChange(ctx, tx, c, "allowlist.validity", e, extra); err != nil {
			return err
		}
		out = e
		return nil
	})
	if errors.Is(err, ErrSelfApproval) || errors.Is(err, ErrNotApprover) {
		s.auditRefusal(ctx, c, "allowlist.validity", err)
	}
	return out, err
}

// Allowlist lists entries by id.
func (s *Store) Allowlist(ctx context.Context, f AllowFilter) ([]AllowEntry, error) {
	where, args := `WHERE 1=1`, []any{}
	if f.Status != "" {
		where += ` AND status = ?`
		args = append(args, string(f.Status))
	}
	if f.Campaign != "" {
		where += ` AND campaign = ?`
		args = append(args, f.Campaign)
	}
	if f.E164 != "" {
		where += ` AND e164 = ?`
		args = append(args, f.E164)
	}
	return queryEntries(ctx, s.db, where, args...)
}

// IsApproved reports whether e164 (exact match) has an approved entry valid
// at the instant at. It implements policy.Allowlist.
func (s *Store) IsApproved(ctx context.Context, e164 string, at time.Time) (bool, error) {
	t := formatTime(at)
	// Asked for every call: prepared once, not compiled each time.
	st, err := s.prepared(ctx, `SELECT 1 FROM allowlist WHERE e164 = ? AND status = 'approved'
		AND valid_from <= ? AND (valid_until = '' OR valid_until > ?) LIMIT 1`)
	if err != nil {
		return false, fmt.Errorf("allowlist lookup: %w", err)
	}
	var one int
	err = st.QueryRowContext(ctx, e164, t, t).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("allowlist lookup: %w", err)
	}
	return true, nil
}

// DNCEntry is a number that must never be called.
type DNCEntry struct {
	E164    string
	Reason  string
	AddedBy string
	AddedAt time.Time
}

// AddDNC puts a number on the do-not-call list. Any active user may: it
// only ever restricts calls.
func (s *Store) AddDNC(ctx context.Context, c Change, e164, reason string) error {
	if !ValidE164(e164) {
		return fmt.Errorf("dnc add %q: %w", e164, ErrInvalidE164)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := activeUser(ctx, tx, c.By); err != nil {
			return fmt.Errorf("dnc add: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO dnc (e164, reason, added_by, added_at) VALUES (?,?,?,?)`,
			e164, reason, c.By, formatTime(c.At)); err != nil {
			if isConstraint(err) {
				return fmt.Errorf("dnc add %s: %w", e164, ErrExists)
			}
			return fmt.Errorf("dnc add %s: %w", e164, err)
		}
		_, err := audit.AppendTx(ctx, tx, c.At, audit.Entry{Kind: "dnc.add", Actor: c.By, Subject: e164,
			Outcome: "ok", Reason: reason, Source: c.Source})
		return err
	})
}

// RemoveDNC takes a number off the list; only security or admin may, as it
// loosens what operators can call.
func (s *Store) RemoveDNC(ctx context.Context, c Change, e164 string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := checkApprover(ctx, tx, c.By); err != nil {
			return fmt.Errorf("dnc remove: %w", err)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM dnc WHERE e164 = ?`, e164)
		if err != nil {
			return fmt.Errorf("dnc remove %s: %w", e164, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("dnc remove %s: %w", e164, ErrNotFound)
		}
		_, err = audit.AppendTx(ctx, tx, c.At, audit.Entry{Kind: "dnc.remove", Actor: c.By, Subject: e164,
			Outcome: "ok", Reason: c.Note, Source: c.Source})
		return err
	})
}

// IsListed reports whether e164 is on the do-not-call list. It implements
// policy.DoNotCall.
func (s *Store) IsListed(ctx context.Context, e164 string) (bool, error) {
	// Asked for every call: prepared once, not compiled each time.
	st, err := s.prepared(ctx, `SELECT 1 FROM dnc WHERE e164 = ?`)
	if err != nil {
		return false, fmt.Errorf("dnc lookup: %w", err)
	}
	var one int
	err = st.QueryRowContext(ctx, e164).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("dnc lookup: %w", err)
	}
	return true, nil
}

// DNCList lists the do-not-call list by number.
func (s *Store) DNCList(ctx context.Context) ([]DNCEntry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT e164, reason, added_by, added_at FROM dnc ORDER BY e164`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []DNCEntry
	for rows.Next() {
		var d DNCEntry
		var at string
		if err := rows.Scan(&d.E164, &d.Reason, &d.AddedBy, &at); err != nil {
			return nil, err
		}
		d.AddedAt = parseTime(at)
		out = append(out, d)
	}
	return out, rows.Err()
}

// inTx runs fn in a write transaction (BEGIN IMMEDIATE, from the DSN) and
// commits only if fn succeeds.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

func (s *Store) auditRefusal(ctx context.Context, c Change, kind string, cause error) {
	// Best effort: the caller already gets the refusal as an error, and a
	// failure to log the attempt must not turn into a different error.
	_ = s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := audit.AppendTx(ctx, tx, c.At, audit.Entry{Kind: kind, Actor: c.By, Outcome: "refused",
			Reason: cause.Error(), Source: c.Source})
		return err
	})
}

func auditChange(ctx context.Context, tx *sql.Tx, c Change, kind string, e AllowEntry, extra ...map[string]any) error {
	d := map[string]any{"id": e.ID, "status": string(e.Status), "campaign": e.Campaign, "label": e.Label,
		"proposed_by": e.ProposedBy, "valid_from": FormatTime(e.ValidFrom)}
	if !e.ValidUntil.IsZero() {
		d["valid_until"] = FormatTime(e.ValidUntil)
	}
	if c.Note != "" {
		d["note"] = c.Note
	}
	for _, m := range extra {
		for k, v := range m {
			d[k] = v
		}
	}
	_, err := audit.AppendTx(ctx, tx, c.At, audit.Entry{Kind: kind, Actor: c.By, Subject: e.E164,
		Outcome: "ok", Source: c.Source, Details: d})
	return err
}

type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

func activeUser(ctx context.Context, q querier, ext string) (User, error) {
	u, err := scanUser(q.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE extension = ?`, ext))
	if errors.Is(err, sql.ErrNoRows) || (err == nil && u.Status != StatusActive) {
		return u, fmt.Errorf("user %q: %w", ext, ErrUserInactive)
	}
	return u, err
}

func checkApprover(ctx context.Context, q querier, ext string) error {
	u, err := activeUser(ctx, q, ext)
	if errors.Is(err, ErrUserInactive) {
		return fmt.Errorf("user %q is unknown or suspended: %w", ext, ErrNotApprover)
	}
	if err != nil {
		return err
	}
	if u.Role != RoleSecurity && u.Role != RoleAdmin {
		return fmt.Errorf("user %s has role %s: %w", ext, u.Role, ErrNotApprover)
	}
	return nil
}

// selectEntries resolves a selection inside the transaction. Explicit ids
// must all exist; a campaign or "all" selects the proposed entries and must
// select at least one, so that a typo in a campaign name is not a silent
// no-op.
func selectEntries(ctx context.Context, q querier, sel Selection) ([]AllowEntry, error) {
	switch {
	case len(sel.IDs) > 0:
		var out []AllowEntry
		seen := map[int64]bool{}
		for _, id := range sel.IDs {
			if seen[id] {
				continue
			}
			seen[id] = true
			e, err := entryTx(ctx, q, id)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		return out, nil
	case sel.Campaign != "":
		es, err := queryEntries(ctx, q, `WHERE status = 'proposed' AND campaign = ?`, sel.Campaign)
		if err == nil && len(es) == 0 {
			err = fmt.Errorf("no proposed entry in campaign %q: %w", sel.Campaign, ErrNoSelection)
		}
		return es, err
	default:
		es, err := queryEntries(ctx, q, `WHERE status = 'proposed'`)
		if err == nil && len(es) == 0 {
			err = fmt.Errorf("no proposed entry: %w", ErrNoSelection)
		}
		return es, err
	}
}

const allowCols = `id, e164, label, campaign, status, proposed_by, proposed_at, decided_by, decided_at,
	revoked_by, revoked_at, valid_from, valid_until, note`

func scanEntry(row interface{ Scan(...any) error }) (AllowEntry, error) {
	var e AllowEntry
	var st, pAt, dAt, rAt, from, until string
	err := row.Scan(&e.ID, &e.E164, &e.Label, &e.Campaign, &st, &e.ProposedBy, &pAt, &e.DecidedBy, &dAt,
		&e.RevokedBy, &rAt, &from, &until, &e.Note)
	e.Status = AllowStatus(st)
	e.ProposedAt, e.DecidedAt, e.RevokedAt = parseOpt(pAt), parseOpt(dAt), parseOpt(rAt)
	e.ValidFrom, e.ValidUntil = parseOpt(from), parseOpt(until)
	return e, err
}

func entryTx(ctx context.Context, q querier, id int64) (AllowEntry, error) {
	e, err := scanEntry(q.QueryRowContext(ctx, `SELECT `+allowCols+` FROM allowlist WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return e, fmt.Errorf("allowlist entry %d: %w", id, ErrNotFound)
	}
	return e, err
}

func queryEntries(ctx context.Context, q querier, where string, args ...any) ([]AllowEntry, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+allowCols+` FROM allowlist `+where+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("allowlist: %w", err)
	}
	defer rows.Close()
	var out []AllowEntry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, fmt.Errorf("allowlist: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// optTime stores a zero time as ” (no bound).
func optTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return formatTime(t)
}

func parseOpt(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	return parseTime(s)
}
