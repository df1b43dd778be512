package projections_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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

// benchLog returns an embedded store holding n events (n/5 paid invoices
// of five events each), built once and kept in the temp dir between runs.
func benchLog(b *testing.B, n int) *sqlite.Store {
	path := filepath.Join(os.TempDir(), fmt.Sprintf("pic-bench-log-%d.db", n))
	if _, err := os.Stat(path); err != nil {
		tmp := path + ".building"
		os.Remove(tmp)
		s, err := sqlite.Open(tmp)
		if err != nil {
			b.Fatal(err)
		}
		fillLog(b, s, n/5)
		s.Close()
		if err := os.Rename(tmp, path); err != nil {
			b.Fatal(err)
		}
		os.Remove(tmp + "-wal")
		os.Remove(tmp + "-shm")
	}
	s, err := sqlite.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// fillLog writes invoices through the domain's own decisions, each stream in
// one append, from 16 writers.
func fillLog(b *testing.B, s eventstore.Store, invoices int) {
	assets := domain.DefaultAssets()
	usdt, _ := assets.Lookup("USDT.ETH")
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < invoices; i += 16 {
				id := fmt.Sprintf("inv_bench%08d", i)
				created, err := domain.CreateInvoice(domain.NewInvoice{InvoiceID: id, MerchantID: "mer_bench" + strconv.Itoa(i%50),
					Asset: usdt, Amount: domain.MustAmount("49.99"), PayAmount: domain.MustAmount("49.99"), PayAddress: "0x" + id, AddressIndex: int64(i)}, assets, t0)
				if err != nil {
					errs <- err
					return
				}
				inv := &domain.Invoice{}
				inv.Apply(created)
				evs := []domain.Event{created}
				more, _ := inv.ObserveDeposit(domain.ObservedDeposit{DepositID: id + ":0", TxID: "0x" + id, Amount: domain.MustAmount("49.99")}, t0)
				for _, e := range more {
					inv.Apply(e)
				}
				evs = append(evs, more...)
				more, _ = inv.ConfirmDeposit(id+":0", 12, "", t0)
				evs = append(evs, more...)
				data := make([]eventstore.EventData, len(evs))
				for k, e := range evs {
					body, _ := json.Marshal(e)
					meta, _ := json.Marshal(commands.Metadata{CommandID: id, MerchantID: created.MerchantID, OccurredAt: t0})
					data[k] = eventstore.EventData{ID: commands.EventID(id, id, k), Type: e.EventType(), Data: body, Metadata: meta}
				}
				if _, err := s.Append(context.Background(), commands.InvoiceStream(id), eventstore.NoStream, data); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// BenchmarkRebuild rebuilds every projection from a log of
// PIC_BENCH_EVENTS events (default 100,000; the goal is 1,000,000
// in under 30 s) on the embedded store.
func BenchmarkRebuild(b *testing.B) {
	n := 100000
	if v, err := strconv.Atoi(os.Getenv("PIC_BENCH_EVENTS")); err == nil && v > 0 {
		n = v
	}
	store := benchLog(b, n)
	defer store.Close()
	db := sqldb.DB{Read: store.DB(), Write: store.WriteDB(), Dialect: sqldb.SQLite}
	ctx := context.Background()
	if err := projections.Migrate(ctx, db); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := projections.Rebuild(ctx, store, db, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkAudit audits a log of PIC_BENCH_EVENTS events (default 100,000;
// the goal is 1,000,000 in under 20 s) on the embedded store: the
// log alone, then with the read models compared (they are rebuilt first).
func BenchmarkAudit(b *testing.B) {
	n := 100000
	if v, err := strconv.Atoi(os.Getenv("PIC_BENCH_EVENTS")); err == nil && v > 0 {
		n = v
	}
	store := benchLog(b, n)
	defer store.Close()
	db := sqldb.DB{Read: store.DB(), Write: store.WriteDB(), Dialect: sqldb.SQLite}
	ctx := context.Background()
	if err := projections.Migrate(ctx, db); err != nil {
		b.Fatal(err)
	}
	if err := projections.NewRunner(store, db, nil).CatchUp(ctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep, err := projections.Audit(ctx, store, db)
		if err != nil {
			b.Fatal(err)
		}
		if !rep.OK() || rep.Events != n {
			b.Fatalf("audit of %d events: %d events, problems %v", n, rep.Events, rep.Problems)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkVerifyChain recomputes the hash chain of a log of
// PIC_BENCH_EVENTS events (default 100,000) on the embedded store, as
// "picd audit --verify-chain" does.
func BenchmarkVerifyChain(b *testing.B) {
	n := 100000
	if v, err := strconv.Atoi(os.Getenv("PIC_BENCH_EVENTS")); err == nil && v > 0 {
		n = v
	}
	store := benchLog(b, n)
	defer store.Close()
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep, err := eventstore.VerifyChain(ctx, store, time.Now, nil)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Break != nil || rep.Events != uint64(n) {
			b.Fatalf("chain of %d events: %d verified, break %v", n, rep.Events, rep.Break)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
