package chain

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/acceptcryptohere/gateway/backoff"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/sqldb"
)

//go:embed migrations
var migrations embed.FS

// Migrate creates or upgrades the chain package's tables (payout work and
// subscriber checkpoints) in the read-model database.
func Migrate(ctx context.Context, db sqldb.DB) error {
	return sqldb.ApplyMigrations(ctx, db, migrations, "migrations", "chain_migrations")
}

// subscription reads the global log from a named checkpoint in batches.
type subscription struct {
	store eventstore.Store
	db    sqldb.DB
	name  string
	batch int
	// types are the event types the subscriber acts on: the only ones it
	// reads. Stretches of the log without any move the checkpoint in memory
	// and write it at most every saveEvery, so idle subscribers do not take
	// the writer from appends.
	types []string

	// gather is how long the subscriber lets appends accumulate after it
	// is woken before it reads: its types are rare, and a read per append
	// batch cost a few per cent of the CPU of creating invoices.
	gather time.Duration

	loaded  bool
	pos     eventstore.Position // where this process has read to
	saved   string              // the checkpoint as stored, which writes fence on
	savedAt time.Time
}

// saveEvery bounds how far behind a subscriber's stored checkpoint may lag
// its reading when nothing it acts on goes by: a restart re-reads at most
// that much, and acting again on nothing is harmless.
const saveEvery = time.Second

// gatherRare is the gather pause of the payout intake and the settlement:
// a payout request or a confirmed deposit waits at most this much longer.
const gatherRare = 25 * time.Millisecond

var errMoved = errors.New("chain: checkpoint moved under the subscriber (another one running?)")

func (s *subscription) load(ctx context.Context) error {
	if _, err := s.db.Write.ExecContext(ctx, s.db.Q(`INSERT INTO chain_checkpoints (name, position, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO NOTHING`), s.name, eventstore.Start.String(), time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("%s: checkpoint: %w", s.name, err)
	}
	if err := s.db.Write.QueryRowContext(ctx, s.db.Q(`SELECT position FROM chain_checkpoints WHERE name = ?`), s.name).Scan(&s.saved); err != nil {
		return fmt.Errorf("%s: checkpoint: %w", s.name, err)
	}
	pos, err := eventstore.ParsePosition(s.saved)
	if err != nil {
		return err
	}
	s.pos, s.savedAt, s.loaded = pos, time.Now(), true
	return nil
}

// step handles one batch of the subscriber's types after the checkpoint:
// act runs first (commands, which are idempotent), then write runs in the
// transaction that moves the stored checkpoint, fenced on its stored value.
// It returns whether more may be readable at once, and the position reached.
func (s *subscription) step(ctx context.Context, act func(ctx context.Context, recs []eventstore.RecordedEvent) error,
	write func(ctx context.Context, tx *sql.Tx, recs []eventstore.RecordedEvent) error) (bool, eventstore.Position, error) {
	if !s.loaded {
		if err := s.load(ctx); err != nil {
			return false, eventstore.Start, err
		}
	}
	from := s.pos
	page, err := eventstore.ReadAllOfTypes(ctx, s.store, from, s.batch, s.types)
	if err != nil || page.Reached == from {
		return false, from, err
	}
	recs, to := page.Events, page.Reached
	if len(recs) == 0 && time.Since(s.savedAt) < saveEvery {
		s.pos = to
		return page.More, to, nil
	}
	if act != nil && len(recs) > 0 {
		if err := act(ctx, recs); err != nil {
			return false, from, err
		}
	}
	tx, err := s.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return false, from, err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, s.db.Q(`UPDATE chain_checkpoints SET position = ?, updated_at = ? WHERE name = ? AND position = ?`),
		to.String(), time.Now().UnixMilli(), s.name, s.saved)
	if err != nil {
		return false, from, err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		s.loaded = false // re-read what the other subscriber stored
		return false, from, errMoved
	}
	if write != nil && len(recs) > 0 {
		if err := write(ctx, tx, recs); err != nil {
			return false, from, err
		}
	}
	if err := tx.Commit(); err != nil {
		return false, from, err
	}
	s.pos, s.saved, s.savedAt = to, to.String(), time.Now()
	return page.More, to, nil
}

func (s *subscription) run(ctx context.Context, onErr func(error), stepFn func(ctx context.Context) (bool, eventstore.Position, error)) error {
	failures := 0
	for ctx.Err() == nil {
		more, pos, err := stepFn(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			onErr(err)
			failures++
			subscriptionRetry.Wait(ctx, failures)
			continue
		}
		failures = 0
		if !more {
			if s.store.Wait(ctx, pos) == nil && s.gather > 0 {
				backoff.Sleep(ctx, s.gather)
			}
		}
	}
	return ctx.Err()
}

// subscriptionRetry paces the retries of a failing batch.
var subscriptionRetry = backoff.Policy{Base: 100 * time.Millisecond, Max: 30 * time.Second}
