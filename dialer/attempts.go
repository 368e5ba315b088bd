package dialer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"plateau/audit"
	"plateau/policy"
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
	// Answers to the script's capture fields (ScriptFields), by name.
	Answers map[string]string `json:"answers,omitempty"`
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
// callback at req.CallbackAt, inside the site's and the campaign's calling
// hours, that comes back first to this operator; or do not call, which
// lists the number in the same transaction. The disposition, notes and
// answers go to every attempt still awaiting one.
func (s *Service) Dispose(ctx context.Context, c store.Change, contactID int64, req DisposeRequest) (Contact, error) {
	c = s.at(c)
	now := c.At
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
		ap, err := s.applyDisposition(ctx, tx, c, ct, cp, c.By, &req)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE attempts SET disposition = ?, notes = ?, callback_at = ?, disposed_at = ?, answers = ?
			WHERE contact_id = ? AND operator = ? AND disposed_at = ''`, ap.d.Name, req.Notes, ap.cbAt, ft(now), ap.answers, ct.ID, c.By)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			// A disposition without a recorded call (e.g. the number is
			// wrong per the company's website): kept, but not an attempt.
			if _, err := tx.ExecContext(ctx, `INSERT INTO attempts (contact_id, campaign_id, operator, at, outcome,
				disposition, notes, callback_at, disposed_at, answers) VALUES (?,?,?,?,'',?,?,?,?,?)`,
				ct.ID, ct.CampaignID, c.By, ft(now), ap.d.Name, req.Notes, ap.cbAt, ft(now), ap.answers); err != nil {
				return err
			}
		}
		if err := labelRecordings(ctx, tx, ct.E164, ap.d.Name, `contact_id = ? AND operator = ? AND disposed_at = ?`, ct.ID, c.By, ft(now)); err != nil {
			return err
		}
		if out, err = updateDisposed(ctx, tx, ct, ap, req.Notes); err != nil {
			return err
		}
		details := map[string]any{"contact": ct.ID, "campaign": cp.ID, "state": ap.state}
		if ap.cbAt != "" {
			details["callback_at"] = ap.cbAt
		}
		_, err = audit.AppendTx(ctx, tx, now, audit.Entry{Kind: "dialer.dispose", Actor: c.By, Subject: ct.E164,
			Outcome: ap.d.Name, Source: c.Source, Details: details})
		return err
	})
	return out, err
}

// applied is what a disposition does to its contact.
type applied struct {
	d                      Disposition
	state, due, cbBy, cbAt string
	answers                string // JSON, the contact's answers merged with the new ones
}

// applyDisposition checks req against the campaign and works out the
// contact's next state; a do-not-call disposition lists the number in tx.
// owner is who a callback comes back to.
func (s *Service) applyDisposition(ctx context.Context, tx *sql.Tx, c store.Change, ct contactRow, cp Campaign, owner string,
	req *DisposeRequest) (applied, error) {
	now := c.At
	req.Notes = strings.TrimSpace(req.Notes)
	if len(req.Notes) > 4000 {
		return applied{}, fmt.Errorf("%w: notes: at most 4000 bytes", ErrInvalid)
	}
	d, ok := cp.Disposition(req.Disposition)
	if !ok {
		names := make([]string, len(cp.Dispositions))
		for i, d := range cp.Dispositions {
			names[i] = d.Name
		}
		return applied{}, fmt.Errorf("%q (campaign %q has: %s): %w", req.Disposition, cp.Name, strings.Join(names, ", "), ErrUnknownDisposition)
	}
	answers, err := checkAnswers(ScriptFields(cp.Script), req.Answers)
	if err != nil {
		return applied{}, err
	}
	merged := map[string]string{}
	for k, v := range ct.Answers {
		merged[k] = v
	}
	for k, v := range answers {
		merged[k] = v
	}
	ap := applied{d: d, state: "done", due: ft(now), answers: mustJSON(merged)}
	switch d.Action {
	case ActionRetry:
		if ct.Attempts < d.MaxAttempts && ct.Attempts < cp.MaxAttempts {
			ap.state, ap.due = "open", ft(now.Add(time.Duration(d.RetryAfter)))
		}
	case ActionCallback:
		if !req.CallbackAt.After(now) {
			return ap, fmt.Errorf("%w: disposition %q needs a callback time in the future", ErrInvalid, d.Name)
		}
		if err := s.callbackInHours(cp, req.CallbackAt); err != nil {
			return ap, err
		}
		ap.state, ap.due, ap.cbBy, ap.cbAt = "open", ft(req.CallbackAt), owner, ft(req.CallbackAt)
	case ActionDNC:
		if _, err := store.AddDNCTx(ctx, tx, c, ct.E164, fmt.Sprintf("disposition %q, campaign %q", d.Name, cp.Name)); err != nil {
			return ap, err
		}
	}
	if d.Action != ActionCallback && !req.CallbackAt.IsZero() {
		return ap, fmt.Errorf("%w: a callback time goes with a callback disposition, not %q", ErrInvalid, d.Name)
	}
	return ap, nil
}

// callbackInHours checks that at falls inside the site's calling hours and
// the campaign's own, if it has any: a callback outside them would be
// refused when due (Sunday 03:00 is nobody's callback). The error says
// when calling next opens after at.
func (s *Service) callbackInHours(cp Campaign, at time.Time) error {
	ws, own, err := s.windows(cp)
	if err != nil {
		return err
	}
	if s.site.Contains(at) && (!own || ws.Contains(at)) {
		return nil
	}
	e := &CallbackHoursError{At: at}
	e.Next, _ = s.NextCallable(cp, at)
	return e
}

// CallbackHoursError is a callback time outside the calling hours, with
// the first instant after it inside them (zero: none). It is
// ErrCallbackOutsideHours.
type CallbackHoursError struct {
	At, Next time.Time
}

func (e *CallbackHoursError) Error() string {
	msg := e.At.Format("Mon 2006-01-02 15:04") + ": " + ErrCallbackOutsideHours.Error()
	if !e.Next.IsZero() {
		msg += "; calling opens " + policy.FormatOpens(e.Next)
	}
	return msg
}

func (e *CallbackHoursError) Is(target error) bool { return target == ErrCallbackOutsideHours }

// NextCallable is the first instant at or after t inside both the site's
// and the campaign's calling hours; ok is false when they never meet.
func (s *Service) NextCallable(cp Campaign, t time.Time) (time.Time, bool) {
	ws, own, err := s.windows(cp)
	if err != nil {
		return time.Time{}, false
	}
	// Each step moves forward to the next opening of one side; a week of
	// windows meets within a few dozen steps or never.
	for range 200 {
		next, ok := s.site.NextOpen(t)
		if !ok {
			return time.Time{}, false
		}
		if own {
			if next, ok = ws.NextOpen(next); !ok {
				return time.Time{}, false
			}
		}
		if s.site.Contains(next) && (!own || ws.Contains(next)) {
			return next.In(s.site.Location()), true
		}
		t = next
	}
	return time.Time{}, false
}

func updateDisposed(ctx context.Context, tx *sql.Tx, ct contactRow, ap applied, notes string) (Contact, error) {
	row, err := scanContact(tx.QueryRowContext(ctx, `UPDATE contacts SET state = ?, due_at = ?, leased_by = '', lease_until = '',
		callback_by = ?, callback_at = ?, last_disposition = ?, last_notes = ?, answers = ? WHERE id = ? RETURNING `+contactCols,
		ap.state, ap.due, ap.cbBy, ap.cbAt, ap.d.Name, notes, ap.answers, ct.ID))
	return row.Contact, err
}

// CorrectOutcome replaces the disposition (with its notes, callback time
// and answers) of a contact's last disposed call, as if it had been entered
// so, and audits dialer.outcome_corrected with the old and new outcomes.
// The operator who entered it may correct it within the correction window
// (WithCorrectionWindow, default 10 minutes, counted from the first entry);
// a supervisor or admin may at any time. Refused while the contact is
// being called or held by someone else, and away from "do not call" (the
// number is listed; removing it is a security decision).
func (s *Service) CorrectOutcome(ctx context.Context, c store.Change, contactID int64, req DisposeRequest) (Contact, error) {
	c = s.at(c)
	now := c.At
	var out Contact
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		u, err := requireRole(ctx, tx, c.By, store.RoleOperator, store.RoleSupervisor, store.RoleAdmin)
		if err != nil {
			return fmt.Errorf("correct outcome: %w", err)
		}
		ct, err := contactTx(ctx, tx, contactID)
		if err != nil {
			return err
		}
		var attID int64
		var byOp, oldName, disposedAt string
		err = tx.QueryRowContext(ctx, `SELECT id, operator, disposition, disposed_at FROM attempts
			WHERE contact_id = ? AND disposed_at <> '' ORDER BY id DESC LIMIT 1`, ct.ID).Scan(&attID, &byOp, &oldName, &disposedAt)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("contact %d has no outcome yet: %w", ct.ID, ErrNotFound)
		}
		if err != nil {
			return err
		}
		manager := u.Role == store.RoleSupervisor || u.Role == store.RoleAdmin
		switch {
		case !manager && byOp != c.By:
			return fmt.Errorf("%w: contact %d's outcome was entered by another operator", ErrForbidden, ct.ID)
		case !manager && now.Sub(pt(disposedAt)) > s.correctWindow:
			return fmt.Errorf("contact %d: entered at %s, more than %s ago: %w", ct.ID, disposedAt, s.correctWindow, ErrCorrectionClosed)
		case ct.State == "pending":
			return fmt.Errorf("contact %d is being called: %w", ct.ID, ErrCorrectionClosed)
		case ct.leasedBy != "" && ct.LeaseUntil.After(now):
			// On someone's screen (even the operator's own, offered again):
			// correcting now would pull it from under them.
			return fmt.Errorf("contact %d is on %s's screen: %w", ct.ID, ct.leasedBy, ErrCorrectionClosed)
		}
		cp, err := campaignTx(ctx, tx, ct.CampaignID)
		if err != nil {
			return err
		}
		if old, ok := cp.Disposition(oldName); ok && old.Action == ActionDNC && !strings.EqualFold(req.Disposition, oldName) {
			return fmt.Errorf("contact %d (%s): %w", ct.ID, ct.E164, ErrDNCLocked)
		}
		ap, err := s.applyDisposition(ctx, tx, c, ct, cp, byOp, &req)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE attempts SET disposition = ?, notes = ?, callback_at = ?, answers = ? WHERE id = ?`,
			ap.d.Name, req.Notes, ap.cbAt, ap.answers, attID); err != nil {
			return err
		}
		if err := labelRecordings(ctx, tx, ct.E164, ap.d.Name, `id = ?`, attID); err != nil {
			return err
		}
		if out, err = updateDisposed(ctx, tx, ct, ap, req.Notes); err != nil {
			return err
		}
		details := map[string]any{"contact": ct.ID, "campaign": cp.ID, "state": ap.state, "from": oldName, "to": ap.d.Name, "operator": byOp}
		if ap.cbAt != "" {
			details["callback_at"] = ap.cbAt
		}
		_, err = audit.AppendTx(ctx, tx, now, audit.Entry{Kind: "dialer.outcome_corrected", Actor: c.By, Subject: ct.E164,
			Outcome: ap.d.Name, Source: c.Source, Details: details})
		return err
	})
	return out, err
}
