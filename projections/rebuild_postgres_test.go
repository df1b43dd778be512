package projections_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore/postgres"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/readapi"
	"github.com/acceptcryptohere/gateway/sqldb/sqldbtest"
)

// TestLiveProjectionsNotHeldByAWriteTransaction: on a Postgres log, a long
// write transaction that is not an append (here a rebuild's batch into its
// shadow table, held open) must not stop the live projections: a new
// invoice shows up while it is open. Before the append lock, readers
// stopped at the server's oldest write transaction and this waited for it.
func TestLiveProjectionsNotHeldByAWriteTransaction(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := postgresDB(t)
	esdb := sqldbtest.Postgres(t, "es") // a schema for the log, dropped at the end
	var schema string
	if err := esdb.Read.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	store, err := postgres.Open(ctx, sqldbtest.PostgresURL(), postgres.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := projections.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	d := commands.Deps{Store: store, Assets: domain.DefaultAssets(), Now: time.Now, NewID: commands.NewIDGenerator(time.Now)}
	h := commands.New(d, commands.NewIndexAllocator(d, derive), func(domain.Chain, string) error { return nil })
	m, err := h.RegisterMerchant.Handle(ctx, commands.RegisterMerchant{CommandID: "r", Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	live := projections.NewRunner(store, db, slog.Default())
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go live.Run(runCtx)

	// The rebuild's batch: a write transaction on the same server, open.
	tx, err := db.Write.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE invoices__next (LIKE invoices INCLUDING ALL)`); err != nil {
		t.Fatal(err)
	}

	inv, err := h.CreateInvoice.Handle(ctx, commands.CreateInvoice{CommandID: "i", MerchantID: m.MerchantID, Asset: "BTC", Amount: "1"})
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := live.WaitFor(wctx, inv.Position); err != nil {
		t.Fatalf("the live projections did not apply the new invoice while another write transaction was open: %v", err)
	}
	if _, err := readapi.NewSQL(db).InvoiceByID(ctx, m.MerchantID, inv.Invoice.InvoiceID); err != nil {
		t.Fatalf("invoice not readable: %v", err)
	}
}
