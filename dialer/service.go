// Package dialer is the preview dialer: campaigns, their contact lists
// (imported from CSV), the preview queue that leases one contact at a time
// to an operator, call attempts and the dispositions that drive retries,
// callbacks and the do-not-call list, and per-campaign results for the
// client company.
//
// It never places a call: click-to-call (package b2bua) rings the operator
// and dials through policy.Decide, then reports the outcome with
// RecordAttempt. The queue only offers numbers that security has approved
// and that are not on the do-not-call list, but policy.Decide checks again
// at dial time, so the dialer is a convenience, not the guard.
//
// The dialer keeps its tables (migration 0005) in the store's database and
// writes allowlist proposals and do-not-call entries through the store's
// transaction-scoped functions, so an import or a disposition and its audit
// entries commit together or not at all.
//
// There are no per-operator counts anywhere in this package: the centre
// coaches people, it does not rank them.
package dialer

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"plateau/policy"
	"plateau/sqlstmt"
	"plateau/store"
)

// Service is the dialer. It is safe for concurrent use.
type Service struct {
	st       *store.Store
	db       *sql.DB
	site     policy.Windows
	region   string
	now      func() time.Time
	leaseTTL time.Duration
	grace    time.Duration
	skipWait time.Duration
	// correctWindow is how long an operator may correct an outcome.
	correctWindow time.Duration
	log           *slog.Logger
	call          CallFunc

	// wmu serialises this process's dialer write transactions so that they
	// queue here instead of polling on SQLite's busy timeout (which costs
	// tens of milliseconds a request when operators ask at once); the
	// BEGIN IMMEDIATE is what keeps them atomic against other processes.
	wmu sync.Mutex

	stmts *sqlstmt.Cache // the queue's hot queries (see prepared)
}

// Option configures a Service.
type Option func(*Service)

// WithClock injects the clock (tests, benchmarks).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithLeaseTTL sets how long a lease lasts without activity (default 10 min).
func WithLeaseTTL(d time.Duration) Option { return func(s *Service) { s.leaseTTL = d } }

// WithCallbackGrace sets how long a callback waits for the operator who
// scheduled it before any assigned operator may take it (default 30 min).
func WithCallbackGrace(d time.Duration) Option { return func(s *Service) { s.grace = d } }

// WithSkipDelay sets how long a skipped contact stays out of the queue
// (default 1 h).
func WithSkipDelay(d time.Duration) Option { return func(s *Service) { s.skipWait = d } }

// WithCorrectionWindow sets how long after entering an outcome the
// operator may still correct it (default 10 min; supervisors always may).
func WithCorrectionWindow(d time.Duration) Option { return func(s *Service) { s.correctWindow = d } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// New returns the dialer on st. site are the site's calling hours (a lease
// is only given inside them and inside the campaign's own); region reads
// national numbers in imported files (e.g. "FR").
func New(st *store.Store, site policy.Windows, region string, opts ...Option) (*Service, error) {
	if site.Location() == nil {
		return nil, fmt.Errorf("dialer: site windows have no time zone")
	}
	if region == "" {
		return nil, fmt.Errorf("dialer: no default region for numbers")
	}
	s := &Service{st: st, db: st.DB(), stmts: sqlstmt.New(st.DB()), site: site, region: region, now: time.Now,
		leaseTTL: 10 * time.Minute, grace: 30 * time.Minute, skipWait: time.Hour, correctWindow: 10 * time.Minute, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// at fills in the change's time from the service clock.
func (s *Service) at(c store.Change) store.Change {
	if c.At.IsZero() {
		c.At = s.now()
	}
	return c
}

// inTx runs fn in a write transaction (BEGIN IMMEDIATE) and commits only if
// fn succeeds.
func (s *Service) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.st.BeginTx(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// requireRole checks that ext is an active user with one of roles.
func requireRole(ctx context.Context, tx *sql.Tx, ext string, roles ...store.Role) (store.User, error) {
	u, err := store.ActiveUserTx(ctx, tx, ext)
	if err != nil {
		return u, fmt.Errorf("%w: %v", ErrForbidden, err)
	}
	for _, r := range roles {
		if u.Role == r {
			return u, nil
		}
	}
	return u, fmt.Errorf("%w: %s has role %s", ErrForbidden, ext, u.Role)
}

var managers = []store.Role{store.RoleSupervisor, store.RoleAdmin}

func ft(t time.Time) string { return store.FormatTime(t) }

func pt(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	return store.ParseTime(s)
}
