package dialer

import (
	"errors"
	"strings"
	"testing"
	"time"

	"plateau/audit"
	"plateau/store"
)

// TestCallbackMustFallInCallingHours: the site calls mon-sat 07:30-20:00,
// the campaign mon-fri 09:00-12:00; a callback anywhere else is refused
// with ErrCallbackOutsideHours and changes nothing.
func TestCallbackMustFallInCallingHours(t *testing.T) {
	f := newFixture(t, 1)
	c := f.campaign("C", "101")
	spec := c.CampaignSpec
	spec.Windows = []Window{{Days: "mon-fri", From: "09:00", To: "12:00"}}
	if _, err := f.svc.UpdateCampaign(f.ctx, f.by("201"), c.ID, spec); err != nil {
		t.Fatal(err)
	}
	f.importCSV(c, "phone\n0240000001\n")
	f.approve(c)
	id := f.next("101", c).Contact.ID
	day := func(d, h, m int) time.Time { return time.Date(2026, 12, d, h, m, 0, 0, paris) }
	for _, tt := range []struct {
		name string
		at   time.Time
		ok   bool
	}{
		{"Sunday 03:00", day(6, 3, 0), false},
		{"Saturday 10:00: site open, campaign not", day(5, 10, 0), false},
		{"Tuesday 08:59", day(1, 8, 59), false},
		{"Tuesday 12:00: the window's end", day(1, 12, 0), false},
		{"Tuesday 13:00", day(1, 13, 0), false},
		{"Tuesday 09:00", day(1, 9, 0), true},
	} {
		_, err := f.svc.Dispose(f.ctx, f.by("101"), id, DisposeRequest{Disposition: "callback", CallbackAt: tt.at})
		if tt.ok != (err == nil) || (!tt.ok && !errors.Is(err, ErrCallbackOutsideHours)) {
			t.Errorf("%s: %v", tt.name, err)
		}
		if !tt.ok && codeOf(err) != "callback_outside_hours" {
			t.Errorf("%s: code %q", tt.name, codeOf(err))
		}
	}
}

// TestCorrectOutcome: the operator corrects within the window, not after
// and not someone else's; a supervisor corrects later; the audit log has
// the old and the new outcome; "do not call" is not corrected away.
func TestCorrectOutcome(t *testing.T) {
	f := newFixture(t, 2)
	c := f.campaign("C", "101", "102")
	f.importCSV(c, "phone\n0240000001\n0240000002\n")
	f.approve(c)
	a := f.next("101", c).Contact
	if _, err := f.svc.RecordAttempt(f.ctx, Attempt{ContactID: a.ID, Operator: "101", Outcome: Busy, SIPStatus: 486}); err != nil {
		t.Fatal(err)
	}
	f.dispose("101", a.ID, "appointment set", time.Time{})

	correct := func(by, disp string) (Contact, error) {
		return f.svc.CorrectOutcome(f.ctx, f.by(by), a.ID, DisposeRequest{Disposition: disp, Notes: "corrigé"})
	}
	if _, err := correct("102", "busy"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("another operator corrected: %v", err)
	}
	if _, err := correct("101", "nope"); !errors.Is(err, ErrUnknownDisposition) {
		t.Fatalf("unknown disposition: %v", err)
	}
	f.clk.Add(10 * time.Minute)
	got, err := correct("101", "busy")
	if err != nil {
		t.Fatalf("correction at 10 min: %v", err)
	}
	// busy is a retry: the contact is back in the queue in 15 min.
	if got.State != "open" || got.LastDisposition != "busy" || got.LastNotes != "corrigé" {
		t.Fatalf("after correction: %+v", got)
	}
	f.clk.Add(time.Second) // 10 min 1 s after the first entry
	if _, err := correct("101", "interested"); !errors.Is(err, ErrCorrectionClosed) {
		t.Fatalf("operator after the window: %v", err)
	}
	f.clk.Add(3 * time.Hour)
	if got, err = correct("201", "interested"); err != nil || got.State != "done" {
		t.Fatalf("supervisor later: %+v %v", got, err)
	}
	var attDisp string
	if err := f.st.DB().QueryRowContext(f.ctx, `SELECT disposition FROM attempts WHERE contact_id = ? ORDER BY id DESC LIMIT 1`, a.ID).Scan(&attDisp); err != nil || attDisp != "interested" {
		t.Fatalf("attempt disposition %q %v", attDisp, err)
	}
	recs, err := audit.New(f.st.DB(), f.clk.Now).List(f.ctx, audit.Filter{Kind: "dialer.outcome_corrected"})
	if err != nil || len(recs) != 2 {
		t.Fatalf("audit: %d %v", len(recs), err)
	}
	var last audit.Entry
	for _, r := range recs {
		if r.Entry.Actor == "201" {
			last = r.Entry
		}
	}
	if last.Actor != "201" || last.Details["from"] != "busy" || last.Details["to"] != "interested" || last.Details["operator"] != "101" {
		t.Fatalf("audit entry: %+v", last)
	}

	// Do not call stays.
	b := f.next("102", c).Contact
	f.dispose("102", b.ID, "do not call", time.Time{})
	if _, err := f.svc.CorrectOutcome(f.ctx, f.by("201"), b.ID, DisposeRequest{Disposition: "interested"}); !errors.Is(err, ErrDNCLocked) {
		t.Fatalf("corrected away from do not call: %v", err)
	}
	// Security may not correct at all.
	if _, err := f.svc.CorrectOutcome(f.ctx, f.by("301"), a.ID, DisposeRequest{Disposition: "busy"}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("security corrected: %v", err)
	}
}

// TestCorrectOutcomeWhileCalled: no correction while someone calls the
// contact again.
func TestCorrectOutcomeWhileCalled(t *testing.T) {
	f := newFixture(t, 1)
	c := f.campaign("C", "101")
	f.importCSV(c, "phone\n0240000001\n")
	f.approve(c)
	a := f.next("101", c).Contact
	f.dispose("101", a.ID, "busy", time.Time{})
	f.clk.Add(15 * time.Minute)
	if _, err := f.svc.BeginCall(f.ctx, "101", f.next("101", c).Contact.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CorrectOutcome(f.ctx, f.by("201"), a.ID, DisposeRequest{Disposition: "interested"}); !errors.Is(err, ErrCorrectionClosed) {
		t.Fatalf("corrected during a call: %v", err)
	}
}

func TestScriptFieldsAndAnswers(t *testing.T) {
	script := "# Bonjour {interlocuteur}\n?[Nom du décideur](decideur)\n ?[Courriel](courriel:email) \n?[bad](Upper)\n?[Double](decideur)\n?[x](y:phone)\n"
	fs := ScriptFields(script)
	if len(fs) != 2 || fs[0] != (ScriptField{Name: "decideur", Label: "Nom du décideur", Kind: "text"}) ||
		fs[1] != (ScriptField{Name: "courriel", Label: "Courriel", Kind: "email"}) {
		t.Fatalf("fields: %+v", fs)
	}
	for _, tt := range []struct {
		in   map[string]string
		ok   bool
		want int
	}{
		{map[string]string{"decideur": " M. Roux ", "courriel": "roux@exemple.fr"}, true, 2},
		{map[string]string{"decideur": "", "courriel": "  "}, true, 0},
		{map[string]string{"inconnu": "x"}, false, 0},
		{map[string]string{"courriel": "pas une adresse"}, false, 0},
		{map[string]string{"courriel": "Roux <roux@exemple.fr>"}, false, 0},
		{map[string]string{"courriel": "roux@localhost"}, false, 0},
		{map[string]string{"decideur": strings.Repeat("é", MaxAnswerLen+1)}, false, 0},
		{map[string]string{"decideur": "\xff"}, false, 0},
	} {
		got, err := checkAnswers(fs, tt.in)
		if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrBadAnswer)) || len(got) != tt.want {
			t.Errorf("%v: %v %v", tt.in, got, err)
		}
	}

	f := newFixture(t, 1)
	c, err := f.svc.CreateCampaign(f.ctx, f.by("201"), CampaignSpec{Name: "F", Script: script, Operators: []string{"101"}})
	if err != nil {
		t.Fatal(err)
	}
	if c, err = f.svc.SetStatus(f.ctx, f.by("201"), c.ID, Active); err != nil {
		t.Fatal(err)
	}
	f.importCSV(c, "company;phone\nAtelier;0240000001\n")
	f.approve(c)
	l := f.next("101", c)
	if len(l.Fields) != 2 {
		t.Fatalf("lease fields: %+v", l.Fields)
	}
	if _, err := f.svc.Dispose(f.ctx, f.by("101"), l.Contact.ID, DisposeRequest{Disposition: "interested",
		Answers: map[string]string{"courriel": "nope"}}); !errors.Is(err, ErrBadAnswer) {
		t.Fatalf("bad e-mail accepted: %v", err)
	}
	ct, err := f.svc.Dispose(f.ctx, f.by("101"), l.Contact.ID, DisposeRequest{Disposition: "interested",
		Answers: map[string]string{"decideur": "M. Roux", "courriel": "roux@exemple.fr"}})
	if err != nil || ct.Answers["decideur"] != "M. Roux" {
		t.Fatalf("dispose with answers: %+v %v", ct, err)
	}
	var out strings.Builder
	if err := f.svc.Export(f.ctx, c.ID, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if !strings.HasSuffix(lines[0], ",decideur,courriel") || !strings.HasSuffix(lines[1], ",M. Roux,roux@exemple.fr") {
		t.Fatalf("export:\n%s", out.String())
	}
}

// TestQueueState: with nothing due, the operator learns when the next
// contact is due and what the others wait for.
func TestQueueState(t *testing.T) {
	f := newFixture(t, 2)
	c := f.campaign("C", "101", "102")
	f.importCSV(c, "phone\n0240000001\n0240000002\n0240000003\n")
	es, err := f.st.Allowlist(f.ctx, store.AllowFilter{Status: store.AllowProposed, Campaign: "C"})
	if err != nil || len(es) != 3 {
		t.Fatalf("proposals: %v %v", es, err)
	}
	var ids []int64
	for _, e := range es {
		if e.E164 != "+33240000003" {
			ids = append(ids, e.ID)
		}
	}
	if _, err := f.st.ApproveAllowlist(f.ctx, f.by("301"), store.Selection{IDs: ids}); err != nil {
		t.Fatal(err)
	}
	a := f.next("101", c).Contact
	f.dispose("101", a.ID, "busy", time.Time{}) // due again in 15 min
	f.next("102", c)                            // the other approved one, on 102's screen
	f.noNext("101", c, ErrNoContact)
	q, err := f.svc.QueueState(f.ctx, c.ID, "101")
	if err != nil {
		t.Fatal(err)
	}
	if q.Open != 3 || q.AwaitingApproval != 1 || q.HeldByOthers != 1 || !q.NextDue.Equal(monday0900.Add(15*time.Minute)) {
		t.Fatalf("queue state: %+v", q)
	}
}

func TestOpenCallback(t *testing.T) {
	f := newFixture(t, 2)
	c := f.campaign("C", "101", "102")
	f.importCSV(c, "phone\n0240000001\n0240000002\n")
	f.approve(c)
	a := f.next("101", c).Contact
	f.dispose("101", a.ID, "callback", monday0900.Add(4*time.Hour))
	if _, err := f.svc.OpenCallback(f.ctx, "102", a.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("102 opened 101's callback: %v", err)
	}
	b := f.next("101", c).Contact // another contact on 101's screen
	l, err := f.svc.OpenCallback(f.ctx, "101", a.ID)
	if err != nil || l.Contact.ID != a.ID || !l.Callback {
		t.Fatalf("open: %+v %v", l, err)
	}
	if got := f.next("102", c).Contact; got.ID != b.ID {
		t.Fatalf("the contact 101 held was not handed back: 102 got %d", got.ID)
	}
	f.clk.Set(time.Date(2026, 12, 6, 10, 0, 0, 0, paris)) // Sunday: the site is closed
	if _, err := f.svc.OpenCallback(f.ctx, "101", a.ID); !errors.Is(err, ErrOutsideWindow) {
		t.Fatalf("opened outside the hours: %v", err)
	}
}

// TestCorrectOutcomeWhileOnScreen: a contact offered again (here to its own
// operator, the busy retry being due) is not corrected from under them.
func TestCorrectOutcomeWhileOnScreen(t *testing.T) {
	f := newFixture(t, 1)
	c := f.campaign("C", "101")
	f.importCSV(c, "phone\n0240000001\n")
	f.approve(c)
	a := f.next("101", c).Contact
	f.dispose("101", a.ID, "busy", time.Time{})
	f.clk.Add(15 * time.Minute)
	if got := f.next("101", c).Contact; got.ID != a.ID {
		t.Fatalf("retry: %d", got.ID)
	}
	if _, err := f.svc.CorrectOutcome(f.ctx, f.by("201"), a.ID, DisposeRequest{Disposition: "interested"}); !errors.Is(err, ErrCorrectionClosed) {
		t.Fatalf("corrected while on screen: %v", err)
	}
	if err := f.svc.Release(f.ctx, "101", a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CorrectOutcome(f.ctx, f.by("201"), a.ID, DisposeRequest{Disposition: "interested"}); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

// TestNextCallable: the first instant inside both the site's (mon-sat
// 07:30-20:00) and the campaign's (mon-fri 09:00-12:00) hours.
func TestNextCallable(t *testing.T) {
	f := newFixture(t, 1)
	c := f.campaign("C", "101")
	spec := c.CampaignSpec
	spec.Windows = []Window{{Days: "mon-fri", From: "09:00", To: "12:00"}}
	c, err := f.svc.UpdateCampaign(f.ctx, f.by("201"), c.ID, spec)
	if err != nil {
		t.Fatal(err)
	}
	day := func(d, h, m int) time.Time { return time.Date(2026, 12, d, h, m, 0, 0, paris) }
	for _, tt := range []struct{ at, want time.Time }{
		{day(1, 10, 0), day(1, 10, 0)}, // inside
		{day(1, 12, 0), day(2, 9, 0)},  // Tuesday noon: Wednesday 09:00
		{day(4, 13, 0), day(7, 9, 0)},  // Friday afternoon: Monday
		{day(6, 3, 0), day(7, 9, 0)},   // Sunday night
		{day(5, 8, 0), day(7, 9, 0)},   // Saturday: the site is open, the campaign not
	} {
		got, ok := f.svc.NextCallable(c, tt.at)
		if !ok || !got.Equal(tt.want) {
			t.Errorf("NextCallable(%s) = %s %v, want %s", tt.at, got, ok, tt.want)
		}
	}
	var ch *CallbackHoursError
	if err := f.svc.callbackInHours(c, day(6, 3, 0)); !errors.As(err, &ch) || !ch.Next.Equal(day(7, 9, 0)) || !errors.Is(err, ErrCallbackOutsideHours) {
		t.Fatalf("callback error: %v", err)
	}
	// Never meeting: the campaign calls on Sundays only, the site never does.
	spec.Windows = []Window{{Days: "sun", From: "09:00", To: "12:00"}}
	if c, err = f.svc.UpdateCampaign(f.ctx, f.by("201"), c.ID, spec); err != nil {
		t.Fatal(err)
	}
	if got, ok := f.svc.NextCallable(c, day(1, 10, 0)); ok {
		t.Fatalf("disjoint hours met at %s", got)
	}
}
