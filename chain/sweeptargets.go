package chain

import (
	"context"

	"github.com/acceptcryptohere/gateway/sqldb"
)

// SweepTarget is an address whose final deposits wait to be swept: the
// asset and the oldest invoice paid to it (whose key index is the
// address's).
type SweepTarget struct{ Asset, Address, Invoice string }

// SweepTargets runs a chain's query for its sweep targets; the query
// selects asset, address and invoice id, in that order.
func SweepTargets(ctx context.Context, db sqldb.DB, query string, args ...any) ([]SweepTarget, error) {
	rows, err := db.Read.QueryContext(ctx, db.Q(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []SweepTarget
	for rows.Next() {
		var t SweepTarget
		if err := rows.Scan(&t.Asset, &t.Address, &t.Invoice); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}
