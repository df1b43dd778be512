package projections_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// A rebuild holds the balances and the feed's references across batches
// and writes each merchant's every so many batches, by turns, and the rest
// before the swap: whatever the sizes, it writes the same rows as the live
// runner did batch by batch.
func TestRebuildHoldsBalancesAndFeedSQLite(t *testing.T) { testRebuildHolds(t, sqliteLog, sameSQLite) }
func TestRebuildHoldsBalancesAndFeedPostgres(t *testing.T) {
	testRebuildHolds(t, postgresLog, samePostgres)
}

// Where the log is elsewhere the feed keeps copies, which are never held:
// the balances are, and the copies come out the same.
func TestRebuildHoldsBalancesAndFeedCopies(t *testing.T) {
	testRebuildHolds(t, sqliteLog, apart(postgresDB))
}

func testRebuildHolds(t *testing.T, openLog func(*testing.T) eventstore.Store, newDB func(*testing.T, eventstore.Store) sqldb.DB) {
	ctx := context.Background()
	l, db := migratedFeedLog(t, openLog, newDB)
	for n := 1; n <= 4; n++ {
		l.round(t, n)
		if err := projections.NewRunner(l.store, db, slog.Default()).CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
	}
	feedQuery := `SELECT merchant_id, seq, log_row FROM event_feed_refs ORDER BY merchant_id, seq`
	if db.LogTable == "" {
		feedQuery = `SELECT merchant_id, seq, event_id, position FROM event_feed ORDER BY merchant_id, seq`
	}
	feed := tableRows(t, db, feedQuery)
	balances := tableRows(t, db, `SELECT merchant_id, asset, available, pending, reserved, credited FROM balances ORDER BY merchant_id, asset`)
	if strings.Count(feed, "\n") < 40 || !strings.Contains(balances, " 598.3803 ") {
		t.Fatalf("too little to compare:\n%s\n%s", feed, balances)
	}
	// Batches of 3 events; held for 1 batch (every merchant's written at
	// every batch), 3 (each merchant's every third batch, by turns, and
	// the rest before the swap) and more than the log (all of it before
	// the swap).
	for _, hold := range []int{1, 9, 100_000} {
		restore := projections.SetRebuildSizes(3, hold)
		err := projections.Rebuild(ctx, l.store, db, nil, nil)
		restore()
		if err != nil {
			t.Fatalf("hold %d: %v", hold, err)
		}
		if got := tableRows(t, db, feedQuery); got != feed {
			t.Fatalf("hold %d: the feed\n%s\nwant\n%s", hold, got, feed)
		}
		if got := tableRows(t, db, `SELECT merchant_id, asset, available, pending, reserved, credited FROM balances ORDER BY merchant_id, asset`); got != balances {
			t.Fatalf("hold %d: balances\n%s\nwant\n%s", hold, got, balances)
		}
		if rep, err := projections.Audit(ctx, l.store, db); err != nil || !rep.OK() {
			t.Fatalf("hold %d: audit: %v %v", hold, rep.Problems, err)
		}
	}
}

// tableRows renders a query's rows, one a line.
func tableRows(t *testing.T, db sqldb.DB, query string) string {
	t.Helper()
	rows, err := db.Read.Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var b strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			if i > 0 {
				b.WriteByte(' ')
			}
			if s, ok := v.([]byte); ok {
				v = string(s)
			}
			fmt.Fprint(&b, v)
		}
		b.WriteByte('\n')
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
