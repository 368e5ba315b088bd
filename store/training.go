package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"plateau/audit"
)

// Training is an operator's coaching state (migration 0007).
type Training struct {
	Extension   string
	Status      string // "training" or "signed_off"
	MaxCalls    int    // coached calls; 0: every call until sign-off
	Calls       int    // answered calls since training started
	StartedBy   string
	StartedAt   time.Time
	SignedOffBy string
	SignedOffAt time.Time
}

// ErrNotInTraining: sign-off of an operator who is not in training.
var ErrNotInTraining = errors.New("operator is not in training")

// StartTraining puts ext in training (again), by supervisor by, audited
// (user.train) in the same transaction.
func (s *Store) StartTraining(ctx context.Context, ext, by string, maxCalls int, now time.Time) error {
	if maxCalls < 0 {
		return fmt.Errorf("training calls %d: must not be negative", maxCalls)
	}
	return s.trainingTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO operator_training (extension, status, max_calls, calls, started_by, started_at)
		VALUES (?, 'training', ?, 0, ?, ?)
		ON CONFLICT (extension) DO UPDATE SET status='training', max_calls=excluded.max_calls, calls=0,
			started_by=excluded.started_by, started_at=excluded.started_at, signed_off_by='', signed_off_at=''`,
			ext, maxCalls, by, FormatTime(now)); err != nil {
			return fmt.Errorf("start training %s: %w", ext, err)
		}
		_, err := audit.AppendTx(ctx, tx, now, audit.Entry{Kind: "user.train", Actor: by, Subject: ext, Outcome: "training",
			Details: map[string]any{"max_calls": maxCalls}})
		return err
	})
}

// SignOff records that supervisor by signed ext off (no more coaching),
// audited (user.signoff) in the same transaction.
func (s *Store) SignOff(ctx context.Context, ext, by string, now time.Time) error {
	return s.trainingTx(ctx, func(tx *sql.Tx) error {
		var calls int
		err := tx.QueryRowContext(ctx, `UPDATE operator_training SET status='signed_off', signed_off_by=?, signed_off_at=?
		WHERE extension=? AND status='training' RETURNING calls`, by, FormatTime(now), ext).Scan(&calls)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sign off %s: %w", ext, ErrNotInTraining)
		}
		if err != nil {
			return fmt.Errorf("sign off %s: %w", ext, err)
		}
		_, err = audit.AppendTx(ctx, tx, now, audit.Entry{Kind: "user.signoff", Actor: by, Subject: ext, Outcome: "signed_off",
			Details: map[string]any{"calls": calls}})
		return err
	})
}

func (s *Store) trainingTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// TrainingOf returns ext's coaching state; ok is false if ext was never
// in training.
func (s *Store) TrainingOf(ctx context.Context, ext string) (t Training, ok bool, err error) {
	var started, signed string
	err = s.db.QueryRowContext(ctx, `SELECT extension, status, max_calls, calls, started_by, started_at, signed_off_by, signed_off_at
		FROM operator_training WHERE extension=?`, ext).Scan(&t.Extension, &t.Status, &t.MaxCalls, &t.Calls, &t.StartedBy, &started, &t.SignedOffBy, &signed)
	if errors.Is(err, sql.ErrNoRows) {
		return Training{}, false, nil
	}
	if err != nil {
		return Training{}, false, err
	}
	t.StartedAt = ParseTime(started)
	t.SignedOffAt = ParseTime(signed)
	return t, true, nil
}

// CountTrainingCall counts one answered call of ext and reports whether
// it is to be coached (ext in training, within its coached calls).
func (s *Store) CountTrainingCall(ctx context.Context, ext string) (bool, error) {
	// Most operators are not in training: a read tells, without the write
	// lock. An UPDATE takes it even when no row matches, and every answered
	// call waited for it behind the recordings and the audit log (SQLite's
	// busy handler sleeps, holding a pooled connection, while it waits).
	// The UPDATE below re-checks the status, so a sign-off in between wins.
	st, err := s.prepared(ctx, `SELECT EXISTS (SELECT 1 FROM operator_training WHERE extension=? AND status='training')`)
	if err != nil {
		return false, fmt.Errorf("training call %s: %w", ext, err)
	}
	var training bool
	if err := st.QueryRowContext(ctx, ext).Scan(&training); err != nil {
		return false, fmt.Errorf("training call %s: %w", ext, err)
	}
	if !training {
		return false, nil
	}
	var maxCalls, calls int
	err = s.db.QueryRowContext(ctx, `UPDATE operator_training SET calls = calls + 1
		WHERE extension=? AND status='training' RETURNING max_calls, calls`, ext).Scan(&maxCalls, &calls)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("training call %s: %w", ext, err)
	}
	return maxCalls == 0 || calls <= maxCalls, nil
}
