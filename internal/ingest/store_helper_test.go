package ingest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/auditops/auditops/internal/store"
	"github.com/auditops/auditops/internal/store/sqlite"
)

// testBusyTimeout keeps the "store busy" test short.
const testBusyTimeout = 300 * time.Millisecond

// newTestStore opens a real SQLite store in a fresh directory, closed when
// the test ends.
func newTestStore(t testing.TB) store.Store {
	t.Helper()
	st, _ := newTestStoreAt(t)
	return st
}

// newTestStoreAt also returns the database file, for tests that need to
// reach it from outside the store.
func newTestStoreAt(t testing.TB) (*sqlite.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.db")
	st, err := sqlite.New(context.Background(), path, store.Options{
		TokenKey:    []byte("ingest-test-token-key-32-bytes!!"),
		BusyTimeout: testBusyTimeout,
	})
	if err != nil {
		t.Fatalf("opening sqlite store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st, path
}
