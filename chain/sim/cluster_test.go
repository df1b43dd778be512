package sim_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/sim"
	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore/postgres"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/readapi"
	"github.com/acceptcryptohere/gateway/sqldb"
	"github.com/acceptcryptohere/gateway/sqldb/sqldbtest"
)

// instance is one picd's simulator over a shared Postgres: its own
// mutex, its own connections.
type instance struct {
	sim *sim.Simulator
	h   commands.Handlers
}

// cluster is the simulator served by n processes on one Postgres, as
// picd serve runs it behind a load balancer (issue #27).
func cluster(t *testing.T, n int) (*env, []instance) {
	t.Helper()
	ctx := context.Background()
	assets, err := sim.WithConfirmations(domain.DefaultAssets(), 1)
	if err != nil {
		t.Fatal(err)
	}
	db := sqldbtest.Postgres(t, "simha")
	var schema string
	if err := db.Read.QueryRow(`SELECT current_schema()`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	store, err := postgres.Open(ctx, sqldbtest.PostgresURL(), postgres.WithSchema(schema+"_events"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		store.Close()
		db.Write.Exec(`DROP SCHEMA ` + schema + `_events CASCADE`)
	})
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := projections.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := sim.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, db: db, assets: assets, now: time.Now()}
	e.runner = projections.NewRunner(store, db, quiet)
	e.read = readapi.NewSQL(db)
	var out []instance
	for i := 0; i < n; i++ {
		clock := time.Now
		d := commands.Deps{Store: store, Assets: assets, Now: clock, NewID: commands.NewIDGenerator(clock)}
		h := commands.New(d, commands.NewIndexAllocator(d, sim.Deriver([]byte("seed"))), func(domain.Chain, string) error { return nil })
		own := sqldb.DB{Read: db.Read, Write: openLike(t, schema), Dialect: sqldb.Postgres}
		s, err := sim.New(sim.Config{}, chain.Sink{Commands: h, Addresses: e.read}, own, assets, quiet)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, instance{sim: s, h: h})
	}
	e.h = out[0].h
	m, err := e.h.RegisterMerchant.Handle(ctx, commands.RegisterMerchant{CommandID: "reg", Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	e.merchant = m.MerchantID
	return e, out
}

func openLike(t *testing.T, schema string) *sql.DB {
	t.Helper()
	db, err := sqldb.OpenPostgres(sqldbtest.PostgresURL() + "&search_path=" + schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Three processes mine at once, again and again: before #27 they locked the
// chains' rows in map order and deadlocked (40P01, answered 500), and each
// confirmed and listed the same deposits. Now each mine runs alone: none
// fails, every deposit is listed confirmed (and final) exactly once, every
// invoice is paid and the audit agrees.
func TestConcurrentMinesAcrossInstances(t *testing.T) {
	e, insts := cluster(t, 3)
	var invoices []string
	assets := []string{"BTC", "ETH", "TRX", "USDT.ETH"}
	for i := 0; i < 24; i++ {
		asset := assets[i%len(assets)]
		res, err := e.h.CreateInvoice.Handle(e.ctx, commands.CreateInvoice{CommandID: fmt.Sprint("inv-", i), MerchantID: e.merchant,
			Asset: asset, Amount: "1"})
		if err != nil {
			t.Fatal(err)
		}
		invoices = append(invoices, res.Invoice.InvoiceID)
	}
	// The Postgres log shows an append once every write transaction open
	// on the server before it ended (other packages' tests run beside this
	// one): catch up until the last invoice is readable.
	for deadline := time.Now().Add(30 * time.Second); ; {
		e.catchUp()
		if _, err := e.read.InvoiceByID(e.ctx, e.merchant, invoices[len(invoices)-1]); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i, id := range invoices {
		if _, err := insts[i%3].sim.Pay(e.ctx, id, "1"); err != nil {
			t.Fatalf("pay %s: %v", id, err)
		}
	}
	confirmed, final := map[string]int{}, map[string]int{}
	var mu sync.Mutex
	var failures []error
	for round := 0; round < 4; round++ {
		var wg sync.WaitGroup
		for _, in := range insts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := in.sim.Mine(e.ctx, 1)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failures = append(failures, err)
					return
				}
				for id, why := range res.Failed {
					failures = append(failures, fmt.Errorf("%s: %s", id, why))
				}
				for _, c := range res.Confirmed {
					confirmed[c.DepositID]++
				}
				for _, c := range res.Final {
					final[c.DepositID]++
				}
			}()
		}
		wg.Wait()
	}
	if len(failures) > 0 {
		t.Fatalf("%d mines failed, e.g. %v", len(failures), failures[0])
	}
	for id, n := range confirmed {
		if n != 1 {
			t.Errorf("deposit %s listed confirmed %d times", id, n)
		}
	}
	for id, n := range final {
		if n != 1 {
			t.Errorf("deposit %s listed final %d times", id, n)
		}
	}
	if len(confirmed) != len(invoices) || len(final) != len(invoices) {
		t.Fatalf("%d deposits confirmed and %d final, want %d each", len(confirmed), len(final), len(invoices))
	}
	// Readable once the server's older write transactions ended (above).
	last := invoices[len(invoices)-1]
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		e.catchUp()
		if inv, err := e.read.InvoiceByID(e.ctx, e.merchant, last); err == nil && inv.Status == domain.StatusPaid || time.Now().After(deadline) {
			break
		}
	}
	for _, id := range invoices {
		e.wantStatus(id, domain.StatusPaid)
	}
}

// A pay whose answer was lost after the ledger recorded the deposit (here:
// the simulator's own record fails, answered 500) is retried by the client
// with the same payment_id: one deposit, recorded by the simulator once,
// mined and paid; nothing stays pending. Before #27 the retry was a second
// payment and the first stayed pending for ever.
func TestRetriedPayRecordsOnce(t *testing.T) {
	e := setup(t, domain.DefaultAssets(), sim.Config{})
	id, _ := e.invoice("ETH", "0.5", 0)
	body := fmt.Sprintf(`{"invoice_id":%q,"amount":"0.5","payment_id":"order-7-try"}`, id)
	if _, err := e.db.Write.Exec(`ALTER TABLE sim_transfers RENAME TO sim_transfers_away`); err != nil {
		t.Fatal(err)
	}
	if status, out := e.post("/v1/sim/pay", "Bearer "+token, body); status != http.StatusInternalServerError {
		t.Fatalf("pay with the simulator's record failing: %d %v", status, out)
	}
	if _, err := e.db.Write.Exec(`ALTER TABLE sim_transfers_away RENAME TO sim_transfers`); err != nil {
		t.Fatal(err)
	}
	first := e.ok("/v1/sim/pay", body)
	again := e.ok("/v1/sim/pay", body) // and once more, after a success
	if first["txid"] != again["txid"] {
		t.Fatalf("the same payment_id gave two transactions: %v %v", first["txid"], again["txid"])
	}
	if status, _ := e.post("/v1/sim/pay", "Bearer "+token, fmt.Sprintf(`{"invoice_id":%q,"amount":"0.4","payment_id":"order-7-try"}`, id)); status != http.StatusBadRequest {
		t.Fatalf("a payment_id reused for another amount: %d, want 400", status)
	}
	status := func() domain.Status {
		inv, err := e.read.InvoiceByID(e.ctx, e.merchant, id)
		if err != nil {
			t.Fatal(err)
		}
		return inv.Status
	}
	for i := 0; i < 20 && status() != domain.StatusPaid; i++ {
		e.ok("/v1/sim/mine", `{"blocks":1}`)
	}
	inv := e.wantStatus(id, domain.StatusPaid)
	if inv.AmountReceived.String() != "0.5" {
		t.Fatalf("received %s, want 0.5 once", inv.AmountReceived)
	}
	var transfers int
	if err := e.db.Read.QueryRow(`SELECT count(*) FROM sim_transfers`).Scan(&transfers); err != nil || transfers != 1 {
		t.Fatalf("%d simulated transfers, want 1 (%v)", transfers, err)
	}
	e.ok("/v1/sim/mine", `{"blocks":3}`)
	e.wantBalance("ETH", "0.49875", "0")
	e.audit()
}
