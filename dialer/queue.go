package dialer

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"plateau/audit"
	"plateau/store"
)

// Contact is one contact of a campaign as an operator (or the export) sees it.
type Contact struct {
	ID              int64             `json:"id"`
	CampaignID      int64             `json:"campaign_id"`
	E164            string            `json:"number"`
	Company         string            `json:"company"`
	Contact         string            `json:"contact"`
	Email           string            `json:"email"`
	City            string            `json:"city"`
	Notes           string            `json:"notes"`
	Custom          map[string]string `json:"custom"`
	State           string            `json:"state"` // open, pending (disposition owed), done
	Attempts        int               `json:"attempts"`
	LastDisposition string            `json:"last_disposition"`
	LastNotes       string            `json:"last_notes"`
	CallbackAt      time.Time         `json:"callback_at,omitzero"`
	LeaseUntil      time.Time         `json:"lease_until,omitzero"`
	// Answers are the latest answers to the script's capture fields
	// (ScriptFields), field name to text; they go into the client export.
	Answers map[string]string `json:"answers,omitempty"`
}

// Lease is a contact handed to one operator, with what they need on screen.
type Lease struct {
	Contact      Contact       `json:"contact"`
	Campaign     string        `json:"campaign"`
	Client       string        `json:"client"`
	Script       string        `json:"script"` // Markdown
	Dispositions []Disposition `json:"dispositions"`
	Callback     bool          `json:"callback"` // a callback this operator promised
	Fields       []ScriptField `json:"fields"`   // the script's capture fields, answered with the disposition
}

const contactCols = `id, campaign_id, e164, company, contact, email, city, notes, custom, state, attempts,
	last_disposition, last_notes, callback_by, callback_at, leased_by, lease_until, answers`

type execer interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

type contactRow struct {
	Contact
	callbackBy, leasedBy string
}

func scanContact(row interface{ Scan(...any) error }) (contactRow, error) {
	var c contactRow
	var custom, cbAt, lUntil, answers string
	err := row.Scan(&c.ID, &c.CampaignID, &c.E164, &c.Company, &c.Contact.Contact, &c.Email, &c.City, &c.Notes, &custom,
		&c.State, &c.Attempts, &c.LastDisposition, &c.LastNotes, &c.callbackBy, &cbAt, &c.leasedBy, &lUntil, &answers)
	if err != nil {
		return c, err
	}
	if answers != "{}" && answers != "" {
		if err := json.Unmarshal([]byte(answers), &c.Answers); err != nil {
			return c, fmt.Errorf("contact %d: answers: %w", c.ID, err)
		}
	}
	c.CallbackAt, c.LeaseUntil = pt(cbAt), pt(lUntil)
	if custom != "{}" && custom != "" {
		if err := json.Unmarshal([]byte(custom), &c.Custom); err != nil {
			return c, fmt.Errorf("contact %d: custom fields: %w", c.ID, err)
		}
	}
	return c, nil
}

func contactTx(ctx context.Context, q querier, id int64) (contactRow, error) {
	c, err := scanContact(q.QueryRowContext(ctx, `SELECT `+contactCols+` FROM contacts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("contact %d: %w", id, ErrNotFound)
	}
	return c, err
}

// eligible is the part of every queue query that decides whether a
// contact may be offered at all: below the campaign's attempt limit,
// approved on the allowlist at ?1 (the same rule as store.IsApproved) and
// not on the do-not-call list. ?1 is now, ?5 the attempt limit.
const eligible = ` AND attempts < ?5
	AND EXISTS (SELECT 1 FROM allowlist a WHERE a.e164 = contacts.e164 AND a.status = 'approved'
		AND a.valid_from <= ?1 AND (a.valid_until = '' OR a.valid_until > ?1))
	AND NOT EXISTS (SELECT 1 FROM dnc d WHERE d.e164 = contacts.e164)`

// The queue, in order: this operator's own callbacks that are due; anyone's
// callbacks whose grace period is over; then the pool, oldest due first.
// ?2 is the campaign, ?3 the operator, ?4 now minus the callback grace.
var queueQueries = []string{
	`SELECT id FROM contacts WHERE campaign_id = ?2 AND state = 'open' AND callback_by = ?3 AND callback_by <> ''
		AND callback_at <= ?1 AND due_at <= ?1` + eligible + ` ORDER BY callback_at, id LIMIT 1`,
	`SELECT id FROM contacts WHERE campaign_id = ?2 AND state = 'open' AND callback_by <> ''
		AND callback_at <= ?4 AND due_at <= ?1` + eligible + ` ORDER BY callback_at, id LIMIT 1`,
	`SELECT id FROM contacts INDEXED BY contacts_queue WHERE campaign_id = ?2 AND state = 'open' AND due_at <= ?1
		AND (callback_by = '' OR callback_at <= ?4)` + eligible + ` ORDER BY due_at, id LIMIT 1`,
}

// Next leases the next contact of a campaign to operator. The operator must
// be active and assigned, the campaign active, and now inside both the
// site's and the campaign's calling hours. The lease lasts the lease TTL;
// asking again while holding it returns the same contact with the lease
// renewed (that is how a console keeps a lease alive). A contact whose call
// awaits this operator's disposition is returned with
// ErrDispositionRequired, and nothing else is leased until it is disposed.
// ErrNoContact means nothing is due now.
//
// The whole choice runs in one write transaction (BEGIN IMMEDIATE), so two
// operators never get the same contact.
func (s *Service) Next(ctx context.Context, operator string, campaignID int64) (Lease, error) {
	now := s.now()
	cp, err := campaignTx(ctx, s.on(nil), campaignID)
	if err != nil {
		return Lease{}, err
	}
	lease := func(c contactRow, callback bool) Lease {
		return Lease{Contact: c.Contact, Campaign: cp.Name, Client: cp.Client, Script: cp.Script,
			Dispositions: cp.Dispositions, Callback: callback, Fields: ScriptFields(cp.Script)}
	}
	var out Lease
	err = s.inTx(ctx, func(dbtx *sql.Tx) error {
		tx := s.on(dbtx)
		var status string
		err := tx.QueryRowContext(ctx, `SELECT status FROM users WHERE extension = ?`, operator).Scan(&status)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && status != string(store.StatusActive)) {
			return fmt.Errorf("%w: user %q is unknown or suspended", ErrForbidden, operator)
		}
		if err != nil {
			return err
		}
		// A disposition owed blocks everything else, in any campaign.
		var pending int64
		err = tx.QueryRowContext(ctx, `SELECT id FROM contacts WHERE leased_by = ? AND leased_by <> '' AND state = 'pending' ORDER BY id LIMIT 1`,
			operator).Scan(&pending)
		if err == nil {
			c, err := contactTx(ctx, tx, pending)
			if err != nil {
				return err
			}
			out = lease(c, false)
			if c.CampaignID != cp.ID {
				if pc, err := campaignTx(ctx, tx, c.CampaignID); err == nil {
					out = Lease{Contact: c.Contact, Campaign: pc.Name, Client: pc.Client, Script: pc.Script, Dispositions: pc.Dispositions,
						Fields: ScriptFields(pc.Script)}
				}
			}
			return fmt.Errorf("contact %d (%s): %w", c.ID, c.E164, ErrDispositionRequired)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if err := s.canLease(cp, operator, now); err != nil {
			return err
		}
		until := now.Add(s.leaseTTL)
		// The lease this operator already holds: renew it (same campaign)
		// or hand it back (another campaign).
		var held, heldCampaign int64
		err = tx.QueryRowContext(ctx, `SELECT id, campaign_id FROM contacts WHERE leased_by = ? AND leased_by <> '' AND state = 'open'
			AND lease_until > ? ORDER BY id LIMIT 1`, operator, ft(now)).Scan(&held, &heldCampaign)
		switch {
		case err == nil && heldCampaign == cp.ID:
			c, err := leaseContact(ctx, tx, held, operator, now, until)
			if err != nil {
				return err
			}
			out = lease(c, c.callbackBy == operator)
			return nil
		case err == nil:
			if err := release(ctx, tx, held, operator, now); err != nil {
				return err
			}
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		args := []any{ft(now), cp.ID, operator, ft(now.Add(-s.grace)), cp.MaxAttempts}
		for i, q := range queueQueries {
			var id int64
			err := tx.QueryRowContext(ctx, q, args...).Scan(&id)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return fmt.Errorf("next contact: %w", err)
			}
			c, err := leaseContact(ctx, tx, id, operator, now, until)
			if err != nil {
				return err
			}
			out = lease(c, i == 0)
			return nil
		}
		return ErrNoContact
	})
	return out, err
}

// canLease checks the campaign's state, the assignment and the windows.
func (s *Service) canLease(cp Campaign, operator string, now time.Time) error {
	if cp.Status != Active {
		return fmt.Errorf("campaign %q is %s: %w", cp.Name, cp.Status, ErrNotActive)
	}
	if !cp.Assigned(operator) {
		return fmt.Errorf("%s, campaign %q: %w", operator, cp.Name, ErrNotAssigned)
	}
	if !s.site.Contains(now) {
		return fmt.Errorf("site: %w", ErrOutsideWindow)
	}
	ws, own, err := s.windows(cp)
	if err != nil {
		return err
	}
	if own && !ws.Contains(now) {
		return fmt.Errorf("campaign %q: %w", cp.Name, ErrOutsideWindow)
	}
	return nil
}

func leaseContact(ctx context.Context, tx runner, id int64, operator string, now, until time.Time) (contactRow, error) {
	// due_at follows the lease: the queue index skips leased contacts
	// without reading them, and an expired lease is simply due again.
	c, err := scanContact(tx.QueryRowContext(ctx, `UPDATE contacts SET leased_by = ?, lease_until = ?, due_at = ?
		WHERE id = ? AND state = 'open' RETURNING `+contactCols, operator, ft(until), ft(until), id))
	if err != nil {
		return c, fmt.Errorf("lease contact %d: %w", id, err)
	}
	return c, nil
}

func release(ctx context.Context, tx execer, id int64, operator string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE contacts SET leased_by = '', lease_until = '', due_at = ?
		WHERE id = ? AND leased_by = ? AND state = 'open'`, ft(now), id, operator)
	return err
}

// heldBy returns the contact if operator holds it: leased to them and not
// taken over by anyone since (an expired lease still counts until someone
// else leases the contact), or pending their disposition when pendingOK.
func heldBy(ctx context.Context, tx querier, id int64, operator string, pendingOK bool) (contactRow, error) {
	c, err := contactTx(ctx, tx, id)
	if err != nil {
		return c, err
	}
	if c.leasedBy != operator || c.State == "done" || (c.State == "pending" && !pendingOK) {
		return c, fmt.Errorf("contact %d: %w", id, ErrNotLeased)
	}
	return c, nil
}

// Release hands a leased contact back to the pool at once.
func (s *Service) Release(ctx context.Context, operator string, contactID int64) error {
	now := s.now()
	return s.inTx(ctx, func(tx *sql.Tx) error {
		r := s.on(tx)
		if _, err := heldBy(ctx, r, contactID, operator, false); err != nil {
			return err
		}
		return release(ctx, r, contactID, operator, now)
	})
}

// Skip hands a leased contact back with a reason; it stays out of the
// queue for the skip delay so the next request offers someone else.
func (s *Service) Skip(ctx context.Context, c store.Change, contactID int64, reason string) error {
	c = s.at(c)
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return fmt.Errorf("%w: skip needs a reason", ErrInvalid)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		ct, err := heldBy(ctx, tx, contactID, c.By, false)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE contacts SET leased_by = '', lease_until = '', due_at = ? WHERE id = ?`,
			ft(c.At.Add(s.skipWait)), contactID); err != nil {
			return err
		}
		_, err = audit.AppendTx(ctx, tx, c.At, audit.Entry{Kind: "dialer.skip", Actor: c.By, Subject: ct.E164, Outcome: "ok",
			Reason: reason, Source: c.Source, Details: map[string]any{"contact": ct.ID, "campaign": ct.CampaignID}})
		return err
	})
}
