package dialer

import (
	"testing"
	"time"
)

// The disposition lands on the recording of the call it concludes, found
// by Call-ID or as the operator's latest recording of the number since the
// contact's previous call; a call without a recording relabels nothing;
// a supervisor's correction follows.
func TestDispositionLabelsRecording(t *testing.T) {
	f := newFixture(t, 1)
	c := f.campaign("C", "101")
	f.importCSV(c, "phone\n0240000001\n")
	f.approve(c)
	rec := func(id, op, callIDs string, start time.Time) {
		t.Helper()
		if _, err := f.st.DB().ExecContext(f.ctx, `INSERT INTO recordings (id, call_ids, operator, number, campaign, start_time, path, state)
			VALUES (?,?,?,?,?,?,?, 'open')`, id, callIDs, op, "+33240000001", "C", ft(start), id+".wav"); err != nil {
			t.Fatal(err)
		}
	}
	label := func(id string) string {
		t.Helper()
		var d string
		if err := f.st.DB().QueryRowContext(f.ctx, `SELECT disposition FROM recordings WHERE id = ?`, id).Scan(&d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	call := func(o Outcome, callID string) int64 {
		t.Helper()
		a := f.next("101", c).Contact
		if _, err := f.svc.RecordAttempt(f.ctx, Attempt{ContactID: a.ID, Operator: "101", Outcome: o, CallID: callID}); err != nil {
			t.Fatal(err)
		}
		return a.ID
	}
	// Another operator's recording of the same number is never taken.
	rec("rec-other", "102", `[]`, f.clk.Now().Add(-10*time.Second))
	// Call 1: busy, recorded, no Call-ID known.
	rec("rec-1", "101", `[]`, f.clk.Now().Add(-20*time.Second))
	id := call(Busy, "")
	f.dispose("101", id, "busy", time.Time{})
	if label("rec-1") != "busy" || label("rec-other") != "" {
		t.Fatalf("call 1: rec-1 %q, rec-other %q", label("rec-1"), label("rec-other"))
	}
	// Call 2 has no recording row: rec-1 keeps its own label.
	f.clk.Add(16 * time.Minute)
	call(NoAnswer, "")
	f.dispose("101", id, "busy", time.Time{})
	f.clk.Add(16 * time.Minute)
	// Call 3: found by its leg's Call-ID.
	rec("rec-3", "101", `["leg-3"]`, f.clk.Now().Add(-5*time.Second))
	call(Answered, "leg-3")
	f.clk.Add(2 * time.Minute)
	f.dispose("101", id, "interested", time.Time{})
	if label("rec-3") != "interested" || label("rec-1") != "busy" {
		t.Fatalf("call 3: rec-3 %q, rec-1 %q", label("rec-3"), label("rec-1"))
	}
	// The supervisor's correction relabels that recording only.
	if _, err := f.svc.CorrectOutcome(f.ctx, f.by("201"), id, DisposeRequest{Disposition: "appointment set"}); err != nil {
		t.Fatal(err)
	}
	if label("rec-3") != "appointment set" || label("rec-1") != "busy" {
		t.Fatalf("after correction: rec-3 %q, rec-1 %q", label("rec-3"), label("rec-1"))
	}
}
