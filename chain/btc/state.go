package btc

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/scan"
	"github.com/acceptcryptohere/gateway/domain"
)

// state is the scan engine's State over the watcher's own tables
// (chain_btc_checkpoint, chain_btc_blocks, chain_btc_deposits), which
// predate the engine and which the sender, the payout checks and picd's
// staleness check read: they stay as they are. A deposit row says where
// it is by its block (block_height 0: in no block of the best chain) and
// what the ledger knows by its state:
//
//	engine                  chain_btc_deposits
//	seen, not confirmed     pending, in a block
//	seen, confirmed         confirmed, in a block
//	orphaned                confirmed or final, in no block (a reorg detached it)
//	final                   final
//	reverted                reverted
//
// A pending deposit in no block is the mempool rule's (scanMempool), not
// the engine's: seen in the mempool, or orphaned before it was credited.
// Unmatched deposits are kept apart, in chain_unmatched_deposits (rescan.go).
type state struct{ w *Watcher }

var (
	_ scan.State         = state{}
	_ scan.Known         = state{}
	_ scan.IdentityState = state{}
)

// identity is the table of the node's identity (chain_btc_node_identity).
func (s state) identity() scan.IdentityTable {
	return scan.NewIdentityTable(s.w.db, "chain_btc_node_identity")
}

func (s state) RecordedIdentity(ctx context.Context) (string, bool, error) {
	return s.identity().RecordedIdentity(ctx)
}

func (s state) RecordIdentity(ctx context.Context, identity string, now time.Time) error {
	return s.identity().RecordIdentity(ctx, identity, now)
}

func (s state) SetIdentityMismatch(ctx context.Context, reason string, now time.Time) error {
	return s.identity().SetIdentityMismatch(ctx, reason, now)
}

func (s state) Checkpoint(ctx context.Context) (scan.Point, error) {
	var cp scan.Point
	err := s.w.db.Read.QueryRowContext(ctx, `SELECT height, hash FROM chain_btc_checkpoint WHERE id = 1`).Scan(&cp.Height, &cp.Block)
	if errors.Is(err, sql.ErrNoRows) {
		return cp, fmt.Errorf("btc: %w", scan.ErrNoCheckpoint)
	}
	if err != nil {
		return cp, fmt.Errorf("btc: checkpoint: %w", err)
	}
	return cp, nil
}

func (s state) RecentBlocks(ctx context.Context, height int64, limit int) ([]scan.Point, error) {
	rows, err := s.w.db.Read.QueryContext(ctx, s.w.db.Q(`SELECT height, hash FROM chain_btc_blocks WHERE height <= ? ORDER BY height DESC LIMIT ?`),
		height, limit)
	if err != nil {
		return nil, fmt.Errorf("btc: blocks: %w", err)
	}
	defer rows.Close()
	var out []scan.Point
	for rows.Next() {
		var b scan.Point
		if err := rows.Scan(&b.Height, &b.Block); err != nil {
			return nil, fmt.Errorf("btc: blocks: %w", err)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// Rewind detaches the deposits of the blocks above fork (they are in no
// block until a rescan finds them again), forgets those blocks and moves
// the checkpoint back, in one transaction.
func (s state) Rewind(ctx context.Context, fork scan.Point, now time.Time) (orphaned, finals int64, err error) {
	db := s.w.db
	tx, err := db.Write.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("btc: rewind: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, db.Q(`UPDATE chain_btc_deposits SET block_hash = '', block_height = 0, missing_polls = 0, updated_at = ?
		WHERE block_height > ?`), now.UnixMilli(), fork.Height)
	if err != nil {
		return 0, 0, fmt.Errorf("btc: rewind: %w", err)
	}
	orphaned, _ = res.RowsAffected()
	if _, err := tx.ExecContext(ctx, db.Q(`DELETE FROM chain_btc_blocks WHERE height > ?`), fork.Height); err != nil {
		return 0, 0, fmt.Errorf("btc: rewind: %w", err)
	}
	if err := s.putCheckpoint(ctx, tx, fork, now); err != nil {
		return 0, 0, err
	}
	return orphaned, 0, tx.Commit()
}

func (s state) putCheckpoint(ctx context.Context, tx *sql.Tx, cp scan.Point, now time.Time) error {
	if _, err := tx.ExecContext(ctx, s.w.db.Q(`INSERT INTO chain_btc_checkpoint (id, height, hash, updated_at) VALUES (1, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET height = excluded.height, hash = excluded.hash, updated_at = excluded.updated_at`),
		cp.Height, cp.Block, now.UnixMilli()); err != nil {
		return fmt.Errorf("btc: save checkpoint: %w", err)
	}
	return nil
}

// CommitRange records scanned blocks (one per call: the watcher's batch
// is a block), the deposits found in them and the checkpoint, and forgets
// block hashes older than the reorg window.
func (s state) CommitRange(ctx context.Context, blocks []scan.Point, deps []scan.Deposit, keep int, now time.Time) error {
	return s.CommitRangeWith(ctx, blocks, deps, keep, now, nil)
}

// CommitRangeWith is CommitRange that also runs also (the engine's
// depths) in its transaction.
func (s state) CommitRangeWith(ctx context.Context, blocks []scan.Point, deps []scan.Deposit, keep int, now time.Time, also func(*sql.Tx) error) error {
	db := s.w.db
	tx, err := db.Write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("btc: save block: %w", err)
	}
	defer tx.Rollback()
	for _, d := range deps {
		st := rowState(d)
		if st == "" {
			continue
		}
		sat, err := s.sats(d.Amount)
		if err != nil {
			return fmt.Errorf("btc: deposit %s: %w", d.DepositID, err)
		}
		if _, err := tx.ExecContext(ctx, db.Q(insertDeposit), d.DepositID, d.TxID, d.InvoiceID, d.Address, sat, d.Block, d.BlockHeight,
			st, now.UnixMilli()); err != nil {
			return fmt.Errorf("btc: deposit %s: %w", d.DepositID, err)
		}
	}
	for _, b := range blocks {
		if b.Block == "" {
			continue // a first checkpoint above the node's tip
		}
		if _, err := tx.ExecContext(ctx, db.Q(`INSERT INTO chain_btc_blocks (height, hash) VALUES (?, ?)
			ON CONFLICT (height) DO UPDATE SET hash = excluded.hash`), b.Height, b.Block); err != nil {
			return fmt.Errorf("btc: save block: %w", err)
		}
	}
	last := blocks[len(blocks)-1]
	if _, err := tx.ExecContext(ctx, db.Q(`DELETE FROM chain_btc_blocks WHERE height <= ?`), last.Height-int64(keep)); err != nil {
		return fmt.Errorf("btc: save block: %w", err)
	}
	if err := s.putCheckpoint(ctx, tx, last, now); err != nil {
		return err
	}
	if also != nil {
		if err := also(tx); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// rowState is the chain_btc_deposits state of an engine row; "" for one
// not kept.
func rowState(d scan.Deposit) string {
	switch {
	case d.State == chain.ScanFinal:
		return stateFinal
	case d.State == chain.ScanReverted:
		return stateReverted
	case d.State == chain.ScanSeen && d.Confirmed:
		return stateConfirmed
	case d.State == chain.ScanSeen:
		return statePending
	}
	return ""
}

func (s state) sats(amount string) (int64, error) {
	a, err := domain.ParseAmount(amount, 8)
	if err != nil {
		return 0, err
	}
	n, err := a.BaseUnits(8)
	if err != nil {
		return 0, err
	}
	return n.Int64(), nil
}

const depositColumns = `deposit_id, txid, invoice_id, address, amount_sat, block_hash, block_height, state`

// Deposits lists the deposits the engine asks for (see state) in blocks
// at or below through, oldest block first, at most 1000 a scan as before
// the engine. An orphaned deposit is in no block: through does not apply.
func (s state) Deposits(ctx context.Context, st string, unconfirmedOnly bool, through int64) ([]scan.Deposit, error) {
	var where string
	switch {
	case st == chain.ScanSeen && unconfirmedOnly:
		where = `state = '` + statePending + `' AND block_height > 0`
	case st == chain.ScanSeen:
		where = `state IN ('` + statePending + `', '` + stateConfirmed + `') AND block_height > 0`
	case st == chain.ScanOrphaned:
		where = `state IN ('` + stateConfirmed + `', '` + stateFinal + `') AND block_height = 0`
	case st == chain.ScanFinal:
		where = `state = '` + stateFinal + `' AND block_height > 0`
	case st == chain.ScanReverted:
		where = `state = '` + stateReverted + `'`
	default:
		return nil, nil
	}
	var args []any
	if st != chain.ScanOrphaned {
		where, args = where+` AND block_height <= ?`, []any{through}
	}
	deps, err := s.query(ctx, `SELECT `+depositColumns+` FROM chain_btc_deposits WHERE `+where+` ORDER BY block_height, deposit_id LIMIT 1000`, args...)
	if st == chain.ScanOrphaned {
		for i := range deps {
			deps[i].State = chain.ScanOrphaned
		}
	}
	return deps, err
}

func (s state) query(ctx context.Context, q string, args ...any) ([]scan.Deposit, error) {
	rows, err := s.w.db.Read.QueryContext(ctx, s.w.db.Q(q), args...)
	if err != nil {
		return nil, fmt.Errorf("btc: deposits: %w", err)
	}
	defer rows.Close()
	var out []scan.Deposit
	for rows.Next() {
		var d scan.Deposit
		var sat int64
		var st string
		if err := rows.Scan(&d.DepositID, &d.TxID, &d.InvoiceID, &d.Address, &sat, &d.Block, &d.BlockHeight, &st); err != nil {
			return nil, fmt.Errorf("btc: deposits: %w", err)
		}
		d.Asset, d.Amount, d.RequiredConfirmations = s.w.asset.Code, s.w.sats(sat).String(), s.w.asset.Confirmations
		switch st {
		case statePending:
			d.State = chain.ScanSeen
		case stateConfirmed:
			d.State, d.Confirmed = chain.ScanSeen, true
		case stateFinal:
			d.State, d.Confirmed = chain.ScanFinal, true
		default:
			d.State = chain.ScanReverted
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Known returns the deposits among ids that we track; one a reorg
// detached keeps its state (final stays final when found again).
func (s state) Known(ctx context.Context, ids []string) (map[string]scan.Deposit, error) {
	known := make(map[string]scan.Deposit)
	for len(ids) > 0 {
		n := min(len(ids), statesPerQuery)
		args := make([]any, n)
		for i, id := range ids[:n] {
			args[i] = id
		}
		ids = ids[n:]
		deps, err := s.query(ctx, `SELECT `+depositColumns+` FROM chain_btc_deposits WHERE deposit_id IN (?`+strings.Repeat(", ?", n-1)+`)`, args...)
		if err != nil {
			return nil, err
		}
		for _, d := range deps {
			known[d.DepositID] = d
		}
	}
	return known, nil
}

func (s state) MarkConfirmed(ctx context.Context, ids []string, _ time.Time) error {
	return s.w.setStates(ctx, ids, stateConfirmed)
}

func (s state) MarkFinal(ctx context.Context, ids []string, _ time.Time) error {
	return s.w.setStates(ctx, ids, stateFinal)
}

// SetState records a finality or a revert; a reverted deposit's
// transaction, back in the mempool, is seen there again.
func (s state) SetState(ctx context.Context, id, st string, confirmed bool, _ time.Time) error {
	to := rowState(scan.Deposit{State: st, Confirmed: confirmed})
	if to == "" {
		return fmt.Errorf("btc: deposit %s: no state %q here", id, st)
	}
	if to == stateReverted {
		txid, _, _ := strings.Cut(id, ":")
		if h, err := chainhash.NewHashFromStr(txid); err == nil {
			delete(s.w.mempoolSeen, *h)
		}
	}
	return s.w.setState(ctx, id, to)
}

func (s state) WatchedAfter(ctx context.Context, _ string, after scan.WatchCursor, limit int) ([]string, scan.WatchCursor, error) {
	addrs, next, err := scan.WatchedAfter(ctx, s.w.db, s.w.asset.Code, after, limit)
	if err != nil {
		return nil, after, fmt.Errorf("btc: watched addresses: %w", err)
	}
	return addrs, next, nil
}

// RequiredConfirmations is 0: Bitcoin credits at the asset's
// confirmations, and the ledger refuses (retried each block) an invoice
// that asks for more.
func (s state) RequiredConfirmations(context.Context, string) (int, error) { return 0, nil }

var _ scan.RangeCommitter = state{}
