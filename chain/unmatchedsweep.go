package chain

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// UnmatchedSwept: a deposit decided "sweep" that a sweep of its address
// has moved to the hot wallet (the note names the transfer).
const UnmatchedSwept = "swept"

// UnmatchedToSweep returns the sweep targets of chainName's deposits an
// operator decided to sweep whose block is final: at or below
// final(asset). deposits is the chain's deposits table; a deposit whose
// block left the chain (not "unmatched" there any more) waits. The key is
// that of an invoice on the address, as for credited deposits.
func (u Unmatched) UnmatchedToSweep(ctx context.Context, chainName, deposits string, final func(asset string) (int64, error)) ([]SweepTarget, error) {
	rows, err := u.DB.Read.QueryContext(ctx, u.DB.Q(`SELECT u.asset, u.address, u.block_height,
		COALESCE((SELECT MIN(i.invoice_id) FROM invoices i WHERE i.pay_address = u.address), '')
		FROM chain_unmatched_deposits u JOIN `+deposits+` d ON d.deposit_id = u.deposit_id AND d.state = ?
		WHERE u.chain = ? AND u.status = ? ORDER BY u.id`), ScanUnmatched, chainName, UnmatchedSweep)
	if err != nil {
		return nil, fmt.Errorf("chain: unmatched deposits to sweep: %w", err)
	}
	type row struct {
		t      SweepTarget
		height int64
	}
	var all []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.t.Asset, &r.t.Address, &r.height, &r.t.Invoice); err != nil {
			rows.Close()
			return nil, err
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []SweepTarget
	seen := map[SweepTarget]bool{}
	for _, r := range all {
		f, err := final(r.t.Asset)
		if err != nil {
			return nil, err
		}
		if r.height <= f && r.t.Invoice != "" && !seen[r.t] {
			seen[r.t] = true
			out = append(out, r.t)
		}
	}
	return out, nil
}

// MarkSwept records as swept chainName's deposits decided "sweep" that a
// finished sweep of their address and asset (in the chain's sweeps table,
// state done) started after the decision: that sweep read the balance
// holding them. It returns how many it marked.
func (u Unmatched) MarkSwept(ctx context.Context, chainName, sweeps, done string, now time.Time) (int, error) {
	rows, err := u.DB.Read.QueryContext(ctx, u.DB.Q(`SELECT u.id, MIN(w.transfer_txid) FROM chain_unmatched_deposits u
		JOIN `+sweeps+` w ON w.asset = u.asset AND lower(w.address) = lower(u.address) AND w.state = ? AND w.created_at >= u.decided_at
		WHERE u.chain = ? AND u.status = ? GROUP BY u.id`), done, chainName, UnmatchedSweep)
	if err != nil {
		return 0, fmt.Errorf("chain: swept unmatched deposits: %w", err)
	}
	type swept struct {
		id   int64
		txid string
	}
	var all []swept
	for rows.Next() {
		var s swept
		if err := rows.Scan(&s.id, &s.txid); err != nil {
			rows.Close()
			return 0, err
		}
		all = append(all, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, s := range all {
		if _, err := u.DB.Write.ExecContext(ctx, u.DB.Q(markSwept), UnmatchedSwept, sweptNote(s.txid), sweptNote(s.txid), s.id, UnmatchedSweep); err != nil {
			return 0, fmt.Errorf("chain: unmatched deposit %d: %w", s.id, err)
		}
	}
	return len(all), nil
}

func sweptNote(txid string) string { return "swept to the hot wallet in " + txid }

// markSwept: status, note (twice), id, the status it must have.
const markSwept = `UPDATE chain_unmatched_deposits SET status = ?,
	note = CASE WHEN note = '' THEN ? ELSE note || '; ' || ? END WHERE id = ? AND status = ?`

// MarkSweptTx records in tx that deposit id, decided "sweep", is swept,
// note added to the operator's; false when it is not (or no longer)
// decided "sweep". A chain whose wallet takes the coins in by other means
// than a transfer (Bitcoin: the output joins the spendable set) marks it
// in the transaction that does so.
func (u Unmatched) MarkSweptTx(ctx context.Context, tx *sql.Tx, id int64, note string) (bool, error) {
	res, err := tx.ExecContext(ctx, u.DB.Q(markSwept), UnmatchedSwept, note, note, id, UnmatchedSweep)
	if err != nil {
		return false, fmt.Errorf("chain: unmatched deposit %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}
