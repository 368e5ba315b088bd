// Package sqlstmt keeps hot SQL statements prepared once on a database.
// Every call runs the same few statements (user and allowlist lookups,
// audit entries, recording index rows); SQLite would otherwise parse and
// plan each one every time. database/sql reuses a statement already
// prepared on a transaction's connection when it is bound with Tx.Stmt.
package sqlstmt

import (
	"context"
	"database/sql"
	"sync"
)

// Cache holds the statements prepared on one database, by query text.
type Cache struct {
	db *sql.DB
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// New returns an empty cache on db.
func New(db *sql.DB) *Cache { return &Cache{db: db} }

// Get returns query prepared on the database, preparing it the first time.
func (c *Cache) Get(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[query]; ok {
		return st, nil
	}
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[query] = st
	return st, nil
}

// Close releases the statements; Get prepares them again if called after.
func (c *Cache) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		st.Close()
	}
	c.m = nil
}
