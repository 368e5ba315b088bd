package dialer

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"plateau/audit"
	"plateau/store"
)

// Blocked says why an open contact is not offered to anyone: the reasons
// the queue's eligibility rule (eligible) applies, in its order.
type Blocked string

const (
	BlockedNone        Blocked = ""
	BlockedDNC         Blocked = "dnc"          // on the do-not-call list
	BlockedNotApproved Blocked = "not_approved" // allowlist: proposed, rejected, revoked or expired
	BlockedMaxAttempts Blocked = "max_attempts" // the campaign's limit of calls reached
)

// ContactRow is one contact of a campaign as the supervisor's list and the
// client export show it: the contact, why it is not offered (if so), the
// allowlist state of its number, the last operator's skip reason and who
// holds its callback.
type ContactRow struct {
	Contact
	DueAt      time.Time `json:"due_at,omitzero"`
	CallbackBy string    `json:"callback_by,omitempty"`
	Allowlist  string    `json:"allowlist"` // proposed, approved, rejected, revoked, "" (never proposed)
	Blocked    Blocked   `json:"blocked,omitempty"`
	SkipReason string    `json:"skip_reason,omitempty"` // the latest skip's reason, as typed
	SkippedBy  string    `json:"skipped_by,omitempty"`
	SkippedAt  time.Time `json:"skipped_at,omitzero"`
}

// ContactList returns a campaign's contacts, in import order.
func (s *Service) ContactList(ctx context.Context, campaignID int64) ([]ContactRow, error) {
	cp, err := s.Campaign(ctx, campaignID)
	if err != nil {
		return nil, err
	}
	now := ft(s.now())
	rows, err := s.db.QueryContext(ctx, `SELECT `+contactCols+`, due_at,
		COALESCE((SELECT a.status FROM allowlist a WHERE a.e164 = contacts.e164 ORDER BY a.id DESC LIMIT 1), ''),
		EXISTS (SELECT 1 FROM allowlist a WHERE a.e164 = contacts.e164 AND a.status = 'approved'
			AND a.valid_from <= ?1 AND (a.valid_until = '' OR a.valid_until > ?1)),
		EXISTS (SELECT 1 FROM dnc d WHERE d.e164 = contacts.e164),
		COALESCE((SELECT l.reason || char(31) || l.actor || char(31) || l.time FROM audit_log l
			WHERE l.kind = 'dialer.skip' AND l.subject = contacts.e164 AND json_extract(l.details, '$.contact') = contacts.id
			ORDER BY l.seq DESC LIMIT 1), '')
		FROM contacts WHERE campaign_id = ?2 ORDER BY id`, now, campaignID)
	if err != nil {
		return nil, fmt.Errorf("contacts: %w", err)
	}
	defer rows.Close()
	out := []ContactRow{}
	for rows.Next() {
		var r ContactRow
		var due, skip string
		var approved, dnc bool
		ct, err := scanContact(scanTail{rows, []any{&due, &r.Allowlist, &approved, &dnc, &skip}})
		if err != nil {
			return nil, fmt.Errorf("contacts: %w", err)
		}
		r.Contact, r.CallbackBy = ct.Contact, ct.callbackBy
		r.DueAt = pt(due)
		switch {
		case ct.State != "open":
		case dnc:
			r.Blocked = BlockedDNC
		case !approved:
			r.Blocked = BlockedNotApproved
		case cp.MaxAttempts > 0 && ct.Attempts >= cp.MaxAttempts:
			r.Blocked = BlockedMaxAttempts
		}
		if skip != "" {
			parts := strings.SplitN(skip, "\x1f", 3)
			for len(parts) < 3 {
				parts = append(parts, "")
			}
			r.SkipReason, r.SkippedBy, r.SkippedAt = parts[0], parts[1], pt(parts[2])
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// scanTail scans the contact's columns, then more.
type scanTail struct {
	rows *sql.Rows
	more []any
}

func (s scanTail) Scan(dest ...any) error { return s.rows.Scan(append(dest, s.more...)...) }

// ReassignCallback gives a contact's scheduled callback to another
// operator of the campaign (the one who took it is absent: visit, medical,
// transfer). Only a supervisor or admin; the new operator must be active
// and on the campaign; the callback time is kept. Audited
// dialer.callback_reassigned with both operators.
func (s *Service) ReassignCallback(ctx context.Context, c store.Change, contactID int64, to string) (Contact, error) {
	c = s.at(c)
	var out Contact
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := requireRole(ctx, tx, c.By, managers...); err != nil {
			return fmt.Errorf("reassign callback: %w", err)
		}
		ct, err := contactTx(ctx, tx, contactID)
		if err != nil {
			return err
		}
		if ct.State != "open" || ct.callbackBy == "" {
			return fmt.Errorf("%w: contact %d has no callback scheduled", ErrInvalid, ct.ID)
		}
		cp, err := campaignTx(ctx, tx, ct.CampaignID)
		if err != nil {
			return err
		}
		if !cp.Assigned(to) {
			return fmt.Errorf("%w: operators: %s is not on campaign %q", ErrInvalid, to, cp.Name)
		}
		if _, err := store.ActiveUserTx(ctx, tx, to); err != nil {
			return fmt.Errorf("%w: operators: %v", ErrInvalid, err)
		}
		if ct.leasedBy != "" && ct.LeaseUntil.After(c.At) {
			return fmt.Errorf("contact %d is on %s's screen: %w", ct.ID, ct.leasedBy, ErrCorrectionClosed)
		}
		from := ct.callbackBy
		row, err := scanContact(tx.QueryRowContext(ctx, `UPDATE contacts SET callback_by = ? WHERE id = ? RETURNING `+contactCols, to, ct.ID))
		if err != nil {
			return err
		}
		out = row.Contact
		_, err = audit.AppendTx(ctx, tx, c.At, audit.Entry{Kind: "dialer.callback_reassigned", Actor: c.By, Subject: ct.E164,
			Outcome: "ok", Reason: c.Note, Source: c.Source, Details: map[string]any{"contact": ct.ID, "campaign": cp.ID, "from": from, "to": to,
				"callback_at": ft(ct.CallbackAt)}})
		return err
	})
	return out, err
}

// Wrapping returns the operators who owe a disposition (a call's outcome
// is recorded, its issue not yet entered: wrap-up) with the time of the
// oldest such call.
func (s *Service) Wrapping(ctx context.Context) (map[string]time.Time, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT operator, MIN(at) FROM attempts WHERE disposed_at = '' AND outcome <> '' GROUP BY operator`)
	if err != nil {
		return nil, fmt.Errorf("wrapping: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var op, at string
		if err := rows.Scan(&op, &at); err != nil {
			return nil, err
		}
		out[op] = pt(at)
	}
	return out, rows.Err()
}
