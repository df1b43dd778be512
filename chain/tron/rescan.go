package tron

import (
	"context"
	"fmt"
	"time"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/scan"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// Rescan scans blocks from..to again for payments of assets (none: all)
// the watcher missed (see scan.Scanner.Rescan); it may run while another
// process watches.
func (w *Watcher) Rescan(ctx context.Context, from, to int64, assets []string, progress func(scan.RescanProgress)) (scan.RescanProgress, error) {
	return w.scan.Rescan(ctx, from, to, assets, progress)
}

// CreditUnmatched makes an unmatched deposit the invoice's in tron_deposits
// (see scan.Store.CreditUnmatched).
func CreditUnmatched(ctx context.Context, db sqldb.DB, d chain.UnmatchedDeposit, invoiceID string, required int, now time.Time) error {
	return newStore(db).CreditUnmatched(ctx, d, invoiceID, required, now)
}

// ownTransactions finds the sweeps' top-ups among txids: TRX the hot
// wallet sent a deposit address for a token sweep's energy, recorded in
// tron_sweeps before it was sent, is not a payment.
func ownTransactions(db sqldb.DB) func(ctx context.Context, txids []string) (map[string]bool, error) {
	return func(ctx context.Context, txids []string) (map[string]bool, error) {
		own := map[string]bool{}
		for _, id := range txids {
			var n int
			if err := db.Read.QueryRowContext(ctx, db.Q(`SELECT count(*) FROM tron_sweeps WHERE pending_txid = ? OR topup_txids LIKE ?`),
				id, "%"+id+"%").Scan(&n); err != nil {
				return nil, fmt.Errorf("tron: own transactions: %w", err)
			}
			if n > 0 {
				own[id] = true
			}
		}
		return own, nil
	}
}
