package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/opstore"
	"github.com/acceptcryptohere/gateway/projections"
)

// TestRebuildKeepsOperationalState runs "picd projections rebuild" on an
// embedded database holding idempotency keys, dashboard sessions and
// webhook deliveries: a rebuild drops and recreates read models only, so
// every other table keeps all of its rows.
func TestRebuildKeepsOperationalState(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg, _, err := parseConfigArgs([]string{"--data=" + dir})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	b, err := openBackend(ctx, cfg, newLogger(&logs))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	d := commands.Deps{Store: b.store, Assets: domain.DefaultAssets(), Now: clock, NewID: commands.NewIDGenerator(clock)}
	h := commands.New(d, commands.StaticAddresses{domain.ChainEthereum: "0xabc"}, func(domain.Chain, string) error { return nil })
	m, err := h.RegisterMerchant.Handle(ctx, commands.RegisterMerchant{Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.CreateInvoice.Handle(ctx, commands.CreateInvoice{MerchantID: m.MerchantID, Asset: "USDT.ETH", Amount: "10"}); err != nil {
		t.Fatal(err)
	}
	if err := projections.NewRunner(b.store, b.db, nil).CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	idem := opstore.NewIdempotency(b.db)
	rec, err := idem.Claim(ctx, "scope", "key", []byte(`{}`), now)
	if err != nil {
		t.Fatal(err)
	}
	if err := idem.Complete(ctx, "scope", "key", rec.Token, opstore.StoredResponse{Status: 201, Body: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if err := opstore.NewSessions(b.db).Create(ctx, opstore.Session{ID: "s", MerchantID: m.MerchantID, KeyHash: "h", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}, now); err != nil {
		t.Fatal(err)
	}
	if _, err := b.db.Write.ExecContext(ctx, `INSERT INTO webhook_deliveries (delivery_id, seq, event_id, event_position, merchant_id, invoice_id, event_type, body, status, created_at, updated_at)
		VALUES ('whd_1', 1, 'evt_1', '1', ?, 'inv_1', 'invoice.paid', x'7b7d', 'pending', 0, 0)`, m.MerchantID); err != nil {
		t.Fatal(err)
	}
	readModels := map[string]bool{}
	for _, p := range projections.All() {
		if tabled, ok := p.(projections.Tabled); ok {
			for _, table := range tabled.Tables() {
				readModels[table] = true
			}
		}
	}
	for _, op := range []string{"idempotency_keys", "dashboard_sessions", "webhook_deliveries"} {
		if readModels[op] {
			t.Fatalf("%s is operational state, yet a projector owns it", op)
		}
	}
	// rows counts every table a rebuild must leave alone.
	rows := func() map[string]int {
		t.Helper()
		tables, err := b.db.Read.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for tables.Next() {
			var n string
			if err := tables.Scan(&n); err != nil {
				t.Fatal(err)
			}
			names = append(names, n)
		}
		tables.Close()
		out := map[string]int{}
		for _, n := range names {
			if readModels[n] || n == "projection_checkpoints" {
				continue
			}
			var c int
			if err := b.db.Read.QueryRowContext(ctx, `SELECT count(*) FROM `+n).Scan(&c); err != nil {
				t.Fatal(err)
			}
			out[n] = c
		}
		return out
	}
	before := rows()
	for _, table := range []string{"idempotency_keys", "dashboard_sessions", "webhook_deliveries"} {
		if before[table] != 1 {
			t.Fatalf("%s: %d rows before the rebuild, want 1", table, before[table])
		}
	}
	b.close()

	var out, errOut bytes.Buffer
	if err := projectionsCmd(ctx, []string{"rebuild", "--data=" + dir}, &out, &errOut); err != nil {
		t.Fatalf("rebuild: %v\n%s", err, errOut.String())
	}

	b, err = openBackend(ctx, cfg, newLogger(&logs))
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	after := rows()
	if len(after) != len(before) {
		t.Fatalf("tables outside the read models: %v before the rebuild, %v after", before, after)
	}
	for table, n := range before {
		if after[table] != n {
			t.Fatalf("%s: %d rows before the rebuild, %d after", table, n, after[table])
		}
	}
	if _, err := opstore.NewSessions(b.db).Get(ctx, "s", now); err != nil {
		t.Fatalf("the session after the rebuild: %v", err)
	}
}
