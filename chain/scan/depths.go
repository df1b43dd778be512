package scan

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/acceptcryptohere/gateway/sqldb"
)

// Depths keeps, beside the read models, each chain's scanned height and
// the block of each invoice deposit, so that the API counts confirmations
// block by block (tip - height + 1) without an event per block. What it
// holds is for display: the ledger's own thresholds never read it.
type Depths interface {
	// Scanned records the blocks of deposits found in a scanned range and,
	// with tip >= 0, the chain's new scanned height, together.
	Scanned(ctx context.Context, chain string, tip int64, deps []Deposit, now time.Time) error
	// ScannedIn is Scanned within tx, for a RangeCommitter.
	ScannedIn(ctx context.Context, tx *sql.Tx, chain string, tip int64, deps []Deposit, now time.Time) error
	// Rewound takes the blocks above fork off the chain: their deposits
	// are in no block until a scan finds them again, and the tip is fork.
	Rewound(ctx context.Context, chain string, fork int64, now time.Time) error
	// Final records the depth at which deposits became final, where their
	// count stops.
	Final(ctx context.Context, chain string, deps []Deposit, tip int64, now time.Time) error
}

// RangeCommitter is a State whose CommitRange runs more writes in its
// transaction: a scanned range and its Depths in one write transaction.
type RangeCommitter interface {
	CommitRangeWith(ctx context.Context, blocks []Point, deps []Deposit, keep int, now time.Time, also func(*sql.Tx) error) error
}

// DepthTable is Depths over chain_tips and deposit_depths (projections'
// migrations: the read-model database the API reads).
type DepthTable struct{ db sqldb.DB }

// NewDepthTable returns the tables of db.
func NewDepthTable(db sqldb.DB) DepthTable { return DepthTable{db: db} }

var _ Depths = DepthTable{}

// Scanned upserts the deposits' blocks (those of an invoice; unmatched
// ones have none to show) and the tip in one transaction.
func (t DepthTable) Scanned(ctx context.Context, chainName string, tip int64, deps []Deposit, now time.Time) error {
	tx, err := t.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("deposit depths: %w", err)
	}
	defer tx.Rollback()
	if err := t.ScannedIn(ctx, tx, chainName, tip, deps, now); err != nil {
		return err
	}
	return tx.Commit()
}

// ScannedIn is Scanned within tx (a RangeCommitter's): a few dozen rows
// per statement. A deposit found again in the same block keeps its final
// depth; in another block it counts again from there.
func (t DepthTable) ScannedIn(ctx context.Context, tx *sql.Tx, chainName string, tip int64, deps []Deposit, now time.Time) error {
	var args []any
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		q := `INSERT INTO deposit_depths (invoice_id, deposit_id, chain, block_height, final_depth, updated_at) VALUES (?, ?, ?, ?, 0, ?)` +
			strings.Repeat(`, (?, ?, ?, ?, 0, ?)`, len(args)/5-1) + ` ON CONFLICT (invoice_id, deposit_id) DO UPDATE SET chain = excluded.chain,
			block_height = excluded.block_height, updated_at = excluded.updated_at,
			final_depth = CASE WHEN deposit_depths.block_height = excluded.block_height THEN deposit_depths.final_depth ELSE 0 END`
		_, err := tx.ExecContext(ctx, t.db.Q(q), args...)
		args = args[:0]
		if err != nil {
			return fmt.Errorf("deposit depths: %w", err)
		}
		return nil
	}
	for _, d := range deps {
		if d.InvoiceID == "" {
			continue
		}
		args = append(args, d.InvoiceID, d.DepositID, chainName, d.BlockHeight, now.UnixMilli())
		if len(args) == 5*depositsPerInsert {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if tip >= 0 {
		return t.putTip(ctx, tx, chainName, tip, now)
	}
	return nil
}

func (t DepthTable) putTip(ctx context.Context, tx *sql.Tx, chainName string, tip int64, now time.Time) error {
	_, err := tx.ExecContext(ctx, t.db.Q(`INSERT INTO chain_tips (chain, height, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (chain) DO UPDATE SET height = excluded.height, updated_at = excluded.updated_at`), chainName, tip, now.UnixMilli())
	if err != nil {
		return fmt.Errorf("chain tip: %w", err)
	}
	return nil
}

// Rewound clears the blocks above fork and sets the tip to fork, in one
// transaction.
func (t DepthTable) Rewound(ctx context.Context, chainName string, fork int64, now time.Time) error {
	tx, err := t.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("deposit depths: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, t.db.Q(`UPDATE deposit_depths SET block_height = NULL, final_depth = 0, updated_at = ?
		WHERE chain = ? AND block_height > ?`), now.UnixMilli(), chainName, fork); err != nil {
		return fmt.Errorf("deposit depths: %w", err)
	}
	if err := t.putTip(ctx, tx, chainName, fork, now); err != nil {
		return err
	}
	return tx.Commit()
}

// Final records each deposit's depth below tip as where its count stops.
func (t DepthTable) Final(ctx context.Context, chainName string, deps []Deposit, tip int64, now time.Time) error {
	q := t.db.Q(`UPDATE deposit_depths SET final_depth = ?, updated_at = ? WHERE invoice_id = ? AND deposit_id = ? AND block_height = ?`)
	for _, d := range deps {
		if _, err := t.db.Write.ExecContext(ctx, q, tip-d.BlockHeight+1, now.UnixMilli(), d.InvoiceID, d.DepositID, d.BlockHeight); err != nil {
			return fmt.Errorf("deposit depths: %w", err)
		}
	}
	return nil
}

// CopyTo copies both tables into the read-model database to, whose own
// rows they replace: read models rebuilt from the log elsewhere show the
// same live counts as these (the tables are not in the log).
func (t DepthTable) CopyTo(ctx context.Context, to sqldb.DB) error {
	tx, err := to.Write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("copy depths: %w", err)
	}
	defer tx.Rollback()
	for _, table := range []struct{ name, cols string }{
		{"chain_tips", "chain, height, updated_at"},
		{"deposit_depths", "invoice_id, deposit_id, chain, block_height, final_depth, updated_at"},
	} {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+table.name); err != nil {
			return fmt.Errorf("copy depths: %w", err)
		}
		if err := copyRows(ctx, t.db, tx, to, table.name, table.cols); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func copyRows(ctx context.Context, from sqldb.DB, tx *sql.Tx, to sqldb.DB, table, cols string) error {
	rows, err := from.Read.QueryContext(ctx, `SELECT `+cols+` FROM `+table)
	if err != nil {
		return fmt.Errorf("copy %s: %w", table, err)
	}
	defer rows.Close()
	n := len(strings.Split(cols, ","))
	insert := to.Q(`INSERT INTO ` + table + ` (` + cols + `) VALUES (?` + strings.Repeat(`, ?`, n-1) + `)`)
	for rows.Next() {
		vals := make([]any, n)
		ptrs := make([]any, n)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("copy %s: %w", table, err)
		}
		if _, err := tx.ExecContext(ctx, insert, vals...); err != nil {
			return fmt.Errorf("copy %s: %w", table, err)
		}
	}
	return rows.Err()
}
