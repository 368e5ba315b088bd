package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestWebSessions(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for _, ext := range []string{"101", "301"} {
		if err := s.AddUser(ctx, User{Extension: ext, Role: RoleOperator}, now); err != nil {
			t.Fatal(err)
		}
	}
	a := WebSession{IDHash: "h1", Extension: "101", CSRF: "c1", Source: "10.0.0.1", CreatedAt: now, LastSeen: now}
	b := WebSession{IDHash: "h2", Extension: "101", CSRF: "c2", CreatedAt: now.Add(-13 * time.Hour), LastSeen: now}
	c := WebSession{IDHash: "h3", Extension: "301", CSRF: "c3", CreatedAt: now, LastSeen: now.Add(-time.Hour)}
	for _, w := range []WebSession{a, b, c} {
		if err := s.CreateWebSession(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateWebSession(ctx, a); err == nil {
		t.Fatal("duplicate id accepted")
	}
	got, err := s.WebSession(ctx, "h1")
	if err != nil || got != a {
		t.Fatalf("read: %+v %v", got, err)
	}
	if _, err := s.WebSession(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	if err := s.TouchWebSession(ctx, "h1", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.WebSession(ctx, "h1"); !got.LastSeen.Equal(now.Add(time.Minute)) {
		t.Fatalf("touch: %v", got.LastSeen)
	}
	if err := s.PurgeWebSessions(ctx, now.Add(-30*time.Minute), now.Add(-12*time.Hour)); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"h1": true, "h2": false, "h3": false} {
		if _, err := s.WebSession(ctx, id); (err == nil) != want {
			t.Errorf("after purge %s kept=%v", id, err == nil)
		}
	}
	if err := s.CreateWebSession(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUserWebSessions(ctx, "101"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteWebSession(ctx, "h3"); err != nil {
		t.Fatal(err)
	}
	var n int
	s.DB().QueryRow(`SELECT count(*) FROM web_sessions`).Scan(&n)
	if n != 0 {
		t.Fatalf("%d sessions left", n)
	}
}
