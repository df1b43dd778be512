package chain

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// Unmatched deposit statuses (chain_unmatched_deposits.status).
const (
	UnmatchedOpen      = "open"
	UnmatchedCrediting = "crediting"
	UnmatchedCredited  = "credited"
	UnmatchedSweep     = "sweep"
	UnmatchedIgnored   = "ignored"
	// UnmatchedGone: a reorg took it away before a decision; found again
	// in a block, it is open again.
	UnmatchedGone = "gone"
)

// ErrDecided: the unmatched deposit already has an operator's decision.
var ErrDecided = errors.New("chain: unmatched deposit already decided")

// UnmatchedDeposit is a payment to one of our addresses that no invoice of
// its asset takes: kept in chain_unmatched_deposits until an operator
// credits it to an invoice, marks it to sweep or ignores it.
type UnmatchedDeposit struct {
	ID          int64  `json:"id"`
	Chain       string `json:"chain"` // the scanner's name: btc, eth, tron
	DepositID   string `json:"deposit_id"`
	TxID        string `json:"txid"`
	OutputIndex int64  `json:"output_index"` // -1: a native transfer
	Address     string `json:"address"`
	Asset       string `json:"asset"`
	Amount      string `json:"amount"`
	BlockHeight int64  `json:"block_height"`
	Block       string `json:"block_hash"`
	Reason      string `json:"reason"`
	FoundAt     int64  `json:"found_at_ms"`
	Status      string `json:"status"`
	InvoiceID   string `json:"invoice_id,omitempty"`
	Note        string `json:"note,omitempty"`
	DecidedAt   int64  `json:"decided_at_ms,omitempty"`
}

// OutputIndex is the output or log index a deposit id ends with
// ("<txid>:<n>"); -1 for a native transfer (the transaction alone).
func OutputIndex(depositID string) int64 {
	if _, n, ok := strings.Cut(depositID, ":"); ok {
		if i, err := strconv.ParseInt(n, 10, 64); err == nil {
			return i
		}
	}
	return -1
}

// Unmatched keeps the unmatched deposits of every chain.
type Unmatched struct{ DB sqldb.DB }

// Record keeps d as open unless it is already kept (found again by a
// rescan, or after a reorg): the first finding and any decision stay; one
// a reorg had taken away is open again.
func (u Unmatched) Record(ctx context.Context, d UnmatchedDeposit, now time.Time) error {
	_, err := u.DB.Write.ExecContext(ctx, u.DB.Q(`INSERT INTO chain_unmatched_deposits (chain, deposit_id, txid, output_index, address, asset,
		amount, block_height, block_hash, reason, found_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (chain, deposit_id) DO UPDATE SET block_height = excluded.block_height, block_hash = excluded.block_hash,
		status = CASE WHEN chain_unmatched_deposits.status = ? THEN ? ELSE chain_unmatched_deposits.status END`),
		d.Chain, d.DepositID, d.TxID, OutputIndex(d.DepositID), d.Address, d.Asset, d.Amount, d.BlockHeight, d.Block, d.Reason,
		now.UnixMilli(), UnmatchedOpen, UnmatchedGone, UnmatchedOpen)
	if err != nil {
		return fmt.Errorf("chain: record unmatched deposit %s: %w", d.DepositID, err)
	}
	return nil
}

// Gone marks an open deposit of chain that a reorg took away: there is
// nothing to decide about any more. A decided one stays as it is (a
// credited deposit is reverted in the ledger as any payment).
func (u Unmatched) Gone(ctx context.Context, chainName, depositID string, now time.Time) error {
	if _, err := u.DB.Write.ExecContext(ctx, u.DB.Q(`UPDATE chain_unmatched_deposits SET status = ?, note = ?, decided_at = ?
		WHERE chain = ? AND deposit_id = ? AND status = ?`), UnmatchedGone, "its block left the chain", now.UnixMilli(),
		chainName, depositID, UnmatchedOpen); err != nil {
		return fmt.Errorf("chain: unmatched deposit %s: %w", depositID, err)
	}
	return nil
}

// CreditedTo is the invoice an operator credited (or is crediting) the
// deposit of chain to; "" when none.
func (u Unmatched) CreditedTo(ctx context.Context, chainName, depositID string) (string, error) {
	var inv string
	err := u.DB.Read.QueryRowContext(ctx, u.DB.Q(`SELECT invoice_id FROM chain_unmatched_deposits WHERE chain = ? AND deposit_id = ?
		AND status IN (?, ?)`), chainName, depositID, UnmatchedCrediting, UnmatchedCredited).Scan(&inv)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("chain: unmatched deposit %s: %w", depositID, err)
	}
	return inv, nil
}

const unmatchedColumns = `id, chain, deposit_id, txid, output_index, address, asset, amount, block_height, block_hash, reason,
	found_at, status, invoice_id, note, decided_at`

// List returns the unmatched deposits, oldest first; with statuses, only
// those in one of them.
func (u Unmatched) List(ctx context.Context, statuses ...string) ([]UnmatchedDeposit, error) {
	q := `SELECT ` + unmatchedColumns + ` FROM chain_unmatched_deposits`
	args := make([]any, len(statuses))
	if len(statuses) > 0 {
		q += ` WHERE status IN (?` + strings.Repeat(", ?", len(statuses)-1) + `)`
		for i, s := range statuses {
			args[i] = s
		}
	}
	rows, err := u.DB.Read.QueryContext(ctx, u.DB.Q(q+` ORDER BY id`), args...)
	if err != nil {
		return nil, fmt.Errorf("chain: unmatched deposits: %w", err)
	}
	defer rows.Close()
	var out []UnmatchedDeposit
	for rows.Next() {
		d, err := scanUnmatched(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Get returns one unmatched deposit. Errors: domain.ErrNotFound.
func (u Unmatched) Get(ctx context.Context, id int64) (UnmatchedDeposit, error) {
	d, err := scanUnmatched(u.DB.Read.QueryRowContext(ctx, u.DB.Q(`SELECT `+unmatchedColumns+` FROM chain_unmatched_deposits WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("unmatched deposit %d: %w", id, domain.ErrNotFound)
	}
	return d, err
}

func scanUnmatched(r interface{ Scan(...any) error }) (UnmatchedDeposit, error) {
	var d UnmatchedDeposit
	err := r.Scan(&d.ID, &d.Chain, &d.DepositID, &d.TxID, &d.OutputIndex, &d.Address, &d.Asset, &d.Amount, &d.BlockHeight, &d.Block,
		&d.Reason, &d.FoundAt, &d.Status, &d.InvoiceID, &d.Note, &d.DecidedAt)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		err = fmt.Errorf("chain: unmatched deposits: %w", err)
	}
	return d, err
}

// Decide records an operator's decision on an open deposit: status with
// the invoice it is credited to, or a note. Only one decision is taken:
// a deposit no longer open answers ErrDecided, except that a credit to the
// same invoice may be taken up again (crediting → crediting, credited) so
// that an interrupted credit can be finished. Errors: domain.ErrNotFound,
// ErrDecided.
func (u Unmatched) Decide(ctx context.Context, id int64, status, invoiceID, note string, now time.Time) error {
	from := []any{UnmatchedOpen}
	if status == UnmatchedCrediting || status == UnmatchedCredited {
		from = append(from, UnmatchedCrediting)
	}
	res, err := u.DB.Write.ExecContext(ctx, u.DB.Q(`UPDATE chain_unmatched_deposits SET status = ?, invoice_id = ?, note = ?, decided_at = ?
		WHERE id = ? AND (status = ?`+strings.Repeat(` OR status = ?`, len(from)-1)+`) AND (status = 'open' OR invoice_id = ?)`),
		append(append([]any{status, invoiceID, note, now.UnixMilli(), id}, from...), invoiceID)...)
	if err != nil {
		return fmt.Errorf("chain: unmatched deposit %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	d, err := u.Get(ctx, id)
	if err != nil {
		return err
	}
	if d.InvoiceID != "" {
		return fmt.Errorf("%w: %d is %s to %s", ErrDecided, id, d.Status, d.InvoiceID)
	}
	return fmt.Errorf("%w: %d is %s", ErrDecided, id, d.Status)
}

// OpenByAsset counts the deposits waiting for a decision, by asset.
func (u Unmatched) OpenByAsset(ctx context.Context) (map[string]int, error) {
	rows, err := u.DB.Read.QueryContext(ctx, u.DB.Q(`SELECT asset, count(*) FROM chain_unmatched_deposits WHERE status IN (?, ?) GROUP BY asset`),
		UnmatchedOpen, UnmatchedCrediting)
	if err != nil {
		return nil, fmt.Errorf("chain: unmatched deposits: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var a string
		var n int
		if err := rows.Scan(&a, &n); err != nil {
			return nil, err
		}
		out[a] = n
	}
	return out, rows.Err()
}
