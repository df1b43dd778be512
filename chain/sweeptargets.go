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

// WithTargets adds to targets those of more whose asset and address are
// not there yet.
func WithTargets(targets, more []SweepTarget) []SweepTarget {
	have := map[[2]string]bool{}
	for _, t := range targets {
		have[[2]string{t.Asset, t.Address}] = true
	}
	for _, t := range more {
		if k := [2]string{t.Asset, t.Address}; !have[k] {
			have[k] = true
			targets = append(targets, t)
		}
	}
	return targets
}
