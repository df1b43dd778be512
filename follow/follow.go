// Package follow is the gateway's one log follower: a consumer reads the
// global log from its own checkpoint in bounded batches, and its effect and
// the checkpoint's move commit in one transaction, fenced on the stored
// checkpoint so that two followers of one name never both apply a batch.
// Loop drives any such step with one retry policy, the gather pause and
// metrics; Follower is the checkpointed step for consumers of a few event
// types (the webhook subscriber, the settlement, the payout intake).
// The projections runner keeps its own multi-projector step (read-ahead,
// shared statements, one checkpoint per projector) and runs it under Loop.
package follow

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acceptcryptohere/gateway/backoff"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// Retry is the pause after a failed batch: a follower stops rather than
// skips an event, and retries its batch from the checkpoint.
var Retry = backoff.Policy{Base: 100 * time.Millisecond, Max: 10 * time.Second}

// DefaultSaveEvery bounds how far a stored checkpoint may lag its follower
// when nothing it acts on goes by: a restart re-reads at most that much of
// the log, and handling again batches that wrote nothing is harmless.
const DefaultSaveEvery = time.Second

// ErrMoved: the stored checkpoint is not where the follower left it, so
// another follower of the same name is (or was) running. The follower
// reloads it and carries on from there.
var ErrMoved = errors.New("follow: checkpoint moved under the follower (another one running?)")

// Metrics counts what a follower did; cmd/picd reads it for /metrics. The
// zero value is ready; all methods are safe for concurrent use.
type Metrics struct {
	applied  atomic.Int64
	errors   atomic.Int64
	mu       sync.Mutex
	position eventstore.Position
}

// Applied is the number of events the follower handled (committed).
func (m *Metrics) Applied() int64 { return m.applied.Load() }

// Errors is the number of failed batches (each was retried).
func (m *Metrics) Errors() int64 { return m.errors.Load() }

// Position is where the follower has read to.
func (m *Metrics) Position() eventstore.Position {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.position
}

// AddApplied counts n more events handled.
func (m *Metrics) AddApplied(n int) { m.applied.Add(int64(n)) }

// SetPosition records where the follower has read to.
func (m *Metrics) SetPosition(pos eventstore.Position) {
	m.mu.Lock()
	m.position = pos
	m.mu.Unlock()
}

// StepFunc handles one batch. It returns whether more is readable at once
// and the position reached (what Loop waits for the log to pass).
type StepFunc func(ctx context.Context) (more bool, pos eventstore.Position, err error)

// Loop runs a step until ctx ends: at once while the step reports more,
// otherwise after the log moves past the step's position and the gather
// pause; after a failure, after Retry's pause.
type Loop struct {
	Store eventstore.Store
	// Gather is how long the follower lets appends accumulate after it is
	// woken, before it reads: a consumer of rare types would otherwise read
	// once per append batch. Zero or negative: none.
	Gather time.Duration
	// OnError is told of every failed step (default: nothing).
	OnError func(err error)
	// Metrics counts the errors and records the position (optional).
	Metrics *Metrics
}

// Run returns ctx's error when ctx ends.
func (l Loop) Run(ctx context.Context, step StepFunc) error {
	failures := 0
	for ctx.Err() == nil {
		more, pos, err := step(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if l.Metrics != nil {
				l.Metrics.errors.Add(1)
			}
			if l.OnError != nil {
				l.OnError(err)
			}
			failures++
			Retry.Wait(ctx, failures)
			continue
		}
		failures = 0
		if l.Metrics != nil {
			l.Metrics.SetPosition(pos)
		}
		if !more {
			if l.Store.Wait(ctx, pos) == nil && l.Gather > 0 {
				backoff.Sleep(ctx, l.Gather)
			}
		}
	}
	return ctx.Err()
}

// Checkpoint is where a follower's position is stored.
type Checkpoint interface {
	// Load returns the stored position as stored (writes fence on it).
	Load(ctx context.Context) (string, error)
	// Move sets the stored position from `from` to `to` inside tx, and
	// returns ErrMoved when it is not at `from`. It locks the row for the
	// rest of tx, so the effect written after it is fenced too.
	Move(ctx context.Context, tx *sql.Tx, from string, to eventstore.Position) error
}

// Table is a Checkpoint in a table of (name TEXT PRIMARY KEY, position TEXT,
// updated_at BIGINT Unix ms), one row per follower.
type Table struct {
	DB    sqldb.DB
	Table string // a constant: it is spliced into the SQL
	Name  string
	// Made: a migration creates the row (with columns of its own), so Load
	// only reads it; otherwise Load creates it at the start of the log.
	Made bool
	Now  func() time.Time // stamps updated_at (required)
}

var _ Checkpoint = Table{}

func (t Table) Load(ctx context.Context) (string, error) {
	if !t.Made {
		if _, err := t.DB.Write.ExecContext(ctx, t.DB.Q(`INSERT INTO `+t.Table+` (name, position, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO NOTHING`), t.Name, eventstore.Start.String(), t.Now().UnixMilli()); err != nil {
			return "", err
		}
	}
	var s string
	err := t.DB.Write.QueryRowContext(ctx, t.DB.Q(`SELECT position FROM `+t.Table+` WHERE name = ?`), t.Name).Scan(&s)
	return s, err
}

func (t Table) Move(ctx context.Context, tx *sql.Tx, from string, to eventstore.Position) error {
	res, err := tx.ExecContext(ctx, t.DB.Q(`UPDATE `+t.Table+` SET position = ?, updated_at = ? WHERE name = ? AND position = ?`),
		to.String(), t.Now().UnixMilli(), t.Name, from)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return ErrMoved
	}
	return nil
}

// Handler is what a Follower does with a batch. Each part is optional.
type Handler struct {
	// Prepare runs before the transaction (commands, which are idempotent;
	// reads of the log, which must not hold the SQLite writer). It reports
	// whether the batch has anything to write: a batch with nothing moves
	// the checkpoint in memory only, stored at most every SaveEvery.
	// Without Prepare, a batch writes when it has events.
	Prepare func(ctx context.Context, recs []eventstore.RecordedEvent) (write bool, err error)
	// Write runs in the transaction that moves the checkpoint, after it.
	Write func(ctx context.Context, tx *sql.Tx, recs []eventstore.RecordedEvent) error
	// Committed runs after the transaction commits.
	Committed func(recs []eventstore.RecordedEvent)
}

// Config configures a Follower.
type Config struct {
	Store      eventstore.Store
	DB         sqldb.DB // its writer runs the transactions
	Checkpoint Checkpoint
	// Types are the event types the follower acts on: the only ones it
	// reads. Stretches of the log without any only move the checkpoint.
	Types []string
	Batch int // events per batch, at most [500]
	// Gather: see Loop.Gather.
	Gather    time.Duration
	SaveEvery time.Duration // [DefaultSaveEvery]
	Now       func() time.Time
	// Name prefixes the errors (and the log line of OnError's default).
	Name    string
	Logger  *slog.Logger
	OnError func(err error) // [log "<Name> failed; retrying"]
}

// Follower reads Types from its checkpoint and hands each batch to a
// Handler, writing the effect and the checkpoint in one transaction.
type Follower struct {
	cfg     Config
	metrics Metrics

	loaded  bool
	pos     eventstore.Position // where this process has read to
	saved   string              // the checkpoint as stored, which writes fence on
	savedAt time.Time
}

// New prepares a follower; Run or Step it.
func New(cfg Config) *Follower {
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	if cfg.SaveEvery <= 0 {
		cfg.SaveEvery = DefaultSaveEvery
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.OnError == nil {
		log, name := cfg.Logger, cfg.Name
		cfg.OnError = func(err error) { log.Error(name+" failed; retrying", "err", err) }
	}
	return &Follower{cfg: cfg}
}

// Metrics are the follower's counters.
func (f *Follower) Metrics() *Metrics { return &f.metrics }

// Run steps h until ctx ends and returns ctx's error.
func (f *Follower) Run(ctx context.Context, h Handler) error {
	return f.Loop().Run(ctx, func(ctx context.Context) (bool, eventstore.Position, error) { return f.Step(ctx, h) })
}

// Loop is the loop Run uses, for callers that wrap Step.
func (f *Follower) Loop() Loop {
	return Loop{Store: f.cfg.Store, Gather: f.cfg.Gather, OnError: f.cfg.OnError, Metrics: &f.metrics}
}

// CatchUp handles everything now in the log and returns (for tools and
// tests that do not run the loop).
func (f *Follower) CatchUp(ctx context.Context, h Handler) error {
	for {
		more, _, err := f.Step(ctx, h)
		if err != nil || !more {
			return err
		}
	}
}

func (f *Follower) load(ctx context.Context) error {
	saved, err := f.cfg.Checkpoint.Load(ctx)
	if err != nil {
		return fmt.Errorf("%s: checkpoint: %w", f.cfg.Name, err)
	}
	pos, err := eventstore.ParsePosition(saved)
	if err != nil {
		return fmt.Errorf("%s: checkpoint: %w", f.cfg.Name, err)
	}
	f.pos, f.saved, f.savedAt, f.loaded = pos, saved, f.cfg.Now(), true
	return nil
}

// Step handles one batch after the checkpoint. It returns whether more may
// be readable at once, and the position reached.
func (f *Follower) Step(ctx context.Context, h Handler) (bool, eventstore.Position, error) {
	if !f.loaded {
		if err := f.load(ctx); err != nil {
			return false, eventstore.Start, err
		}
	}
	from := f.pos
	page, err := eventstore.ReadAllOfTypes(ctx, f.cfg.Store, from, f.cfg.Batch, f.cfg.Types)
	if err != nil || page.Reached == from {
		return false, from, err
	}
	recs, to := page.Events, page.Reached
	write := len(recs) > 0
	if h.Prepare != nil && len(recs) > 0 {
		if write, err = h.Prepare(ctx, recs); err != nil {
			return false, from, err
		}
	}
	if !write && f.cfg.Now().Sub(f.savedAt) < f.cfg.SaveEvery {
		f.pos = to
		f.metrics.AddApplied(len(recs))
		return page.More, to, nil
	}
	if err := f.commit(ctx, to, recs, h.Write); err != nil {
		// Another follower may have moved the checkpoint: read it again.
		f.loaded = false
		return false, from, err
	}
	f.pos, f.saved, f.savedAt = to, to.String(), f.cfg.Now()
	f.metrics.AddApplied(len(recs))
	if h.Committed != nil {
		h.Committed(recs)
	}
	return page.More, to, nil
}

func (f *Follower) commit(ctx context.Context, to eventstore.Position, recs []eventstore.RecordedEvent,
	write func(ctx context.Context, tx *sql.Tx, recs []eventstore.RecordedEvent) error) error {
	tx, err := f.cfg.DB.Write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := f.cfg.Checkpoint.Move(ctx, tx, f.saved, to); err != nil {
		if errors.Is(err, ErrMoved) {
			return fmt.Errorf("%s: %w", f.cfg.Name, err)
		}
		return fmt.Errorf("%s: checkpoint: %w", f.cfg.Name, err)
	}
	if write != nil && len(recs) > 0 {
		if err := write(ctx, tx, recs); err != nil {
			return err
		}
	}
	return tx.Commit()
}
