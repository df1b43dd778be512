package follow_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/follow"
	"github.com/acceptcryptohere/gateway/sqldb"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type bundle struct {
	store eventstore.Store
	db    sqldb.DB
	clock *clock
}

// setup opens a SQLite store with a checkpoint table and an effects table
// (one row per handled event id: a duplicate fails the insert).
func setup(t *testing.T) bundle {
	t.Helper()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "pic.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	db := sqldb.DB{Read: store.DB(), Write: store.WriteDB(), Dialect: sqldb.SQLite}
	for _, q := range []string{
		`CREATE TABLE test_checkpoints (name TEXT PRIMARY KEY, position TEXT NOT NULL, updated_at BIGINT NOT NULL)`,
		`CREATE TABLE test_effects (event_id TEXT PRIMARY KEY)`,
	} {
		if _, err := db.Write.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	return bundle{store: store, db: db, clock: &clock{t: time.Unix(1_700_000_000, 0)}}
}

func (b bundle) append(t *testing.T, typ string, n int) {
	t.Helper()
	for range n {
		id := fmt.Sprintf("evt_%s_%d", typ, time.Now().UnixNano())
		if _, err := b.store.Append(context.Background(), "s-"+id, eventstore.NoStream, []eventstore.EventData{{ID: id, Type: typ, Data: []byte(`{}`)}}); err != nil {
			t.Fatal(err)
		}
	}
}

func (b bundle) follower(name string, batch int) *follow.Follower {
	return follow.New(follow.Config{Store: b.store, DB: b.db, Name: name, Types: []string{"Wanted"}, Batch: batch, Now: b.clock.Now,
		Checkpoint: follow.Table{DB: b.db, Table: "test_checkpoints", Name: name, Now: b.clock.Now}})
}

// record is the effect: one row per event, in the follower's transaction.
func record(seen *[]int) follow.Handler {
	return follow.Handler{Write: func(ctx context.Context, tx *sql.Tx, recs []eventstore.RecordedEvent) error {
		*seen = append(*seen, len(recs))
		for _, r := range recs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO test_effects (event_id) VALUES (?)`, r.ID); err != nil {
				return err
			}
		}
		return nil
	}}
}

func (b bundle) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := b.db.Write.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (b bundle) stored(t *testing.T, name string) string {
	t.Helper()
	var s string
	if err := b.db.Write.QueryRow(`SELECT position FROM test_checkpoints WHERE name = ?`, name).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// Batches are bounded, only the follower's types reach the handler, and
// every one is applied exactly once with the checkpoint.
func TestBoundedBatchesOfTheTypes(t *testing.T) {
	b := setup(t)
	b.append(t, "Wanted", 5)
	b.append(t, "Other", 3)
	f := b.follower("bounded", 2)
	var sizes []int
	if err := f.CatchUp(context.Background(), record(&sizes)); err != nil {
		t.Fatal(err)
	}
	for _, n := range sizes {
		if n > 2 {
			t.Fatalf("a batch of %d events, want at most 2 (%v)", n, sizes)
		}
	}
	if got := b.count(t, `SELECT COUNT(*) FROM test_effects`); got != 5 {
		t.Fatalf("%d effects, want 5", got)
	}
	if got := f.Metrics().Applied(); got != 5 {
		t.Fatalf("Applied() = %d, want 5", got)
	}
}

// A failing effect leaves neither rows nor a moved checkpoint; the retry
// applies the batch once.
func TestEffectAndCheckpointCommitTogether(t *testing.T) {
	b := setup(t)
	b.append(t, "Wanted", 3)
	f := b.follower("atomic", 10)
	failing := follow.Handler{Write: func(ctx context.Context, tx *sql.Tx, recs []eventstore.RecordedEvent) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO test_effects (event_id) VALUES (?)`, recs[0].ID); err != nil {
			return err
		}
		return errors.New("effect failed half way")
	}}
	if _, _, err := f.Step(context.Background(), failing); err == nil {
		t.Fatal("a failing effect reported success")
	}
	if got := b.count(t, `SELECT COUNT(*) FROM test_effects`); got != 0 {
		t.Fatalf("%d effects survived a failed batch", got)
	}
	if got := b.stored(t, "atomic"); got != eventstore.Start.String() {
		t.Fatalf("checkpoint moved to %s by a failed batch", got)
	}
	var sizes []int
	if err := f.CatchUp(context.Background(), record(&sizes)); err != nil {
		t.Fatal(err)
	}
	if got := b.count(t, `SELECT COUNT(*) FROM test_effects`); got != 3 {
		t.Fatalf("%d effects after the retry, want 3", got)
	}
}

// Two followers of one name never both apply a batch: the second finds the
// checkpoint moved, reloads it and carries on after the first's batch.
func TestFencedOnTheStoredCheckpoint(t *testing.T) {
	b := setup(t)
	b.append(t, "Wanted", 2)
	one, two := b.follower("fenced", 10), b.follower("fenced", 10)
	var sizes []int
	// Both load the checkpoint at the start.
	if _, _, err := two.Step(context.Background(), follow.Handler{Prepare: func(context.Context, []eventstore.RecordedEvent) (bool, error) {
		return false, errors.New("not yet")
	}}); err == nil {
		t.Fatal("want the prepared failure")
	}
	if err := one.CatchUp(context.Background(), record(&sizes)); err != nil {
		t.Fatal(err)
	}
	_, _, err := two.Step(context.Background(), record(&sizes))
	if !errors.Is(err, follow.ErrMoved) {
		t.Fatalf("second follower: err = %v, want ErrMoved", err)
	}
	b.append(t, "Wanted", 1)
	if err := two.CatchUp(context.Background(), record(&sizes)); err != nil {
		t.Fatal(err)
	}
	if got := b.count(t, `SELECT COUNT(*) FROM test_effects`); got != 3 {
		t.Fatalf("%d effects, want 3 (each event once)", got)
	}
}

// Batches with nothing to write move the checkpoint in memory, and store
// it once SaveEvery has passed.
func TestQuietStretchesSaveEverySecond(t *testing.T) {
	b := setup(t)
	f := b.follower("quiet", 10)
	var sizes []int
	b.append(t, "Other", 2)
	if err := f.CatchUp(context.Background(), record(&sizes)); err != nil {
		t.Fatal(err)
	}
	if got := b.stored(t, "quiet"); got != eventstore.Start.String() {
		t.Fatalf("checkpoint stored at %s within SaveEvery", got)
	}
	b.clock.Advance(follow.DefaultSaveEvery)
	b.append(t, "Other", 1)
	if err := f.CatchUp(context.Background(), record(&sizes)); err != nil {
		t.Fatal(err)
	}
	if got := b.stored(t, "quiet"); got == eventstore.Start.String() {
		t.Fatal("checkpoint not stored after SaveEvery")
	}
	if len(sizes) != 0 {
		t.Fatalf("the handler wrote %v for events of other types", sizes)
	}
}

// Loop retries a failing step with the backoff, counts the failures and
// follows the log once the step succeeds.
func TestLoopRetriesAndCounts(t *testing.T) {
	b := setup(t)
	b.append(t, "Wanted", 1)
	f := b.follower("loop", 10)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	failures := 0
	var mu sync.Mutex
	var sizes []int
	h := record(&sizes)
	inner := h.Write
	h.Write = func(ctx context.Context, tx *sql.Tx, recs []eventstore.RecordedEvent) error {
		mu.Lock()
		defer mu.Unlock()
		if failures < 2 {
			failures++
			return errors.New("database down")
		}
		return inner(ctx, tx, recs)
	}
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, h) }()
	for b.count(t, `SELECT COUNT(*) FROM test_effects`) < 1 {
		time.Sleep(5 * time.Millisecond)
	}
	b.append(t, "Wanted", 2)
	for b.count(t, `SELECT COUNT(*) FROM test_effects`) < 3 {
		if ctx.Err() != nil {
			t.Fatal("the loop did not follow the log")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run returned %v, want ctx's error", err)
	}
	m := f.Metrics()
	if m.Errors() != 2 || m.Applied() != 3 {
		t.Fatalf("Errors, Applied = %d, %d; want 2, 3", m.Errors(), m.Applied())
	}
	if m.Position() == eventstore.Start {
		t.Fatal("Position not recorded")
	}
}
