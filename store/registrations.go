package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Binding is one registered contact of a user.
type Binding struct {
	Extension string
	Contact   string
	Source    string
	Transport string
	UserAgent string
	CallID    string
	CSeq      uint32
	ExpiresAt time.Time
	// Path is the REGISTER's Path header values (RFC 3327), in order: the
	// proxies to ring the phone through.
	Path []string
}

// SaveBindings writes upserts and removals in one transaction; the
// registrar batches them so REGISTER bursts cost one commit, not one each.
func (s *Store) SaveBindings(ctx context.Context, upserts []Binding, removals []Binding) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if len(upserts) > 0 {
		st, err := tx.PrepareContext(ctx, `INSERT INTO registrations
			(extension, contact, source, transport, user_agent, call_id, cseq, expires_at, path)
			VALUES (?,?,?,?,?,?,?,?,?)
			ON CONFLICT (extension, contact) DO UPDATE SET source = excluded.source,
			transport = excluded.transport, user_agent = excluded.user_agent,
			call_id = excluded.call_id, cseq = excluded.cseq, expires_at = excluded.expires_at,
			path = excluded.path`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, b := range upserts {
			if _, err := st.ExecContext(ctx, b.Extension, b.Contact, b.Source, b.Transport, b.UserAgent, b.CallID, b.CSeq, formatTime(b.ExpiresAt), strings.Join(b.Path, "\n")); err != nil {
				return fmt.Errorf("save binding %s %s: %w", b.Extension, b.Contact, err)
			}
		}
	}
	for _, b := range removals {
		q, args := `DELETE FROM registrations WHERE extension = ? AND contact = ?`, []any{b.Extension, b.Contact}
		if b.Contact == "" { // Contact: * removes them all
			q, args = `DELETE FROM registrations WHERE extension = ?`, []any{b.Extension}
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("remove binding %s: %w", b.Extension, err)
		}
	}
	return tx.Commit()
}

// Bindings returns the unexpired bindings, all users' if ext is empty.
func (s *Store) Bindings(ctx context.Context, ext string, now time.Time) ([]Binding, error) {
	q := `SELECT extension, contact, source, transport, user_agent, call_id, cseq, expires_at, path
		FROM registrations WHERE expires_at > ?`
	args := []any{formatTime(now)}
	if ext != "" {
		q += ` AND extension = ?`
		args = append(args, ext)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY extension, contact`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var bs []Binding
	for rows.Next() {
		var b Binding
		var exp, path string
		if err := rows.Scan(&b.Extension, &b.Contact, &b.Source, &b.Transport, &b.UserAgent, &b.CallID, &b.CSeq, &exp, &path); err != nil {
			return nil, err
		}
		if path != "" {
			b.Path = strings.Split(path, "\n")
		}
		b.ExpiresAt = parseTime(exp)
		bs = append(bs, b)
	}
	return bs, rows.Err()
}

// PurgeExpiredBindings deletes bindings that expired before now.
func (s *Store) PurgeExpiredBindings(ctx context.Context, now time.Time) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM registrations WHERE expires_at <= ?`, formatTime(now))
	return err
}
