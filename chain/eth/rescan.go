package eth

import (
	"context"
	"fmt"
	"strings"
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

// CreditUnmatched makes an unmatched deposit the invoice's in eth_deposits
// (see scan.Store.CreditUnmatched).
func CreditUnmatched(ctx context.Context, db sqldb.DB, d chain.UnmatchedDeposit, invoiceID string, required int, now time.Time) error {
	return newStore(db).CreditUnmatched(ctx, d, invoiceID, required, now)
}

// ownTransactions finds the sweeps' gas top-ups among txids: ETH the hot
// wallet sent a deposit address, recorded in eth_txs before it was sent,
// is not a payment (on an ETH invoice's address it would be credited).
func ownTransactions(db sqldb.DB) func(ctx context.Context, txids []string) (map[string]bool, error) {
	return func(ctx context.Context, txids []string) (map[string]bool, error) {
		own := map[string]bool{}
		for len(txids) > 0 {
			n := min(len(txids), 500)
			args := make([]any, n)
			for i, id := range txids[:n] {
				args[i] = id
			}
			txids = txids[n:]
			rows, err := db.Read.QueryContext(ctx, db.Q(`SELECT txid FROM eth_txs WHERE purpose = 'topup' AND txid IN (?`+strings.Repeat(`, ?`, n-1)+`)`), args...)
			if err != nil {
				return nil, fmt.Errorf("eth: own transactions: %w", err)
			}
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return nil, err
				}
				own[id] = true
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, err
			}
		}
		return own, nil
	}
}
