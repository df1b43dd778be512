package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// BenchmarkStateGaugesScrape: one scrape of the read-model gauges
// (invoices and payouts by status, the settlement gauges) over an embedded
// store of 200,000 invoices and 20,000 payouts: the cost each Prometheus
// scrape adds, as the read models grow.
func BenchmarkStateGaugesScrape(b *testing.B) {
	ctx := context.Background()
	store, err := sqlite.Open(filepath.Join(b.TempDir(), "picd.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	db := sqldb.DB{Read: store.DB(), Write: store.WriteDB(), Dialect: sqldb.SQLite}
	for _, migrate := range []func(context.Context, sqldb.DB) error{projections.Migrate, chain.Migrate} {
		if err := migrate(ctx, db); err != nil {
			b.Fatal(err)
		}
	}
	statuses := []string{"new", "paid", "expired", "confirming"}
	fill := func(table, insert string, n int, args func(i int) []any) {
		tx, err := db.Write.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		for i := range n {
			if _, err := tx.ExecContext(ctx, insert, args(i)...); err != nil {
				b.Fatalf("%s: %v", table, err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	fill("invoices", `INSERT INTO invoices (invoice_id, merchant_id, asset, status, amount, pay_amount, pay_address, fee, fee_bps,
		required_confirmations, created_at, expires_at, updated_at) VALUES (?, 'mer_1', 'BTC', ?, '1', '1', ?, '0', 25, 2, 0, 0, 0)`, 200_000,
		func(i int) []any {
			return []any{fmt.Sprintf("inv_%08d", i), statuses[i%len(statuses)], fmt.Sprintf("addr%d", i)}
		})
	fill("payouts", `INSERT INTO payouts (payout_id, merchant_id, asset, kind, amount, to_address, status, request_stream, request_version,
		created_at, updated_at) VALUES (?, 'mer_1', 'BTC', 'withdrawal', '1', 'a', ?, 's', 1, 0, 0)`, 20_000,
		func(i int) []any {
			return []any{fmt.Sprintf("po_%08d", i), []string{"confirmed", "sent", "failed"}[i%3]}
		})
	o := newObservability(slog.New(slog.NewTextHandler(io.Discard, nil)))
	o.registerStateGauges(store, projections.NewRunner(store, db, slog.New(slog.NewTextHandler(io.Discard, nil))), db, nil)
	o.registerSettlementGauges(db, time.Now)
	gather := func() {
		families, err := o.registry.Gather()
		if err != nil {
			b.Fatal(err)
		}
		if len(families) == 0 {
			b.Fatal("nothing gathered")
		}
	}
	gather()
	b.ResetTimer()
	for range b.N {
		gather()
	}
}
