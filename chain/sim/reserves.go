package sim

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// Holdings is what a simulated chain holds for the gateway at its height,
// as a node would report it: the transfers mined to its addresses, and
// what its payouts took (amounts and fees), per asset.
type Holdings struct {
	Height int64
	// Addresses maps asset -> address -> the mined transfers' sum.
	Addresses map[string]map[string]domain.Amount
	// Spent maps asset -> what payout transactions sent and paid in fees.
	Spent map[string]domain.Amount
	// Mempool lists transfers not mined (the ledger may already count them).
	Mempool []string
}

// HoldingsOf reads the simulated chain c's state.
func HoldingsOf(ctx context.Context, db sqldb.DB, c domain.Chain) (Holdings, error) {
	h := Holdings{Addresses: map[string]map[string]domain.Amount{}, Spent: map[string]domain.Amount{}}
	err := db.Read.QueryRowContext(ctx, db.Q(`SELECT height FROM sim_chains WHERE chain = ?`), string(c)).Scan(&h.Height)
	if errors.Is(err, sql.ErrNoRows) {
		return h, nil
	}
	if err != nil {
		return h, fmt.Errorf("sim: height of %s: %w", c, err)
	}
	rows, err := db.Read.QueryContext(ctx, db.Q(`SELECT txid, asset, address, amount, height FROM sim_transfers
		WHERE chain = ? AND state <> 'dropped'`), string(c))
	if err != nil {
		return h, fmt.Errorf("sim: transfers: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var txid, asset, addr, amount string
		var height sql.NullInt64
		if err := rows.Scan(&txid, &asset, &addr, &amount, &height); err != nil {
			return h, err
		}
		if !height.Valid {
			h.Mempool = append(h.Mempool, fmt.Sprintf("transfer %s: %s %s to %s in the mempool", txid, amount, asset, addr))
			continue
		}
		v, err := domain.ParseAmount(amount, 18)
		if err != nil {
			return h, fmt.Errorf("sim: transfer %s: %w", txid, err)
		}
		m := h.Addresses[asset]
		if m == nil {
			m = map[string]domain.Amount{}
			h.Addresses[asset] = m
		}
		m[addr] = m[addr].Add(v)
	}
	if err := rows.Err(); err != nil {
		return h, err
	}
	prow, err := db.Read.QueryContext(ctx, db.Q(`SELECT asset, amount, fee FROM sim_payout_txs WHERE chain = ?`), string(c))
	if err != nil {
		return h, fmt.Errorf("sim: payouts: %w", err)
	}
	defer prow.Close()
	for prow.Next() {
		var asset, amount, fee string
		if err := prow.Scan(&asset, &amount, &fee); err != nil {
			return h, err
		}
		a, err1 := domain.ParseAmount(amount, 18)
		f, err2 := domain.ParseAmount(fee, 18)
		if err := errors.Join(err1, err2); err != nil {
			return h, fmt.Errorf("sim: payout of %s: %w", asset, err)
		}
		h.Spent[asset] = h.Spent[asset].Add(a).Add(f)
	}
	return h, prow.Err()
}
