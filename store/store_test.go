package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "plateau.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestMigrateFromEachVersion migrates an empty database, and one left at
// every earlier version, to the latest.
func TestMigrateFromEachVersion(t *testing.T) {
	ctx := context.Background()
	latest := LatestVersion()
	if latest < 1 {
		t.Fatal("no migrations embedded")
	}
	for from := 0; from <= latest; from++ {
		s, err := openRaw(filepath.Join(t.TempDir(), "db"))
		if err != nil {
			t.Fatal(err)
		}
		if from > 0 {
			if err := s.Migrate(ctx, from); err != nil {
				t.Fatalf("build v%d: %v", from, err)
			}
		}
		if err := s.Migrate(ctx, 0); err != nil {
			t.Fatalf("migrate from v%d: %v", from, err)
		}
		if v, _ := s.Version(ctx); v != latest {
			t.Fatalf("from v%d: at v%d, want v%d", from, v, latest)
		}
		s.Close()
	}
}

func TestSchemaTooNew(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	if _, err := s.db.ExecContext(ctx, "PRAGMA user_version = 999"); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx, 0); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("got %v, want ErrSchemaTooNew", err)
	}
}

func TestUsers(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	u := User{Extension: "101", DisplayName: "Op", Role: RoleOperator, HA1MD5: "a", HA1SHA256: "b"}
	if err := s.AddUser(ctx, u, now); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUser(ctx, u, now); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate: got %v, want ErrExists", err)
	}
	if err := s.AddUser(ctx, User{Extension: "102", Role: "boss"}, now); err == nil {
		t.Fatal("bad role accepted")
	}
	if err := s.SetUserStatus(ctx, "101", StatusSuspended, now); err != nil {
		t.Fatal(err)
	}
	got, err := s.User(ctx, "101")
	if err != nil || got.Status != StatusSuspended || got.HA1MD5 != "a" || !got.CreatedAt.Equal(now) {
		t.Fatalf("got %+v, %v", got, err)
	}
	if err := s.SetUserStatus(ctx, "999", StatusActive, now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown user: got %v", err)
	}
	if _, err := s.User(ctx, "999"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown user: got %v", err)
	}
}

// SIPUser reads what SIP needs, sees status and secret changes at once (no
// cache: the CLI changes users from another process), and answers
// ErrNotFound for an unknown extension.
func TestSIPUser(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	if err := s.AddUser(ctx, User{Extension: "101", DisplayName: "Op", Role: RoleSupervisor, HA1MD5: "a", HA1SHA256: "b", WebPassword: "w"}, now); err != nil {
		t.Fatal(err)
	}
	want := User{Extension: "101", Role: RoleSupervisor, HA1MD5: "a", HA1SHA256: "b", Status: StatusActive}
	if got, err := s.SIPUser(ctx, "101"); err != nil || got != want {
		t.Fatalf("SIPUser = %+v, %v; want %+v", got, err, want)
	}
	if err := s.SetUserStatus(ctx, "101", StatusSuspended, now); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSIPSecret(ctx, "101", "c", "d", now); err != nil {
		t.Fatal(err)
	}
	want.Status, want.HA1MD5, want.HA1SHA256 = StatusSuspended, "c", "d"
	if got, err := s.SIPUser(ctx, "101"); err != nil || got != want {
		t.Fatalf("after changes: SIPUser = %+v, %v; want %+v", got, err, want)
	}
	if got, err := s.SIPUser(ctx, "999"); !errors.Is(err, ErrNotFound) || got != (User{}) {
		t.Fatalf("unknown user: got %+v, %v", got, err)
	}
}

func TestBindings(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	s.AddUser(ctx, User{Extension: "101", Role: RoleOperator}, now)
	b1 := Binding{Extension: "101", Contact: "sip:101@127.0.0.1:5062", ExpiresAt: now.Add(time.Hour)}
	b2 := Binding{Extension: "101", Contact: "sip:101@127.0.0.1:5064", ExpiresAt: now.Add(500 * time.Millisecond)}
	if err := s.SaveBindings(ctx, []Binding{b1, b2}, nil); err != nil {
		t.Fatal(err)
	}
	bs, _ := s.Bindings(ctx, "101", now.Add(time.Second))
	if len(bs) != 1 || bs[0].Contact != b1.Contact {
		t.Fatalf("after b2 expiry: %+v", bs)
	}
	if err := s.SaveBindings(ctx, nil, []Binding{{Extension: "101"}}); err != nil {
		t.Fatal(err)
	}
	if bs, _ := s.Bindings(ctx, "", now); len(bs) != 0 {
		t.Fatalf("Contact * left %+v", bs)
	}
}

// A binding keeps the Path it registered with (RFC 3327), in order, and a
// re-registration without Path clears it.
func TestBindingsPath(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	s.AddUser(ctx, User{Extension: "101", Role: RoleOperator}, now)
	path := []string{"<sip:edge.example;lr>", "<sip:10.0.0.2:5070;lr;received=sip:192.0.2.7:5060>"}
	b := Binding{Extension: "101", Contact: "sip:101@192.0.2.7:5060", ExpiresAt: now.Add(time.Hour), Path: path}
	if err := s.SaveBindings(ctx, []Binding{b}, nil); err != nil {
		t.Fatal(err)
	}
	bs, _ := s.Bindings(ctx, "101", now)
	if len(bs) != 1 || len(bs[0].Path) != 2 || bs[0].Path[0] != path[0] || bs[0].Path[1] != path[1] {
		t.Fatalf("bindings %+v, want the Path %q", bs, path)
	}
	b.Path = nil
	if err := s.SaveBindings(ctx, []Binding{b}, nil); err != nil {
		t.Fatal(err)
	}
	if bs, _ := s.Bindings(ctx, "101", now); len(bs) != 1 || bs[0].Path != nil {
		t.Fatalf("after re-registering without Path: %+v", bs)
	}
}
