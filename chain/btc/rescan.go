package btc

import (
	"context"
	"fmt"
	"time"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/scan"
	"github.com/acceptcryptohere/gateway/sqldb"
)

var (
	_ scan.Rescanner         = state{}
	_ scan.UnmatchedRecorder = state{}
)

// Rescan scans blocks from..to again for payments the watcher missed
// (see scan.Scanner.Rescan); it may run while another process watches.
func (w *Watcher) Rescan(ctx context.Context, from, to int64, progress func(scan.RescanProgress)) (scan.RescanProgress, error) {
	return w.engine.Rescan(ctx, from, to, nil, progress)
}

// AddDeposits records deposits a rescan found; a row already there (a
// payment seen in the mempool, or in a block) stays as it is unless it
// was reverted. Unmatched ones are kept apart (RecordUnmatched).
func (s state) AddDeposits(ctx context.Context, deps []scan.Deposit, now time.Time) error {
	db := s.w.db
	tx, err := db.Write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("btc: rescanned deposits: %w", err)
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
		if _, err := tx.ExecContext(ctx, db.Q(insertDeposit+` WHERE chain_btc_deposits.state = '`+stateReverted+`'`), d.DepositID, d.TxID,
			d.InvoiceID, d.Address, sat, d.Block, d.BlockHeight, st, now.UnixMilli()); err != nil {
			return fmt.Errorf("btc: deposit %s: %w", d.DepositID, err)
		}
	}
	return tx.Commit()
}

// RecordUnmatched keeps a payment the ledger refused in
// chain_unmatched_deposits (chain "btc").
func (s state) RecordUnmatched(ctx context.Context, t scan.Transfer, reason string, now time.Time) error {
	return chain.Unmatched{DB: s.w.db}.Record(ctx, scan.UnmatchedOf("btc", t, reason), now)
}

// UnmatchedGone marks a deposit a reorg took away gone in
// chain_unmatched_deposits (chain "btc").
func (s state) UnmatchedGone(ctx context.Context, depositID string, now time.Time) error {
	return chain.Unmatched{DB: s.w.db}.Gone(ctx, "btc", depositID, now)
}

// CreditedTo is the invoice an operator credited the deposit to.
func (s state) CreditedTo(ctx context.Context, depositID string) (string, error) {
	return chain.Unmatched{DB: s.w.db}.CreditedTo(ctx, "btc", depositID)
}

// CreditUnmatched makes an unmatched payment the invoice's: a pending row
// in its block, which the watcher confirms and makes final by depth. The
// ledger must have been told first (ObserveDeposit on the invoice).
func CreditUnmatched(ctx context.Context, db sqldb.DB, d chain.UnmatchedDeposit, invoiceID string, now time.Time) error {
	sat, err := (state{}).sats(d.Amount)
	if err != nil {
		return fmt.Errorf("btc: deposit %s: %w", d.DepositID, err)
	}
	if _, err := db.Write.ExecContext(ctx, db.Q(`INSERT INTO chain_btc_deposits
		(deposit_id, txid, invoice_id, address, amount_sat, block_hash, block_height, state, missing_polls, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?) ON CONFLICT (deposit_id) DO NOTHING`),
		d.DepositID, d.TxID, invoiceID, d.Address, sat, d.Block, d.BlockHeight, statePending, now.UnixMilli()); err != nil {
		return fmt.Errorf("btc: deposit %s: %w", d.DepositID, err)
	}
	return nil
}
