package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/postgres"
	"github.com/acceptcryptohere/gateway/eventstore/storetest"
)

const defaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

func dsn() string {
	if v := os.Getenv("PIC_TEST_POSTGRES_URL"); v != "" {
		return v
	}
	return defaultDSN
}

// freshSchema creates nothing yet but reserves a random schema name that is
// dropped when the test ends. CI guarantees Postgres, so an unreachable
// server fails the test unless PIC_SKIP_POSTGRES=1.
func freshSchema(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn())
	if err != nil {
		if os.Getenv("PIC_SKIP_POSTGRES") == "1" {
			t.Skipf("postgres unreachable (PIC_SKIP_POSTGRES=1): %v", err)
		}
		t.Fatalf("postgres at %s unreachable (set PIC_TEST_POSTGRES_URL, or PIC_SKIP_POSTGRES=1 to skip): %v", dsn(), err)
	}
	_ = conn.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "estest_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn())
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// open returns a migrated store in schema, closed when the test ends.
func open(t testing.TB, schema string) *postgres.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := postgres.Open(ctx, dsn(), postgres.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

func newStore(t testing.TB) eventstore.Store { return open(t, freshSchema(t)) }

func TestContract(t *testing.T) {
	storetest.Run(t, newStore)
}

func BenchmarkAppend(b *testing.B) {
	storetest.Bench(b, newStore)
}

// BenchmarkAppendBatchesInFlight compares one batch in flight with several,
// in one run, at 16 concurrent appenders.
func BenchmarkAppendBatchesInFlight(b *testing.B) {
	for _, n := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("inflight=%d", n), func(b *testing.B) {
			storetest.Bench(b, func(t testing.TB) eventstore.Store {
				schema := freshSchema(t)
				s, err := postgres.Open(context.Background(), dsn(), postgres.WithSchema(schema), postgres.WithWriters(n))
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Migrate(context.Background()); err != nil {
					t.Fatal(err)
				}
				return s
			})
		})
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	schema := freshSchema(t)
	s := open(t, schema)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.Migrate(ctx)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("migrate again: %v", err)
		}
	}
	if _, err := s.Append(ctx, "m-1", eventstore.NoStream, []eventstore.EventData{{ID: storetest.NewEventID(), Type: "X", Data: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
}

// TestReadAllHoldsBackBehindOpenTransaction is the ordering trap: a
// transaction that took its id first but commits last must not be skipped.
func TestReadAllHoldsBackBehindOpenTransaction(t *testing.T) {
	schema := freshSchema(t)
	s := open(t, schema)
	ctx := context.Background()

	conn, err := pgx.Connect(ctx, dsn())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	// Another process's writer, mid-transaction, with the older xid.
	if _, err := tx.Exec(ctx, `INSERT INTO `+pgx.Identifier{schema, "events"}.Sanitize()+
		` (event_id, stream, version, type, data) VALUES ($1, 'slow', 0, 'Slow', '\x7b7d')`, storetest.NewEventID()); err != nil {
		t.Fatal(err)
	}
	fast, err := s.Append(ctx, "fast", eventstore.NoStream, []eventstore.EventData{{ID: storetest.NewEventID(), Type: "Fast", Data: []byte(`{}`)}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.ReadAll(ctx, eventstore.Start, 10); err != nil || len(got) != 0 {
		t.Fatalf("ReadAll while an older transaction runs = %d events, %v; want none", len(got), err)
	}
	if got, _ := s.ReadStream(ctx, "fast", 0, 10); len(got) != 1 {
		t.Fatalf("ReadStream sees %d events, want the committed one", len(got))
	}
	// Wait wakes on the slow commit even though it sends no notification.
	woke := make(chan error, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		woke <- s.Wait(wctx, eventstore.Start)
	}()
	time.Sleep(50 * time.Millisecond)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-woke; err != nil {
		t.Fatalf("wait: %v", err)
	}
	// Other transactions of the cluster (tests of other packages run in
	// parallel) may hold reads back a little longer: poll, bounded.
	var got []eventstore.RecordedEvent
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got, err = s.ReadAll(ctx, eventstore.Start, 10)
		if err != nil || len(got) == 2 || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || len(got) != 2 {
		t.Fatalf("ReadAll after commit = %d events, %v; want 2", len(got), err)
	}
	if got[0].Stream != "slow" || got[1].Stream != "fast" || got[1].Position != fast.Position {
		t.Fatalf("order %s, %s (%v, append said %v); want slow then fast", got[0].Stream, got[1].Stream, got[1].Position, fast.Position)
	}
}

// TestTwoProcesses: two stores on one schema race like two picd processes;
// lost races come back as unique violations and are decided again.
func TestTwoProcesses(t *testing.T) {
	schema := freshSchema(t)
	a, b := open(t, schema), open(t, schema)
	ctx := context.Background()
	stores := []*postgres.Store{a, b}
	for round := 0; round < 20; round++ {
		stream := "race-" + storetest.NewEventID()
		var wins, conflicts atomic.Int32
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func(s *postgres.Store) {
				defer wg.Done()
				_, err := s.Append(ctx, stream, eventstore.NoStream, []eventstore.EventData{{ID: storetest.NewEventID(), Type: "Opened", Data: []byte(`{}`)}})
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, eventstore.ErrConflict):
					conflicts.Add(1)
				default:
					t.Errorf("append: %v", err)
				}
			}(stores[w%2])
		}
		wg.Wait()
		if wins.Load() != 1 || conflicts.Load() != 7 {
			t.Fatalf("round %d: %d wins, %d conflicts; want 1 and 7", round, wins.Load(), conflicts.Load())
		}
		// The same command retried on both processes: one copy, same result.
		dupStream := "dup-" + storetest.NewEventID()
		evs := []eventstore.EventData{{ID: storetest.NewEventID(), Type: "Created", Data: []byte(`{}`)}, {ID: storetest.NewEventID(), Type: "Created", Data: []byte(`{}`)}}
		results := make([]eventstore.AppendResult, 8)
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				res, err := stores[w%2].Append(ctx, dupStream, eventstore.NoStream, evs)
				if err != nil {
					t.Errorf("duplicate append: %v", err)
				}
				results[w] = res
			}(w)
		}
		wg.Wait()
		// One of them wrote; the others say Replayed.
		written := 0
		for _, r := range results {
			if !r.Replayed {
				written++
			}
		}
		if written != 1 {
			t.Fatalf("round %d: %d of the duplicate appends say they wrote, want 1: %+v", round, written, results)
		}
		for _, r := range results[1:] {
			if r.NextExpected != results[0].NextExpected || r.Position != results[0].Position {
				t.Fatalf("round %d: duplicate appends got %+v and %+v", round, r, results[0])
			}
		}
		got, err := a.ReadStream(ctx, dupStream, 0, 10)
		if err != nil || len(got) != 2 || got[1].Position != results[0].Position {
			t.Fatalf("round %d: stream = %d events, %v; want 2 ending at %v", round, len(got), err, results[0].Position)
		}
	}
	// Any never conflicts, even across processes.
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(s *postgres.Store) {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				if _, err := s.Append(ctx, "any", eventstore.Any, []eventstore.EventData{{ID: storetest.NewEventID(), Type: "X", Data: []byte(`{}`)}}); err != nil {
					t.Errorf("append Any: %v", err)
					return
				}
			}
		}(stores[w%2])
	}
	wg.Wait()
	got, err := eventstore.ReadFullStream(ctx, a, "any")
	if err != nil || len(got) != 80 {
		t.Fatalf("stream any = %d events, %v; want 80", len(got), err)
	}
}

func TestDataRoundTripsExactly(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	evs := []eventstore.EventData{
		{ID: storetest.NewEventID(), Type: "A", Data: []byte(`{ "b":1,  "a" : 2 }`), Metadata: []byte(`{"causation":"x"}`)},
		{ID: storetest.NewEventID(), Type: "B", Data: []byte(`{}`)},
	}
	if _, err := s.Append(ctx, "exact", eventstore.NoStream, evs); err != nil {
		t.Fatal(err)
	}
	got, err := s.ReadStream(ctx, "exact", 0, 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("read: %d, %v", len(got), err)
	}
	if string(got[0].Data) != string(evs[0].Data) || string(got[0].Metadata) != string(evs[0].Metadata) || got[1].Metadata != nil {
		t.Fatalf("round trip: %q %q %q", got[0].Data, got[0].Metadata, got[1].Metadata)
	}
	if got[0].RecordedAt.IsZero() {
		t.Fatal("RecordedAt not set")
	}
}

func TestClosed(t *testing.T) {
	s := newStore(t)
	_ = s.Close()
	ctx := context.Background()
	if _, err := s.Append(ctx, "x", eventstore.Any, []eventstore.EventData{{ID: "1", Type: "X"}}); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if _, err := s.ReadAll(ctx, eventstore.Start, 1); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if err := s.Wait(ctx, eventstore.Start); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("wait after close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
