package eth

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/acceptcryptohere/gateway/projections"
)

//go:embed migrations
var migrations embed.FS

// Migrate creates or upgrades the watcher's tables in the read-model
// database: numbered migrations per dialect, each applied once in its own
// transaction, tracked in eth_migrations (apart from the read models' own
// bookkeeping, so their numbers never collide).
func Migrate(ctx context.Context, db projections.DB) error {
	return projections.ApplyMigrations(ctx, db, migrations, "migrations", "eth_migrations")
}

// Deposit states, as stored in eth_deposits.state.
const (
	stateSeen      = "seen"
	stateOrphaned  = "orphaned"
	stateReverted  = "reverted"
	stateUnmatched = "unmatched"
)

// checkpoint is the last block scanned completely.
type checkpoint struct {
	height int64
	hash   string
}

// deposit is a row of eth_deposits.
type deposit struct {
	DepositID             string
	Asset                 string
	Address               string
	TxID                  string
	Amount                string
	InvoiceID             string
	RequiredConfirmations int
	BlockHeight           int64
	BlockHash             string
	State                 string
	Confirmed             bool
}

// store is the watcher's SQL over the read-model database.
type store struct{ db projections.DB }

// errNoCheckpoint: the watcher never scanned a block.
var errNoCheckpoint = errors.New("eth: no checkpoint")

func (s store) checkpoint(ctx context.Context) (checkpoint, error) {
	var cp checkpoint
	err := s.db.Read.QueryRowContext(ctx, `SELECT height, hash FROM eth_scan_checkpoint WHERE id = 1`).Scan(&cp.height, &cp.hash)
	if errors.Is(err, sql.ErrNoRows) {
		return checkpoint{}, errNoCheckpoint
	}
	if err != nil {
		return checkpoint{}, fmt.Errorf("eth checkpoint: %w", err)
	}
	return cp, nil
}

// recentBlocks returns the stored block hashes at or below height, newest first.
func (s store) recentBlocks(ctx context.Context, height int64, limit int) ([]checkpoint, error) {
	rows, err := s.db.Read.QueryContext(ctx, s.db.Q(`SELECT height, hash FROM eth_blocks WHERE height <= ? ORDER BY height DESC LIMIT ?`), height, limit)
	if err != nil {
		return nil, fmt.Errorf("eth blocks: %w", err)
	}
	defer rows.Close()
	var out []checkpoint
	for rows.Next() {
		var b checkpoint
		if err := rows.Scan(&b.height, &b.hash); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// rewind moves the checkpoint back to the fork block and marks the deposits
// of the blocks above it orphaned, in one transaction. Orphaned deposits
// found again by the rescan become seen; the rest are reverted once the scan
// has caught up with the chain.
func (s store) rewind(ctx context.Context, fork checkpoint, now time.Time) (orphaned int64, err error) {
	tx, err := s.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, s.db.Q(`UPDATE eth_deposits SET state = ?, updated_at = ? WHERE block_height > ? AND state IN (?, ?)`),
		stateOrphaned, now.UnixMilli(), fork.height, stateSeen, stateUnmatched)
	if err != nil {
		return 0, fmt.Errorf("eth rewind: %w", err)
	}
	orphaned, _ = res.RowsAffected()
	if _, err := tx.ExecContext(ctx, s.db.Q(`DELETE FROM eth_blocks WHERE height > ?`), fork.height); err != nil {
		return 0, fmt.Errorf("eth rewind: %w", err)
	}
	if err := putCheckpoint(ctx, tx, s.db, fork, now); err != nil {
		return 0, err
	}
	return orphaned, tx.Commit()
}

func putCheckpoint(ctx context.Context, tx *sql.Tx, db projections.DB, cp checkpoint, now time.Time) error {
	res, err := tx.ExecContext(ctx, db.Q(`UPDATE eth_scan_checkpoint SET height = ?, hash = ?, updated_at = ? WHERE id = 1`), cp.height, cp.hash, now.UnixMilli())
	if err != nil {
		return fmt.Errorf("eth checkpoint: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := tx.ExecContext(ctx, db.Q(`INSERT INTO eth_scan_checkpoint (id, height, hash, updated_at) VALUES (1, ?, ?, ?)`), cp.height, cp.hash, now.UnixMilli()); err != nil {
			return fmt.Errorf("eth checkpoint: %w", err)
		}
	}
	return nil
}

// commitRange records a scanned range: its block hashes, the deposits found
// in it and the new checkpoint, in one transaction; hashes older than keep
// blocks are pruned.
func (s store) commitRange(ctx context.Context, blocks []checkpoint, deps []deposit, keep int, now time.Time) error {
	tx, err := s.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, b := range blocks {
		if _, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO eth_blocks (height, hash) VALUES (?, ?)
			ON CONFLICT (height) DO UPDATE SET hash = excluded.hash`), b.height, b.hash); err != nil {
			return fmt.Errorf("eth blocks: %w", err)
		}
	}
	if err := upsertDeposits(ctx, tx, s.db, deps, now); err != nil {
		return err
	}
	last := blocks[len(blocks)-1]
	if _, err := tx.ExecContext(ctx, s.db.Q(`DELETE FROM eth_blocks WHERE height < ?`), last.height-int64(keep)); err != nil {
		return fmt.Errorf("eth blocks: %w", err)
	}
	if err := putCheckpoint(ctx, tx, s.db, last, now); err != nil {
		return err
	}
	return tx.Commit()
}

// depositsPerInsert bounds the rows of one INSERT (12 parameters each).
const depositsPerInsert = 50

// upsertDeposits records deposits found in canonical blocks, a few dozen
// per statement. One seen again keeps its confirmed flag, unless it had
// been reverted: then the ledger detected it afresh and it must be
// confirmed again. deps holds each deposit once.
func upsertDeposits(ctx context.Context, tx *sql.Tx, db projections.DB, deps []deposit, now time.Time) error {
	for len(deps) > 0 {
		n := min(len(deps), depositsPerInsert)
		chunk := deps[:n]
		deps = deps[n:]
		var q strings.Builder
		q.WriteString(`INSERT INTO eth_deposits (deposit_id, asset, address, txid, amount, invoice_id, required_confirmations,
			block_height, block_hash, state, confirmed, updated_at) VALUES `)
		args := make([]any, 0, len(chunk)*12)
		for i, d := range chunk {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
			args = append(args, d.DepositID, d.Asset, d.Address, d.TxID, d.Amount, d.InvoiceID, d.RequiredConfirmations,
				d.BlockHeight, d.BlockHash, d.State, boolInt(d.Confirmed), now.UnixMilli())
		}
		q.WriteString(` ON CONFLICT (deposit_id) DO UPDATE SET invoice_id = excluded.invoice_id,
			required_confirmations = excluded.required_confirmations, block_height = excluded.block_height,
			block_hash = excluded.block_hash, state = excluded.state,
			confirmed = CASE WHEN eth_deposits.state = '` + stateReverted + `' THEN 0 ELSE eth_deposits.confirmed END,
			updated_at = excluded.updated_at`)
		if _, err := tx.ExecContext(ctx, db.Q(q.String()), args...); err != nil {
			return fmt.Errorf("eth deposits: %w", err)
		}
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

const depositColumns = `deposit_id, asset, address, txid, amount, invoice_id, required_confirmations, block_height, block_hash, state, confirmed`

// deposits lists the deposits in a state; unconfirmedOnly narrows to those
// not yet credited.
func (s store) deposits(ctx context.Context, state string, unconfirmedOnly bool) ([]deposit, error) {
	q := `SELECT ` + depositColumns + ` FROM eth_deposits WHERE state = ?`
	if unconfirmedOnly {
		q += ` AND confirmed = 0`
	}
	rows, err := s.db.Read.QueryContext(ctx, s.db.Q(q+` ORDER BY block_height, deposit_id`), state)
	if err != nil {
		return nil, fmt.Errorf("eth deposits: %w", err)
	}
	defer rows.Close()
	var out []deposit
	for rows.Next() {
		var d deposit
		if err := rows.Scan(&d.DepositID, &d.Asset, &d.Address, &d.TxID, &d.Amount, &d.InvoiceID, &d.RequiredConfirmations,
			&d.BlockHeight, &d.BlockHash, &d.State, &d.Confirmed); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// markConfirmed records, in one transaction, that the ledger credited
// the deposits.
func (s store) markConfirmed(ctx context.Context, depositIDs []string, now time.Time) error {
	if len(depositIDs) == 0 {
		return nil
	}
	tx, err := s.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("eth confirmed: %w", err)
	}
	defer tx.Rollback()
	for _, id := range depositIDs {
		if _, err := tx.ExecContext(ctx, s.db.Q(`UPDATE eth_deposits SET confirmed = 1, updated_at = ? WHERE deposit_id = ?`), now.UnixMilli(), id); err != nil {
			return fmt.Errorf("eth deposit %s: %w", id, err)
		}
	}
	return tx.Commit()
}

func (s store) setState(ctx context.Context, depositID, state string, confirmed bool, now time.Time) error {
	_, err := s.db.Write.ExecContext(ctx, s.db.Q(`UPDATE eth_deposits SET state = ?, confirmed = ?, updated_at = ? WHERE deposit_id = ?`),
		state, boolInt(confirmed), now.UnixMilli(), depositID)
	if err != nil {
		return fmt.Errorf("eth deposit %s: %w", depositID, err)
	}
	return nil
}

// watchedSince returns the pay addresses of invoices of the assets created
// at or after sinceMs, with the newest created_at seen.
func (s store) watchedSince(ctx context.Context, assets []string, sinceMs int64) (addrs []string, newest int64, err error) {
	if len(assets) == 0 {
		return nil, sinceMs, nil
	}
	args := []any{sinceMs}
	for _, a := range assets {
		args = append(args, a)
	}
	q := `SELECT pay_address, created_at FROM invoices WHERE created_at >= ? AND asset IN (?` + strings.Repeat(`, ?`, len(assets)-1) + `)`
	rows, err := s.db.Read.QueryContext(ctx, s.db.Q(q), args...)
	if err != nil {
		return nil, 0, fmt.Errorf("eth watched addresses: %w", err)
	}
	defer rows.Close()
	newest = sinceMs
	for rows.Next() {
		var a string
		var created int64
		if err := rows.Scan(&a, &created); err != nil {
			return nil, 0, err
		}
		addrs = append(addrs, a)
		newest = max(newest, created)
	}
	return addrs, newest, rows.Err()
}

// requiredConfirmations is what the invoice's domain rule demands, from the
// read model; 0 when the invoice is not there (yet).
func (s store) requiredConfirmations(ctx context.Context, invoiceID string) (int, error) {
	var n int
	err := s.db.Read.QueryRowContext(ctx, s.db.Q(`SELECT required_confirmations FROM invoices WHERE invoice_id = ?`), invoiceID).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("eth invoice %s: %w", invoiceID, err)
	}
	return n, nil
}
