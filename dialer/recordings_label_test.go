package dialer

import (
	"errors"
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

// The contact list says why a contact is not offered and the latest skip.
func TestContactList(t *testing.T) {
	f := newFixture(t, 1)
	c := f.campaign("C", "101")
	f.importCSV(c, "phone;secteur\n0240000001;architecte\n0240000002;syndic\n0240000003;notaire\n")
	f.approve(c)
	if err := f.st.AddDNC(f.ctx, f.by("301"), "+33240000003", "demande du client"); err != nil {
		t.Fatal(err)
	}
	a := f.next("101", c).Contact
	if err := f.svc.Skip(f.ctx, f.by("101"), a.ID, "déjà client"); err != nil {
		t.Fatal(err)
	}
	rows, err := f.svc.ContactList(f.ctx, c.ID)
	if err != nil || len(rows) != 3 {
		t.Fatalf("%+v %v", rows, err)
	}
	by := map[string]ContactRow{}
	for _, r := range rows {
		by[r.E164] = r
	}
	if r := by[a.E164]; r.SkipReason != "déjà client" || r.SkippedBy != "101" || !r.SkippedAt.Equal(monday0900) || r.Blocked != BlockedNone {
		t.Fatalf("skipped: %+v", r)
	}
	if r := by["+33240000003"]; r.Blocked != BlockedDNC || r.Allowlist != "approved" {
		t.Fatalf("dnc: %+v", r)
	}
	if by["+33240000002"].Custom["secteur"] != "syndic" {
		t.Fatalf("custom: %+v", by["+33240000002"])
	}
}

func TestReassignCallback(t *testing.T) {
	f := newFixture(t, 3)
	c := f.campaign("C", "101", "102")
	f.importCSV(c, "phone\n0240000001\n0240000002\n")
	f.approve(c)
	a := f.next("101", c).Contact
	cb := monday0900.Add(3 * time.Hour)
	f.dispose("101", a.ID, "callback", cb)
	for _, bad := range []struct{ by, to string }{{"101", "102"}, {"201", "103"}, {"201", "999"}} {
		if _, err := f.svc.ReassignCallback(f.ctx, f.by(bad.by), a.ID, bad.to); err == nil {
			t.Fatalf("%s reassigned to %s", bad.by, bad.to)
		}
	}
	got, err := f.svc.ReassignCallback(f.ctx, f.by("201"), a.ID, "102")
	if err != nil || !got.CallbackAt.Equal(cb) {
		t.Fatalf("%+v %v", got, err)
	}
	rows, _ := f.svc.ContactList(f.ctx, c.ID)
	if rows[0].CallbackBy != "102" {
		t.Fatalf("callback by %q", rows[0].CallbackBy)
	}
	// 102 gets it first when due.
	f.clk.Set(cb)
	if l := f.next("102", c); l.Contact.ID != a.ID {
		t.Fatalf("102 got %d", l.Contact.ID)
	}
	// A contact without a callback cannot be reassigned.
	if _, err := f.svc.ReassignCallback(f.ctx, f.by("201"), rows[1].ID, "101"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("no callback: %v", err)
	}
}
