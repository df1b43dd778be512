package sim

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/scan"
	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// The simulator is a chain the scan engine reads like any other: Mine and
// Reorg change the simulated chain (heights, block ids, the height each
// transfer was mined at) and then run the chain's scan.Scanner, which
// reports, confirms, finalizes and reverts deposits by the same rules as
// for Bitcoin, Ethereum and TRON. Only a payment's first sighting (Pay,
// at once with 0 confirmations) and a reorganised transaction's return to
// the mempool are told to the ledger by the simulator itself, as a node's
// mempool would show them.

// keepBlocks is how many block ids the engine keeps per simulated chain to
// find a reorg's fork point; a deeper reorg is rescanned from below them.
const keepBlocks = 1000

// simBlock is a simulated block: the engine needs only its height and ids.
type simBlock struct{}

// simChain is one simulated chain as scan.Chain.
type simChain struct {
	chain  domain.Chain
	db     sqldb.DB
	assets domain.Assets
	sink   chain.Sink
	// head and replaced are read by Head, at the start of each scan:
	// the height, and the ids a reorg gave to heights (the others are
	// derived from chain and height).
	head     int64
	replaced map[int64]string
}

var _ scan.Chain[simBlock] = (*simChain)(nil)
var _ scan.Pending = (*simChain)(nil)

// newScanner runs the engine over c with the simulator's thresholds: an
// asset's confirmations (or its override) credit, one block more is final
// (money rule 4).
func (s *Simulator) newScanner(c domain.Chain, sink scan.Sink) (*scan.Scanner[simBlock], error) {
	rules := map[string]scan.Asset{}
	for _, a := range s.assets.List() {
		if a.Chain == c {
			n := s.threshold(a)
			rules[a.Code] = scan.Asset{Confirmations: n, FinalDepth: n + 1, Final: scan.FinalByDepth}
		}
	}
	ch := &simChain{chain: c, db: s.db, assets: s.assets, sink: s.sink}
	st := scan.NewStore(s.db, "sim_"+string(c), "hash", "block_hash")
	return scan.New[simBlock](scan.Config{Name: "sim " + string(c), Assets: rules, StartBlock: 1, AnchorFirst: true,
		BatchBlocks: keepBlocks, KeepBlocks: keepBlocks, Reports: 1, DepthFromHead: true, Depths: scan.NewDepthTable(s.db), Now: s.cfg.Now}, ch, sink, st, s.log)
}

// Head reads the chain's height and its replaced block ids.
func (c *simChain) Head(ctx context.Context) (int64, error) {
	err := c.db.Read.QueryRowContext(ctx, c.db.Q(`SELECT height FROM sim_chains WHERE chain = ?`), string(c.chain)).Scan(&c.head)
	if errors.Is(err, sql.ErrNoRows) {
		c.head, err = 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sim %s head: %w", c.chain, err)
	}
	rows, err := c.db.Read.QueryContext(ctx, c.db.Q(`SELECT height, hash FROM sim_blocks WHERE chain = ? AND height <= ?`), string(c.chain), c.head)
	if err != nil {
		return 0, fmt.Errorf("sim %s blocks: %w", c.chain, err)
	}
	defer rows.Close()
	c.replaced = map[int64]string{}
	for rows.Next() {
		var h int64
		var id string
		if err := rows.Scan(&h, &id); err != nil {
			return 0, fmt.Errorf("sim %s blocks: %w", c.chain, err)
		}
		c.replaced[h] = id
	}
	return c.head, rows.Err()
}

// HashAt is a reorg's id for the height, or the one derived from it.
func (c *simChain) HashAt(_ context.Context, height int64) (string, error) {
	if height < 0 || height > c.head {
		return "", fmt.Errorf("sim %s block %d: %w", c.chain, height, scan.ErrNotFound)
	}
	if id, ok := c.replaced[height]; ok {
		return id, nil
	}
	return blockID(c.chain, height, ""), nil
}

// blockID names a simulated block; a reorg's replacement has a salt.
func blockID(c domain.Chain, height int64, salt string) string {
	h := sha256.Sum256([]byte("sim-block\x00" + string(c) + "\x00" + strconv.FormatInt(height, 10) + "\x00" + salt))
	return hex.EncodeToString(h[:])
}

func (c *simChain) Block(ctx context.Context, height int64) (scan.Block[simBlock], error) {
	id, err := c.HashAt(ctx, height)
	if err != nil {
		return scan.Block[simBlock]{}, err
	}
	b := scan.Block[simBlock]{Height: height, Hash: id}
	if height > 0 {
		b.Parent, _ = c.HashAt(ctx, height-1)
	}
	return b, nil
}

// Match lists the transfers mined in blocks; every simulated transfer pays
// an invoice's address, so none is left out for not being watched.
func (c *simChain) Match(ctx context.Context, blocks []scan.Block[simBlock]) ([]scan.Transfer, error) {
	if len(blocks) == 0 {
		return nil, nil
	}
	first, last := blocks[0].Height, blocks[len(blocks)-1].Height
	rows, err := c.db.Read.QueryContext(ctx, c.db.Q(`SELECT txid, deposit_id, asset, address, amount, height FROM sim_transfers
		WHERE chain = ? AND height BETWEEN ? AND ? AND state <> 'dropped' ORDER BY height, created_at, txid`), string(c.chain), first, last)
	if err != nil {
		return nil, fmt.Errorf("sim %s transfers: %w", c.chain, err)
	}
	defer rows.Close()
	var out []scan.Transfer
	for rows.Next() {
		var t scan.Transfer
		var amount string
		if err := rows.Scan(&t.TxID, &t.DepositID, &t.Asset, &t.Address, &amount, &t.Height); err != nil {
			return nil, fmt.Errorf("sim %s transfers: %w", c.chain, err)
		}
		a, err := c.assets.Lookup(t.Asset)
		if err != nil {
			return nil, err
		}
		if t.Amount, err = domain.ParseAmount(amount, a.Decimals); err != nil {
			return nil, fmt.Errorf("sim transfer %s: %w", t.TxID, err)
		}
		t.Block = blocks[t.Height-first].Hash
		out = append(out, t)
	}
	return out, rows.Err()
}

// Watch: every simulated transfer is to an invoice's address.
func (c *simChain) Watch([]string) {}

// FinalBlock: a simulated chain has no final block; finality is by depth.
func (c *simChain) FinalBlock(context.Context) (int64, bool, error) { return 0, false, nil }

// Identity names the simulated chain.
func (c *simChain) Identity(context.Context) (string, error) { return "sim-" + string(c.chain), nil }

// ScanPending shows the ledger the transactions a reorg put back in the
// mempool that it has not seen again yet (the recorder shows each right
// after its reversal; this retries one that failed then).
func (c *simChain) ScanPending(ctx context.Context) error {
	return reobserve(ctx, c.db, c.assets, c.sink, `chain = ?`, string(c.chain))
}

// reobserve shows the ledger the transfers back in the mempool that match
// cond (a constant condition with its args), each by the invoice it paid
// whatever else its address now expects.
func reobserve(ctx context.Context, db sqldb.DB, assets domain.Assets, sink chain.Sink, cond string, args ...any) error {
	rows, err := db.Read.QueryContext(ctx, db.Q(`SELECT txid, deposit_id, invoice_id, asset, amount FROM sim_transfers
		WHERE state = 'mempool' AND height IS NULL AND `+cond+` ORDER BY created_at, txid`), args...)
	if err != nil {
		return fmt.Errorf("sim mempool: %w", err)
	}
	type back struct{ txid, depositID, invoiceID, asset, amount string }
	var list []back
	for rows.Next() {
		var b back
		if err := rows.Scan(&b.txid, &b.depositID, &b.invoiceID, &b.asset, &b.amount); err != nil {
			rows.Close()
			return fmt.Errorf("sim mempool: %w", err)
		}
		list = append(list, b)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, b := range list {
		a, err := assets.Lookup(b.asset)
		if err != nil {
			return err
		}
		amount, err := domain.ParseAmount(b.amount, a.Decimals)
		if err != nil {
			return fmt.Errorf("sim transfer %s: %w", b.txid, err)
		}
		if _, err := sink.Commands.ObserveDeposit.Handle(ctx, commands.ObserveDeposit{InvoiceID: b.invoiceID,
			Deposit: domain.ObservedDeposit{DepositID: b.depositID, TxID: b.txid, Amount: amount}}); err != nil {
			return fmt.Errorf("sim: back in the mempool: %w", err)
		}
		if _, err := db.Write.ExecContext(ctx, db.Q(`UPDATE sim_transfers SET state = 'pending' WHERE txid = ? AND state = 'mempool'`), b.txid); err != nil {
			return fmt.Errorf("sim transfer %s: %w", b.txid, err)
		}
	}
	return nil
}

// recorder is the ledger as one Mine or Reorg sees it: it passes every
// command on and lists what the engine confirmed, finalized and reverted.
type recorder struct {
	chain.Sink
	db                         sqldb.DB
	assets                     domain.Assets
	log                        *slog.Logger
	confirmed, final, reverted []Confirmed
}

func txidOf(depositID string) string {
	txid, _, _ := strings.Cut(depositID, ":")
	return txid
}

func (r *recorder) Confirm(ctx context.Context, invoiceID, depositID string, confirmations int) error {
	if err := r.Sink.Confirm(ctx, invoiceID, depositID, confirmations); err != nil {
		return err
	}
	r.confirmed = append(r.confirmed, Confirmed{InvoiceID: invoiceID, DepositID: depositID, TxID: txidOf(depositID), Confirmations: confirmations})
	return nil
}

func (r *recorder) Finalize(ctx context.Context, invoiceID, depositID string, depth int) error {
	if err := r.Sink.Finalize(ctx, invoiceID, depositID, depth); err != nil {
		return err
	}
	r.final = append(r.final, Confirmed{InvoiceID: invoiceID, DepositID: depositID, TxID: txidOf(depositID), Confirmations: depth})
	return nil
}

func (r *recorder) Revert(ctx context.Context, invoiceID, depositID, reason string) error {
	if err := r.Sink.Revert(ctx, invoiceID, depositID, reason); err != nil {
		return err
	}
	r.reverted = append(r.reverted, Confirmed{InvoiceID: invoiceID, DepositID: depositID, TxID: txidOf(depositID)})
	// A transaction a reorg put back in the mempool is seen again at once,
	// as a node's mempool shows it. A failure here must not fail the
	// reversal, which the ledger has recorded: ScanPending retries it.
	if err := reobserve(ctx, r.db, r.assets, r.Sink, `deposit_id = ?`, depositID); err != nil {
		r.log.Error("sim: a reorganised transaction not seen again yet; the next scan retries", "deposit_id", depositID, "err", err)
	}
	return nil
}

// scanAll runs the engine over every simulated chain, in one order, and
// returns what it did; a chain that fails is named in failed and left for
// the next call (the engine resumes from its checkpoint).
// The caller holds s.mu.
func (s *Simulator) scanAll(ctx context.Context) (rec *recorder, failed map[string]string, err error) {
	if s.rec == nil {
		s.rec, s.scanners = &recorder{Sink: s.sink, db: s.db, assets: s.assets, log: s.log}, map[domain.Chain]*scan.Scanner[simBlock]{}
	}
	rec = s.rec
	rec.confirmed, rec.final, rec.reverted = nil, nil, nil
	for _, c := range s.chainList() {
		sc := s.scanners[c]
		if sc == nil {
			if sc, err = s.newScanner(c, rec); err != nil {
				return rec, failed, err
			}
			s.scanners[c] = sc
		}
		if err := sc.ScanOnce(ctx); err != nil {
			if ctx.Err() != nil {
				return rec, failed, err
			}
			s.log.Error("sim: scan failed; the next mine retries it", "chain", c, "err", err)
			if failed == nil {
				failed = map[string]string{}
			}
			failed[string(c)] = "scan failed"
		}
	}
	return rec, failed, nil
}
