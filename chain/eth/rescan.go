package eth

import (
	"context"
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
