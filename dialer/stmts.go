package dialer

import (
	"context"
	"database/sql"
)

// Preparing a statement costs more than running the queue's queries, so
// the hot ones are prepared once on the pool and bound to each transaction
// (database/sql then reuses the statement already prepared on the
// transaction's connection).

func (s *Service) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	return s.stmts.Get(ctx, query)
}

// Close releases the prepared statements. The store stays open.
func (s *Service) Close() error {
	s.stmts.Close()
	return nil
}

// runner runs queries with cached statements, in tx when it is not nil.
type runner struct {
	s  *Service
	tx *sql.Tx
}

func (s *Service) on(tx *sql.Tx) runner { return runner{s, tx} }

func (r runner) stmt(ctx context.Context, query string) *sql.Stmt {
	st, err := r.s.prepared(ctx, query)
	if err != nil {
		return nil
	}
	if r.tx != nil {
		return r.tx.StmtContext(ctx, st)
	}
	return st
}

func (r runner) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := r.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	if r.tx != nil {
		return r.tx.QueryRowContext(ctx, query, args...) // reports the prepare error
	}
	return r.s.db.QueryRowContext(ctx, query, args...)
}

func (r runner) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := r.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	if r.tx != nil {
		return r.tx.QueryContext(ctx, query, args...)
	}
	return r.s.db.QueryContext(ctx, query, args...)
}

func (r runner) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := r.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	if r.tx != nil {
		return r.tx.ExecContext(ctx, query, args...)
	}
	return r.s.db.ExecContext(ctx, query, args...)
}
