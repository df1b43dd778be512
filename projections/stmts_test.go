package projections

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/acceptcryptohere/gateway/sqldb"
	_ "modernc.org/sqlite"
)

// TestSharedStatementsAcrossBatches: buffered rows are inserted in
// power-of-two statements, which a second batch takes prepared from the
// runner's shared statements instead of preparing them again.
func TestSharedStatementsAcrossBatches(t *testing.T) {
	ctx := context.Background()
	conn, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "rm.db")+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	conn.SetMaxOpenConns(1) // as the embedded writer: one connection
	t.Cleanup(func() { conn.Close() })
	db := sqldb.DB{Read: conn, Write: conn, Dialect: sqldb.SQLite}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE rows (n INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	shared := &sharedStmts{}
	batch := func(from int) {
		t.Helper()
		sqlTx, release, err := beginReadModelTx(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		tx := newTx(sqlTx, db, nil, shared)
		for n := from; n < from+37; n++ {
			tx.bufferRow("rows", `INSERT INTO rows (n)`, n)
		}
		if err := tx.flushRows(ctx, "rows"); err != nil {
			t.Fatal(err)
		}
		if err := sqlTx.Commit(); err != nil {
			t.Fatal(err)
		}
		release()
		shared.prepareMissed(ctx, db.Write)
	}
	batch(0)
	if len(shared.stmts) != 3 { // 37 rows: 32 + 4 + 1
		t.Fatalf("%d shared statements after the first batch, want 3", len(shared.stmts))
	}
	batch(37)
	if len(shared.stmts) != 3 || len(shared.missed) != 0 {
		t.Fatalf("second batch: %d shared, %d missed; want 3 and 0", len(shared.stmts), len(shared.missed))
	}
	var count, sum int
	if err := conn.QueryRowContext(ctx, `SELECT count(*), sum(n) FROM rows`).Scan(&count, &sum); err != nil {
		t.Fatal(err)
	}
	if count != 74 || sum != 73*74/2 {
		t.Fatalf("rows: count %d sum %d, want 74 and %d", count, sum, 73*74/2)
	}
}
