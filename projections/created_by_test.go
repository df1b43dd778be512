package projections_test

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/readapi"
	"github.com/acceptcryptohere/gateway/sqldb"
)

func TestCreatedBySQLite(t *testing.T)   { testCreatedBy(t, separateSQLite) }
func TestCreatedByPostgres(t *testing.T) { testCreatedBy(t, postgresDB) }

// testCreatedBy (issue #17, finding 3): the invoices read model keeps which
// kind of key created each invoice. Rows projected before migration 0007
// and InvoiceCreated events of logs from before created_by read as the
// secret key's; the publishable key's invoices read as its own.
func testCreatedBy(t *testing.T, newDB func(*testing.T) sqldb.DB) {
	ctx := context.Background()
	db := newDB(t)
	// The schema as it was before 0007, with a row its projector wrote.
	if err := sqldb.ApplyMigrations(ctx, db, migrationsBefore(t, 7), "migrations", "read_model_migrations"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Write.ExecContext(ctx, db.Q(`INSERT INTO invoices (invoice_id, merchant_id, asset, status, amount, pay_amount,
		pay_address, fee, fee_bps, order_id, required_confirmations, created_at, expires_at, updated_at)
		VALUES ('inv_0projected', 'mer_1', 'BTC', 'new', '1', '1', 'bc1q', '0.0025', 25, 'order-0', 2, 1, 2, 1)`)); err != nil {
		t.Fatal(err)
	}
	if err := projections.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	r := readapi.NewSQL(db)
	if inv, err := r.InvoiceByID(ctx, "mer_1", "inv_0projected"); err != nil || inv.CreatedBy != domain.CreatedBySecretKey {
		t.Fatalf("a row from before 0007: created by %q, %v", inv.CreatedBy, err)
	}

	store, err := sqlite.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	// An InvoiceCreated as logs from before created_by hold it.
	old := `{"invoice_id":"inv_1old","merchant_id":"mer_1","asset":"BTC","decimals":8,"amount":"1","pay_amount":"1","pay_address":"bc1q-old",` +
		`"address_index":-1,"required_confirmations":2,"fee":{"base":"1","bps":25,"decimals":8,"rounding":"half_up","fee":"0.0025"},` +
		`"created_at":"2026-11-01T00:00:00Z","expires_at":"2026-11-01T01:00:00Z"}`
	if _, err := store.Append(ctx, commands.InvoiceStream("inv_1old"), eventstore.NoStream, []eventstore.EventData{{
		ID: commands.EventID("cmd_old", commands.InvoiceStream("inv_1old"), 0), Type: domain.TypeInvoiceCreated, Data: []byte(old)}}); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	d := commands.Deps{Store: store, Assets: domain.DefaultAssets(), Now: clock, NewID: commands.NewIDGenerator(clock)}
	h := commands.New(d, commands.NewIndexAllocator(d, derive), func(domain.Chain, string) error { return nil })
	m, err := h.RegisterMerchant.Handle(ctx, commands.RegisterMerchant{CommandID: "r", Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]domain.CreatedBy{}
	for i, by := range []domain.CreatedBy{domain.CreatedBySecretKey, domain.CreatedByPublishableKey} {
		now = now.Add(time.Millisecond)
		inv, err := h.CreateInvoice.Handle(ctx, commands.CreateInvoice{CommandID: fmt.Sprint("i", i), MerchantID: m.MerchantID,
			Asset: "USDT.ETH", Amount: "49.99", CreatedBy: by})
		if err != nil {
			t.Fatal(err)
		}
		want[inv.Invoice.InvoiceID] = by
	}
	if err := projections.NewRunner(store, db, slog.New(slog.DiscardHandler)).CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if inv, err := r.InvoiceByID(ctx, "mer_1", "inv_1old"); err != nil || inv.CreatedBy != domain.CreatedBySecretKey {
		t.Fatalf("an event from before created_by: created by %q, %v", inv.CreatedBy, err)
	}
	page, _, err := r.ListInvoices(ctx, m.MerchantID, readapi.InvoiceFilter{Limit: 10})
	if err != nil || len(page) != 2 {
		t.Fatalf("list: %v %v", page, err)
	}
	for _, inv := range page {
		if inv.CreatedBy != want[inv.ID] {
			t.Errorf("%s: created by %q, want %q", inv.ID, inv.CreatedBy, want[inv.ID])
		}
	}
}

// migrationsBefore is the read models' migrations numbered below n, read
// from the source tree, for a database as an older version left it.
func migrationsBefore(t *testing.T, n int) fs.FS {
	out := fstest.MapFS{}
	for _, dialect := range []string{"sqlite", "postgres"} {
		dir := filepath.Join("migrations", dialect)
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			num, _, _ := strings.Cut(e.Name(), "_")
			if num >= fmt.Sprintf("%04d", n) {
				continue
			}
			body, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			out["migrations/"+dialect+"/"+e.Name()] = &fstest.MapFile{Data: body}
		}
	}
	return out
}
