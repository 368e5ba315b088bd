package dialer

import (
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"plateau/audit"
	"plateau/policy"
	"plateau/store"
)

// Reasons a row is rejected.
const (
	RejectInvalidNumber = "invalid number"
	RejectDuplicate     = "duplicate in the file"
	RejectInCampaign    = "already in the campaign"
	RejectDNC           = "on the do-not-call list"
)

// Rejection is a row left out of an import.
type Rejection struct {
	Line   int    `json:"line"`
	Phone  string `json:"phone"`
	Reason string `json:"reason"`           // one of the Reject* constants
	Detail string `json:"detail,omitempty"` // e.g. the first line of a duplicate
}

// ImportReport says what an import did.
type ImportReport struct {
	Campaign  string      `json:"campaign"`
	Encoding  string      `json:"encoding"`
	Separator string      `json:"separator"`
	SHA256    string      `json:"sha256"`
	Rows      int         `json:"rows"`     // data rows read (blank rows skipped)
	Added     int         `json:"added"`    // contacts added to the campaign
	Proposed  int         `json:"proposed"` // numbers proposed for the allowlist, awaiting security
	Rejected  []Rejection `json:"rejected"`
}

// Import adds a contact file to a campaign, all in one transaction with its
// audit entries: the contacts, and an allowlist proposal by c.By for each
// number that is neither approved nor already proposed for this campaign
// (a security officer other than c.By must approve them before any
// operator sees those contacts). Rows are rejected with their line number
// and reason; an unreadable file (ErrUnreadableFile) imports nothing.
// Importing the same file again adds nothing and writes nothing: every row
// is then "already in the campaign".
func (s *Service) Import(ctx context.Context, c store.Change, campaignID int64, data []byte) (ImportReport, error) {
	c = s.at(c)
	sum := sha256.Sum256(data)
	rep := ImportReport{SHA256: hex.EncodeToString(sum[:]), Rejected: []Rejection{}}
	f, err := ParseFile(data)
	if err != nil {
		return rep, err
	}
	rep.Encoding, rep.Separator, rep.Rows = f.Encoding, string(f.Separator), len(f.Records)

	// Normalise outside the transaction: it is the slow, pure part.
	type accepted struct {
		rec  Record
		e164 string
	}
	acc := make([]accepted, 0, len(f.Records))
	first := make(map[string]int, len(f.Records))
	norm := s.normalizeAll(f.Records)
	for i, r := range f.Records {
		n, err := norm[i].e164, norm[i].err
		if err != nil {
			rep.Rejected = append(rep.Rejected, Rejection{Line: r.Line, Phone: r.Phone, Reason: RejectInvalidNumber, Detail: err.Error()})
			continue
		}
		if l, dup := first[n]; dup {
			rep.Rejected = append(rep.Rejected, Rejection{Line: r.Line, Phone: r.Phone, Reason: RejectDuplicate,
				Detail: fmt.Sprintf("%s is on line %d", n, l)})
			continue
		}
		first[n] = r.Line
		acc = append(acc, accepted{r, n})
	}

	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.st.BeginTx(ctx)
	if err != nil {
		return rep, err
	}
	defer tx.Rollback()
	if _, err := requireRole(ctx, tx, c.By, managers...); err != nil {
		return rep, fmt.Errorf("import: %w", err)
	}
	cp, err := campaignTx(ctx, tx, campaignID)
	if err != nil {
		return rep, err
	}
	rep.Campaign = cp.Name
	if cp.Status == Finished {
		return rep, fmt.Errorf("%w: campaign %q is finished", ErrInvalid, cp.Name)
	}
	existing, err := numberSet(ctx, tx, `SELECT e164 FROM contacts WHERE campaign_id = ?`, cp.ID)
	if err != nil {
		return rep, err
	}
	dnc, err := numberSet(ctx, tx, `SELECT e164 FROM dnc`)
	if err != nil {
		return rep, err
	}
	// Callable now, or already waiting for security in this campaign: no
	// new proposal. (The approval rule is store.IsApproved's.)
	known, err := numberSet(ctx, tx, `SELECT e164 FROM allowlist WHERE
		(status = 'approved' AND valid_from <= ?1 AND (valid_until = '' OR valid_until > ?1))
		OR (status IN ('proposed','approved') AND campaign = ?2)`, ft(c.At), cp.Name)
	if err != nil {
		return rep, err
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO contacts (campaign_id, e164, company, contact, email, city, notes,
		custom, import_line, due_at) VALUES (?,?,?,?,?,?,?,?,?,?)`)
	if err != nil {
		return rep, err
	}
	defer ins.Close()
	now := ft(c.At)
	var proposals []store.Proposal
	for _, a := range acc {
		if existing[a.e164] {
			rep.Rejected = append(rep.Rejected, Rejection{Line: a.rec.Line, Phone: a.rec.Phone, Reason: RejectInCampaign, Detail: a.e164})
			continue
		}
		if dnc[a.e164] {
			rep.Rejected = append(rep.Rejected, Rejection{Line: a.rec.Line, Phone: a.rec.Phone, Reason: RejectDNC, Detail: a.e164})
			continue
		}
		custom := "{}"
		if len(a.rec.Custom) > 0 {
			b, err := json.Marshal(a.rec.Custom)
			if err != nil {
				return rep, err
			}
			custom = string(b)
		}
		if _, err := ins.ExecContext(ctx, cp.ID, a.e164, a.rec.Company, a.rec.Contact, a.rec.Email, a.rec.City, a.rec.Notes,
			custom, a.rec.Line, now); err != nil {
			return rep, fmt.Errorf("import line %d: %w", a.rec.Line, err)
		}
		rep.Added++
		if !known[a.e164] {
			label := a.rec.Company
			if label == "" {
				label = a.rec.Contact
			}
			proposals = append(proposals, store.Proposal{E164: a.e164, Label: label, Campaign: cp.Name,
				Note: fmt.Sprintf("imported into campaign %q", cp.Name)})
		}
	}
	slices.SortStableFunc(rep.Rejected, func(a, b Rejection) int { return cmp.Compare(a.Line, b.Line) })
	if rep.Added == 0 {
		return rep, nil // nothing to change: not even an audit entry
	}
	if _, err := store.ProposeAllowlistTx(ctx, tx, c, campaignSubject(cp), proposals); err != nil {
		return rep, fmt.Errorf("import: %w", err)
	}
	rep.Proposed = len(proposals)
	reasons := map[string]int{}
	for _, r := range rep.Rejected {
		reasons[r.Reason]++
	}
	if _, err := audit.AppendTx(ctx, tx, c.At, audit.Entry{Kind: "campaign.import", Actor: c.By, Subject: campaignSubject(cp),
		Outcome: "ok", Source: c.Source, Reason: c.Note, Details: map[string]any{"sha256": rep.SHA256, "rows": rep.Rows,
			"added": rep.Added, "proposed": rep.Proposed, "rejected": reasons, "encoding": rep.Encoding}}); err != nil {
		return rep, err
	}
	if err := tx.Commit(); err != nil {
		return rep, fmt.Errorf("import: %w", err)
	}
	return rep, nil
}

func numberSet(ctx context.Context, tx *sql.Tx, q string, args ...any) (map[string]bool, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		m[n] = true
	}
	return m, rows.Err()
}

type normalized struct {
	e164 string
	err  error
}

// normalizeAll normalises every record's number on all cores: it is the
// costliest pure step of a large import.
func (s *Service) normalizeAll(recs []Record) []normalized {
	out := make([]normalized, len(recs))
	workers := min(runtime.GOMAXPROCS(0), len(recs)/1000+1)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(recs); i += workers {
				out[i].e164, out[i].err = policy.Normalize(recs[i].Phone, s.region)
			}
		})
	}
	wg.Wait()
	return out
}
