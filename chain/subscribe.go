package chain

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/projections"
)

//go:embed migrations
var migrations embed.FS

// Migrate creates or upgrades the chain package's tables (payout work and
// subscriber checkpoints) in the read-model database.
func Migrate(ctx context.Context, db projections.DB) error {
	return projections.ApplyMigrations(ctx, db, migrations, "migrations", "chain_migrations")
}

// subscription reads the global log from a named checkpoint in batches.
type subscription struct {
	store eventstore.Store
	db    projections.DB
	name  string
	batch int
}

// errMoved: another subscriber of the same name moved the checkpoint.
var errMoved = errors.New("chain: checkpoint moved under the subscriber (another one running?)")

// step handles one batch. act runs first, outside any database
// transaction (it may append to the event store, which on SQLite shares
// the write connection); then write and the checkpoint commit in one
// transaction, conditional on the checkpoint not having moved. act must be
// idempotent: after a crash between the two the batch is handled again.
// It returns the number of events handled (0: caught up) and the last position.
func (s subscription) step(ctx context.Context, act func(ctx context.Context, recs []eventstore.RecordedEvent) error,
	write func(ctx context.Context, tx *sql.Tx, recs []eventstore.RecordedEvent) error) (int, eventstore.Position, error) {
	if _, err := s.db.Write.ExecContext(ctx, s.db.Q(`INSERT INTO chain_checkpoints (name, position, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO NOTHING`), s.name, eventstore.Start.String(), time.Now().UnixMilli()); err != nil {
		return 0, eventstore.Start, fmt.Errorf("%s: checkpoint: %w", s.name, err)
	}
	var posText string
	if err := s.db.Write.QueryRowContext(ctx, s.db.Q(`SELECT position FROM chain_checkpoints WHERE name = ?`), s.name).Scan(&posText); err != nil {
		return 0, eventstore.Start, fmt.Errorf("%s: checkpoint: %w", s.name, err)
	}
	from, err := eventstore.ParsePosition(posText)
	if err != nil {
		return 0, eventstore.Start, err
	}
	recs, err := s.store.ReadAll(ctx, from, s.batch)
	if err != nil || len(recs) == 0 {
		return 0, from, err
	}
	if act != nil {
		if err := act(ctx, recs); err != nil {
			return 0, from, err
		}
	}
	to := recs[len(recs)-1].Position
	tx, err := s.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return 0, from, err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, s.db.Q(`UPDATE chain_checkpoints SET position = ?, updated_at = ? WHERE name = ? AND position = ?`),
		to.String(), time.Now().UnixMilli(), s.name, posText)
	if err != nil {
		return 0, from, err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return 0, from, errMoved
	}
	if write != nil {
		if err := write(ctx, tx, recs); err != nil {
			return 0, from, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, from, err
	}
	return len(recs), to, nil
}

// run steps until ctx ends, waiting for new events when caught up and
// backing off (bounded) after errors.
func (s subscription) run(ctx context.Context, onErr func(error), stepFn func(ctx context.Context) (int, eventstore.Position, error)) error {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		n, pos, err := stepFn(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			onErr(err)
			sleepCtx(ctx, backoff)
			backoff = min(backoff*2, 30*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		if n < s.batch {
			_ = s.store.Wait(ctx, pos)
		}
	}
	return ctx.Err()
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
