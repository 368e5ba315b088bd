package dialer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"plateau/store"
)

// Read-only views for the operator console and the click-to-call wiring.
// They change nothing, so they take no lock and write no audit entry.

// Callback is a callback an operator promised, as their console lists it.
type Callback struct {
	Contact  Contact   `json:"contact"`
	Campaign string    `json:"campaign"`
	At       time.Time `json:"at"`
}

// Callbacks lists the callbacks operator scheduled that are still to be
// made (the contact is open and still theirs), soonest first.
func (s *Service) Callbacks(ctx context.Context, operator string) ([]Callback, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+contactCols+` FROM contacts
		WHERE callback_by = ? AND callback_by <> '' AND state = 'open' AND callback_at <> '' ORDER BY callback_at, id LIMIT 200`, operator)
	if err != nil {
		return nil, fmt.Errorf("callbacks: %w", err)
	}
	var cs []Contact
	for rows.Next() {
		c, err := scanContact(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("callbacks: %w", err)
		}
		cs = append(cs, c.Contact)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("callbacks: %w", err)
	}
	names := map[int64]string{}
	out := make([]Callback, 0, len(cs))
	for _, c := range cs {
		name, ok := names[c.CampaignID]
		if !ok {
			cp, err := s.Campaign(ctx, c.CampaignID)
			if err != nil {
				return nil, err
			}
			name, names[c.CampaignID] = cp.Name, cp.Name
		}
		out = append(out, Callback{Contact: c, Campaign: name, At: c.CallbackAt})
	}
	return out, nil
}

// PendingCall returns the contact with this number that operator is
// calling (pending their disposition), with its campaign: click-to-call
// uses it to label the call with the campaign.
func (s *Service) PendingCall(ctx context.Context, operator, e164 string) (Contact, Campaign, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, `SELECT id FROM contacts WHERE leased_by = ? AND leased_by <> '' AND state = 'pending'
		AND e164 = ? ORDER BY id LIMIT 1`, operator, e164).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return Contact{}, Campaign{}, fmt.Errorf("pending call of %s to %s: %w", operator, e164, ErrNotFound)
	}
	if err != nil {
		return Contact{}, Campaign{}, err
	}
	c, err := contactTx(ctx, s.db, id)
	if err != nil {
		return Contact{}, Campaign{}, err
	}
	cp, err := s.Campaign(ctx, c.CampaignID)
	return c.Contact, cp, err
}

// LastOutcome is the outcome of operator's last call to a contact that
// still awaits their disposition.
type LastOutcome struct {
	Outcome   Outcome   `json:"outcome"`
	SIPStatus int       `json:"sip_status"`
	At        time.Time `json:"at"`
}

// AwaitingDisposition returns the outcome of operator's latest
// undisposed call to contactID; ok is false when no call was recorded
// yet (the call is still being set up, or was never placed).
func (s *Service) AwaitingDisposition(ctx context.Context, operator string, contactID int64) (LastOutcome, bool, error) {
	var o LastOutcome
	var outcome, at string
	err := s.db.QueryRowContext(ctx, `SELECT outcome, sip_status, at FROM attempts WHERE contact_id = ? AND operator = ?
		AND disposed_at = '' AND outcome <> '' ORDER BY id DESC LIMIT 1`, contactID, operator).Scan(&outcome, &o.SIPStatus, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return o, false, nil
	}
	if err != nil {
		return o, false, err
	}
	o.Outcome, o.At = Outcome(outcome), pt(at)
	return o, true, nil
}

// QueueState explains an empty queue to the operator: when the next
// contact becomes due, and how many open contacts wait for something else
// (security's approval, another operator's screen).
type QueueState struct {
	NextDue          time.Time `json:"next_due,omitzero"` // earliest instant a contact becomes due for this operator; zero: none
	AwaitingApproval int       `json:"awaiting_approval"` // open contacts whose number is not approved yet
	HeldByOthers     int       `json:"held_by_others"`    // open contacts on another operator's screen
	Open             int       `json:"open"`              // open contacts in all
}

// QueueState reads campaignID's queue as operator would be served by Next.
func (s *Service) QueueState(ctx context.Context, campaignID int64, operator string) (QueueState, error) {
	cp, err := s.Campaign(ctx, campaignID)
	if err != nil {
		return QueueState{}, err
	}
	now := s.now()
	var q QueueState
	err = s.db.QueryRowContext(ctx, `SELECT count(*),
		coalesce(sum(NOT EXISTS (SELECT 1 FROM allowlist a WHERE a.e164 = contacts.e164 AND a.status = 'approved'
			AND a.valid_from <= ?1 AND (a.valid_until = '' OR a.valid_until > ?1))), 0),
		coalesce(sum(leased_by <> '' AND leased_by <> ?3 AND lease_until > ?1), 0)
		FROM contacts WHERE campaign_id = ?2 AND state = 'open'`, ft(now), cp.ID, operator).Scan(&q.Open, &q.AwaitingApproval, &q.HeldByOthers)
	if err != nil {
		return q, fmt.Errorf("queue state: %w", err)
	}
	// The three queues of Next, each one's earliest instant; held
	// contacts are left out (their lease may be renewed).
	free := ` AND (leased_by = '' OR lease_until <= ?1)`
	args := []any{ft(now), cp.ID, operator, "", cp.MaxAttempts}
	var cands []time.Time
	for _, part := range []struct {
		q     string
		grace bool
	}{
		{`SELECT min(max(due_at, callback_at)) FROM contacts WHERE campaign_id = ?2 AND state = 'open' AND callback_by = ?3 AND callback_by <> ''`, false},
		{`SELECT min(callback_at) FROM contacts WHERE campaign_id = ?2 AND state = 'open' AND callback_by <> '' AND callback_by <> ?3`, true},
		{`SELECT min(due_at) FROM contacts WHERE campaign_id = ?2 AND state = 'open' AND callback_by = ''`, false},
	} {
		var v sql.NullString
		if err := s.db.QueryRowContext(ctx, part.q+free+eligible, args...).Scan(&v); err != nil {
			return q, fmt.Errorf("queue state: %w", err)
		}
		if !v.Valid || v.String == "" {
			continue
		}
		t := pt(v.String)
		if part.grace {
			t = t.Add(s.grace)
		}
		cands = append(cands, t)
	}
	for _, t := range cands {
		if q.NextDue.IsZero() || t.Before(q.NextDue) {
			q.NextDue = t
		}
	}
	if !q.NextDue.IsZero() && q.NextDue.Before(now) {
		q.NextDue = now
	}
	// Due is not callable: the first instant inside the hours.
	if !q.NextDue.IsZero() {
		q.NextDue, _ = s.NextCallable(cp, q.NextDue)
	}
	return q, nil
}

// OpenCallback leases operator's own callback contactID now, due or not
// (the operator opens it from their list of callbacks). The rules of Next
// apply: active operator, no disposition owed, campaign active and
// assigned, inside the calling hours, number still approved and not on
// the do-not-call list; a lease the operator holds on another contact is
// handed back.
func (s *Service) OpenCallback(ctx context.Context, operator string, contactID int64) (Lease, error) {
	now := s.now()
	var out Lease
	err := s.inTx(ctx, func(dbtx *sql.Tx) error {
		tx := s.on(dbtx)
		if _, err := requireRole(ctx, dbtx, operator, store.RoleOperator, store.RoleSupervisor); err != nil {
			return err
		}
		var pending int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM contacts WHERE leased_by = ? AND leased_by <> '' AND state = 'pending' LIMIT 1`,
			operator).Scan(&pending)
		if err == nil {
			return fmt.Errorf("contact %d: %w", pending, ErrDispositionRequired)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		ct, err := contactTx(ctx, tx, contactID)
		if err != nil {
			return err
		}
		if ct.callbackBy != operator || ct.State != "open" || (ct.leasedBy != "" && ct.leasedBy != operator && ct.LeaseUntil.After(now)) {
			return fmt.Errorf("contact %d is not a callback of %s: %w", contactID, operator, ErrNotFound)
		}
		cp, err := campaignTx(ctx, tx, ct.CampaignID)
		if err != nil {
			return err
		}
		if err := s.canLease(cp, operator, now); err != nil {
			return err
		}
		var ok int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM contacts WHERE id = ?2 AND 1`+strings.Replace(eligible, "?5", "?3", 1),
			ft(now), contactID, cp.MaxAttempts).Scan(&ok); err != nil {
			return err
		}
		if ok == 0 {
			return fmt.Errorf("contact %d: number not approved, on the do-not-call list or out of attempts: %w", contactID, ErrNotFound)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE contacts SET leased_by = '', lease_until = '', due_at = ?
			WHERE leased_by = ? AND state = 'open' AND id <> ?`, ft(now), operator, contactID); err != nil {
			return err
		}
		c, err := leaseContact(ctx, tx, contactID, operator, now, now.Add(s.leaseTTL))
		if err != nil {
			return err
		}
		out = Lease{Contact: c.Contact, Campaign: cp.Name, Client: cp.Client, Script: cp.Script, Dispositions: cp.Dispositions,
			Callback: true, Fields: ScriptFields(cp.Script)}
		return nil
	})
	return out, err
}

// CorrectionWindow is how long an operator may correct their outcome.
func (s *Service) CorrectionWindow() time.Duration { return s.correctWindow }

// CallbackGrace is how long a callback waits for its operator.
func (s *Service) CallbackGrace() time.Duration { return s.grace }
