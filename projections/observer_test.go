package projections_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// recorder checks what an Observer is promised: its Applied sees a batch
// committed (the rows are readable) and not yet published to WaitFor.
type recorder struct {
	t      *testing.T
	runner *projections.Runner
	db     sqldb.DB
	mu     sync.Mutex
	calls  []string
}

func (o *recorder) note(s string) { o.mu.Lock(); o.calls = append(o.calls, s); o.mu.Unlock() }
func (o *recorder) Started()      { o.note("started") }
func (o *recorder) Stopped()      { o.note("stopped") }
func (o *recorder) Applied(recs []eventstore.RecordedEvent) {
	if recs == nil {
		o.note("unknown")
		return
	}
	last := recs[len(recs)-1].Position
	if !o.runner.Position().Less(last) {
		o.t.Errorf("Applied after the batch up to %s was published", last)
	}
	var n int
	if err := o.db.Read.QueryRow(`SELECT count(*) FROM invoices`).Scan(&n); err != nil || n == 0 {
		o.t.Errorf("Applied before the batch committed: %d invoices, %v", n, err)
	}
	o.note(fmt.Sprintf("applied %d", len(recs)))
}

func TestObserverSeesBatchesBeforeTheyArePublished(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	d := commands.Deps{Store: store, Assets: domain.DefaultAssets(), Now: time.Now, NewID: commands.NewIDGenerator(time.Now)}
	h := commands.New(d, commands.NewIndexAllocator(d, derive), func(domain.Chain, string) error { return nil })
	m, err := h.RegisterMerchant.Handle(ctx, commands.RegisterMerchant{CommandID: "r", Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := h.CreateInvoice.Handle(ctx, commands.CreateInvoice{CommandID: "i", MerchantID: m.MerchantID, Asset: "BTC", Amount: "1"})
	if err != nil {
		t.Fatal(err)
	}
	db := sqldb.DB{Read: store.DB(), Write: store.WriteDB(), Dialect: sqldb.SQLite}
	if err := projections.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	runner := projections.NewRunner(store, db, nil)
	obs := &recorder{t: t, runner: runner, db: db}
	runner.Observe(obs)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- runner.Run(runCtx) }()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := runner.WaitFor(wctx, inv.Position); err != nil {
		t.Fatal(err)
	}

	stop()
	if err := <-done; err != context.Canceled {
		t.Fatal(err)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if len(obs.calls) < 3 || obs.calls[0] != "started" || obs.calls[1] == "unknown" || obs.calls[len(obs.calls)-1] != "stopped" {
		t.Fatalf("calls = %v, want started, applied..., stopped", obs.calls)
	}
}
