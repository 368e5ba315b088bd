package dialer

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"
)

// labelRecordings copies a contact's disposition onto the recordings of
// the calls it concludes, so the recordings' « Issue de l'appel » filter
// finds them ("today's appointments"). attempts selects the attempt rows
// just disposed or corrected; only real calls (outcome set) have a
// recording. A recording is found by the outside leg's Call-ID when the
// index lists it, else as the operator's latest recording of that number
// started no later than the attempt (a call is recorded from its INVITE:
// "no recording, no call"). A call whose recording cannot be found is
// left alone: the label is a search aid, never evidence.
func labelRecordings(ctx context.Context, tx *sql.Tx, e164, disposition, where string, args ...any) error {
	rows, err := tx.QueryContext(ctx, `SELECT id, contact_id, operator, at, call_id FROM attempts WHERE outcome <> '' AND `+where, args...)
	if err != nil {
		return err
	}
	var atts []labelAttempt
	for rows.Next() {
		var a labelAttempt
		if err := rows.Scan(&a.id, &a.contact, &a.op, &a.at, &a.callID); err != nil {
			rows.Close()
			return err
		}
		atts = append(atts, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, a := range atts {
		id, err := recordingOf(ctx, tx, e164, a)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE recordings SET disposition = ? WHERE id = ?`, disposition, id); err != nil {
			return err
		}
	}
	return nil
}

// labelAttempt is a disposed call whose recording gets the label.
type labelAttempt struct {
	id, contact    int64
	op, at, callID string
}

func recordingOf(ctx context.Context, tx *sql.Tx, e164 string, a labelAttempt) (string, error) {
	var id string
	if a.callID != "" {
		q, _ := json.Marshal(a.callID) // as stored in the JSON array
		err := tx.QueryRowContext(ctx, `SELECT id FROM recordings WHERE number = ? AND instr(call_ids, ?) > 0
			ORDER BY start_time DESC LIMIT 1`, e164, string(q)).Scan(&id)
		if !errors.Is(err, sql.ErrNoRows) {
			return id, err
		}
	}
	// The attempt is stored when the call's result is known, after its
	// recording started (a minute of slack covers clocks read in
	// different places), and after the contact's previous attempt: a call
	// whose own recording is missing must not relabel an older one.
	limit := ft(pt(a.at).Add(time.Minute))
	var prev string
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(at), '') FROM attempts WHERE contact_id = ? AND id < ? AND outcome <> ''`,
		a.contact, a.id).Scan(&prev); err != nil {
		return "", err
	}
	err := tx.QueryRowContext(ctx, `SELECT id FROM recordings WHERE number = ? AND operator = ? AND start_time <= ? AND start_time > ?
		ORDER BY start_time DESC LIMIT 1`, e164, a.op, limit, prev).Scan(&id)
	return id, err
}
