package btc

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// Run, as picd runs it: the watcher and the projection runner loop side by
// side and an invoice gets paid with nobody calling ScanOnce.
func TestRunPaysInvoice(t *testing.T) {
	g := newGateway(t)
	inv := g.newInvoice("0.01")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- g.runner.Run(ctx) }()
	go func() { done <- g.w.Run(ctx) }()

	g.node.pay(t, feeSat, payment{inv.PayAddress, sat(t, "0.01")})
	waitStatus(t, g, inv.ID, domain.StatusConfirming)
	g.node.mine(t, 2)
	waitStatus(t, g, inv.ID, domain.StatusPaid)
	cancel()
	for i := 0; i < 2; i++ {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	}
}

func waitStatus(t *testing.T, g *gateway, id string, want domain.Status) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		inv, err := g.reader.InvoiceByID(g.ctx, g.merchant, id)
		if err == nil && inv.Status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("invoice %s is %s, want %s", id, inv.Status, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A node that is down is retried with backoff until ctx ends; Run then
// returns nil and nothing was recorded.
func TestRunRetriesDeadNode(t *testing.T) {
	port, err := freePort() // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	db := sqldb.DB{Read: store.DB(), Write: store.WriteDB(), Dialect: sqldb.SQLite}
	if err := projections.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	w, err := New(Config{RPCHost: "127.0.0.1:" + itoa(port), Params: testNodeParams(), PollInterval: 10 * time.Millisecond, RPCTimeout: time.Second},
		chain.Sink{}, db, domain.DefaultAssets(), testLog())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := w.Run(ctx); err != nil {
		t.Fatalf("Run = %v", err)
	}
	var n int
	if err := db.Read.QueryRow(`SELECT count(*) FROM chain_btc_checkpoint`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("checkpoint rows %d, %v", n, err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, c := range map[string]Config{
		"no host":                      {Params: testNodeParams()},
		"no network":                   {RPCHost: "127.0.0.1:1"},
		"negative":                     {RPCHost: "127.0.0.1:1", Params: testNodeParams(), StartHeight: -1},
		"finality of another asset":    {RPCHost: "127.0.0.1:1", Params: testNodeParams(), Finality: map[string]int{"ETH": 6}},
		"finality below confirmations": {RPCHost: "127.0.0.1:1", Params: testNodeParams(), Finality: map[string]int{"BTC": 1}},
	} {
		db := sqldb.DB{Read: &sql.DB{}, Write: &sql.DB{}, Dialect: sqldb.SQLite}
		if _, err := New(c, chain.Sink{}, db, domain.DefaultAssets(), nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
