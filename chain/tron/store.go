package tron

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

// Migrate creates or upgrades the watcher's and the sender's tables in the
// read-model database: numbered migrations per dialect, each applied once in its own
// transaction, tracked in tron_migrations (apart from the read models' own
// bookkeeping, so their numbers never collide).
func Migrate(ctx context.Context, db projections.DB) error {
	return projections.ApplyMigrations(ctx, db, migrations, "migrations", "tron_migrations")
}

// Deposit states, as stored in tron_deposits.state.
const (
	stateSeen      = "seen"
	stateOrphaned  = "orphaned"
	stateReverted  = "reverted"
	stateUnmatched = "unmatched"
)

// checkpoint is the last block scanned completely.
type checkpoint struct {
	height int64
	id     string
}

// deposit is a row of tron_deposits.
type deposit struct {
	DepositID             string
	Asset                 string
	Address               string
	TxID                  string
	Amount                string
	InvoiceID             string
	RequiredConfirmations int
	BlockHeight           int64
	BlockID               string
	State                 string
	Confirmed             bool
}

// store is the watcher's SQL over the read-model database.
type store struct{ db projections.DB }

// errNoCheckpoint: the watcher never scanned a block.
var errNoCheckpoint = errors.New("tron: no checkpoint")

func (s store) checkpoint(ctx context.Context) (checkpoint, error) {
	var cp checkpoint
	err := s.db.Read.QueryRowContext(ctx, `SELECT height, block_id FROM tron_scan_checkpoint WHERE id = 1`).Scan(&cp.height, &cp.id)
	if errors.Is(err, sql.ErrNoRows) {
		return checkpoint{}, errNoCheckpoint
	}
	if err != nil {
		return checkpoint{}, fmt.Errorf("tron checkpoint: %w", err)
	}
	return cp, nil
}

// recentBlocks returns the stored block ids at or below height, newest first.
func (s store) recentBlocks(ctx context.Context, height int64, limit int) ([]checkpoint, error) {
	rows, err := s.db.Read.QueryContext(ctx, s.db.Q(`SELECT height, block_id FROM tron_blocks WHERE height <= ? ORDER BY height DESC LIMIT ?`), height, limit)
	if err != nil {
		return nil, fmt.Errorf("tron blocks: %w", err)
	}
	defer rows.Close()
	var out []checkpoint
	for rows.Next() {
		var b checkpoint
		if err := rows.Scan(&b.height, &b.id); err != nil {
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
	res, err := tx.ExecContext(ctx, s.db.Q(`UPDATE tron_deposits SET state = ?, updated_at = ? WHERE block_height > ? AND state IN (?, ?)`),
		stateOrphaned, now.UnixMilli(), fork.height, stateSeen, stateUnmatched)
	if err != nil {
		return 0, fmt.Errorf("tron rewind: %w", err)
	}
	orphaned, _ = res.RowsAffected()
	if _, err := tx.ExecContext(ctx, s.db.Q(`DELETE FROM tron_blocks WHERE height > ?`), fork.height); err != nil {
		return 0, fmt.Errorf("tron rewind: %w", err)
	}
	if err := putCheckpoint(ctx, tx, s.db, fork, now); err != nil {
		return 0, err
	}
	return orphaned, tx.Commit()
}

func putCheckpoint(ctx context.Context, tx *sql.Tx, db projections.DB, cp checkpoint, now time.Time) error {
	res, err := tx.ExecContext(ctx, db.Q(`UPDATE tron_scan_checkpoint SET height = ?, block_id = ?, updated_at = ? WHERE id = 1`), cp.height, cp.id, now.UnixMilli())
	if err != nil {
		return fmt.Errorf("tron checkpoint: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := tx.ExecContext(ctx, db.Q(`INSERT INTO tron_scan_checkpoint (id, height, block_id, updated_at) VALUES (1, ?, ?, ?)`), cp.height, cp.id, now.UnixMilli()); err != nil {
			return fmt.Errorf("tron checkpoint: %w", err)
		}
	}
	return nil
}

// commitRange records a scanned range: its block ids, the deposits found
// in it and the new checkpoint, in one transaction; ids older than keep
// blocks are pruned.
func (s store) commitRange(ctx context.Context, blocks []checkpoint, deps []deposit, keep int, now time.Time) error {
	tx, err := s.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, b := range blocks {
		if _, err := tx.ExecContext(ctx, s.db.Q(`DELETE FROM tron_blocks WHERE height = ?`), b.height); err != nil {
			return fmt.Errorf("tron blocks: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO tron_blocks (height, block_id) VALUES (?, ?)`), b.height, b.id); err != nil {
			return fmt.Errorf("tron blocks: %w", err)
		}
	}
	for _, d := range deps {
		if err := upsertDeposit(ctx, tx, s.db, d, now); err != nil {
			return err
		}
	}
	last := blocks[len(blocks)-1]
	if _, err := tx.ExecContext(ctx, s.db.Q(`DELETE FROM tron_blocks WHERE height < ?`), last.height-int64(keep)); err != nil {
		return fmt.Errorf("tron blocks: %w", err)
	}
	if err := putCheckpoint(ctx, tx, s.db, last, now); err != nil {
		return err
	}
	return tx.Commit()
}

// upsertDeposit records a deposit found in a canonical block. One seen
// again keeps its confirmed flag, unless it had been reverted: then the
// ledger detected it afresh and it must be confirmed again.
func upsertDeposit(ctx context.Context, tx *sql.Tx, db projections.DB, d deposit, now time.Time) error {
	var state string
	var confirmed bool
	err := tx.QueryRowContext(ctx, db.Q(`SELECT state, confirmed FROM tron_deposits WHERE deposit_id = ?`), d.DepositID).Scan(&state, &confirmed)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_, err = tx.ExecContext(ctx, db.Q(`INSERT INTO tron_deposits (deposit_id, asset, address, txid, amount, invoice_id, required_confirmations,
			block_height, block_id, state, confirmed, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			d.DepositID, d.Asset, d.Address, d.TxID, d.Amount, d.InvoiceID, d.RequiredConfirmations, d.BlockHeight, d.BlockID, d.State, boolInt(d.Confirmed), now.UnixMilli())
	case err != nil:
	default:
		if state == stateReverted {
			confirmed = false
		}
		_, err = tx.ExecContext(ctx, db.Q(`UPDATE tron_deposits SET invoice_id = ?, required_confirmations = ?, block_height = ?, block_id = ?,
			state = ?, confirmed = ?, updated_at = ? WHERE deposit_id = ?`),
			d.InvoiceID, d.RequiredConfirmations, d.BlockHeight, d.BlockID, d.State, boolInt(confirmed), now.UnixMilli(), d.DepositID)
	}
	if err != nil {
		return fmt.Errorf("tron deposit %s: %w", d.DepositID, err)
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

const depositColumns = `deposit_id, asset, address, txid, amount, invoice_id, required_confirmations, block_height, block_id, state, confirmed`

// deposits lists the deposits in a state; unconfirmedOnly narrows to those
// not yet credited.
func (s store) deposits(ctx context.Context, state string, unconfirmedOnly bool) ([]deposit, error) {
	q := `SELECT ` + depositColumns + ` FROM tron_deposits WHERE state = ?`
	if unconfirmedOnly {
		q += ` AND confirmed = 0`
	}
	rows, err := s.db.Read.QueryContext(ctx, s.db.Q(q+` ORDER BY block_height, deposit_id`), state)
	if err != nil {
		return nil, fmt.Errorf("tron deposits: %w", err)
	}
	defer rows.Close()
	var out []deposit
	for rows.Next() {
		var d deposit
		if err := rows.Scan(&d.DepositID, &d.Asset, &d.Address, &d.TxID, &d.Amount, &d.InvoiceID, &d.RequiredConfirmations,
			&d.BlockHeight, &d.BlockID, &d.State, &d.Confirmed); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func (s store) setState(ctx context.Context, depositID, state string, confirmed bool, now time.Time) error {
	_, err := s.db.Write.ExecContext(ctx, s.db.Q(`UPDATE tron_deposits SET state = ?, confirmed = ?, updated_at = ? WHERE deposit_id = ?`),
		state, boolInt(confirmed), now.UnixMilli(), depositID)
	if err != nil {
		return fmt.Errorf("tron deposit %s: %w", depositID, err)
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
		return nil, 0, fmt.Errorf("tron watched addresses: %w", err)
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
		return 0, fmt.Errorf("tron invoice %s: %w", invoiceID, err)
	}
	return n, nil
}
