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
