package scan_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/scan"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// The engine's options, run over a chain held in memory (blocks by
// height, each paying some addresses) and the engine's store on SQLite.

const testAsset = "TST"

type payment struct {
	address string
	units   int64
}

type memBlock struct {
	hash, parent string
	pays         []payment
}

// memChain is a node whose best chain a test rewrites.
type memChain struct {
	mu      sync.Mutex
	blocks  []memBlock // by height
	watched map[string]bool
	fetched int // blocks fetched
}

// build makes the best chain n blocks long from height from on, naming
// the new blocks with tag so that a rewritten block has another id.
func (c *memChain) build(from, n int, tag string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.blocks = c.blocks[:from]
	for h := from; h < n; h++ {
		parent := ""
		if h > 0 {
			parent = c.blocks[h-1].hash
		}
		c.blocks = append(c.blocks, memBlock{hash: fmt.Sprintf("%s%d", tag, h), parent: parent})
	}
}

func (c *memChain) pay(height int, address string, units int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.blocks[height].pays = append(c.blocks[height].pays, payment{address, units})
}

func (c *memChain) Head(context.Context) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return int64(len(c.blocks) - 1), nil
}

func (c *memChain) HashAt(_ context.Context, h int64) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h < 0 || h >= int64(len(c.blocks)) {
		return "", scan.ErrNotFound
	}
	return c.blocks[h].hash, nil
}

func (c *memChain) Block(_ context.Context, h int64) (scan.Block[[]payment], error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h < 0 || h >= int64(len(c.blocks)) {
		return scan.Block[[]payment]{}, scan.ErrNotFound
	}
	c.fetched++
	b := c.blocks[h]
	return scan.Block[[]payment]{Height: h, Hash: b.hash, Parent: b.parent, Raw: b.pays}, nil
}

func (c *memChain) Match(_ context.Context, blocks []scan.Block[[]payment]) ([]scan.Transfer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []scan.Transfer
	for _, b := range blocks {
		for i, p := range b.Raw {
			if !c.watched[p.address] {
				continue
			}
			tx := fmt.Sprintf("tx-%s-%d", p.address, p.units)
			out = append(out, scan.Transfer{Asset: testAsset, Address: p.address, TxID: tx, DepositID: fmt.Sprintf("%s:%d", tx, i),
				Amount: domain.MustAmount(fmt.Sprint(p.units)), Height: b.Height, Block: b.Hash})
		}
	}
	return out, nil
}

func (c *memChain) Watch(addresses []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range addresses {
		c.watched[a] = true
	}
}

func (c *memChain) FinalBlock(context.Context) (int64, bool, error) { return 0, false, nil }

// Identity is the genesis block's id: a chain built afresh from height 0
// with another tag is another chain.
func (c *memChain) Identity(context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.blocks) == 0 {
		return "", errors.New("mem: no genesis block")
	}
	return "genesis " + c.blocks[0].hash, nil
}

// ledger records what the engine reports.
type ledger struct {
	mu                                 sync.Mutex
	observed, confirmed, final, revert []string
}

func (l *ledger) Observe(_ context.Context, t chain.Transfer) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.observed = append(l.observed, t.DepositID)
	return "inv-" + t.Address, nil
}

func (l *ledger) Confirm(_ context.Context, _, depositID string, _ int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.confirmed = append(l.confirmed, depositID)
	return nil
}

func (l *ledger) Finalize(_ context.Context, _, depositID string, _ int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.final = append(l.final, depositID)
	return nil
}

func (l *ledger) Revert(_ context.Context, _, depositID, _ string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.revert = append(l.revert, depositID)
	return nil
}

func (l *ledger) reverted() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.revert...)
}

const schema = `
CREATE TABLE mem_scan_checkpoint (id INTEGER PRIMARY KEY, height BIGINT NOT NULL, hash TEXT NOT NULL, updated_at BIGINT NOT NULL);
CREATE TABLE mem_blocks (height BIGINT PRIMARY KEY, hash TEXT NOT NULL);
CREATE TABLE mem_deposits (deposit_id TEXT PRIMARY KEY, asset TEXT NOT NULL, address TEXT NOT NULL, txid TEXT NOT NULL,
	amount TEXT NOT NULL, invoice_id TEXT NOT NULL, required_confirmations INTEGER NOT NULL, block_height BIGINT NOT NULL,
	block_hash TEXT NOT NULL, state TEXT NOT NULL, confirmed INTEGER NOT NULL, updated_at BIGINT NOT NULL);
CREATE TABLE mem_node_identity (id INTEGER PRIMARY KEY, identity TEXT NOT NULL, recorded_at BIGINT NOT NULL,
	mismatch TEXT NOT NULL, updated_at BIGINT NOT NULL);
CREATE TABLE invoices (invoice_id TEXT PRIMARY KEY, pay_address TEXT NOT NULL, asset TEXT NOT NULL,
	created_at BIGINT NOT NULL, required_confirmations INTEGER NOT NULL,
	created_commit BIGINT NOT NULL DEFAULT 0, created_prepare BIGINT NOT NULL DEFAULT 0);
CREATE INDEX invoices_created ON invoices (created_at);
CREATE INDEX invoices_asset_created_position ON invoices (asset, created_commit, created_prepare, invoice_id);
INSERT INTO invoices ` + invoiceCols + ` VALUES ('inv-a', 'a', 'TST', 1, 3);`

// invoiceCols are the columns the tests give an invoice.
const invoiceCols = `(invoice_id, pay_address, asset, created_at, required_confirmations)`

type rig struct {
	db     sqldb.DB
	chain  *memChain
	ledger *ledger
	store  scan.Store
	scan   *scan.Scanner[[]payment]
}

func newRig(t testing.TB, cfg scan.Config) *rig {
	t.Helper()
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "scan.db"))
	if err != nil {
		t.Fatal(err)
	}
	raw.SetMaxOpenConns(1)
	t.Cleanup(func() { raw.Close() })
	if _, err := raw.Exec(schema); err != nil {
		t.Fatal(err)
	}
	db := sqldb.DB{Read: raw, Write: raw, Dialect: sqldb.SQLite}
	r := &rig{db: db, chain: &memChain{watched: map[string]bool{}}, ledger: &ledger{}, store: scan.NewStore(db, "mem", "hash", "block_hash").WithIdentity()}
	cfg.Name, cfg.Assets = "mem", map[string]scan.Asset{testAsset: {Confirmations: 3, FinalDepth: 6}}
	cfg.BatchBlocks, cfg.KeepBlocks = max(cfg.BatchBlocks, 1), 20
	cfg.Now = func() time.Time { return time.UnixMilli(1_000_000) }
	if r.scan, err = scan.New(cfg, scan.Chain[[]payment](r.chain), scan.Sink(r.ledger), r.store, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) checkpoint(t *testing.T) scan.Point {
	t.Helper()
	cp, err := r.store.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

func (r *rig) state(t *testing.T, depositID string) string {
	t.Helper()
	for _, st := range []string{chain.ScanSeen, chain.ScanOrphaned, chain.ScanReverted, chain.ScanFinal} {
		deps, err := r.store.Deposits(context.Background(), st, false, math.MaxInt64)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range deps {
			if d.DepositID == depositID {
				return d.State
			}
		}
	}
	return ""
}

// TestMaxBlocks: a scan covers at most MaxBlocks blocks and says that
// more remain; a deposit a reorg orphaned is not reverted by a scan that
// stops short of the head, where the rescan may still find it.
func TestMaxBlocks(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, scan.Config{StartBlock: 1, MaxBlocks: 4, BatchBlocks: 3})
	r.chain.build(0, 11, "a")
	r.chain.pay(8, "a", 5)
	for i, want := range []struct {
		cp   int64
		more bool
	}{{4, true}, {8, true}, {10, false}} {
		more, err := r.scan.ScanMore(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if cp := r.checkpoint(t); cp.Height != want.cp || more != want.more {
			t.Fatalf("scan %d: checkpoint %d more %v, want %d %v", i+1, cp.Height, more, want.cp, want.more)
		}
	}
	const dep = "tx-a-5:0"
	if st := r.state(t, dep); st != chain.ScanSeen {
		t.Fatalf("deposit %s, want seen", st)
	}
	// Blocks 2.. are replaced; the payment is now in block 11.
	r.chain.build(2, 13, "b")
	r.chain.pay(11, "a", 5)
	more, err := r.scan.ScanMore(ctx)
	if err != nil || !more {
		t.Fatalf("scan after the reorg: more %v err %v", more, err)
	}
	if st := r.state(t, dep); st != chain.ScanOrphaned || len(r.ledger.reverted()) != 0 {
		t.Fatalf("short of the head: deposit %s, reverts %v; want orphaned, none", st, r.ledger.reverted())
	}
	for more {
		if more, err = r.scan.ScanMore(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if cp := r.checkpoint(t); cp.Height != 12 || cp.Block != "b12" {
		t.Fatalf("checkpoint %+v, want b12", cp)
	}
	if st := r.state(t, dep); st != chain.ScanSeen || len(r.ledger.reverted()) != 0 {
		t.Fatalf("found again: deposit %s, reverts %v; want seen, none", st, r.ledger.reverted())
	}
}

// TestMaxBlocksOrphanReverted: a deposit the rescan does not find again
// is reverted once a scan reaches the head.
func TestMaxBlocksOrphanReverted(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, scan.Config{StartBlock: 1, MaxBlocks: 2})
	r.chain.build(0, 6, "a")
	r.chain.pay(4, "a", 7)
	if err := r.scan.ScanOnce(ctx); err != nil {
		t.Fatal(err)
	}
	for more := true; more; {
		var err error
		if more, err = r.scan.ScanMore(ctx); err != nil {
			t.Fatal(err)
		}
	}
	r.chain.build(3, 8, "b")
	for more, scans := true, 0; more; scans++ {
		var err error
		if more, err = r.scan.ScanMore(ctx); err != nil {
			t.Fatal(err)
		}
		if got := r.ledger.reverted(); more && len(got) != 0 {
			t.Fatalf("scan %d, short of the head: reverted %v", scans+1, got)
		}
	}
	if got := r.ledger.reverted(); len(got) != 1 || got[0] != "tx-a-7:0" {
		t.Fatalf("reverted %v, want the orphaned deposit", got)
	}
}

// TestAnchorFirst: the first scan stores the block below its start, with
// its id, before scanning anything; without the option nothing is stored
// until a block is scanned.
func TestAnchorFirst(t *testing.T) {
	ctx := context.Background()
	for _, anchor := range []bool{false, true} {
		r := newRig(t, scan.Config{StartBlock: 5, AnchorFirst: anchor})
		r.chain.build(0, 5, "a") // head 4: nothing to scan yet
		if err := r.scan.ScanOnce(ctx); err != nil {
			t.Fatal(err)
		}
		cp, err := r.store.Checkpoint(ctx)
		switch {
		case !anchor && !errors.Is(err, scan.ErrNoCheckpoint):
			t.Fatalf("without AnchorFirst: checkpoint %+v, err %v; want none", cp, err)
		case anchor && (err != nil || cp != scan.Point{Height: 4, Block: "a4"}):
			t.Fatalf("with AnchorFirst: checkpoint %+v, err %v; want a4", cp, err)
		}
	}
}

// TestRewindWhenBehind: a node whose head went below the checkpoint is a
// reorg with RewindWhenBehind (the deposits above its head are reverted),
// and a node to wait for without.
func TestRewindWhenBehind(t *testing.T) {
	ctx := context.Background()
	for _, rewind := range []bool{false, true} {
		r := newRig(t, scan.Config{StartBlock: 1, RewindWhenBehind: rewind})
		r.chain.build(0, 7, "a")
		r.chain.pay(6, "a", 9)
		if err := r.scan.ScanOnce(ctx); err != nil {
			t.Fatal(err)
		}
		r.chain.build(5, 5, "") // the node drops blocks 5 and 6
		if err := r.scan.ScanOnce(ctx); err != nil {
			t.Fatal(err)
		}
		cp, st := r.checkpoint(t), r.state(t, "tx-a-9:0")
		if !rewind && (cp.Height != 6 || st != chain.ScanSeen) {
			t.Fatalf("waiting: checkpoint %d, deposit %s; want 6, seen", cp.Height, st)
		}
		if rewind && (cp != scan.Point{Height: 4, Block: "a4"} || st != chain.ScanReverted) {
			t.Fatalf("rewinding: checkpoint %+v, deposit %s; want a4, reverted", cp, st)
		}
	}
}

// TestLastHead: each scan records the node head it read under the
// scanner's name (picd's chain head and lag metrics), while the checkpoint
// trails it under MaxBlocks.
func TestLastHead(t *testing.T) {
	ctx := context.Background()
	if _, ok := scan.LastHead("no-such-scanner"); ok {
		t.Fatal("a head of a scanner that never ran")
	}
	r := newRig(t, scan.Config{StartBlock: 1, MaxBlocks: 4}) // named mem
	r.chain.build(0, 11, "a")
	if _, err := r.scan.ScanMore(ctx); err != nil {
		t.Fatal(err)
	}
	h, ok := scan.LastHead("mem")
	if !ok || h.Height != 10 || time.Since(h.At) > time.Minute {
		t.Fatalf("head %+v %v, want 10 just now", h, ok)
	}
	if cp := r.checkpoint(t); h.Height-cp.Height != 6 {
		t.Fatalf("checkpoint %d: lag %d, want 6", cp.Height, h.Height-cp.Height)
	}
	r.chain.build(11, 14, "a")
	r.scan.ScanMore(ctx)
	if h, _ := scan.LastHead("mem"); h.Height != 13 {
		t.Fatalf("head %d after the chain grew, want 13", h.Height)
	}
}

// pendingChain is a memChain with a pool of unmined payments whose
// watched addresses arrive late, as a slow read of new invoices would.
type pendingChain struct {
	*memChain
	watchDelay time.Duration
	pool       []string // addresses paid in the pool
	seen       []string // pool payments matched by ScanPending
}

func (c *pendingChain) Watch(addresses []string) {
	time.Sleep(c.watchDelay)
	c.memChain.Watch(addresses)
}

func (c *pendingChain) ScanPending(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range c.pool {
		if c.watched[a] {
			c.seen = append(c.seen, a)
		}
	}
	return nil
}

// TestPendingSeesNewAddresses: the pool is matched against the addresses
// of invoices created before the scan, even when no block is scanned and
// their read is slower than the rest of the round.
func TestPendingSeesNewAddresses(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, scan.Config{StartBlock: 1})
	r.chain.build(0, 3, "a")
	pc := &pendingChain{memChain: r.chain, watchDelay: 50 * time.Millisecond}
	var err error
	if r.scan, err = scan.New(scan.Config{Name: "mem", Assets: map[string]scan.Asset{testAsset: {Confirmations: 3, FinalDepth: 6}},
		StartBlock: 1, BatchBlocks: 1, KeepBlocks: 20, Now: func() time.Time { return time.UnixMilli(1_000_000) }},
		scan.Chain[[]payment](pc), scan.Sink(r.ledger), r.store, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	if err := r.scan.ScanOnce(ctx); err != nil { // up to the head: the next round scans no block
		t.Fatal(err)
	}
	if _, err := r.db.Write.ExecContext(ctx, `INSERT INTO invoices `+invoiceCols+` VALUES ('inv-b', 'b', 'TST', 2, 3)`); err != nil {
		t.Fatal(err)
	}
	pc.pool = []string{"b"}
	if err := r.scan.ScanOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if len(pc.seen) != 1 {
		t.Fatalf("the pool's payment to a new invoice was matched %d times, want 1", len(pc.seen))
	}
}
