package postgres_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/storetest"
)

func appendOne(t *testing.T, s interface {
	Append(context.Context, string, eventstore.ExpectedVersion, []eventstore.EventData) (eventstore.AppendResult, error)
}, stream string) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(context.Background(), stream, eventstore.NoStream, []eventstore.EventData{{ID: storetest.NewEventID(), Type: "X", Data: []byte(`{}`)}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// Readers that ask for the horizon while a query is in flight share the
// next one, which starts after they asked: one query for all of them, and
// each sees what was committed before it asked.
func TestReadersShareTheNextHorizonQuery(t *testing.T) {
	s := open(t, freshSchema(t))
	ctx := context.Background()
	queued, release := s.HoldHorizon()
	committed := appendOne(t, s, "before-the-readers")
	before := s.HorizonQueries()

	const readers = 8
	var wg sync.WaitGroup
	got := make([][]eventstore.RecordedEvent, readers)
	errs := make([]error, readers)
	for i := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = s.ReadAll(ctx, eventstore.Start, 10)
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); queued() < readers; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d readers queued for the horizon, want %d", queued(), readers)
		}
	}
	release()
	wg.Wait()
	if n := s.HorizonQueries() - before; n != 1 {
		t.Errorf("%d horizon queries for %d readers queued together, want 1", n, readers)
	}
	for i := range readers {
		if errs[i] != nil || len(got[i]) != 1 || got[i][0].Position != committed.Position {
			t.Fatalf("reader %d: %d events, %v; want the one committed before it asked", i, len(got[i]), errs[i])
		}
	}
}

// A reader that gives up while it waits for a shared horizon query gets its
// own context's error at once, not after the query.
func TestHorizonWaiterCanGiveUp(t *testing.T) {
	s := open(t, freshSchema(t))
	queued, release := s.HoldHorizon()
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := s.ReadAll(ctx, eventstore.Start, 10)
		done <- err
	}()
	for queued() < 1 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadAll after its context ended = %v, want context.Canceled", err)
	}
}

// After a read that reached the log's end, Wait sends nothing to the
// database until an append notifies (or the poll interval passes), and an
// append between the read and the Wait wakes it at once.
func TestWaitAfterReadingToTheEndAsksNothing(t *testing.T) {
	s := open(t, freshSchema(t))
	ctx := context.Background()
	time.Sleep(50 * time.Millisecond) // the notifier's LISTEN wakes everyone once when it starts
	first := appendOne(t, s, "a")
	evs, err := s.ReadAll(ctx, eventstore.Start, 10)
	if err != nil || len(evs) != 1 {
		t.Fatalf("ReadAll = %d events, %v", len(evs), err)
	}
	before := s.HorizonQueries()
	wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond) // under the 250 ms poll
	err = s.Wait(wctx, first.Position)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait at the end with nothing appended = %v, want its deadline", err)
	}
	if n := s.HorizonQueries() - before; n != 0 {
		t.Errorf("Wait right after a read to the end sent %d horizon queries, want 0", n)
	}

	// Read to the end again, append, then wait: the append came after the
	// read began, so Wait returns at once.
	if _, err := s.ReadAll(ctx, first.Position, 10); err != nil {
		t.Fatal(err)
	}
	appendOne(t, s, "b")
	wctx, cancel = context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.Wait(wctx, first.Position); err != nil {
		t.Fatalf("Wait after an append that followed the read = %v, want nil", err)
	}

	// A Wait from a position no read reached checks the log itself.
	before = s.HorizonQueries()
	if err := s.Wait(wctx, eventstore.Start); err != nil {
		t.Fatalf("Wait from the start of a log with events = %v", err)
	}
	if s.HorizonQueries() == before {
		t.Error("Wait from a position no read reached sent no horizon query")
	}
}
