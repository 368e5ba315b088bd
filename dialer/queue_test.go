package dialer

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"plateau/store"
)

func numbers(n int) string {
	var b strings.Builder
	b.WriteString("company;phone\n")
	for i := range n {
		fmt.Fprintf(&b, "Company %d;+3324%07d\n", i, i)
	}
	return b.String()
}

func TestUnapprovedNeverOffered(t *testing.T) {
	f := newFixture(t, 1)
	c := f.campaign("C", "101")
	f.importCSV(c, "phone\n02 40 00 00 01\n02 40 00 00 02\n02 40 00 00 03\n02 40 00 00 04\n")
	f.noNext("101", c, ErrNoContact) // nothing approved yet

	es, err := f.st.Allowlist(f.ctx, store.AllowFilter{Campaign: c.Name})
	if err != nil {
		t.Fatal(err)
	}
	// Approve 1 and 2, reject 3, leave 4 proposed; revoke 2; list 1? no: 1 stays callable.
	if _, err := f.st.ApproveAllowlist(f.ctx, f.by("301"), store.Selection{IDs: []int64{es[0].ID, es[1].ID}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.RejectAllowlist(f.ctx, f.by("302"), []int64{es[2].ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.RevokeAllowlist(f.ctx, f.by("302"), "+33240000002"); err != nil {
		t.Fatal(err)
	}
	l := f.next("101", c)
	if l.Contact.E164 != "+33240000001" {
		t.Fatalf("offered %s", l.Contact.E164)
	}
	f.dispose("101", l.Contact.ID, "not interested", time.Time{})
	f.noNext("101", c, ErrNoContact)

	// The importer cannot approve their own proposal (store's two-person rule).
	if _, err := f.st.ApproveAllowlist(f.ctx, f.by("201"), store.Selection{IDs: []int64{es[3].ID}}); err == nil {
		t.Fatal("supervisor approved")
	}
	f.noNext("101", c, ErrNoContact)

	// A number put on the do-not-call list after approval is not offered.
	if _, err := f.st.ApproveAllowlist(f.ctx, f.by("301"), store.Selection{IDs: []int64{es[3].ID}}); err != nil {
		t.Fatal(err)
	}
	if err := f.st.AddDNC(f.ctx, f.by("301"), "+33240000004", "asked"); err != nil {
		t.Fatal(err)
	}
	f.noNext("101", c, ErrNoContact)
}

func TestConcurrentLeases(t *testing.T) {
	const ops, contacts = 20, 120
	f := newFixture(t, ops)
	var exts []string
	for i := 1; i <= ops; i++ {
		exts = append(exts, fmt.Sprint(100+i))
	}
	c := f.campaign("C", exts...)
	f.importCSV(c, numbers(contacts))
	f.approve(c)

	var mu sync.Mutex
	got := map[int64]string{}
	var wg sync.WaitGroup
	errs := make(chan error, ops)
	for _, op := range exts {
		wg.Go(func() {
			for {
				l, err := f.svc.Next(f.ctx, op, c.ID)
				if errors.Is(err, ErrNoContact) {
					return
				}
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if prev, dup := got[l.Contact.ID]; dup {
					mu.Unlock()
					errs <- fmt.Errorf("contact %d leased to %s and %s", l.Contact.ID, prev, op)
					return
				}
				got[l.Contact.ID] = op
				mu.Unlock()
				if _, err := f.svc.Dispose(f.ctx, f.by(op), l.Contact.ID, DisposeRequest{Disposition: "interested"}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(got) != contacts {
		t.Errorf("leased %d contacts, want %d", len(got), contacts)
	}
}

func TestLeaseRenewExpireRelease(t *testing.T) {
	f := newFixture(t, 2)
	c := f.campaign("C", "101", "102")
	f.importCSV(c, "phone\n0240000001\n")
	f.approve(c)
	l := f.next("101", c)
	f.noNext("102", c, ErrNoContact)
	f.clk.Add(9 * time.Minute)
	if again := f.next("101", c); again.Contact.ID != l.Contact.ID { // renews the lease
		t.Fatalf("renewal gave %d", again.Contact.ID)
	}
	f.clk.Add(9 * time.Minute)
	f.noNext("102", c, ErrNoContact) // renewed at +9 min: still held at +18
	f.clk.Add(time.Minute + time.Second)
	if l2 := f.next("102", c); l2.Contact.ID != l.Contact.ID {
		t.Fatalf("expired lease not re-offered")
	}
	if _, err := f.svc.Dispose(f.ctx, f.by("101"), l.Contact.ID, DisposeRequest{Disposition: "interested"}); !errors.Is(err, ErrNotLeased) {
		t.Fatalf("dispose after losing the lease: %v", err)
	}
	if err := f.svc.Release(f.ctx, "102", l.Contact.ID); err != nil {
		t.Fatal(err)
	}
	f.next("101", c)
	// Skip keeps the contact away for the skip delay.
	if err := f.svc.Skip(f.ctx, f.by("101"), l.Contact.ID, ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("skip without reason: %v", err)
	}
	if err := f.svc.Skip(f.ctx, f.by("101"), l.Contact.ID, "company closed today"); err != nil {
		t.Fatal(err)
	}
	f.noNext("102", c, ErrNoContact)
	f.clk.Add(time.Hour)
	f.next("102", c)
}

func TestRetryRules(t *testing.T) {
	f := newFixture(t, 1)
	c := f.campaign("C", "101")
	f.importCSV(c, "phone\n0240000001\n0240000002\n")
	f.approve(c)
	a := f.next("101", c).Contact
	// A recorded call blocks the next lease until disposed.
	if _, err := f.svc.RecordAttempt(f.ctx, Attempt{ContactID: a.ID, Operator: "101", Outcome: NoAnswer, SIPStatus: 480, CallID: "x1"}); err != nil {
		t.Fatal(err)
	}
	if l, err := f.svc.Next(f.ctx, "101", c.ID); !errors.Is(err, ErrDispositionRequired) || l.Contact.ID != a.ID {
		t.Fatalf("next with a disposition owed: %v, %d", err, l.Contact.ID)
	}
	f.dispose("101", a.ID, "no answer", time.Time{})
	b := f.next("101", c).Contact
	if _, err := f.svc.RecordAttempt(f.ctx, Attempt{ContactID: b.ID, Operator: "101", Outcome: Busy, SIPStatus: 486}); err != nil {
		t.Fatal(err)
	}
	f.dispose("101", b.ID, "busy", time.Time{})
	f.noNext("101", c, ErrNoContact)
	f.clk.Add(15*time.Minute - time.Second)
	f.noNext("101", c, ErrNoContact)
	f.clk.Add(time.Second) // busy: again after 15 min
	if got := f.next("101", c).Contact; got.ID != b.ID {
		t.Fatalf("busy retry: got %d", got.ID)
	}
	f.dispose("101", b.ID, "interested", time.Time{})
	f.clk.Set(monday0900.Add(2*time.Hour - time.Second))
	f.noNext("101", c, ErrNoContact)
	f.clk.Set(monday0900.Add(2 * time.Hour)) // no answer: again after 2 h
	for call := 2; call <= 3; call++ {
		got := f.next("101", c).Contact
		if got.ID != a.ID {
			t.Fatalf("no-answer retry %d: got %d", call, got.ID)
		}
		if _, err := f.svc.RecordAttempt(f.ctx, Attempt{ContactID: a.ID, Operator: "101", Outcome: NoAnswer}); err != nil {
			t.Fatal(err)
		}
		d := f.dispose("101", a.ID, "no answer", time.Time{})
		if want := map[int]string{2: "open", 3: "done"}[call]; d.State != want || d.Attempts != call {
			t.Fatalf("after call %d: state %s attempts %d", call, d.State, d.Attempts)
		}
		f.clk.Add(2 * time.Hour)
	}
	f.noNext("101", c, ErrNoContact) // three calls: done
}

func TestCallbackGoesBackToItsOperatorFirst(t *testing.T) {
	f := newFixture(t, 2)
	c := f.campaign("C", "101", "102")
	f.importCSV(c, "phone\n0240000001\n0240000002\n")
	f.approve(c)
	a := f.next("101", c).Contact
	at := monday0900.Add(3 * time.Hour)
	if _, err := f.svc.Dispose(f.ctx, f.by("101"), a.ID, DisposeRequest{Disposition: "callback"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("callback without a time: %v", err)
	}
	f.dispose("101", a.ID, "callback", at)
	b := f.next("102", c).Contact
	f.dispose("102", b.ID, "not interested", time.Time{})

	f.clk.Set(at)
	f.noNext("102", c, ErrNoContact) // not 102's callback, grace running
	l := f.next("101", c)
	if l.Contact.ID != a.ID || !l.Callback {
		t.Fatalf("101 got %+v", l)
	}
	if err := f.svc.Release(f.ctx, "101", a.ID); err != nil {
		t.Fatal(err)
	}
	f.clk.Set(at.Add(30*time.Minute - time.Second))
	f.noNext("102", c, ErrNoContact)
	f.clk.Set(at.Add(30 * time.Minute)) // grace over: the pool's
	if l := f.next("102", c); l.Contact.ID != a.ID || l.Callback {
		t.Fatalf("after grace 102 got %+v", l)
	}
}

func TestWindowsAndStatus(t *testing.T) {
	f := newFixture(t, 2)
	c := f.campaign("C", "101")
	f.importCSV(c, "phone\n0240000001\n")
	f.approve(c)
	f.clk.Set(time.Date(2026, 12, 1, 7, 29, 59, 0, paris))
	f.noNext("101", c, ErrOutsideWindow)
	f.clk.Set(time.Date(2026, 12, 1, 7, 30, 0, 0, paris))
	l := f.next("101", c)
	if err := f.svc.Release(f.ctx, "101", l.Contact.ID); err != nil {
		t.Fatal(err)
	}
	f.noNext("102", c, ErrNotAssigned)
	// The campaign's own hours apply inside the site's.
	spec := c.CampaignSpec
	spec.Windows = []Window{{Days: "mon-fri", From: "09:00", To: "12:00"}}
	if _, err := f.svc.UpdateCampaign(f.ctx, f.by("201"), c.ID, spec); err != nil {
		t.Fatal(err)
	}
	f.noNext("101", c, ErrOutsideWindow)
	f.clk.Set(time.Date(2026, 12, 1, 9, 0, 0, 0, paris))
	f.next("101", c)
	if _, err := f.svc.SetStatus(f.ctx, f.by("201"), c.ID, Paused); err != nil {
		t.Fatal(err)
	}
	f.noNext("101", c, ErrNotActive)
	if _, err := f.svc.SetStatus(f.ctx, f.by("101"), c.ID, Active); !errors.Is(err, ErrForbidden) {
		t.Fatalf("operator activated a campaign: %v", err)
	}
}

func TestDoNotCallDisposition(t *testing.T) {
	f := newFixture(t, 1)
	c := f.campaign("C", "101")
	f.importCSV(c, "phone\n0240000001\n")
	f.approve(c)
	l := f.next("101", c)
	if _, err := f.svc.Dispose(f.ctx, f.by("101"), l.Contact.ID, DisposeRequest{Disposition: "maybe"}); !errors.Is(err, ErrUnknownDisposition) {
		t.Fatalf("unknown disposition: %v", err)
	}
	if d := f.dispose("101", l.Contact.ID, "Do Not Call", time.Time{}); d.State != "done" {
		t.Fatalf("state %s", d.State)
	}
	if ok, _ := f.st.IsListed(f.ctx, "+33240000001"); !ok {
		t.Fatal("number not on the do-not-call list")
	}
	if n := f.count(`SELECT count(*) FROM audit_log WHERE kind = 'dnc.add' AND actor = '101'`); n != 1 {
		t.Errorf("dnc audit entries: %d", n)
	}
}

func TestResultsAndExport(t *testing.T) {
	f := newFixture(t, 1)
	c := f.campaign("C", "101")
	f.importCSV(c, "company,contact,phone\n\"=HYPERLINK(\"\"x\"\")\",Anne,0240000001\nB,Paul,0240000002\nC,,0240000003\n")
	f.approve(c)
	a := f.next("101", c).Contact
	f.svc.RecordAttempt(f.ctx, Attempt{ContactID: a.ID, Operator: "101", Outcome: Answered, SIPStatus: 200})
	f.dispose("101", a.ID, "callback", monday0900.Add(24*time.Hour))
	b := f.next("101", c).Contact
	f.svc.RecordAttempt(f.ctx, Attempt{ContactID: b.ID, Operator: "101", Outcome: NoAnswer, SIPStatus: 480})
	f.dispose("101", b.ID, "no answer", time.Time{})
	r, err := f.svc.Results(f.ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Contacts != 3 || r.Attempts != 2 || r.Reached != 1 || r.ByDisposition["callback"] != 1 || r.ByDisposition["no answer"] != 1 ||
		r.ByOutcome["answered"] != 1 || r.Open != 3 {
		t.Errorf("results = %+v", r)
	}
	var out strings.Builder
	if err := f.svc.Export(f.ctx, c.ID, &out); err != nil {
		t.Fatal(err)
	}
	want := "company,contact,phone,email,city,attempts,last_disposition,notes,callback_at\n" +
		"\"'=HYPERLINK(\"\"x\"\")\",Anne,+33240000001,,,1,callback,n,2026-12-01T09:00:00+01:00\n" +
		"B,Paul,+33240000002,,,1,no answer,n,\n" +
		"C,,+33240000003,,,0,,,\n"
	if out.String() != want {
		t.Errorf("export:\n%s\nwant:\n%s", out.String(), want)
	}
	for _, s := range []string{"101", "operator"} {
		if strings.Contains(out.String(), s) {
			t.Errorf("export mentions %q", s)
		}
	}
}
