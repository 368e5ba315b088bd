package dialer

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"plateau/config"
	"plateau/policy"
	"plateau/store"
)

// clock is an injected clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

var paris = mustLoc("Europe/Paris")

func mustLoc(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

// monday0900 is Monday 2026-11-30 09:00 in Paris.
var monday0900 = time.Date(2026, 11, 30, 9, 0, 0, 0, paris)

type fixture struct {
	t   testing.TB
	ctx context.Context
	st  *store.Store
	svc *Service
	clk *clock
}

// newFixture opens a store with operators 101..(100+ops), supervisor 201 and
// security officers 301 and 302; the site calls mon-sat 07:30-20:00.
func newFixture(t testing.TB, ops int) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "plateau.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := &clock{t: monday0900}
	for i := 1; i <= ops; i++ {
		addUser(t, st, fmt.Sprint(100+i), store.RoleOperator)
	}
	addUser(t, st, "201", store.RoleSupervisor)
	addUser(t, st, "301", store.RoleSecurity)
	addUser(t, st, "302", store.RoleSecurity)
	ww, err := config.Window{Days: "mon-sat", From: "07:30", To: "20:00"}.Parse()
	if err != nil {
		t.Fatal(err)
	}
	site, err := policy.NewWindows(paris, []config.WeeklyWindow{ww}, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(st, site, "FR", WithClock(clk.Now), WithLeaseTTL(10*time.Minute), WithCallbackGrace(30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, ctx: ctx, st: st, svc: svc, clk: clk}
}

func addUser(t testing.TB, st *store.Store, ext string, role store.Role) {
	t.Helper()
	if err := st.AddUser(context.Background(), store.User{Extension: ext, DisplayName: ext, Role: role}, monday0900); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) by(ext string) store.Change {
	return store.Change{By: ext, Source: "test", At: f.clk.Now()}
}

// campaign creates an active campaign with the given operators.
func (f *fixture) campaign(name string, ops ...string) Campaign {
	f.t.Helper()
	c, err := f.svc.CreateCampaign(f.ctx, f.by("201"), CampaignSpec{Name: name, Client: "Client SA", Script: "# Bonjour", Operators: ops})
	if err != nil {
		f.t.Fatal(err)
	}
	if c, err = f.svc.SetStatus(f.ctx, f.by("201"), c.ID, Active); err != nil {
		f.t.Fatal(err)
	}
	return c
}

func (f *fixture) importCSV(c Campaign, data string) ImportReport {
	f.t.Helper()
	rep, err := f.svc.Import(f.ctx, f.by("201"), c.ID, []byte(data))
	if err != nil {
		f.t.Fatal(err)
	}
	return rep
}

// approve has security officer 301 approve every proposal of the campaign.
func (f *fixture) approve(c Campaign) {
	f.t.Helper()
	if _, err := f.st.ApproveAllowlist(f.ctx, f.by("301"), store.Selection{Campaign: c.Name}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) next(op string, c Campaign) Lease {
	f.t.Helper()
	l, err := f.svc.Next(f.ctx, op, c.ID)
	if err != nil {
		f.t.Fatalf("next for %s: %v", op, err)
	}
	return l
}

func (f *fixture) noNext(op string, c Campaign, want error) {
	f.t.Helper()
	l, err := f.svc.Next(f.ctx, op, c.ID)
	if !errors.Is(err, want) {
		f.t.Fatalf("next for %s: got %+v, %v; want %v", op, l.Contact, err, want)
	}
}

func (f *fixture) dispose(op string, id int64, disp string, cb time.Time) Contact {
	f.t.Helper()
	c, err := f.svc.Dispose(f.ctx, f.by(op), id, DisposeRequest{Disposition: disp, Notes: "n", CallbackAt: cb})
	if err != nil {
		f.t.Fatalf("dispose %d %q: %v", id, disp, err)
	}
	return c
}

func (f *fixture) count(q string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.st.DB().QueryRowContext(f.ctx, q, args...).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}
