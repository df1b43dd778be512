package scan_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/scan"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// TestRescanFindsWhatTheStartBlockSkipped: a payment below the start
// block is never seen by the scans; a rescan reports and credits it once,
// leaves the checkpoint where it was, reads no block above it, and a
// second rescan finds it known. The watcher makes it final as any deposit.
func TestRescanFindsWhatTheStartBlockSkipped(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, scan.Config{StartBlock: 6, BatchBlocks: 4})
	r.chain.build(0, 11, "a")
	r.chain.pay(3, "a", 5)
	if err := r.scan.ScanOnce(ctx); err != nil {
		t.Fatal(err)
	}
	const dep = "tx-a-5:0"
	if len(r.ledger.observed) != 0 || r.checkpoint(t).Height != 10 {
		t.Fatalf("scans from the start block: observed %v, checkpoint %d", r.ledger.observed, r.checkpoint(t).Height)
	}
	r.chain.build(11, 14, "a") // blocks the watcher has not scanned yet: not the rescan's
	var steps []scan.RescanProgress
	p, err := r.scan.Rescan(ctx, 0, 0, nil, func(p scan.RescanProgress) { steps = append(steps, p) })
	if err != nil {
		t.Fatal(err)
	}
	if p.From != 0 || p.To != 10 || p.Height != 10 || p.Found != 1 || p.New != 1 || p.Known != 0 || p.Confirmed != 1 || p.Unmatched != 0 {
		t.Fatalf("rescan: %+v", p)
	}
	if len(steps) != 3 || steps[0].Height != 3 || steps[1].Height != 7 || steps[2].Height != 10 {
		t.Fatalf("progress: %+v", steps)
	}
	if !slices.Equal(r.ledger.observed, []string{dep}) || !slices.Equal(r.ledger.confirmed, []string{dep}) {
		t.Fatalf("ledger: observed %v confirmed %v", r.ledger.observed, r.ledger.confirmed)
	}
	if cp := r.checkpoint(t); cp.Height != 10 || cp.Block != "a10" {
		t.Fatalf("the rescan moved the checkpoint to %+v", cp)
	}
	if st := r.state(t, dep); st != chain.ScanSeen {
		t.Fatalf("deposit %s, want seen", st)
	}

	p, err = r.scan.Rescan(ctx, 2, 5, nil, nil)
	if err != nil || p.Found != 1 || p.New != 0 || p.Known != 1 || len(r.ledger.observed) != 1 {
		t.Fatalf("second rescan: %+v %v, observed %v", p, err, r.ledger.observed)
	}
	if err := r.scan.ScanOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if st := r.state(t, dep); st != chain.ScanFinal || len(r.ledger.confirmed) != 1 {
		t.Fatalf("after the watcher's scan: deposit %s, confirmed %v", st, r.ledger.confirmed)
	}

	if _, err := r.scan.Rescan(ctx, 14, 0, nil, nil); !errors.Is(err, scan.ErrNothingToRescan) {
		t.Fatalf("above the checkpoint: %v", err)
	}
	if _, err := r.scan.Rescan(ctx, 0, 5, []string{"OTHER"}, nil); err == nil {
		t.Fatal("a rescan of another chain's asset was accepted")
	}
}

// TestRescanLeavesDepositsNotDeepEnough: a payment the rescan finds near
// the checkpoint is reported but confirmed by the watcher only at depth.
func TestRescanLeavesDepositsNotDeepEnough(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, scan.Config{StartBlock: 10, BatchBlocks: 4})
	r.chain.build(0, 11, "a")
	r.chain.pay(9, "a", 7)
	if err := r.scan.ScanOnce(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := r.scan.Rescan(ctx, 5, 0, nil, nil)
	if err != nil || p.New != 1 || p.Confirmed != 0 {
		t.Fatalf("rescan: %+v %v", p, err)
	}
	r.chain.build(11, 12, "a") // 3 deep now
	if err := r.scan.ScanOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.ledger.confirmed, []string{"tx-a-7:0"}) || len(r.ledger.observed) != 1 {
		t.Fatalf("watcher: observed %v confirmed %v", r.ledger.observed, r.ledger.confirmed)
	}
}

// notOurs is a ledger that has no invoice for address x's asset.
type notOurs struct{ *ledger }

func (l notOurs) Observe(ctx context.Context, t chain.Transfer) (string, error) {
	if t.InvoiceID != "" { // as chain.Sink: the operator's invoice
		_, err := l.ledger.Observe(ctx, t)
		return t.InvoiceID, err
	}
	if t.Address == "x" {
		return "", fmt.Errorf("%w: %s %s", chain.ErrNotOurs, t.Asset, t.Address)
	}
	return l.ledger.Observe(ctx, t)
}

// TestUnmatchedDepositsAreKeptAndWithdrawnByAReorg: a payment no invoice
// takes is kept for an operator (found again by a rescan, kept once); a
// reorg that takes it away marks it gone, and it is open again when the
// chain brings it back.
func TestUnmatchedDepositsAreKeptAndWithdrawnByAReorg(t *testing.T) {
	ctx := context.Background()
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "scan.db"))
	if err != nil {
		t.Fatal(err)
	}
	raw.SetMaxOpenConns(1)
	t.Cleanup(func() { raw.Close() })
	db := sqldb.DB{Read: raw, Write: raw, Dialect: sqldb.SQLite}
	if _, err := raw.Exec(schema + `; INSERT INTO invoices ` + invoiceCols + ` VALUES ('inv-x', 'x', 'TST', 1, 3)`); err != nil {
		t.Fatal(err)
	}
	if err := chain.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	mem := &memChain{watched: map[string]bool{}}
	sc, err := scan.New(scan.Config{Name: "mem", Assets: map[string]scan.Asset{testAsset: {Confirmations: 3, FinalDepth: 6}}, StartBlock: 1,
		BatchBlocks: 4, KeepBlocks: 20, Now: func() time.Time { return time.UnixMilli(1_000_000) }},
		scan.Chain[[]payment](mem), scan.Sink(notOurs{&ledger{}}), scan.NewStore(db, "mem", "hash", "block_hash"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	u := chain.Unmatched{DB: db}
	status := func() string {
		t.Helper()
		list, err := u.List(ctx)
		if err != nil || len(list) != 1 {
			t.Fatalf("unmatched: %+v %v", list, err)
		}
		if list[0].Chain != "mem" || list[0].DepositID != "tx-x-9:0" || list[0].Amount != "9" || list[0].OutputIndex != 0 {
			t.Fatalf("kept as %+v", list[0])
		}
		return list[0].Status
	}
	mem.build(0, 8, "a")
	mem.pay(5, "x", 9)
	if err := sc.ScanOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if st := status(); st != chain.UnmatchedOpen {
		t.Fatalf("after the scan: %s", st)
	}
	if p, err := sc.Rescan(ctx, 1, 0, nil, nil); err != nil || p.Known != 1 || p.New != 0 {
		t.Fatalf("rescan: %+v %v", p, err)
	}
	mem.build(3, 9, "b") // the payment's block is gone, and the payment with it
	if err := sc.ScanOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if st := status(); st != chain.UnmatchedGone {
		t.Fatalf("after the reorg: %s", st)
	}
	mem.build(9, 10, "b")
	mem.pay(9, "x", 9) // mined again
	if err := sc.ScanOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if st := status(); st != chain.UnmatchedOpen {
		t.Fatalf("found again: %s", st)
	}
}

// TestCreditedDepositStaysCreditedAcrossAReorg: an unmatched deposit an
// operator credited to an invoice, found again in another block after a
// reorg, stays that invoice's (the ledger still matches no invoice by its
// address) and is confirmed there, not turned back into unmatched.
func TestCreditedDepositStaysCreditedAcrossAReorg(t *testing.T) {
	ctx := context.Background()
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "scan.db"))
	if err != nil {
		t.Fatal(err)
	}
	raw.SetMaxOpenConns(1)
	t.Cleanup(func() { raw.Close() })
	db := sqldb.DB{Read: raw, Write: raw, Dialect: sqldb.SQLite}
	if _, err := raw.Exec(schema + `; INSERT INTO invoices ` + invoiceCols + ` VALUES ('inv-x', 'x', 'TST', 1, 3); INSERT INTO invoices ` + invoiceCols + ` VALUES ('inv-c', 'c', 'TST', 1, 3)`); err != nil {
		t.Fatal(err)
	}
	if err := chain.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	mem, l := &memChain{watched: map[string]bool{}}, &ledger{}
	store := scan.NewStore(db, "mem", "hash", "block_hash")
	sc, err := scan.New(scan.Config{Name: "mem", Assets: map[string]scan.Asset{testAsset: {Confirmations: 3, FinalDepth: 6}}, StartBlock: 1,
		BatchBlocks: 4, KeepBlocks: 20, Now: func() time.Time { return time.UnixMilli(1_000_000) }},
		scan.Chain[[]payment](mem), scan.Sink(notOurs{l}), store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	mem.build(0, 6, "a")
	mem.pay(5, "x", 9)
	if err := sc.ScanOnce(ctx); err != nil {
		t.Fatal(err)
	}
	// The operator credits it to inv-c (as picd chain unmatched credit does).
	u := chain.Unmatched{DB: db}
	list, err := u.List(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("unmatched: %+v %v", list, err)
	}
	now := time.UnixMilli(1_000_000)
	if err := u.Decide(ctx, list[0].ID, chain.UnmatchedCredited, "inv-c", "", now); err != nil {
		t.Fatal(err)
	}
	if err := store.CreditUnmatched(ctx, list[0], "inv-c", 3, now); err != nil {
		t.Fatal(err)
	}
	const dep = "tx-x-9:0"
	mem.build(4, 9, "b") // block 5 replaced: the payment is now in block 6
	mem.pay(6, "x", 9)
	if err := sc.ScanOnce(ctx); err != nil {
		t.Fatal(err)
	}
	known, err := store.Known(ctx, []string{dep})
	if d := known[dep]; err != nil || d.State != chain.ScanSeen || d.InvoiceID != "inv-c" || d.BlockHeight != 6 || !d.Confirmed {
		t.Fatalf("after the reorg: %+v %v", d, err)
	}
	if !slices.Equal(l.confirmed, []string{dep}) || len(l.revert) != 0 {
		t.Fatalf("ledger: confirmed %v reverted %v", l.confirmed, l.revert)
	}
}
