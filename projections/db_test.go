package projections

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// TestReadModelTxRestoresTheWriter: on SQLite beginReadModelTx relaxes
// synchronous on the writer connection the event store appends through;
// once released, whether the transaction committed, rolled back or its
// context was cancelled, that connection is back at FULL, so the log's
// appends stay durable.
func TestReadModelTxRestoresTheWriter(t *testing.T) {
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	db := sqldb.DB{Read: store.DB(), Write: store.WriteDB(), Dialect: sqldb.SQLite}
	if n := store.WriteDB().Stats().MaxOpenConnections; n != 1 {
		t.Fatalf("the writer pool has %d connections; this test assumes the one the log appends through", n)
	}
	synchronous := func() int {
		t.Helper()
		var v int
		if err := db.Write.QueryRowContext(context.Background(), `PRAGMA synchronous`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	const normal, full = 1, 2
	if got := synchronous(); got != full {
		t.Fatalf("writer opened with synchronous=%d, want %d (FULL)", got, full)
	}
	for _, end := range []string{"commit", "rollback", "cancel"} {
		ctx, cancel := context.WithCancel(context.Background())
		tx, release, err := beginReadModelTx(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		var inside int
		if err := tx.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&inside); err != nil {
			t.Fatal(err)
		}
		if inside != normal {
			t.Fatalf("%s: synchronous=%d inside the read-model transaction, want %d (NORMAL)", end, inside, normal)
		}
		switch end {
		case "commit":
			err = tx.Commit()
		case "rollback":
			err = tx.Rollback()
		case "cancel":
			cancel()
			_ = tx.Rollback()
		}
		if err != nil {
			t.Fatal(err)
		}
		release()
		cancel()
		if got := synchronous(); got != full {
			t.Fatalf("after %s and release the writer has synchronous=%d, want %d (FULL)", end, got, full)
		}
	}
}
