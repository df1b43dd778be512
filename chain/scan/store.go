package scan

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// Point is a block by height and id (hash): a checkpoint, the last
// block scanned completely, or a recent block kept to find a fork point.
type Point struct {
	Height int64
	Block  string
}

// Deposit is a row of <prefix>_deposits.
type Deposit struct {
	DepositID             string
	Asset                 string
	Address               string
	TxID                  string
	Amount                string
	InvoiceID             string
	RequiredConfirmations int
	BlockHeight           int64
	Block                 string
	State                 string
	Confirmed             bool
}

// ErrNoCheckpoint: the watcher never scanned a block.
var ErrNoCheckpoint = errors.New("no scan checkpoint")

// Store keeps the scan state of a chain's Scanner in the read-model
// database: its checkpoint, the recent block ids that locate a reorg's
// fork point, the deposits it reported, and its node's identity. The chains have the same tables under their own prefix
// (<prefix>_scan_checkpoint, <prefix>_blocks, <prefix>_deposits, <prefix>_node_identity), with
// their own name for a block's id.
type Store struct {
	db     sqldb.DB
	prefix string
	q      queries
	// The node's identity, in <prefix>_node_identity (WithIdentity);
	// kept in memory only without it (the simulator).
	IdentityTable
}

type queries struct {
	checkpoint, updateCheckpoint, insertCheckpoint                                     string
	recentBlocks, putBlock, dropBlocksAbove, dropBlocksBelow                           string
	orphan, orphanFinal, insertDeposits, upsertDeposits, deposits, confirmed, setState string
}

// NewStore returns the store over the tables named prefix_…; blockCol
// is the block id's column in the checkpoint and blocks tables,
// depositBlockCol in the deposits table. Both are identifiers of our own
// migrations, never input.
func NewStore(db sqldb.DB, prefix, blockCol, depositBlockCol string) Store {
	cp, blocks, deps := prefix+"_scan_checkpoint", prefix+"_blocks", prefix+"_deposits"
	return Store{db: db, prefix: prefix, q: queries{
		checkpoint:       `SELECT height, ` + blockCol + ` FROM ` + cp + ` WHERE id = 1`,
		updateCheckpoint: db.Q(`UPDATE ` + cp + ` SET height = ?, ` + blockCol + ` = ?, updated_at = ? WHERE id = 1`),
		insertCheckpoint: db.Q(`INSERT INTO ` + cp + ` (id, height, ` + blockCol + `, updated_at) VALUES (1, ?, ?, ?)`),
		recentBlocks:     db.Q(`SELECT height, ` + blockCol + ` FROM ` + blocks + ` WHERE height <= ? ORDER BY height DESC LIMIT ?`),
		putBlock: db.Q(`INSERT INTO ` + blocks + ` (height, ` + blockCol + `) VALUES (?, ?)
			ON CONFLICT (height) DO UPDATE SET ` + blockCol + ` = excluded.` + blockCol),
		dropBlocksAbove: db.Q(`DELETE FROM ` + blocks + ` WHERE height > ?`),
		dropBlocksBelow: db.Q(`DELETE FROM ` + blocks + ` WHERE height < ?`),
		orphan:          db.Q(`UPDATE ` + deps + ` SET state = ?, updated_at = ? WHERE block_height > ? AND state IN (?, ?)`),
		orphanFinal:     db.Q(`UPDATE ` + deps + ` SET state = ?, updated_at = ? WHERE state = ? AND block_height > ?`),
		insertDeposits: `INSERT INTO ` + deps + ` (deposit_id, asset, address, txid, amount, invoice_id, required_confirmations,
			block_height, ` + depositBlockCol + `, state, confirmed, updated_at) VALUES `,
		upsertDeposits: ` ON CONFLICT (deposit_id) DO UPDATE SET invoice_id = excluded.invoice_id,
			required_confirmations = excluded.required_confirmations, block_height = excluded.block_height,
			` + depositBlockCol + ` = excluded.` + depositBlockCol + `, state = excluded.state,
			confirmed = CASE WHEN ` + deps + `.state = '` + chain.ScanReverted + `' THEN 0 ELSE ` + deps + `.confirmed END,
			updated_at = excluded.updated_at`,
		deposits: `SELECT deposit_id, asset, address, txid, amount, invoice_id, required_confirmations, block_height, ` +
			depositBlockCol + `, state, confirmed FROM ` + deps + ` WHERE state = ?`,
		confirmed: db.Q(`UPDATE ` + deps + ` SET confirmed = 1, updated_at = ? WHERE deposit_id = ?`),
		setState:  db.Q(`UPDATE ` + deps + ` SET state = ?, confirmed = ?, updated_at = ? WHERE deposit_id = ?`),
	}}
}

// Checkpoint is the last block scanned completely. Errors:
// ErrNoCheckpoint before the first scan, database errors.
func (s Store) Checkpoint(ctx context.Context) (Point, error) {
	var cp Point
	err := s.db.Read.QueryRowContext(ctx, s.q.checkpoint).Scan(&cp.Height, &cp.Block)
	if errors.Is(err, sql.ErrNoRows) {
		return Point{}, fmt.Errorf("%s: %w", s.prefix, ErrNoCheckpoint)
	}
	if err != nil {
		return Point{}, fmt.Errorf("%s checkpoint: %w", s.prefix, err)
	}
	return cp, nil
}

// RecentBlocks returns the stored blocks at or below height, newest first.
func (s Store) RecentBlocks(ctx context.Context, height int64, limit int) ([]Point, error) {
	rows, err := s.db.Read.QueryContext(ctx, s.q.recentBlocks, height, limit)
	if err != nil {
		return nil, fmt.Errorf("%s blocks: %w", s.prefix, err)
	}
	defer rows.Close()
	var out []Point
	for rows.Next() {
		var b Point
		if err := rows.Scan(&b.Height, &b.Block); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// Rewind moves the checkpoint back to the fork block and marks the deposits
// of the blocks above it orphaned, in one transaction: seen and unmatched
// ones (orphaned), and final ones (finals), which only a reorg deeper than
// finality removes. Orphaned deposits found again by the rescan become
// seen; the rest are reverted once the scan has caught up with the chain.
func (s Store) Rewind(ctx context.Context, fork Point, now time.Time) (orphaned, finals int64, err error) {
	tx, err := s.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, s.q.orphan, chain.ScanOrphaned, now.UnixMilli(), fork.Height, chain.ScanSeen, chain.ScanUnmatched)
	if err != nil {
		return 0, 0, fmt.Errorf("%s rewind: %w", s.prefix, err)
	}
	orphaned, _ = res.RowsAffected()
	res, err = tx.ExecContext(ctx, s.q.orphanFinal, chain.ScanOrphaned, now.UnixMilli(), chain.ScanFinal, fork.Height)
	if err != nil {
		return 0, 0, fmt.Errorf("%s rewind: %w", s.prefix, err)
	}
	finals, _ = res.RowsAffected()
	if _, err := tx.ExecContext(ctx, s.q.dropBlocksAbove, fork.Height); err != nil {
		return 0, 0, fmt.Errorf("%s rewind: %w", s.prefix, err)
	}
	if err := s.putCheckpoint(ctx, tx, fork, now); err != nil {
		return 0, 0, err
	}
	return orphaned, finals, tx.Commit()
}

func (s Store) putCheckpoint(ctx context.Context, tx *sql.Tx, cp Point, now time.Time) error {
	res, err := tx.ExecContext(ctx, s.q.updateCheckpoint, cp.Height, cp.Block, now.UnixMilli())
	if err != nil {
		return fmt.Errorf("%s checkpoint: %w", s.prefix, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := tx.ExecContext(ctx, s.q.insertCheckpoint, cp.Height, cp.Block, now.UnixMilli()); err != nil {
			return fmt.Errorf("%s checkpoint: %w", s.prefix, err)
		}
	}
	return nil
}

// CommitRange records a scanned range: its blocks, the deposits found in
// it and the new checkpoint (its last block), in one transaction; blocks
// older than keep are pruned.
func (s Store) CommitRange(ctx context.Context, blocks []Point, deps []Deposit, keep int, now time.Time) error {
	return s.CommitRangeWith(ctx, blocks, deps, keep, now, nil)
}

// CommitRangeWith is CommitRange that also runs also (when not nil) in
// its transaction.
func (s Store) CommitRangeWith(ctx context.Context, blocks []Point, deps []Deposit, keep int, now time.Time, also func(*sql.Tx) error) error {
	tx, err := s.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, b := range blocks {
		if b.Block == "" {
			continue // a first checkpoint with no id (Config.AnchorFirst)
		}
		if _, err := tx.ExecContext(ctx, s.q.putBlock, b.Height, b.Block); err != nil {
			return fmt.Errorf("%s blocks: %w", s.prefix, err)
		}
	}
	if err := s.upsertDeposits(ctx, tx, deps, now); err != nil {
		return err
	}
	last := blocks[len(blocks)-1]
	if _, err := tx.ExecContext(ctx, s.q.dropBlocksBelow, last.Height-int64(keep)); err != nil {
		return fmt.Errorf("%s blocks: %w", s.prefix, err)
	}
	if err := s.putCheckpoint(ctx, tx, last, now); err != nil {
		return err
	}
	if also != nil {
		if err := also(tx); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// depositsPerInsert bounds the rows of one INSERT (12 parameters each).
const depositsPerInsert = 50

// upsertDeposits records deposits found in canonical blocks, a few dozen
// per statement. One seen again keeps its confirmed flag, unless it had
// been reverted: then the ledger detected it afresh and it must be
// confirmed again. deps holds each deposit once.
func (s Store) upsertDeposits(ctx context.Context, tx *sql.Tx, deps []Deposit, now time.Time) error {
	for len(deps) > 0 {
		n := min(len(deps), depositsPerInsert)
		chunk := deps[:n]
		deps = deps[n:]
		var q strings.Builder
		q.WriteString(s.q.insertDeposits)
		args := make([]any, 0, len(chunk)*12)
		for i, d := range chunk {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
			args = append(args, d.DepositID, d.Asset, d.Address, d.TxID, d.Amount, d.InvoiceID, d.RequiredConfirmations,
				d.BlockHeight, d.Block, d.State, boolInt(d.Confirmed), now.UnixMilli())
		}
		q.WriteString(s.q.upsertDeposits)
		if _, err := tx.ExecContext(ctx, s.db.Q(q.String()), args...); err != nil {
			return fmt.Errorf("%s deposits: %w", s.prefix, err)
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

// Deposits lists the deposits in a state in blocks at or below through,
// oldest block first; unconfirmedOnly narrows to those not yet credited.
func (s Store) Deposits(ctx context.Context, state string, unconfirmedOnly bool, through int64) ([]Deposit, error) {
	q := s.q.deposits + ` AND block_height <= ?`
	if unconfirmedOnly {
		q += ` AND confirmed = 0`
	}
	rows, err := s.db.Read.QueryContext(ctx, s.db.Q(q+` ORDER BY block_height, deposit_id`), state, through)
	if err != nil {
		return nil, fmt.Errorf("%s deposits: %w", s.prefix, err)
	}
	defer rows.Close()
	var out []Deposit
	for rows.Next() {
		var d Deposit
		if err := rows.Scan(&d.DepositID, &d.Asset, &d.Address, &d.TxID, &d.Amount, &d.InvoiceID, &d.RequiredConfirmations,
			&d.BlockHeight, &d.Block, &d.State, &d.Confirmed); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// MarkConfirmed records, in one transaction, that the ledger credited the
// deposits.
func (s Store) MarkConfirmed(ctx context.Context, depositIDs []string, now time.Time) error {
	return s.eachInOneTx(ctx, "confirmed", depositIDs, s.q.confirmed, func(id string) []any { return []any{now.UnixMilli(), id} })
}

// MarkFinal records, in one transaction, that the deposits are final.
func (s Store) MarkFinal(ctx context.Context, depositIDs []string, now time.Time) error {
	return s.eachInOneTx(ctx, "final", depositIDs, s.q.setState, func(id string) []any {
		return []any{chain.ScanFinal, 1, now.UnixMilli(), id}
	})
}

// eachInOneTx runs stmt with args(id) for every id, in one transaction.
func (s Store) eachInOneTx(ctx context.Context, what string, ids []string, stmt string, args func(id string) []any) error {
	if len(ids) == 0 {
		return nil
	}
	tx, err := s.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s %s: %w", s.prefix, what, err)
	}
	defer tx.Rollback()
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, stmt, args(id)...); err != nil {
			return fmt.Errorf("%s deposit %s: %w", s.prefix, id, err)
		}
	}
	return tx.Commit()
}

// SetState sets a deposit's state and confirmed flag.
func (s Store) SetState(ctx context.Context, depositID, state string, confirmed bool, now time.Time) error {
	if _, err := s.db.Write.ExecContext(ctx, s.q.setState, state, boolInt(confirmed), now.UnixMilli(), depositID); err != nil {
		return fmt.Errorf("%s deposit %s: %w", s.prefix, depositID, err)
	}
	return nil
}

// WatchedAfter returns the pay addresses of the asset's invoices created
// after the cursor, in log order, at most limit, and the cursor of the
// last one (after itself when none).
func (s Store) WatchedAfter(ctx context.Context, asset string, after WatchCursor, limit int) ([]string, WatchCursor, error) {
	addrs, next, err := WatchedAfter(ctx, s.db, asset, after, limit)
	if err != nil {
		return nil, after, fmt.Errorf("%s watched addresses: %w", s.prefix, err)
	}
	return addrs, next, nil
}

// WatchCursor is where a read of new invoices got to: the log position of
// the newest InvoiceCreated read (the read model's created_commit,
// created_prepare), and its invoice id, which orders the invoices
// projected before the column existed (all at 0/0).
type WatchCursor struct {
	Commit, Prepare int64
	InvoiceID       string
}

// WatchFromStart is the cursor before every invoice, those without a
// position (0/0) included.
var WatchFromStart = WatchCursor{Commit: -1, Prepare: -1}

// WatchedAfter reads the pay addresses of the asset's invoices whose
// InvoiceCreated comes after the cursor in the log, oldest first, at most
// limit (index invoices_asset_created_position), and returns the cursor of
// the last one read. Invoices at one position (only those projected before
// the position was kept: 0/0) are ordered by id, so that a read in pages
// goes through them all. The cost is that of the rows read: a watcher that
// reads again from the returned cursor reads each invoice once.
//
// None is missed, whatever the order in which concurrent writers appended
// them: only the projections runner writes invoice rows, and it applies
// the log in position order (the event stores hand a reader only a prefix
// of the log without gaps: Postgres readers stop below the oldest open
// append), committing each batch with its checkpoint in one transaction
// that only one runner at a time can commit (projections.Runner.fence). So
// the rows visible at any moment are exactly those of the log up to the
// invoices projector's checkpoint, and a row below a position already read
// is never committed afterwards. A rebuild swaps in tables built from the
// same log, with the same positions, once caught up with the live ones.
// created_at would not do: invoices are stamped by the clocks of the
// processes that create them and reach the log (and the read model) in
// another order.
func WatchedAfter(ctx context.Context, db sqldb.DB, asset string, after WatchCursor, limit int) ([]string, WatchCursor, error) {
	rows, err := db.Read.QueryContext(ctx, db.Q(`SELECT pay_address, created_commit, created_prepare, invoice_id FROM invoices
		WHERE asset = ? AND created_commit >= ?
			AND (created_commit > ? OR created_prepare > ? OR (created_prepare = ? AND invoice_id > ?))
		ORDER BY created_commit, created_prepare, invoice_id LIMIT ?`),
		asset, after.Commit, after.Commit, after.Prepare, after.Prepare, after.InvoiceID, limit)
	if err != nil {
		return nil, after, err
	}
	defer rows.Close()
	var addrs []string
	for rows.Next() {
		var a string
		if err := rows.Scan(&a, &after.Commit, &after.Prepare, &after.InvoiceID); err != nil {
			return nil, after, err
		}
		addrs = append(addrs, a)
	}
	return addrs, after, rows.Err()
}

// RequiredConfirmations is what the invoice's domain rule demands, from
// the read model; 0 when the invoice is not there (yet).
func (s Store) RequiredConfirmations(ctx context.Context, invoiceID string) (int, error) {
	var n int
	err := s.db.Read.QueryRowContext(ctx, s.db.Q(`SELECT required_confirmations FROM invoices WHERE invoice_id = ?`), invoiceID).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("%s invoice %s: %w", s.prefix, invoiceID, err)
	}
	return n, nil
}
