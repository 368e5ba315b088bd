package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestTraining(t *testing.T) {
	ctx := context.Background()
	st, err := Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	if coach, err := st.CountTrainingCall(ctx, "101"); err != nil || coach {
		t.Fatalf("not in training: coach %v err %v", coach, err)
	}
	if err := st.StartTraining(ctx, "101", "201", 2, now); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, true, false} {
		if coach, err := st.CountTrainingCall(ctx, "101"); err != nil || coach != want {
			t.Fatalf("call %d: coach %v err %v, want %v", i+1, coach, err, want)
		}
	}
	if err := st.StartTraining(ctx, "102", "201", 0, now); err != nil {
		t.Fatal(err)
	}
	if coach, _ := st.CountTrainingCall(ctx, "102"); !coach {
		t.Fatal("until sign-off: not coached")
	}
	if err := st.SignOff(ctx, "102", "202", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if coach, _ := st.CountTrainingCall(ctx, "102"); coach {
		t.Fatal("signed off: still coached")
	}
	if err := st.SignOff(ctx, "102", "202", now); !errors.Is(err, ErrNotInTraining) {
		t.Fatalf("second sign-off: %v", err)
	}
	tr, ok, err := st.TrainingOf(ctx, "102")
	if err != nil || !ok || tr.SignedOffBy != "202" || !tr.SignedOffAt.Equal(now.Add(time.Hour)) || tr.Status != "signed_off" {
		t.Fatalf("training of 102: %+v %v %v", tr, ok, err)
	}
}

// An operator who is not in training is answered without SQLite's write
// lock: every answered call asks, and a write would wait behind the audit
// log and the recordings index.
func TestCountTrainingCallNotInTrainingReadsOnly(t *testing.T) {
	ctx := context.Background()
	st, err := Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	if err := st.StartTraining(ctx, "102", "201", 0, now); err != nil {
		t.Fatal(err)
	}
	if err := st.SignOff(ctx, "102", "202", now); err != nil {
		t.Fatal(err)
	}
	// Another writer holds the lock (the store opens with _txlock=immediate).
	tx, err := st.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for _, ext := range []string{"101", "102"} { // never trained, signed off
		start := time.Now()
		if coach, err := st.CountTrainingCall(short, ext); err != nil || coach {
			t.Fatalf("%s: coach %v err %v", ext, coach, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("%s: waited %v for the write lock", ext, d)
		}
	}
}
