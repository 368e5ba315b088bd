package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"plateau/audit"
)

func allowFixture(t *testing.T) (*Store, time.Time) {
	t.Helper()
	s := openTest(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	for _, u := range []User{
		{Extension: "101", Role: RoleOperator}, {Extension: "201", Role: RoleSupervisor},
		{Extension: "301", Role: RoleSecurity}, {Extension: "302", Role: RoleSecurity},
		{Extension: "303", Role: RoleSecurity, Status: StatusSuspended}, {Extension: "900", Role: RoleAdmin},
	} {
		if err := s.AddUser(ctx, u, now); err != nil {
			t.Fatal(err)
		}
	}
	return s, now
}

func by(ext string, at time.Time) Change { return Change{By: ext, Source: "test", At: at} }

func auditCount(t *testing.T, s *Store) int64 {
	t.Helper()
	rep, err := audit.New(s.DB(), nil).Verify(context.Background())
	if err != nil || !rep.OK {
		t.Fatalf("audit chain: %+v %v", rep, err)
	}
	return rep.Entries
}

func TestAllowlistTwoPersonRule(t *testing.T) {
	s, now := allowFixture(t)
	ctx := context.Background()
	es, err := s.ProposeAllowlist(ctx, by("301", now), []Proposal{{E164: "+33240123456", Label: "Cabinet A", Campaign: "archi"}})
	if err != nil || len(es) != 1 || es[0].Status != AllowProposed || es[0].ProposedBy != "301" {
		t.Fatalf("propose: %+v %v", es, err)
	}
	id := es[0].ID
	if ok, _ := s.IsApproved(ctx, "+33240123456", now); ok {
		t.Fatal("proposed entry is approved")
	}
	refusals := []struct {
		by   string
		want error
	}{
		{"301", ErrSelfApproval}, // proposer
		{"101", ErrNotApprover},  // operator
		{"201", ErrNotApprover},  // supervisor
		{"303", ErrNotApprover},  // suspended security
		{"999", ErrNotApprover},  // unknown
	}
	for _, r := range refusals {
		if _, err := s.ApproveAllowlist(ctx, by(r.by, now), Selection{IDs: []int64{id}}); !errors.Is(err, r.want) {
			t.Errorf("approve by %s: got %v, want %v", r.by, err, r.want)
		}
	}
	if _, err := s.RejectAllowlist(ctx, by("301", now), []int64{id}); !errors.Is(err, ErrSelfApproval) {
		t.Errorf("self-reject: %v", err)
	}
	if ok, _ := s.IsApproved(ctx, "+33240123456", now); ok {
		t.Fatal("approved after refusals")
	}
	es, err = s.ApproveAllowlist(ctx, by("302", now.Add(time.Minute)), Selection{IDs: []int64{id}})
	if err != nil || es[0].Status != AllowApproved || es[0].DecidedBy != "302" {
		t.Fatalf("approve: %+v %v", es, err)
	}
	if ok, err := s.IsApproved(ctx, "+33240123456", now.Add(time.Hour)); !ok || err != nil {
		t.Fatalf("not approved: %v", err)
	}
	if _, err := s.ApproveAllowlist(ctx, by("900", now), Selection{IDs: []int64{id}}); !errors.Is(err, ErrNotProposed) {
		t.Errorf("approve twice: %v", err)
	}
	// Revocation needs no second person: the proposer may take it away.
	if _, err := s.RevokeAllowlist(ctx, by("101", now), "+33240123456"); !errors.Is(err, ErrNotApprover) {
		t.Errorf("operator revoke: %v", err)
	}
	es, err = s.RevokeAllowlist(ctx, by("301", now.Add(2*time.Hour)), "+33240123456")
	if err != nil || es[0].Status != AllowRevoked || es[0].DecidedBy != "302" || es[0].RevokedBy != "301" {
		t.Fatalf("revoke: %+v %v", es, err)
	}
	if ok, _ := s.IsApproved(ctx, "+33240123456", now.Add(3*time.Hour)); ok {
		t.Fatal("revoked entry approved")
	}
	if _, err := s.RevokeAllowlist(ctx, by("301", now), "+33240123456"); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoke twice: %v", err)
	}
	// propose, 7 refusals (5 approve + self-reject + operator revoke), approve, revoke
	if n := auditCount(t, s); n != 10 {
		t.Errorf("audit entries %d, want 10", n)
	}
}

func TestAllowlistAllOrNothing(t *testing.T) {
	s, now := allowFixture(t)
	ctx := context.Background()
	es, err := s.ProposeAllowlist(ctx, by("101", now), []Proposal{{E164: "+33240000001"}, {E164: "+33240000002"}, {E164: "+33240000003", Campaign: "c2"}})
	if err != nil {
		t.Fatal(err)
	}
	mine, _ := s.ProposeAllowlist(ctx, by("301", now), []Proposal{{E164: "+33240000004", Campaign: "c2"}})
	before := auditCount(t, s)
	for _, sel := range []Selection{
		{IDs: []int64{es[0].ID, es[1].ID, 999}},  // unknown id
		{IDs: []int64{es[0].ID, mine[0].ID}},     // one self-proposed
		{Campaign: "c2"},                         // holds a self-proposed entry
		{All: true},                              // idem
		{Campaign: "nope"},                       // selects nothing
		{},                                       // no selection
		{IDs: []int64{es[0].ID}, Campaign: "c2"}, // two selections
	} {
		if _, err := s.ApproveAllowlist(ctx, by("301", now), sel); err == nil {
			t.Errorf("approve %+v accepted", sel)
		}
	}
	if got, _ := s.Allowlist(ctx, AllowFilter{Status: AllowApproved}); len(got) != 0 {
		t.Fatalf("half-applied: %+v", got)
	}
	// Only the three self-approval refusals are audited, nothing changed.
	if n := auditCount(t, s); n != before+3 {
		t.Errorf("audit entries %d, want %d", n, before+3)
	}
	// A batch proposal with one duplicate inserts none.
	if _, err := s.ProposeAllowlist(ctx, by("101", now), []Proposal{{E164: "+33240000009"}, {E164: "+33240000001"}}); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate proposal: %v", err)
	}
	if got, _ := s.Allowlist(ctx, AllowFilter{E164: "+33240000009"}); len(got) != 0 {
		t.Errorf("half-applied proposal: %+v", got)
	}
	got, err := s.ApproveAllowlist(ctx, by("302", now), Selection{Campaign: "c2"})
	if err != nil || len(got) != 2 {
		t.Fatalf("approve campaign: %+v %v", got, err)
	}
	got, err = s.ApproveAllowlist(ctx, by("900", now), Selection{All: true})
	if err != nil || len(got) != 2 {
		t.Fatalf("approve all: %+v %v", got, err)
	}
	got, _ = s.Allowlist(ctx, AllowFilter{Status: AllowApproved, Campaign: "c2"})
	if len(got) != 2 {
		t.Errorf("list c2: %+v", got)
	}
}

func TestAllowlistValidity(t *testing.T) {
	s, now := allowFixture(t)
	ctx := context.Background()
	from, until := now.Add(24*time.Hour), now.Add(48*time.Hour)
	es, err := s.ProposeAllowlist(ctx, by("101", now), []Proposal{{E164: "+33240123456", ValidFrom: from, ValidUntil: until}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApproveAllowlist(ctx, by("301", now), Selection{IDs: []int64{es[0].ID}}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		at   time.Time
		want bool
	}{
		{now, false},
		{from.Add(-time.Nanosecond), false},
		{from, true},
		{until.Add(-time.Nanosecond), true},
		{until, false},
	} {
		if got, err := s.IsApproved(ctx, "+33240123456", tt.at); got != tt.want || err != nil {
			t.Errorf("IsApproved at %s = %v %v, want %v", tt.at, got, err, tt.want)
		}
	}
	if ok, _ := s.IsApproved(ctx, "+3324012345", from); ok {
		t.Error("prefix matched")
	}
	if _, err := s.ProposeAllowlist(ctx, by("101", now), []Proposal{{E164: "+33240000000", ValidUntil: now}}); err == nil {
		t.Error("empty validity accepted")
	}
	for _, bad := range []string{"0240123456", "+0240123456", "+33 240123456", "", "+1234567890123456"} {
		if _, err := s.ProposeAllowlist(ctx, by("101", now), []Proposal{{E164: bad}}); !errors.Is(err, ErrInvalidE164) {
			t.Errorf("propose %q: %v", bad, err)
		}
	}
	if _, err := s.ProposeAllowlist(ctx, by("303", now), []Proposal{{E164: "+33240000000"}}); !errors.Is(err, ErrUserInactive) {
		t.Errorf("suspended proposer: %v", err)
	}
}

func TestDNC(t *testing.T) {
	s, now := allowFixture(t)
	ctx := context.Background()
	if err := s.AddDNC(ctx, by("101", now), "+33240123456", "asked not to be called"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddDNC(ctx, by("101", now), "+33240123456", ""); !errors.Is(err, ErrExists) {
		t.Errorf("twice: %v", err)
	}
	if ok, err := s.IsListed(ctx, "+33240123456"); !ok || err != nil {
		t.Fatalf("not listed: %v", err)
	}
	if err := s.RemoveDNC(ctx, by("201", now), "+33240123456"); !errors.Is(err, ErrNotApprover) {
		t.Errorf("supervisor remove: %v", err)
	}
	if err := s.RemoveDNC(ctx, by("301", now), "+33240123456"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.IsListed(ctx, "+33240123456"); ok {
		t.Fatal("still listed")
	}
	if err := s.RemoveDNC(ctx, by("301", now), "+33240123456"); !errors.Is(err, ErrNotFound) {
		t.Errorf("remove twice: %v", err)
	}
	if l, _ := s.DNCList(ctx); len(l) != 0 {
		t.Errorf("list: %+v", l)
	}
	if n := auditCount(t, s); n != 2 {
		t.Errorf("audit entries %d, want 2", n)
	}
}

// TestSetAllowlistValidity: an approved entry's end is set and changed by
// security, all or nothing and audited; refusals change nothing.
func TestSetAllowlistValidity(t *testing.T) {
	s, now := allowFixture(t)
	ctx := context.Background()
	es, err := s.ProposeAllowlist(ctx, by("301", now), []Proposal{{E164: "+33240123456"}, {E164: "+33240999999"}})
	if err != nil {
		t.Fatal(err)
	}
	id, pending := es[0].ID, es[1].ID
	if _, err := s.ApproveAllowlist(ctx, by("302", now), Selection{IDs: []int64{id}}); err != nil {
		t.Fatal(err)
	}
	end := now.Add(72 * time.Hour)
	before := auditCount(t, s)
	for _, tt := range []struct {
		name  string
		by    string
		id    int64
		until time.Time
		want  error
	}{
		{"operator", "101", id, end, ErrNotApprover},
		{"supervisor", "201", id, end, ErrNotApprover},
		{"suspended security", "303", id, end, ErrNotApprover},
		{"not approved", "302", pending, end, ErrNotApproved},
		{"unknown entry", "302", 9999, end, ErrNotFound},
		{"now", "302", id, now, ErrValidityPast},
		{"past", "302", id, now.Add(-time.Hour), ErrValidityPast},
		{"zero", "302", id, time.Time{}, ErrValidityPast},
	} {
		if _, err := s.SetAllowlistValidity(ctx, by(tt.by, now), tt.id, tt.until); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	if ok, _ := s.IsApproved(ctx, "+33240123456", now.Add(1000*time.Hour)); !ok {
		t.Fatal("a refused change limited the entry")
	}
	// Refusals by non-approvers are audited on their own; others roll back.
	if got := auditCount(t, s); got != before+3 {
		t.Errorf("audit entries after refusals: %d, want %d", got, before+3)
	}
	// The proposer may set an end (it narrows the permission)…
	e, err := s.SetAllowlistValidity(ctx, by("301", now), id, end)
	if err != nil || !e.ValidUntil.Equal(end) {
		t.Fatalf("set: %+v %v", e, err)
	}
	if ok, _ := s.IsApproved(ctx, "+33240123456", end); ok {
		t.Error("approved at its end")
	}
	if ok, _ := s.IsApproved(ctx, "+33240123456", end.Add(-time.Minute)); !ok {
		t.Error("not approved before its end")
	}
	// …and shorten it, but not extend it alone (two-person rule).
	if _, err := s.SetAllowlistValidity(ctx, by("301", now), id, end.Add(time.Hour)); !errors.Is(err, ErrSelfApproval) {
		t.Errorf("proposer extends: %v", err)
	}
	if e, err = s.SetAllowlistValidity(ctx, by("301", now), id, end.Add(-time.Hour)); err != nil || !e.ValidUntil.Equal(end.Add(-time.Hour)) {
		t.Fatalf("proposer shortens: %+v %v", e, err)
	}
	if e, err = s.SetAllowlistValidity(ctx, by("302", now), id, end.Add(24*time.Hour)); err != nil || !e.ValidUntil.Equal(end.Add(24*time.Hour)) {
		t.Fatalf("other officer extends: %+v %v", e, err)
	}
	var kind, details string
	if err := s.DB().QueryRowContext(ctx, `SELECT kind, details FROM audit_log ORDER BY seq DESC LIMIT 1`).Scan(&kind, &details); err != nil {
		t.Fatal(err)
	}
	if kind != "allowlist.validity" || !strings.Contains(details, "previous_valid_until") {
		t.Errorf("last audit: %s %s", kind, details)
	}
}
