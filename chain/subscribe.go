package chain

import (
	"context"
	"database/sql"
	"embed"
	"sync"
	"time"

	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/follow"
	"github.com/acceptcryptohere/gateway/sqldb"
)

//go:embed migrations
var migrations embed.FS

// Migrate creates or upgrades the chain package's tables (payout work and
// subscriber checkpoints) in the read-model database.
func Migrate(ctx context.Context, db sqldb.DB) error {
	return sqldb.ApplyMigrations(ctx, db, migrations, "migrations", "chain_migrations")
}

// The subscriptions' names in chain_checkpoints.
const (
	payoutIntakeName = "payout_intake"
	settlementName   = "settlement"
)

// subscription reads the global log from a named checkpoint
// (chain_checkpoints) in batches: a follow.Follower.
type subscription struct {
	store eventstore.Store
	db    sqldb.DB
	name  string
	batch int
	// types are the event types the subscriber acts on: the only ones it
	// reads. Stretches of the log without any move the checkpoint in memory
	// and write it at most every follow.DefaultSaveEvery, so idle
	// subscribers do not take the writer from appends.
	types []string

	// gather is how long the subscriber lets appends accumulate after it
	// is woken before it reads: its types are rare, and a read per append
	// batch cost a few per cent of the CPU of creating invoices.
	gather time.Duration

	once sync.Once // makes f: payout.go builds subscriptions as literals
	f    *follow.Follower
}

// gatherRare is the gather pause of the payout intake and the settlement:
// a payout request or a confirmed deposit waits at most this much longer.
const gatherRare = 25 * time.Millisecond

func (s *subscription) follower() *follow.Follower {
	s.once.Do(func() {
		s.f = follow.New(follow.Config{Store: s.store, DB: s.db, Name: s.name, Types: s.types, Batch: s.batch, Gather: s.gather,
			Checkpoint: follow.Table{DB: s.db, Table: "chain_checkpoints", Name: s.name, Now: time.Now}})
	})
	return s.f
}

// step handles one batch of the subscriber's types after the checkpoint:
// act runs first (commands, which are idempotent), then write runs in the
// transaction that moves the stored checkpoint, fenced on its stored value.
// It returns whether more may be readable at once, and the position reached.
func (s *subscription) step(ctx context.Context, act func(ctx context.Context, recs []eventstore.RecordedEvent) error,
	write func(ctx context.Context, tx *sql.Tx, recs []eventstore.RecordedEvent) error) (bool, eventstore.Position, error) {
	h := follow.Handler{Write: write}
	if act != nil {
		h.Prepare = func(ctx context.Context, recs []eventstore.RecordedEvent) (bool, error) { return true, act(ctx, recs) }
	}
	return s.follower().Step(ctx, h)
}

// run loops stepFn (a step of this subscription) until ctx ends, telling
// onErr of each failure and retrying with follow.Retry's pause.
func (s *subscription) run(ctx context.Context, onErr func(error), stepFn func(ctx context.Context) (bool, eventstore.Position, error)) error {
	loop := s.follower().Loop()
	loop.OnError = onErr
	return loop.Run(ctx, stepFn)
}

// metrics are the subscription's counters (events handled, failed batches,
// position).
func (s *subscription) metrics() *follow.Metrics { return s.follower().Metrics() }

// IntakeMetrics are the payout intake's follower counters.
func (p *Processor) IntakeMetrics() *follow.Metrics { return p.intake.metrics() }

// Metrics are the settlement's follower counters.
func (s *Settlement) Metrics() *follow.Metrics { return s.sub.metrics() }

// StartSubscribersAt sets the checkpoints of the payout intake and the
// settlement to pos, for a store filled with a history whose payouts and
// settlements are already written (picd generate): a gateway that lived it
// would have them there, not at the log's start. Run Migrate on db first.
func StartSubscribersAt(ctx context.Context, db sqldb.DB, pos eventstore.Position) error {
	for _, name := range []string{payoutIntakeName, settlementName} {
		if _, err := db.Write.ExecContext(ctx, db.Q(`INSERT INTO chain_checkpoints (name, position, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at`),
			name, pos.String(), time.Now().UnixMilli()); err != nil {
			return err
		}
	}
	return nil
}
