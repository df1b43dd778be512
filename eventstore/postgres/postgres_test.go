package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
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

func BenchmarkAppendToLongStream(b *testing.B) {
	storetest.BenchLongStream(b, newStore)
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
	// Another process's writer, mid-transaction, with the older xid; it
	// takes the append lock first, as every appender must.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock_shared(hashtextextended($1, 0)), set_config('eventstore.append_lock', $2, true)`,
		"eventstore.append:"+schema, schema); err != nil {
		t.Fatal(err)
	}
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

// TestReadAllIgnoresOtherWriters: a write transaction that is not an append
// (another database's batch job, a projection rebuild) must not hold the log's
// readers back, however long it stays open.
func TestReadAllIgnoresOtherWriters(t *testing.T) {
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
	// An xid older than the append's, held open.
	if _, err := tx.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}
	res, err := s.Append(ctx, "m-1", eventstore.NoStream, []eventstore.EventData{{ID: storetest.NewEventID(), Type: "X", Data: []byte(`{}`)}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.ReadAll(ctx, eventstore.Start, 10)
	if err != nil || len(got) != 1 || got[0].Position != res.Position {
		t.Fatalf("ReadAll while another (non-append) transaction is open = %d events, %v; want the append", len(got), err)
	}
	page, err := s.ReadAllOfTypes(ctx, eventstore.Start, 10, []string{"X"})
	if err != nil || len(page.Events) != 1 {
		t.Fatalf("ReadAllOfTypes = %d events, %v; want 1", len(page.Events), err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.Wait(wctx, eventstore.Start); err != nil {
		t.Fatalf("Wait: %v", err)
	}
}

// TestInsertWithoutAppendLockIsRefused: a writer that does not take the
// append lock first could commit behind a reader's horizon; the table
// refuses it instead of letting its events be skipped.
func TestInsertWithoutAppendLockIsRefused(t *testing.T) {
	schema := freshSchema(t)
	open(t, schema)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `INSERT INTO `+pgx.Identifier{schema, "events"}.Sanitize()+
		` (event_id, stream, version, type, data) VALUES ($1, 'rogue', 0, 'X', '\x7b7d')`, storetest.NewEventID())
	if err == nil || !strings.Contains(err.Error(), "append lock") {
		t.Fatalf("insert without the append lock: %v; want refused naming the append lock", err)
	}
}

// TestFollowerSkipsNothingAcrossProcesses: appends of two processes, several
// batches in flight each, commit in an order their ids do not follow; a
// reader following the log meanwhile must see every event once, in the
// order a later full read gives.
func TestFollowerSkipsNothingAcrossProcesses(t *testing.T) {
	schema := freshSchema(t)
	open(t, schema)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var writers []*postgres.Store
	for range 2 {
		s, err := postgres.Open(ctx, dsn(), postgres.WithSchema(schema), postgres.WithWriters(4))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		writers = append(writers, s)
	}
	reader := open(t, schema)

	const goroutines, perGoroutine = 16, 30
	done := make(chan struct{})
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perGoroutine {
				ev := []eventstore.EventData{{ID: storetest.NewEventID(), Type: "X", Data: []byte(`{}`)}}
				if _, err := writers[g%2].Append(ctx, fmt.Sprintf("s-%d-%d", g, i), eventstore.NoStream, ev); err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()

	var followed []string
	pos := eventstore.Start
	for finished := false; ; {
		select {
		case <-done:
			finished = true
		default:
		}
		evs, err := reader.ReadAll(ctx, pos, 7)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			followed = append(followed, e.ID)
			pos = e.Position
		}
		if finished && len(evs) == 0 && len(followed) >= goroutines*perGoroutine {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("followed %d of %d events before the deadline", len(followed), goroutines*perGoroutine)
		}
	}
	all, err := reader.ReadAll(ctx, eventstore.Start, 10*goroutines*perGoroutine)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != goroutines*perGoroutine || len(followed) != len(all) {
		t.Fatalf("followed %d events, full read %d, appended %d", len(followed), len(all), goroutines*perGoroutine)
	}
	for i, e := range all {
		if followed[i] != e.ID {
			t.Fatalf("event %d: followed %s, full read %s", i, followed[i], e.ID)
		}
	}
}

// BenchmarkReadAllPages reads the log from the start in pages of 100 and
// of 1,000 (each page a horizon statement and a read), as a follower that is
// behind does; it reports events/s.
func BenchmarkReadAllPages(b *testing.B) {
	s := open(b, freshSchema(b))
	ctx := context.Background()
	const total = 20000
	for i := 0; i < total; i += 500 {
		var batch []eventstore.EventData
		for range 500 {
			batch = append(batch, eventstore.EventData{ID: storetest.NewEventID(), Type: "X", Data: []byte(`{"amount":"1.00"}`)})
		}
		if _, err := s.Append(ctx, fmt.Sprintf("bench-%d", i), eventstore.NoStream, batch); err != nil {
			b.Fatal(err)
		}
	}
	for _, page := range []int{100, 1000} {
		b.Run(fmt.Sprintf("page=%d", page), func(b *testing.B) {
			read := 0
			for b.Loop() {
				pos := eventstore.Start
				for {
					evs, err := s.ReadAll(ctx, pos, page)
					if err != nil {
						b.Fatal(err)
					}
					if len(evs) == 0 {
						break
					}
					read += len(evs)
					pos = evs[len(evs)-1].Position
				}
			}
			b.ReportMetric(float64(read)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
