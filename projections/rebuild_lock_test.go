package projections_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/sqldb"
	"github.com/acceptcryptohere/gateway/sqldb/sqldbtest"
)

// TestRebuildLockSQLite: while one handle on the database file holds the
// rebuild lock (as a second process would), a rebuild through another is
// refused before it touches a table, and runs once the lock is released.
func TestRebuildLockSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	open := func() (*sqlite.Store, sqldb.DB) {
		s, err := sqlite.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s, sqldb.DB{Read: s.DB(), Write: s.WriteDB(), Dialect: sqldb.SQLite}
	}
	_, first := open()
	store, second := open()
	testRebuildLock(t, store, first, second, sqldb.DB{})
}

// TestRebuildLockPostgres: the same on one schema through two pools; a
// rebuild of another schema on the same server is not held up.
func TestRebuildLockPostgres(t *testing.T) {
	first := postgresDB(t)
	var schema string
	if err := first.Read.QueryRow(`SELECT current_schema()`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	pool, err := sql.Open("pgx", sqldbtest.PostgresURL()+"&search_path="+schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	second := sqldb.DB{Read: pool, Write: pool, Dialect: sqldb.Postgres}
	testRebuildLock(t, sqliteLog(t), first, second, postgresDB(t))
}

func testRebuildLock(t *testing.T, store eventstore.Store, first, second, elsewhere sqldb.DB) {
	ctx := context.Background()
	if err := projections.Migrate(ctx, first); err != nil {
		t.Fatal(err)
	}
	release, err := projections.LockRebuild(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	// The first rebuild's shadow table, part filled.
	if _, err := first.Write.ExecContext(ctx, `CREATE TABLE balances__next (merchant_id TEXT, note TEXT)`); err != nil {
		t.Fatal(err)
	}
	if _, err := first.Write.ExecContext(ctx, `INSERT INTO balances__next VALUES ('m', 'the first rebuild''s')`); err != nil {
		t.Fatal(err)
	}
	if _, err := projections.LockRebuild(ctx, second); !errors.Is(err, projections.ErrRebuildRunning) {
		t.Fatalf("a second lock while the first is held: %v, want ErrRebuildRunning", err)
	}
	if err := projections.Rebuild(ctx, store, second, nil, nil); !errors.Is(err, projections.ErrRebuildRunning) {
		t.Fatalf("a second rebuild while the first holds the lock: %v, want ErrRebuildRunning", err)
	}
	var n int
	if err := second.Read.QueryRowContext(ctx, `SELECT count(*) FROM balances__next WHERE note = 'the first rebuild''s'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the refused rebuild touched the first one's shadow table: %d rows, %v", n, err)
	}
	if elsewhere.Write != nil { // another schema is another read model
		other, err := projections.LockRebuild(ctx, elsewhere)
		if err != nil {
			t.Fatalf("the lock of another schema: %v", err)
		}
		other()
	}
	release()
	if err := projections.Rebuild(ctx, store, second, nil, nil); err != nil {
		t.Fatalf("a rebuild after the lock's release: %v", err)
	}
	again, err := projections.LockRebuild(ctx, first)
	if err != nil {
		t.Fatalf("the lock after the second rebuild ended: %v", err)
	}
	again()
}
