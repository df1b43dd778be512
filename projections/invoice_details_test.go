package projections_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/acceptcryptohere/gateway/chain/oracle"
	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/readapi"
	"github.com/acceptcryptohere/gateway/sqldb"
)

func TestInvoiceDetailsSQLite(t *testing.T)   { testInvoiceDetails(t, separateSQLite) }
func TestInvoiceDetailsPostgres(t *testing.T) { testInvoiceDetails(t, postgresDB) }

// testInvoiceDetails (issue #19): migrations 0009 and 0010 on a database
// an older version left (its rows read as without details, price or
// branding), then an invoice's description, metadata, redirect_url and
// fiat price and an account's branding, projected and read back.
func testInvoiceDetails(t *testing.T, newDB func(*testing.T) sqldb.DB) {
	ctx := context.Background()
	db := newDB(t)
	if err := sqldb.ApplyMigrations(ctx, db, migrationsBefore(t, 9), "migrations", "read_model_migrations"); err != nil {
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
	old, err := r.InvoiceByID(ctx, "mer_1", "inv_0projected")
	if err != nil || old.Description != "" || len(old.Metadata) != 0 || old.RedirectURL != "" || old.Price != nil {
		t.Fatalf("a row from before 0009: %+v %v", old, err)
	}
	if js := old.JSON(""); js.Metadata == nil || js.Price != nil || js.Description != nil {
		t.Fatalf("a row from before 0009 renders %+v", js)
	}

	store, err := sqlite.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	prices := oracle.Static{USD: map[string]decimal.Decimal{"BTC": decimal.RequireFromString("60000"), "EUR": decimal.RequireFromString("1.08")}, Now: clock}
	d := commands.Deps{Store: store, Assets: domain.DefaultAssets(), Now: clock, NewID: commands.NewIDGenerator(clock), Prices: prices}
	h := commands.New(d, commands.NewIndexAllocator(d, derive), func(domain.Chain, string) error { return nil })
	m, err := h.RegisterMerchant.Handle(ctx, commands.RegisterMerchant{CommandID: "r", Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	meta := map[string]string{"cart": "42", "Cart": "x"}
	inv, err := h.CreateInvoice.Handle(ctx, commands.CreateInvoice{CommandID: "i", MerchantID: m.MerchantID, Asset: "BTC",
		PriceAmount: "49.99", PriceCurrency: "EUR", Description: "2 × coffee", Metadata: meta, RedirectURL: "https://shop.example/thanks"})
	if err != nil {
		t.Fatal(err)
	}
	name, color := "Café", "#0A7D5A"
	if _, err := h.UpdateAccount.Handle(ctx, commands.UpdateAccount{CommandID: "u", MerchantID: m.MerchantID,
		Patch: domain.AccountPatch{BrandingPatch: domain.BrandingPatch{DisplayName: &name, BrandColor: &color}}}); err != nil {
		t.Fatal(err)
	}
	if err := projections.NewRunner(store, db, slog.New(slog.DiscardHandler)).CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := r.InvoiceByID(ctx, m.MerchantID, inv.Invoice.InvoiceID)
	if err != nil {
		t.Fatal(err)
	}
	fromEvents, err := readapi.InvoiceFromEvents([]domain.Event{inv.Invoice})
	if err != nil {
		t.Fatal(err)
	}
	// The read model and the webhook's fold of the events render alike.
	a, _ := json.Marshal(got.JSON("https://pay.example"))
	b, _ := json.Marshal(fromEvents.JSON("https://pay.example"))
	if string(a) != string(b) {
		t.Errorf("read model %s\nevents     %s", a, b)
	}
	p := got.Price
	if got.Description != "2 × coffee" || !reflect.DeepEqual(got.Metadata, meta) || got.RedirectURL != "https://shop.example/thanks" ||
		p == nil || p.Currency != "EUR" || p.Amount.String() != "49.99" || p.Rate.String() != "55555.555555555555555556" ||
		p.Source != "static" || !p.RateAt.Equal(now) || got.Amount.String() != "0.00089982" {
		t.Errorf("invoice read back: %+v price %+v", got, p)
	}
	want := readapi.Branding{DisplayName: "Café", BrandColor: "#0a7d5a"}
	if b, err := r.Branding(ctx, m.MerchantID); err != nil || b != want {
		t.Errorf("branding %+v %v, want %+v", b, err, want)
	}
	if acc, err := r.Account(ctx, m.MerchantID); err != nil || acc.Branding != want {
		t.Errorf("account branding %+v %v", acc.Branding, err)
	}
}
