package btc

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/btcsuite/btcd/wire"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/hd"
	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/readapi"
	"github.com/acceptcryptohere/gateway/sqldb"
	"github.com/acceptcryptohere/gateway/sqldb/sqldbtest"
)

// gateway is the real write and read side (SQLite event store, projections,
// commands with HD addresses for regtest) plus a watcher on the test node.
type gateway struct {
	t        testing.TB
	ctx      context.Context
	node     *btcdNode
	store    *sqlite.Store
	db       sqldb.DB
	runner   *projections.Runner
	reader   *readapi.SQL
	h        commands.Handlers
	sink     chain.Sink
	w        *Watcher
	merchant string
	clock    time.Time
	finality map[string]int // the watchers' Finality override
}

func testLog() *slog.Logger {
	if os.Getenv("BTC_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newGateway(t testing.TB) *gateway {
	t.Helper()
	return newGatewayOn(t, func(store *sqlite.Store) sqldb.DB {
		return sqldb.DB{Read: store.DB(), Write: store.WriteDB(), Dialect: sqldb.SQLite}
	})
}

// postgresDB gives the test its own schema on the real Postgres
// (PIC_TEST_POSTGRES_URL, as the projections tests).
func postgresDB(t *testing.T) sqldb.DB {
	return sqldbtest.Postgres(t, "btc")
}

func newGatewayOn(t testing.TB, readDB func(*sqlite.Store) sqldb.DB) *gateway {
	t.Helper()
	n := testNode(t)
	ctx := context.Background()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	g := &gateway{t: t, ctx: ctx, node: n, store: store, clock: time.Now().UTC()}
	g.db = readDB(store)
	if err := projections.Migrate(ctx, g.db); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, g.db); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, g.db); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	mnemonic, err := hd.GenerateMnemonic(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	wallet, err := hd.NewWallet(mnemonic, "", n.params)
	if err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return g.clock }
	d := commands.Deps{Store: store, Assets: domain.DefaultAssets(), Now: now, NewID: commands.NewIDGenerator(now)}
	g.h = commands.New(d, commands.NewIndexAllocator(d, wallet.Deriver()), hd.AddressCheck(n.params))
	g.runner = projections.NewRunner(store, g.db, testLog())
	g.reader = readapi.NewSQL(g.db)
	g.sink = chain.Sink{Commands: g.h, Addresses: g.reader}
	m, err := g.h.RegisterMerchant.Handle(ctx, commands.RegisterMerchant{CommandID: "reg", Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	g.merchant = m.MerchantID
	g.w = g.watcher(n.tip(t) + 1)
	return g
}

// watcher starts a watcher (a fresh one models a gateway restart).
func (g *gateway) watcher(startHeight int64) *Watcher {
	g.t.Helper()
	w, err := New(Config{RPCHost: g.node.rpcHost, RPCUser: "test", RPCPass: "test", P2PHost: g.node.p2pHost, Params: g.node.params,
		PollInterval: 50 * time.Millisecond, StartHeight: startHeight, Finality: g.finality}, g.sink, g.db, domain.DefaultAssets(), testLog())
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(w.Close)
	return w
}

func (g *gateway) catchUp() {
	g.t.Helper()
	if err := g.runner.CatchUp(g.ctx); err != nil {
		g.t.Fatal(err)
	}
}

// scan runs one watcher round between projection catch-ups, as the
// running gateway would.
func (g *gateway) scan() {
	g.t.Helper()
	g.catchUp()
	if err := g.w.ScanOnce(g.ctx); err != nil {
		g.t.Fatalf("scan: %v", err)
	}
	g.catchUp()
}

func (g *gateway) newInvoice(amount string) readapi.Invoice {
	g.t.Helper()
	g.clock = g.clock.Add(time.Millisecond)
	c, err := g.h.CreateInvoice.Handle(g.ctx, commands.CreateInvoice{CommandID: fmt.Sprint("inv-", g.clock.UnixNano()),
		MerchantID: g.merchant, Asset: "BTC", Amount: amount})
	if err != nil {
		g.t.Fatal(err)
	}
	g.catchUp()
	return g.invoice(c.Invoice.InvoiceID)
}

func (g *gateway) invoice(id string) readapi.Invoice {
	g.t.Helper()
	inv, err := g.reader.InvoiceByID(g.ctx, g.merchant, id)
	if err != nil {
		g.t.Fatal(err)
	}
	return inv
}

// sat converts a BTC decimal string to satoshis for building transactions.
func sat(t testing.TB, btc string) int64 {
	a, err := domain.ParseAmount(btc, 8)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := a.BaseUnits(8)
	return u.Int64()
}

func (g *gateway) wantInvoice(id string, status domain.Status, received string) readapi.Invoice {
	g.t.Helper()
	inv := g.invoice(id)
	if inv.Status != status || inv.AmountReceived.String() != received {
		g.t.Fatalf("invoice %s: %s received %s; want %s received %s (payments %+v)", id, inv.Status, inv.AmountReceived, status, received, inv.Payments)
	}
	return inv
}

func (g *gateway) wantBalance(available, pending string) {
	g.t.Helper()
	bals, err := g.reader.Balances(g.ctx, g.merchant)
	if err != nil {
		g.t.Fatal(err)
	}
	got := "none"
	for _, b := range bals {
		if b.Asset == "BTC" {
			got = b.Available.String() + "/" + b.Pending.String()
		}
	}
	if want := available + "/" + pending; got != want {
		g.t.Fatalf("BTC balance available/pending %s, want %s", got, want)
	}
}

// events lists the invoice stream's event types after its creation.
func (g *gateway) events(id string) []string {
	g.t.Helper()
	recs, err := g.store.ReadStream(g.ctx, commands.InvoiceStream(id), 0, 1000)
	if err != nil {
		g.t.Fatal(err)
	}
	var out []string
	for _, r := range recs[1:] {
		out = append(out, r.Type)
	}
	return out
}

func (g *gateway) count(id, eventType string) int {
	n := 0
	for _, e := range g.events(id) {
		if e == eventType {
			n++
		}
	}
	return n
}

// audit replays the whole log: ledger and fees recomputed, balances equal
// to the read model.
func (g *gateway) audit() {
	g.t.Helper()
	rep, err := projections.Audit(g.ctx, g.store, g.db)
	if err != nil {
		g.t.Fatal(err)
	}
	if !rep.OK() {
		g.t.Fatalf("audit: %+v", rep.Problems)
	}
}

func txid(tx *wire.MsgTx) string { return tx.TxHash().String() }
