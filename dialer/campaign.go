package dialer

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"plateau/audit"
	"plateau/config"
	"plateau/policy"
	"plateau/store"
)

// Status of a campaign. Only an active campaign leases contacts.
type Status string

const (
	Draft    Status = "draft"
	Active   Status = "active"
	Paused   Status = "paused"
	Finished Status = "finished"
)

func validStatus(s Status) bool {
	return s == Draft || s == Active || s == Paused || s == Finished
}

// Action is what a disposition does to its contact.
type Action string

const (
	ActionDone     Action = "done"     // the contact leaves the queue
	ActionRetry    Action = "retry"    // again after RetryAfter, at most MaxAttempts calls
	ActionCallback Action = "callback" // back to the same operator at the callback time
	ActionDNC      Action = "dnc"      // done, and the number goes on the do-not-call list
)

// Disposition is one choice an operator has after a call, with the rule it
// applies.
type Disposition struct {
	Name        string   `json:"name"`
	Action      Action   `json:"action"`
	RetryAfter  Duration `json:"retry_after,omitempty"`
	MaxAttempts int      `json:"max_attempts,omitempty"` // retry: calls after which the contact is done
}

// DefaultDispositions is the list a campaign gets unless it says otherwise.
func DefaultDispositions() []Disposition {
	return []Disposition{
		{Name: "appointment set", Action: ActionDone},
		{Name: "interested", Action: ActionDone},
		{Name: "callback", Action: ActionCallback},
		{Name: "not interested", Action: ActionDone},
		{Name: "wrong number", Action: ActionDone},
		{Name: "no answer", Action: ActionRetry, RetryAfter: Duration(2 * time.Hour), MaxAttempts: 3},
		{Name: "busy", Action: ActionRetry, RetryAfter: Duration(15 * time.Minute), MaxAttempts: 3},
		{Name: "do not call", Action: ActionDNC},
	}
}

// Duration is a time.Duration written "2h", "15m" in JSON.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration such as \"2h\" or \"15m\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration (use e.g. 2h, 15m)", s)
	}
	*d = Duration(v)
	return nil
}

// Window is a weekly calling window of a campaign, e.g. days "mon-fri",
// from "09:00", to "12:00", on the site's clock. A campaign calls only
// where its windows and the site's overlap.
type Window struct {
	Days string `json:"days"`
	From string `json:"from"`
	To   string `json:"to"`
}

// CampaignSpec is what a supervisor writes; Update replaces all of it.
type CampaignSpec struct {
	Name         string        `json:"name"`
	Client       string        `json:"client"`
	Script       string        `json:"script"` // Markdown
	Windows      []Window      `json:"windows"`
	Dispositions []Disposition `json:"dispositions"` // empty: DefaultDispositions
	MaxAttempts  int           `json:"max_attempts"` // 0: 5; a backstop over every rule
	Operators    []string      `json:"operators"`    // extensions allowed to take its contacts
}

// Campaign is a stored campaign.
type Campaign struct {
	ID int64 `json:"id"`
	CampaignSpec
	Status    Status    `json:"status"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Disposition returns the named disposition.
func (c Campaign) Disposition(name string) (Disposition, bool) {
	for _, d := range c.Dispositions {
		if strings.EqualFold(d.Name, name) {
			return d, true
		}
	}
	return Disposition{}, false
}

// Assigned reports whether ext may take the campaign's contacts.
func (c Campaign) Assigned(ext string) bool { return slices.Contains(c.Operators, ext) }

// normalize validates the spec and fills in its defaults.
func (sp *CampaignSpec) normalize() error {
	sp.Name = strings.TrimSpace(sp.Name)
	if sp.Name == "" || len(sp.Name) > 100 {
		return fmt.Errorf("%w: name: 1 to 100 characters", ErrInvalid)
	}
	for i, w := range sp.Windows {
		if _, err := (config.Window{Days: w.Days, From: w.From, To: w.To}).Parse(); err != nil {
			return fmt.Errorf("%w: windows[%d]: %v", ErrInvalid, i, err)
		}
	}
	if len(sp.Dispositions) == 0 {
		sp.Dispositions = DefaultDispositions()
	}
	seen := map[string]bool{}
	for i, d := range sp.Dispositions {
		d.Name = strings.TrimSpace(d.Name)
		sp.Dispositions[i].Name = d.Name
		key := strings.ToLower(d.Name)
		switch {
		case d.Name == "":
			return fmt.Errorf("%w: dispositions[%d]: name is required", ErrInvalid, i)
		case seen[key]:
			return fmt.Errorf("%w: dispositions[%d]: %q appears twice", ErrInvalid, i, d.Name)
		case d.Action != ActionDone && d.Action != ActionRetry && d.Action != ActionCallback && d.Action != ActionDNC:
			return fmt.Errorf("%w: dispositions[%d] (%s): action %q is not done, retry, callback or dnc", ErrInvalid, i, d.Name, d.Action)
		case d.Action == ActionRetry && (d.RetryAfter <= 0 || d.MaxAttempts <= 0):
			return fmt.Errorf("%w: dispositions[%d] (%s): retry needs retry_after > 0 and max_attempts > 0", ErrInvalid, i, d.Name)
		}
		seen[key] = true
	}
	if sp.MaxAttempts < 0 {
		return fmt.Errorf("%w: max_attempts must not be negative", ErrInvalid)
	}
	if sp.MaxAttempts == 0 {
		sp.MaxAttempts = 5
	}
	ops := make([]string, 0, len(sp.Operators))
	for _, o := range sp.Operators {
		if o = strings.TrimSpace(o); o != "" && !slices.Contains(ops, o) {
			ops = append(ops, o)
		}
	}
	slices.Sort(ops)
	sp.Operators = ops
	return nil
}

// windows returns the campaign's weekly windows on the site's clock; ok is
// false when the campaign has none of its own (the site's apply alone).
func (s *Service) windows(c Campaign) (policy.Windows, bool, error) {
	if len(c.Windows) == 0 {
		return policy.Windows{}, false, nil
	}
	weekly := make([]config.WeeklyWindow, 0, len(c.Windows))
	for _, w := range c.Windows {
		ww, err := (config.Window{Days: w.Days, From: w.From, To: w.To}).Parse()
		if err != nil {
			return policy.Windows{}, false, err
		}
		weekly = append(weekly, ww)
	}
	ws, err := policy.NewWindows(s.site.Location(), weekly, nil)
	return ws, true, err
}

// SiteWindows returns the site's weekly calling hours (policy.windows):
// a new campaign's form starts with them.
func (s *Service) SiteWindows() []config.WeeklyWindow { return s.site.Weekly() }

// CreateCampaign adds a campaign in the draft state. c.By must be an active
// supervisor or admin; every operator must be an existing user.
func (s *Service) CreateCampaign(ctx context.Context, c store.Change, sp CampaignSpec) (Campaign, error) {
	c = s.at(c)
	if err := sp.normalize(); err != nil {
		return Campaign{}, err
	}
	var out Campaign
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := requireRole(ctx, tx, c.By, managers...); err != nil {
			return fmt.Errorf("create campaign: %w", err)
		}
		ws, ds := mustJSON(sp.Windows), mustJSON(sp.Dispositions)
		res, err := tx.ExecContext(ctx, `INSERT INTO campaigns (name, client, script, windows, dispositions, max_attempts,
			status, created_by, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)`,
			sp.Name, sp.Client, sp.Script, ws, ds, sp.MaxAttempts, string(Draft), c.By, ft(c.At), ft(c.At))
		if err != nil {
			if strings.Contains(err.Error(), "UNIQUE constraint") {
				return fmt.Errorf("create campaign %q: %w", sp.Name, ErrExists)
			}
			return fmt.Errorf("create campaign: %w", err)
		}
		id, _ := res.LastInsertId()
		if err := setOperators(ctx, tx, id, sp.Operators); err != nil {
			return err
		}
		if out, err = campaignTx(ctx, tx, id); err != nil {
			return err
		}
		return auditCampaign(ctx, tx, c, "campaign.create", out)
	})
	return out, err
}

// UpdateCampaign replaces a campaign's spec (its status is kept).
func (s *Service) UpdateCampaign(ctx context.Context, c store.Change, id int64, sp CampaignSpec) (Campaign, error) {
	c = s.at(c)
	if err := sp.normalize(); err != nil {
		return Campaign{}, err
	}
	var out Campaign
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := requireRole(ctx, tx, c.By, managers...); err != nil {
			return fmt.Errorf("update campaign: %w", err)
		}
		if _, err := campaignTx(ctx, tx, id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE campaigns SET name = ?, client = ?, script = ?, windows = ?, dispositions = ?,
			max_attempts = ?, updated_at = ? WHERE id = ?`,
			sp.Name, sp.Client, sp.Script, mustJSON(sp.Windows), mustJSON(sp.Dispositions), sp.MaxAttempts, ft(c.At), id)
		if err != nil {
			if strings.Contains(err.Error(), "UNIQUE constraint") {
				return fmt.Errorf("rename campaign to %q: %w", sp.Name, ErrExists)
			}
			return fmt.Errorf("update campaign: %w", err)
		}
		if err := setOperators(ctx, tx, id, sp.Operators); err != nil {
			return err
		}
		if out, err = campaignTx(ctx, tx, id); err != nil {
			return err
		}
		return auditCampaign(ctx, tx, c, "campaign.update", out)
	})
	return out, err
}

// SetStatus moves a campaign to st. A finished campaign stays finished.
func (s *Service) SetStatus(ctx context.Context, c store.Change, id int64, st Status) (Campaign, error) {
	c = s.at(c)
	if !validStatus(st) {
		return Campaign{}, fmt.Errorf("%w: status %q is not draft, active, paused or finished", ErrInvalid, st)
	}
	var out Campaign
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := requireRole(ctx, tx, c.By, managers...); err != nil {
			return fmt.Errorf("campaign status: %w", err)
		}
		cur, err := campaignTx(ctx, tx, id)
		if err != nil {
			return err
		}
		if cur.Status == Finished && st != Finished {
			return fmt.Errorf("%w: campaign %q is finished", ErrInvalid, cur.Name)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE campaigns SET status = ?, updated_at = ? WHERE id = ?`, string(st), ft(c.At), id); err != nil {
			return err
		}
		if st != Active {
			// Leases end with the campaign's activity; pending
			// dispositions stay pending (the operator still owes one).
			if _, err := tx.ExecContext(ctx, `UPDATE contacts SET leased_by = '', lease_until = '', due_at = ?
				WHERE campaign_id = ? AND state = 'open' AND leased_by <> '' AND lease_until > ?`, ft(c.At), id, ft(c.At)); err != nil {
				return err
			}
		}
		out = cur
		out.Status, out.UpdatedAt = st, pt(ft(c.At))
		_, err = audit.AppendTx(ctx, tx, c.At, audit.Entry{Kind: "campaign.status", Actor: c.By, Subject: campaignSubject(out),
			Outcome: "ok", Source: c.Source, Reason: c.Note, Details: map[string]any{"from": string(cur.Status), "to": string(st)}})
		return err
	})
	return out, err
}

// Campaign returns one campaign.
func (s *Service) Campaign(ctx context.Context, id int64) (Campaign, error) {
	return campaignTx(ctx, s.on(nil), id)
}

// CampaignByName returns the campaign with this exact name.
func (s *Service) CampaignByName(ctx context.Context, name string) (Campaign, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, `SELECT id FROM campaigns WHERE name = ?`, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return Campaign{}, fmt.Errorf("campaign %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return Campaign{}, err
	}
	return campaignTx(ctx, s.db, id)
}

// Campaigns lists campaigns by name.
func (s *Service) Campaigns(ctx context.Context) ([]Campaign, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM campaigns ORDER BY name`)
	if err != nil {
		return nil, err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]Campaign, 0, len(ids))
	for _, id := range ids {
		c, err := campaignTx(ctx, s.db, id)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

func campaignTx(ctx context.Context, q querier, id int64) (Campaign, error) {
	var c Campaign
	var ws, ds, st, cAt, uAt string
	err := q.QueryRowContext(ctx, `SELECT id, name, client, script, windows, dispositions, max_attempts, status,
		created_by, created_at, updated_at FROM campaigns WHERE id = ?`, id).Scan(&c.ID, &c.Name, &c.Client, &c.Script,
		&ws, &ds, &c.MaxAttempts, &st, &c.CreatedBy, &cAt, &uAt)
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("campaign %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("campaign %d: %w", id, err)
	}
	c.Status, c.CreatedAt, c.UpdatedAt = Status(st), pt(cAt), pt(uAt)
	if err := json.Unmarshal([]byte(ws), &c.Windows); err != nil {
		return c, fmt.Errorf("campaign %d: windows: %w", id, err)
	}
	if err := json.Unmarshal([]byte(ds), &c.Dispositions); err != nil {
		return c, fmt.Errorf("campaign %d: dispositions: %w", id, err)
	}
	rows, err := q.QueryContext(ctx, `SELECT extension FROM campaign_operators WHERE campaign_id = ? ORDER BY extension`, id)
	if err != nil {
		return c, err
	}
	defer rows.Close()
	c.Operators = []string{}
	for rows.Next() {
		var e string
		if err := rows.Scan(&e); err != nil {
			return c, err
		}
		c.Operators = append(c.Operators, e)
	}
	if c.Windows == nil {
		c.Windows = []Window{}
	}
	return c, rows.Err()
}

// setOperators replaces a campaign's operators. A newly added operator
// must be active; one already on the campaign stays even while suspended,
// so a campaign saved during someone's suspension does not silently drop
// them (the queue refuses a suspended user's calls anyway).
func setOperators(ctx context.Context, tx *sql.Tx, id int64, ops []string) error {
	prev := map[string]bool{}
	if cur, err := campaignTx(ctx, tx, id); err == nil {
		for _, o := range cur.Operators {
			prev[o] = true
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM campaign_operators WHERE campaign_id = ?`, id); err != nil {
		return err
	}
	for _, o := range ops {
		if _, err := store.ActiveUserTx(ctx, tx, o); err != nil && !(prev[o] && errors.Is(err, store.ErrUserInactive)) {
			return fmt.Errorf("%w: operators: %v", ErrInvalid, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO campaign_operators (campaign_id, extension) VALUES (?,?)`, id, o); err != nil {
			return err
		}
	}
	return nil
}

func auditCampaign(ctx context.Context, tx *sql.Tx, c store.Change, kind string, cp Campaign) error {
	_, err := audit.AppendTx(ctx, tx, c.At, audit.Entry{Kind: kind, Actor: c.By, Subject: campaignSubject(cp), Outcome: "ok",
		Source: c.Source, Reason: c.Note, Details: map[string]any{"client": cp.Client, "operators": cp.Operators,
			"windows": cp.Windows, "dispositions": cp.Dispositions, "max_attempts": cp.MaxAttempts, "status": string(cp.Status)}})
	return err
}

func campaignSubject(c Campaign) string { return fmt.Sprintf("campaign:%d:%s", c.ID, c.Name) }

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own plain structs are marshalled
	}
	return string(b)
}
