package projections_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/projections"
)

// On Postgres a rebuild's catch-up runs the invoices and the other
// projectors in lanes of their own. When one lane fails, the rebuild stops
// with that lane's error (not the cancellation it passed to the others),
// swaps nothing in, and the next rebuild makes the same tables as before.
func TestRebuildLaneFailureStopsTheRebuildPostgres(t *testing.T) {
	ctx := context.Background()
	l, db := migratedFeedLog(t, postgresLog, samePostgres)
	for n := 1; n <= 4; n++ {
		l.round(t, n)
	}
	if err := projections.NewRunner(l.store, db, slog.Default()).CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	const balancesQuery = `SELECT merchant_id, asset, available, pending, reserved, credited FROM balances ORDER BY merchant_id, asset`
	const invoicesQuery = `SELECT invoice_id, status, amount_received FROM invoices ORDER BY invoice_id`
	balances, invoices := tableRows(t, db, balancesQuery), tableRows(t, db, invoicesQuery)

	// Batches of 3 events, the balances written at every one: the first
	// progress (the invoices' lane reports it) drops the table the other
	// lane writes, from another connection, between that lane's
	// transactions.
	restore := projections.SetRebuildSizes(3, 1)
	defer restore()
	var once sync.Once
	var phases []string
	err := projections.RebuildWith(ctx, l.store, db, nil, projections.RebuildOptions{
		Progress: func(projections.RebuildProgress) {
			once.Do(func() {
				if _, err := db.Write.ExecContext(ctx, `DROP TABLE balances__next`); err != nil {
					t.Errorf("dropping the lane's table: %v", err)
				}
			})
		},
		Phase: func(name string, _ time.Duration) { phases = append(phases, name) },
	})
	if err == nil || errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "balances__next") {
		t.Fatalf("the rebuild with a failing lane: %v; want the lane's error about balances__next", err)
	}
	if len(phases) != 0 {
		t.Fatalf("phases after a failed catch-up: %v", phases)
	}
	if got := tableRows(t, db, balancesQuery); got != balances {
		t.Fatalf("live balances after the failed rebuild\n%s\nwant\n%s", got, balances)
	}
	if got := tableRows(t, db, invoicesQuery); got != invoices {
		t.Fatalf("live invoices after the failed rebuild\n%s\nwant\n%s", got, invoices)
	}

	if err := projections.Rebuild(ctx, l.store, db, nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := tableRows(t, db, balancesQuery); got != balances {
		t.Fatalf("balances after the next rebuild\n%s\nwant\n%s", got, balances)
	}
	if got := tableRows(t, db, invoicesQuery); got != invoices {
		t.Fatalf("invoices after the next rebuild\n%s\nwant\n%s", got, invoices)
	}
	if rep, err := projections.Audit(ctx, l.store, db); err != nil || !rep.OK() {
		t.Fatalf("audit: %v %v", rep.Problems, err)
	}
}
