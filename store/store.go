// Package store is Plateau's SQLite storage: one database file in WAL mode,
// versioned migrations applied at open, and the repositories built on it.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // pure Go driver, no cgo

	"plateau/sqlstmt"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Store owns the database handle.
type Store struct {
	db    *sql.DB
	stmts *sqlstmt.Cache // hot queries, prepared once
}

// prepared returns a prepared statement for a hot query.
func (s *Store) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	return s.stmts.Get(ctx, query)
}

// Open opens (creating it if needed) the database at path and migrates it
// to the latest schema version.
func Open(ctx context.Context, path string) (*Store, error) {
	s, err := openRaw(path)
	if err != nil {
		return nil, err
	}
	if err := s.db.PingContext(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := s.Migrate(ctx, 0); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

// openRaw opens the database without migrating it.
func openRaw(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	// busy_timeout makes concurrent writers wait instead of failing with
	// SQLITE_BUSY; foreign keys are off by default in SQLite.
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	// Opening a connection runs the DSN's pragmas (a large share of a
	// query's cost under load): keep a fixed pool open. WAL lets readers
	// run beside the single writer.
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)
	return &Store{db: db, stmts: sqlstmt.New(db)}, nil
}

// DB exposes the handle to packages that keep their own tables (audit…).
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the database.
func (s *Store) Close() error {
	s.stmts.Close()
	return s.db.Close()
}

// Ping reports whether the database answers; /readyz uses it.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

type migration struct {
	version int
	name    string
	sql     string
}

func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with NNNN_", e.Name())
		}
		b, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: versions must be 1..N without gaps", m.name)
		}
	}
	return ms, nil
}

// LatestVersion is the schema version this binary migrates to.
func LatestVersion() int {
	ms, _ := migrations()
	return len(ms)
}

// Version returns the database's schema version.
func (s *Store) Version(ctx context.Context) (int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	return v, err
}

// ErrSchemaTooNew means the database was written by a newer Plateau.
var ErrSchemaTooNew = errors.New("database schema is newer than this binary")

// Migrate applies migrations up to version target (0: the latest), each in
// its own transaction together with the version bump, so a crash never
// leaves a half-applied schema.
func (s *Store) Migrate(ctx context.Context, target int) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	if target == 0 {
		target = len(ms)
	}
	cur, err := s.Version(ctx)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if cur > len(ms) {
		return fmt.Errorf("%w: database v%d, binary v%d", ErrSchemaTooNew, cur, len(ms))
	}
	for _, m := range ms[cur:target] {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", m.version)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return nil
}

// timeLayout is fixed-width so that SQLite compares timestamps as strings
// in time order (RFC3339Nano trims zeros and would not).
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// FormatTime is how every timestamp is stored.
func FormatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func formatTime(t time.Time) string { return FormatTime(t) }

// ParseTime reads a stored timestamp.
func ParseTime(s string) time.Time {
	t, _ := time.Parse(timeLayout, s)
	return t
}

func parseTime(s string) time.Time { return ParseTime(s) }
