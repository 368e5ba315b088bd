package sqlstmt_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"plateau/sqlstmt"
	"plateau/store"
)

func TestCache(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "plateau.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c := sqlstmt.New(st.DB())
	const q = `SELECT ? + 1`
	var wg sync.WaitGroup
	got := make([]any, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := c.Get(ctx, q)
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = s
		}()
	}
	wg.Wait()
	for _, s := range got[1:] {
		if s != got[0] {
			t.Fatal("the same query was prepared more than once")
		}
	}
	s, _ := c.Get(ctx, q)
	var n int
	if err := s.QueryRowContext(ctx, 41).Scan(&n); err != nil || n != 42 {
		t.Fatalf("prepared statement: %d, %v", n, err)
	}
	if _, err := c.Get(ctx, `SELECT FROM nowhere`); err == nil {
		t.Error("a malformed query was prepared")
	}
	c.Close()
	if err := s.QueryRowContext(ctx, 1).Scan(&n); err == nil {
		t.Error("a statement still runs after Close")
	}
	s2, err := c.Get(ctx, q)
	if err != nil || s2 == s {
		t.Fatalf("Get after Close: %v (same statement: %v)", err, s2 == s)
	}
}
