package dialer

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Results are a campaign's counts. There is nothing per operator, on
// purpose.
type Results struct {
	CampaignID       int64          `json:"campaign_id"`
	Campaign         string         `json:"campaign"`
	Status           Status         `json:"status"`
	Contacts         int            `json:"contacts"`
	Open             int            `json:"open"`              // still in the queue
	Pending          int            `json:"pending"`           // called, disposition not entered yet
	Done             int            `json:"done"`              // out of the queue for good
	AwaitingApproval int            `json:"awaiting_approval"` // open, number not approved (yet)
	Attempts         int            `json:"attempts"`          // calls placed
	Reached          int            `json:"reached"`           // contacts answered at least once
	ByOutcome        map[string]int `json:"by_outcome"`        // calls by outcome
	ByDisposition    map[string]int `json:"by_disposition"`    // contacts by last disposition
}

// Results counts a campaign's contacts, calls and dispositions.
func (s *Service) Results(ctx context.Context, campaignID int64) (Results, error) {
	cp, err := s.Campaign(ctx, campaignID)
	if err != nil {
		return Results{}, err
	}
	r := Results{CampaignID: cp.ID, Campaign: cp.Name, Status: cp.Status, ByOutcome: map[string]int{}, ByDisposition: map[string]int{}}
	now := ft(s.now())
	err = s.db.QueryRowContext(ctx, `SELECT count(*),
		coalesce(sum(state = 'open'), 0), coalesce(sum(state = 'pending'), 0), coalesce(sum(state = 'done'), 0),
		coalesce(sum(state = 'open' AND NOT EXISTS (SELECT 1 FROM allowlist a WHERE a.e164 = contacts.e164
			AND a.status = 'approved' AND a.valid_from <= ?2 AND (a.valid_until = '' OR a.valid_until > ?2))), 0)
		FROM contacts WHERE campaign_id = ?1`, cp.ID, now).Scan(&r.Contacts, &r.Open, &r.Pending, &r.Done, &r.AwaitingApproval)
	if err != nil {
		return r, fmt.Errorf("results: %w", err)
	}
	if err := s.db.QueryRowContext(ctx, `SELECT count(DISTINCT contact_id) FROM attempts WHERE campaign_id = ? AND outcome = 'answered'`,
		cp.ID).Scan(&r.Reached); err != nil {
		return r, fmt.Errorf("results: %w", err)
	}
	if err := s.countInto(ctx, r.ByOutcome, `SELECT outcome, count(*) FROM attempts WHERE campaign_id = ? AND outcome <> '' GROUP BY outcome`, cp.ID); err != nil {
		return r, err
	}
	for _, n := range r.ByOutcome {
		r.Attempts += n
	}
	err = s.countInto(ctx, r.ByDisposition, `SELECT last_disposition, count(*) FROM contacts WHERE campaign_id = ? AND last_disposition <> ''
		GROUP BY last_disposition`, cp.ID)
	return r, err
}

func (s *Service) countInto(ctx context.Context, m map[string]int, q string, args ...any) error {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return err
		}
		m[k] = n
	}
	return rows.Err()
}

// ExportHeader is the first row of Export.
var ExportHeader = []string{"company", "contact", "phone", "email", "city", "attempts", "last_disposition", "notes", "callback_at"}

// Export writes the campaign's contacts as CSV for the client company:
// the contact, how many calls, the last disposition and its notes, and the
// callback date (site time) if one is scheduled, then one column per
// capture field of the script (ScriptFields) with the latest answer. Free
// text is defused for spreadsheets. Nothing says who called.
func (s *Service) Export(ctx context.Context, campaignID int64, w io.Writer) error {
	cp, err := s.Campaign(ctx, campaignID)
	if err != nil {
		return err
	}
	fields := ScriptFields(cp.Script)
	rows, err := s.db.QueryContext(ctx, `SELECT company, contact, e164, email, city, attempts, last_disposition, last_notes, callback_at, answers
		FROM contacts WHERE campaign_id = ? ORDER BY id`, campaignID)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer rows.Close()
	loc := s.site.Location()
	cw := csv.NewWriter(w)
	header := slices.Clone(ExportHeader)
	for _, f := range fields {
		header = append(header, f.Name)
	}
	if err := cw.Write(header); err != nil {
		return err
	}
	for rows.Next() {
		var company, contact, e164, email, city, disp, notes, cb, answersJSON string
		var attempts int
		if err := rows.Scan(&company, &contact, &e164, &email, &city, &attempts, &disp, &notes, &cb, &answersJSON); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		answers := map[string]string{}
		if err := json.Unmarshal([]byte(answersJSON), &answers); err != nil {
			return fmt.Errorf("export: answers: %w", err)
		}
		var cbLocal string
		if cb != "" {
			cbLocal = pt(cb).In(loc).Format(time.RFC3339)
		}
		rec := []string{csvText(company), csvText(contact), e164, csvText(email), csvText(city),
			strconv.Itoa(attempts), csvText(disp), csvText(notes), cbLocal}
		for _, f := range fields {
			rec = append(rec, csvText(answers[f.Name]))
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	cw.Flush()
	return cw.Error()
}

// csvText defuses spreadsheet formulas in free text (imported files and
// operators' notes end up in the client's spreadsheet).
func csvText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
