package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/storetest"
)

// open returns a store on a fresh file in t's temp dir, closed at the end.
func open(t testing.TB) *Store {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "data", "events.db"))
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t testing.TB) eventstore.Store { return open(t) })
}

func BenchmarkAppend(b *testing.B) {
	storetest.Bench(b, func(t testing.TB) eventstore.Store { return open(t) })
}

func BenchmarkAppendToLongStream(b *testing.B) {
	storetest.BenchLongStream(b, func(t testing.TB) eventstore.Store { return open(t) })
}

func TestReopenKeepsEvents(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nested", "dir", "events.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	first := []eventstore.EventData{
		{ID: storetest.NewEventID(), Type: "InvoiceCreated", Data: []byte(`{"a":1}`), Metadata: []byte(`{"m":1}`)},
		{ID: storetest.NewEventID(), Type: "InvoicePaid", Data: []byte(`{"a":2}`)},
	}
	res1, err := s.Append(ctx, "invoice-1", eventstore.NoStream, first)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database file: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Append(ctx, "invoice-1", eventstore.Any, first); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("append after Close: %v, want ErrClosed", err)
	}

	s, err = Open(path) // migrations run again: must be a no-op
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.ReadStream(ctx, "invoice-1", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != first[0].ID || got[1].ID != first[1].ID ||
		string(got[0].Metadata) != `{"m":1}` || got[1].Metadata != nil || got[1].Position != res1.Position {
		t.Fatalf("after reopen: %+v", got)
	}
	if got[0].RecordedAt.IsZero() {
		t.Fatal("RecordedAt not set")
	}
	// The stream continues at version 2 and the log after the old head.
	if _, err := s.Append(ctx, "invoice-1", 0, []eventstore.EventData{{ID: storetest.NewEventID(), Type: "X"}}); !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("stale version after reopen: %v, want ErrConflict", err)
	}
	res2, err := s.Append(ctx, "invoice-1", 1, []eventstore.EventData{{ID: storetest.NewEventID(), Type: "InvoiceSettled"}})
	if err != nil {
		t.Fatal(err)
	}
	if res2.NextExpected != 2 || !res1.Position.Less(res2.Position) {
		t.Fatalf("append after reopen = %+v, first append %+v", res2, res1)
	}
	// A re-append of the first batch is still recognised.
	again, err := s.Append(ctx, "invoice-1", eventstore.NoStream, first)
	if err != nil || !again.Replayed || again.NextExpected != res1.NextExpected || again.Position != res1.Position {
		t.Fatalf("re-append after reopen = %+v, %v; want %+v", again, err, res1)
	}
	all, err := s.ReadAll(ctx, eventstore.Start, 10)
	if err != nil || len(all) != 3 {
		t.Fatalf("ReadAll after reopen: %d events, %v", len(all), err)
	}
	// Wait returns at once when the log is already past pos.
	if err := s.Wait(ctx, res1.Position); err != nil {
		t.Fatal(err)
	}
}

func TestPragmas(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	for name, db := range map[string]*sql.DB{"write": s.WriteDB(), "read": s.DB()} {
		var mode string
		var sync, fk, busy int
		if err := db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&busy); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || sync != 2 || fk != 1 || busy != busyTimeoutMs {
			t.Errorf("%s pool: journal_mode=%s synchronous=%d foreign_keys=%d busy_timeout=%d; want wal, 2 (FULL), 1, %d",
				name, mode, sync, fk, busy, busyTimeoutMs)
		}
	}
	if _, err := s.DB().ExecContext(ctx, `DELETE FROM events`); err == nil {
		t.Error("the read pool accepted a write")
	}
	var n int
	if err := s.DB().QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE scope = 'eventstore'`).Scan(&n); err != nil || n != 3 {
		t.Errorf("schema_migrations has %d eventstore rows (%v), want 3 (events, chain_hash, snapshots)", n, err)
	}
}

// One request that the database rejects must not fail the others of its batch.
func TestBadRequestDoesNotFailBatch(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	if _, err := s.WriteDB().ExecContext(ctx, `CREATE TRIGGER poison BEFORE INSERT ON events
		WHEN NEW.type = 'Poison' BEGIN SELECT RAISE(ABORT, 'poisoned'); END`); err != nil {
		t.Fatal(err)
	}
	ev := func(typ string) []eventstore.EventData {
		return []eventstore.EventData{{ID: storetest.NewEventID(), Type: typ}}
	}
	reqs := []eventstore.Request{
		{Stream: "a", Expected: eventstore.NoStream, Events: ev("Good")},
		{Stream: "b", Expected: eventstore.NoStream, Events: ev("Poison")},
		{Stream: "c", Expected: eventstore.NoStream, Events: ev("Good")},
	}
	reqs = append(reqs, reqs[0]) // a duplicate of a request in the same batch
	outs := s.flush(reqs)
	if outs[0].Err != nil || outs[2].Err != nil || outs[3].Err != nil {
		t.Fatalf("good requests failed: %+v", outs)
	}
	if outs[1].Err == nil {
		t.Fatal("poisoned request succeeded")
	}
	if dup := outs[3].Result; !dup.Replayed || dup.NextExpected != outs[0].Result.NextExpected || dup.Position != outs[0].Result.Position {
		t.Fatalf("duplicate request got %+v, original %+v", outs[3].Result, outs[0].Result)
	}
	all, err := s.ReadAll(ctx, eventstore.Start, 10)
	if err != nil || len(all) != 2 {
		t.Fatalf("log has %d events (%v), want 2", len(all), err)
	}
}

// Two stores on one file stand for two processes: the contract still holds
// when appends alternate between them, and Wait sees the other's appends by
// polling.
func TestContractTwoProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: waits rely on polling")
	}
	storetest.Run(t, func(t testing.TB) eventstore.Store {
		path := filepath.Join(t.TempDir(), "events.db")
		a, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		return &twoProcesses{Store: a, other: b}
	})
}

type twoProcesses struct {
	*Store // reads and waits
	other  *Store
	n      atomic.Uint64
}

func (p *twoProcesses) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData) (eventstore.AppendResult, error) {
	if p.n.Add(1)%2 == 0 {
		return p.other.Append(ctx, stream, expected, events)
	}
	return p.Store.Append(ctx, stream, expected, events)
}

func (p *twoProcesses) Close() error { return errors.Join(p.Store.Close(), p.other.Close()) }

// Wait notices appends made through another connection to the file (another
// process) by polling.
func TestWaitSeesOtherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	woke := make(chan error, 1)
	go func() { woke <- a.Wait(ctx, eventstore.Start) }()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if _, err := b.Append(ctx, "s", eventstore.NoStream, []eventstore.EventData{{ID: storetest.NewEventID(), Type: "X"}}); err != nil {
		t.Fatal(err)
	}
	if err := <-woke; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*pollInterval {
		t.Fatalf("Wait woke after %v, want within about %v", d, pollInterval)
	}
	// Close ends a Wait at once.
	go func() { woke <- a.Wait(ctx, eventstore.Position{Commit: 1000}) }()
	time.Sleep(20 * time.Millisecond)
	_ = a.Close()
	if err := <-woke; !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("Wait after Close: %v, want ErrClosed", err)
	}
}

// TestLongListsArePaddedAndSplit: the writer looks stored ids up with
// prepared IN lists of fixed lengths; a batch with more ids than the
// longest list, re-appended whole, is recognised event by event.
func TestLongListsArePaddedAndSplit(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	evs := make([]eventstore.EventData, 3*maxList+5)
	for i := range evs {
		evs[i] = eventstore.EventData{ID: fmt.Sprintf("long-%d", i), Type: "Long", Data: []byte(`{}`)}
	}
	first, err := s.Append(ctx, "long", eventstore.NoStream, evs)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Append(ctx, "long", eventstore.NoStream, evs)
	if err != nil {
		t.Fatalf("re-append of the same batch: %v", err)
	}
	if !again.Replayed || again.NextExpected != first.NextExpected || again.Position != first.Position || first.NextExpected != int64(len(evs)-1) {
		t.Fatalf("re-append gave %+v, first %+v", again, first)
	}
	// Three streams in one batch: their versions are read with one padded list.
	for i := 0; i < 3; i++ {
		if _, err := s.Append(ctx, fmt.Sprintf("short-%d", i), eventstore.NoStream, []eventstore.EventData{{ID: fmt.Sprintf("short-%d", i), Type: "Short"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Append(ctx, "short-2", eventstore.NoStream, []eventstore.EventData{{ID: "short-again", Type: "Short"}}); !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("append to an existing stream as new: %v, want ErrConflict", err)
	}
}

// The events held in memory answer exactly as the file does, across the
// trims of the held log, for every read the subscribers make.
func TestRecentEventsAnswerAsTheFile(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	types := []string{"A", "B", "C"}
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2600; i++ {
				stream := fmt.Sprintf("s-%d-%d", w, i)
				evs := []eventstore.EventData{{ID: fmt.Sprintf("%s-0", stream), Type: types[i%3], Data: []byte(fmt.Sprintf(`{"i":%d}`, i))}}
				if i%5 == 0 {
					evs = append(evs, eventstore.EventData{ID: stream + "-1", Type: "C", Metadata: []byte(`{"m":1}`)})
				}
				if _, err := s.Append(ctx, stream, eventstore.NoStream, evs); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	head := s.head.Load()
	s.recent.mu.RLock()
	held := len(s.recent.recs)
	first := s.recent.recs[0].Position.Commit
	s.recent.mu.RUnlock()
	if held < recentMax || held > 2*recentMax || first+uint64(held)-1 != head {
		t.Fatalf("held %d events from %d, head %d", held, first, head)
	}
	fromFile := func(read func()) {
		s.recent.mu.Lock()
		saved := s.recent.recs
		s.recent.recs = nil
		s.recent.mu.Unlock()
		read()
		s.recent.mu.Lock()
		s.recent.recs = saved
		s.recent.mu.Unlock()
	}
	for _, after := range []uint64{0, first - 2, first - 1, first, first + 1, first + 500, head - 3, head - 1, head, head + 5} {
		for _, max := range []int{1, 7, 1000} {
			got, err := s.ReadAll(ctx, eventstore.Position{Commit: after}, max)
			if err != nil {
				t.Fatal(err)
			}
			var want []eventstore.RecordedEvent
			fromFile(func() { want, err = s.ReadAll(ctx, eventstore.Position{Commit: after}, max) })
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("ReadAll after %d max %d: memory and file differ (%d and %d events, %v)", after, max, len(got), len(want), err)
			}
			for _, ts := range [][]string{{"B"}, {"A", "C"}, {"none"}} {
				got, err := s.ReadAllOfTypes(ctx, eventstore.Position{Commit: after}, max, ts)
				if err != nil {
					t.Fatal(err)
				}
				var want eventstore.Page
				fromFile(func() { want, err = s.ReadAllOfTypes(ctx, eventstore.Position{Commit: after}, max, ts) })
				if err != nil || !reflect.DeepEqual(got, want) {
					t.Fatalf("ReadAllOfTypes %v after %d max %d: memory %d events to %v more %v, file %d to %v more %v", ts, after, max,
						len(got.Events), got.Reached, got.More, len(want.Events), want.Reached, want.More)
				}
			}
		}
	}
}

// CountAfter counts through the event_id index, not the table (whose
// pages hold every event's body), and counts right from any position.
func TestCountAfterReadsTheIndex(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	var positions []eventstore.Position
	for i := 0; i < 5; i++ {
		res, err := s.Append(ctx, fmt.Sprintf("invoice-%d", i), eventstore.NoStream, []eventstore.EventData{
			{ID: storetest.NewEventID(), Type: "InvoiceCreated", Data: []byte(`{"a":1}`)},
			{ID: storetest.NewEventID(), Type: "InvoicePaid", Data: []byte(`{"a":2}`)},
		})
		if err != nil {
			t.Fatal(err)
		}
		positions = append(positions, res.Position)
	}
	for i, after := range append([]eventstore.Position{eventstore.Start}, positions...) {
		n, err := s.CountAfter(ctx, after)
		if want := int64(10 - 2*i); err != nil || n != want {
			t.Fatalf("CountAfter(%v) = %d, %v; want %d", after, n, err, want)
		}
	}
	var plan strings.Builder
	rows, err := s.DB().QueryContext(ctx, `EXPLAIN QUERY PLAN `+countAfterQuery, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(detail)
	}
	if !strings.Contains(plan.String(), "COVERING INDEX sqlite_autoindex_events_1") {
		t.Fatalf("plan: %s", plan.String())
	}
	var cols string
	if err := s.DB().QueryRowContext(ctx, `SELECT group_concat(name) FROM pragma_index_info('sqlite_autoindex_events_1')`).Scan(&cols); err != nil || cols != "event_id" {
		t.Fatalf("sqlite_autoindex_events_1 indexes %q, %v; want event_id", cols, err)
	}
}

// TestReadAllLargePage: a page larger than the slice a read reserves
// (batchCapLimit) is read whole. A page of 30,000 panicked ("cannot be
// negative") once the slice had grown past that reserve.
func TestReadAllLargePage(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	s := openAt(t, path)
	const streams, each = 50, 500
	for i := 0; i < streams; i++ {
		evs := make([]eventstore.EventData, each)
		for j := range evs {
			evs[j] = eventstore.EventData{ID: storetest.NewEventID(), Type: "InvoiceCreated", Data: []byte(`{"a":1}`)}
		}
		if _, err := s.Append(ctx, fmt.Sprintf("invoice-%d", i), eventstore.NoStream, evs); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s = openAt(t, path) // the file answers, not the recent events in memory
	for _, page := range []int{batchCapLimit + 1, 30_000} {
		evs, err := s.ReadAll(ctx, eventstore.Start, page)
		if want := min(page, streams*each); err != nil || len(evs) != want {
			t.Fatalf("ReadAll of %d: %d events, %v; want %d", page, len(evs), err, want)
		}
	}
}

// openAt opens the store at path, closed at the end.
func openAt(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
