package scan_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/chain/scan"
)

// TestWatchesInvoicesInLogOrder: an invoice reaches the read model in the
// log's order, whatever its creator's clock said. One stamped 20 minutes
// before the newest invoice already watched (a process with a clock
// behind, or a command that took long) is watched all the same, and its
// payment reported. Before #23 the scan re-read only invoices created at
// most 10 minutes before the newest one seen, and missed it.
func TestWatchesInvoicesInLogOrder(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, scan.Config{StartBlock: 1})
	r.chain.build(0, 3, "a")
	add := func(id, addr string, createdAt, position int64) {
		t.Helper()
		if _, err := r.db.Write.ExecContext(ctx, `INSERT INTO invoices `+invoiceCols[:len(invoiceCols)-1]+`, created_commit)
			VALUES (?, ?, 'TST', ?, 3, ?)`, id, addr, createdAt, position); err != nil {
			t.Fatal(err)
		}
	}
	add("inv-new", "new", 60*60*1000, 10)
	if err := r.scan.ScanOnce(ctx); err != nil {
		t.Fatal(err)
	}
	add("inv-late", "late", 40*60*1000, 11) // 20 minutes older, later in the log
	r.chain.build(3, 5, "a")
	r.chain.pay(4, "late", 9)
	if err := r.scan.ScanOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(r.ledger.observedIDs(), "tx-late-9:0") {
		t.Fatalf("the late invoice's payment was not reported: %v", r.ledger.observedIDs())
	}
}

// TestRefreshReadsOnlyNewInvoices: each scan reads the invoices created
// since the last one read, not those it has already watched.
func TestRefreshReadsOnlyNewInvoices(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, scan.Config{StartBlock: 1})
	counted := &countingState{Store: r.store}
	sc, err := scan.New(scan.Config{Name: "mem", Assets: map[string]scan.Asset{testAsset: {Confirmations: 3, FinalDepth: 6}},
		StartBlock: 1, BatchBlocks: 1, KeepBlocks: 20, Now: func() time.Time { return time.UnixMilli(1_000_000) }}, scan.Chain[[]payment](r.chain), scan.Sink(r.ledger), counted, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	r.chain.build(0, 3, "a")
	for i, want := range []int{1, 0, 2} { // inv-a of the schema; none; two new
		if i == 2 {
			for pos, a := range []string{"b", "c"} {
				if _, err := r.db.Write.ExecContext(ctx, `INSERT INTO invoices `+invoiceCols[:len(invoiceCols)-1]+`, created_commit)
					VALUES (?, ?, 'TST', 1, 3, ?)`, "inv-"+a, a, 20+pos); err != nil {
					t.Fatal(err)
				}
			}
		}
		counted.read = 0
		if err := sc.ScanOnce(ctx); err != nil {
			t.Fatal(err)
		}
		if counted.read != want {
			t.Fatalf("scan %d read %d addresses, want %d", i+1, counted.read, want)
		}
	}
	for _, a := range []string{"a", "b", "c"} {
		if !r.chain.isWatched(a) {
			t.Fatalf("%s is not watched", a)
		}
	}
}

type countingState struct {
	scan.Store
	read int
}

func (s *countingState) WatchedAfter(ctx context.Context, asset string, after scan.WatchCursor, limit int) ([]string, scan.WatchCursor, error) {
	addrs, next, err := s.Store.WatchedAfter(ctx, asset, after, limit)
	s.read += len(addrs)
	return addrs, next, err
}

func (l *ledger) observedIDs() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.observed...)
}

// TestWatchesEveryInvoiceWithoutAPosition: invoices projected before their
// position was kept all sit at 0/0; the first scan reads every one of
// them, more than a page (10,000), and the next reads only new ones.
func TestWatchesEveryInvoiceWithoutAPosition(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, scan.Config{StartBlock: 1})
	const n = 25_000
	if _, err := r.db.Write.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
		INSERT INTO invoices `+invoiceCols+` SELECT printf('inv-old%05d', i), printf('old%05d', i), 'TST', 1, 3 FROM n`, n); err != nil {
		t.Fatal(err)
	}
	r.chain.build(0, 3, "a")
	if err := r.scan.ScanOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := r.chain.watchedCount(); got != n+1 { // and inv-a
		t.Fatalf("%d addresses watched, want %d", got, n+1)
	}
	if _, err := r.db.Write.ExecContext(ctx, `INSERT INTO invoices `+invoiceCols[:len(invoiceCols)-1]+`, created_commit)
		VALUES ('inv-new', 'new', 'TST', 1, 3, 7)`); err != nil {
		t.Fatal(err)
	}
	if err := r.scan.ScanOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if !r.chain.isWatched("new") || r.chain.watchedCount() != n+2 {
		t.Fatalf("after a new invoice: %d watched, new %v", r.chain.watchedCount(), r.chain.isWatched("new"))
	}
}
