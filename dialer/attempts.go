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

// Outcome is how a call attempt ended, as the call path saw it.
type Outcome string

const (
	Answered Outcome = "answered"
	Busy     Outcome = "busy"
	NoAnswer Outcome = "no_answer"
	Failed   Outcome = "failed"
)

// Attempt is one call placed to a contact.
type Attempt struct {
	ContactID int64
	Operator  string
	Outcome   Outcome
	SIPStatus int    // final SIP status, e.g. 200, 486, 480, 403
	CallID    string // Call-ID of the outside leg
}

// DisposeRequest is what the operator enters after a call.
type DisposeRequest struct {
	Disposition string    `json:"disposition"`
	Notes       string    `json:"notes"`
	CallbackAt  time.Time `json:"callback_at,omitzero"` // required for a callback disposition
}

// BeginCall marks a leased contact as being called by operator: it leaves
// the queue (its lease can no longer expire) and the operator owes a
// disposition before their next lease. Click-to-call calls it before
// dialling; it returns the contact, whose number is what to dial.
func (s *Service) BeginCall(ctx context.Context, operator string, contactID int64) (Contact, error) {
	var out Contact
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		c, err := heldBy(ctx, tx, contactID, operator, true)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE contacts SET state = 'pending', lease_until = '' WHERE id = ?`, contactID); err != nil {
			return err
		}
		c.State, c.LeaseUntil = "pending", time.Time{}
		out = c.Contact
		return nil
	})
	return out, err
}

// RecordAttempt stores a call's outcome. The contact must be leased to or
// pending with the operator (a call dialled by hand from the softphone
// records its attempt here too); it then awaits the operator's disposition.
func (s *Service) RecordAttempt(ctx context.Context, a Attempt) (int64, error) {
	switch a.Outcome {
	case Answered, Busy, NoAnswer, Failed:
	default:
		return 0, fmt.Errorf("%w: outcome %q is not answered, busy, no_answer or failed", ErrInvalid, a.Outcome)
	}
	now := s.now()
	var id int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		c, err := heldBy(ctx, tx, a.ContactID, a.Operator, true)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO attempts (contact_id, campaign_id, operator, at, outcome, sip_status, call_id)
			VALUES (?,?,?,?,?,?,?)`, c.ID, c.CampaignID, a.Operator, ft(now), string(a.Outcome), a.SIPStatus, a.CallID)
		if err != nil {
			return err
		}
		id, _ = res.LastInsertId()
		_, err = tx.ExecContext(ctx, `UPDATE contacts SET state = 'pending', lease_until = '', attempts = attempts + 1 WHERE id = ?`, c.ID)
		return err
	})
	return id, err
}

// Dispose records the operator's disposition of a contact they hold (leased
// or pending) and applies its rule: done; retry after its delay unless the
// contact has had the rule's (or the campaign's) maximum of calls; a
// callback at req.CallbackAt that comes back first to this operator; or
// do not call, which lists the number in the same transaction. The
// disposition and notes go to every attempt still awaiting one.
func (s *Service) Dispose(ctx context.Context, c store.Change, contactID int64, req DisposeRequest) (Contact, error) {
	c = s.at(c)
	now := c.At
	req.Notes = strings.TrimSpace(req.Notes)
	var out Contact
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		ct, err := heldBy(ctx, tx, contactID, c.By, true)
		if err != nil {
			return err
		}
		cp, err := campaignTx(ctx, tx, ct.CampaignID)
		if err != nil {
			return err
		}
		d, ok := cp.Disposition(req.Disposition)
		if !ok {
			names := make([]string, len(cp.Dispositions))
			for i, d := range cp.Dispositions {
				names[i] = d.Name
			}
			return fmt.Errorf("%q (campaign %q has: %s): %w", req.Disposition, cp.Name, strings.Join(names, ", "), ErrUnknownDisposition)
		}
		state, due, cbBy, cbAt := "done", ft(now), "", ""
		switch d.Action {
		case ActionRetry:
			if ct.Attempts < d.MaxAttempts && ct.Attempts < cp.MaxAttempts {
				state, due = "open", ft(now.Add(time.Duration(d.RetryAfter)))
			}
		case ActionCallback:
			if !req.CallbackAt.After(now) {
				return fmt.Errorf("%w: disposition %q needs a callback time in the future", ErrInvalid, d.Name)
			}
			state, due, cbBy, cbAt = "open", ft(req.CallbackAt), c.By, ft(req.CallbackAt)
		case ActionDNC:
			if _, err := store.AddDNCTx(ctx, tx, c, ct.E164, fmt.Sprintf("disposition %q, campaign %q", d.Name, cp.Name)); err != nil {
				return err
			}
		}
		if d.Action != ActionCallback && !req.CallbackAt.IsZero() {
			return fmt.Errorf("%w: a callback time goes with a callback disposition, not %q", ErrInvalid, d.Name)
		}
		res, err := tx.ExecContext(ctx, `UPDATE attempts SET disposition = ?, notes = ?, callback_at = ?, disposed_at = ?
			WHERE contact_id = ? AND operator = ? AND disposed_at = ''`, d.Name, req.Notes, cbAt, ft(now), ct.ID, c.By)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			// A disposition without a recorded call (e.g. the number is
			// wrong per the company's website): kept, but not an attempt.
			if _, err := tx.ExecContext(ctx, `INSERT INTO attempts (contact_id, campaign_id, operator, at, outcome,
				disposition, notes, callback_at, disposed_at) VALUES (?,?,?,?,'',?,?,?,?)`,
				ct.ID, ct.CampaignID, c.By, ft(now), d.Name, req.Notes, cbAt, ft(now)); err != nil {
				return err
			}
		}
		row, err := scanContact(tx.QueryRowContext(ctx, `UPDATE contacts SET state = ?, due_at = ?, leased_by = '', lease_until = '',
			callback_by = ?, callback_at = ?, last_disposition = ?, last_notes = ? WHERE id = ? RETURNING `+contactCols,
			state, due, cbBy, cbAt, d.Name, req.Notes, ct.ID))
		if err != nil {
			return err
		}
		out = row.Contact
		details := map[string]any{"contact": ct.ID, "campaign": cp.ID, "state": state}
		if cbAt != "" {
			details["callback_at"] = cbAt
		}
		_, err = audit.AppendTx(ctx, tx, now, audit.Entry{Kind: "dialer.dispose", Actor: c.By, Subject: ct.E164,
			Outcome: d.Name, Source: c.Source, Details: details})
		return err
	})
	return out, err
}
