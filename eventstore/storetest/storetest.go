// Package storetest is the contract every event-store adapter passes. An
// adapter's test calls Run with a factory that returns a fresh, isolated
// store (or, for a shared server like EventStoreDB, one where the suite's
// random stream names do not collide).
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/eventstore"
)

// Factory returns a new store for one test; the suite closes it.
type Factory func(t testing.TB) eventstore.Store

// Run runs the whole contract.
func Run(t *testing.T, newStore Factory) {
	t.Run("ReadYourOwnAppend", func(t *testing.T) { testReadYourOwnAppend(t, newStore(t)) })
	t.Run("ExpectedVersions", func(t *testing.T) { testExpectedVersions(t, newStore(t)) })
	t.Run("TwoWritersOneWins", func(t *testing.T) { testTwoWritersOneWins(t, newStore(t)) })
	t.Run("IdempotentReappend", func(t *testing.T) { testIdempotentReappend(t, newStore(t)) })
	t.Run("InvalidAppends", func(t *testing.T) { testInvalid(t, newStore(t)) })
	t.Run("ReadAllPaging", func(t *testing.T) { testReadAllPaging(t, newStore(t)) })
	t.Run("ReadAllOfTypes", func(t *testing.T) { testReadAllOfTypes(t, newStore(t)) })
	t.Run("ReadAllOfTypesSkipsLongRuns", func(t *testing.T) { testReadAllOfTypesLongRun(t, newStore(t)) })
	t.Run("WaitWakesOnAppend", func(t *testing.T) { testWait(t, newStore(t)) })
	t.Run("ConcurrentAppendersAndReader", func(t *testing.T) { testStress(t, newStore(t)) })
	t.Run("KeepsGivenRecordedTime", func(t *testing.T) { testGivenRecordedTime(t, newStore(t)) })
	t.Run("HashChain", func(t *testing.T) { testHashChain(t, newStore(t)) })
	t.Run("Snapshots", func(t *testing.T) { testSnapshots(t, newStore(t)) })
}

// testSnapshots: a stream keeps one snapshot per kind, the latest version
// saved (an older one arriving late does not replace it), and an event is
// found by its id in its own stream only. Stores without snapshots skip it.
func testSnapshots(t *testing.T, s eventstore.Store) {
	closeAtEnd(t, s)
	snaps, ok := s.(eventstore.Snapshots)
	if !ok {
		t.Skip("the store keeps no snapshots")
	}
	c := ctx(t)
	stream, other := "snap-"+rnd(), "snap-"+rnd()
	if _, found, err := snaps.LoadSnapshot(c, stream, "fold/1"); err != nil || found {
		t.Fatalf("load before any save = %v, %v; want none", found, err)
	}
	load := func(kind string) eventstore.Snapshot {
		t.Helper()
		got, found, err := snaps.LoadSnapshot(c, stream, kind)
		if err != nil || !found {
			t.Fatalf("load %s = %v, %v", kind, found, err)
		}
		return got
	}
	for _, sv := range []struct {
		version int64
		data    string
	}{{5, `{"at":5}`}, {3, `{"at":3}`}, {7, `{"at":7}`}, {7, `{"again":7}`}} {
		if err := snaps.SaveSnapshot(c, eventstore.Snapshot{Stream: stream, Kind: "fold/1", Version: sv.version, Data: []byte(sv.data)}); err != nil {
			t.Fatalf("save at %d: %v", sv.version, err)
		}
	}
	if got := load("fold/1"); got.Version != 7 || string(got.Data) != `{"at":7}` || got.Stream != stream || got.Kind != "fold/1" {
		t.Fatalf("snapshot = %+v (%s), want version 7 {\"at\":7}", got, got.Data)
	}
	if err := snaps.SaveSnapshot(c, eventstore.Snapshot{Stream: stream, Kind: "fold/2", Version: 1, Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if got := load("fold/2"); got.Version != 1 {
		t.Fatalf("another kind's snapshot = %+v", got)
	}
	if got := load("fold/1"); got.Version != 7 {
		t.Fatalf("a snapshot of another kind replaced this one: %+v", got)
	}
	for _, bad := range []eventstore.Snapshot{{Kind: "k", Data: []byte("{}")}, {Stream: stream, Data: []byte("{}")}, {Stream: stream, Kind: "k", Version: -1}} {
		if err := snaps.SaveSnapshot(c, bad); !errors.Is(err, eventstore.ErrInvalid) {
			t.Fatalf("save %+v = %v, want ErrInvalid", bad, err)
		}
	}
	evs := events(3, "Thing")
	if _, err := s.Append(c, stream, eventstore.NoStream, evs); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(c, other, eventstore.NoStream, events(1, "Thing")); err != nil {
		t.Fatal(err)
	}
	for want, e := range evs {
		if v, err := snaps.EventVersion(c, stream, e.ID); err != nil || v != int64(want) {
			t.Fatalf("version of event %d = %d, %v", want, v, err)
		}
	}
	if v, err := snaps.EventVersion(c, other, evs[1].ID); err != nil || v != -1 {
		t.Fatalf("an event looked up in another stream = %d, %v; want -1", v, err)
	}
	if v, err := snaps.EventVersion(c, stream, NewEventID()); err != nil || v != -1 {
		t.Fatalf("an unknown event = %d, %v; want -1", v, err)
	}
}

// testHashChain: concurrent appends (batched together by the writer, some
// of them rejected) leave an unbroken chain over every stored event, whose
// head is the store's ChainHead. Stores without a chain skip it.
func testHashChain(t *testing.T, s eventstore.Store) {
	closeAtEnd(t, s)
	c, ok := s.(eventstore.Chained)
	if !ok {
		t.Skip("this store keeps no hash chain")
	}
	ctx := ctx(t)
	stream := "chain-" + rnd()
	var wg sync.WaitGroup
	var stored atomic.Uint64
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				evs := events(1+i%3, "Chained")
				if i%5 == 4 { // an append that conflicts writes nothing
					if _, err := s.Append(ctx, stream, 1<<40, evs); !errors.Is(err, eventstore.ErrConflict) {
						t.Errorf("append at a wrong version: %v", err)
					}
					continue
				}
				if _, err := s.Append(ctx, fmt.Sprintf("%s-%d-%d", stream, w, i%4), eventstore.Any, evs); err != nil {
					t.Error(err)
					return
				}
				stored.Add(uint64(len(evs)))
			}
		}()
	}
	wg.Wait()
	var progressed uint64
	rep, err := eventstore.VerifyChain(ctx, s, time.Now, func(done uint64) { progressed = done })
	if err != nil {
		t.Fatal(err)
	}
	if rep.Break != nil {
		t.Fatalf("chain broken after appends: %v", rep.Break)
	}
	if rep.Events != stored.Load() || progressed != rep.Events {
		t.Fatalf("chain checked %d events (progress %d), want %d", rep.Events, progressed, stored.Load())
	}
	seq, h, err := c.ChainHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if seq != rep.Head || hex.EncodeToString(h) != rep.HeadHash {
		t.Fatalf("ChainHead %d %x, verified head %d %s", seq, h, rep.Head, rep.HeadHash)
	}
}

func rnd() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NewEventID returns a random UUID-shaped id (EventStoreDB requires UUIDs).
func NewEventID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func events(n int, typ string) []eventstore.EventData {
	out := make([]eventstore.EventData, n)
	for i := range out {
		out[i] = eventstore.EventData{ID: NewEventID(), Type: typ, Data: []byte(fmt.Sprintf(`{"n":%d}`, i))}
	}
	return out
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func closeAtEnd(t testing.TB, s eventstore.Store) {
	t.Cleanup(func() { _ = s.Close() })
}

func testReadYourOwnAppend(t *testing.T, s eventstore.Store) {
	closeAtEnd(t, s)
	c := ctx(t)
	stream := "test-" + rnd()
	evs := events(3, "Thing")
	res, err := s.Append(c, stream, eventstore.NoStream, evs)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	if res.NextExpected != 2 {
		t.Fatalf("NextExpected = %d, want 2", res.NextExpected)
	}
	got, err := s.ReadStream(c, stream, 0, 100)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if len(got) != 3 {
		t.Fatalf("read %d events, want 3", len(got))
	}
	for i, e := range got {
		if e.ID != evs[i].ID || e.Type != "Thing" || string(e.Data) != string(evs[i].Data) || e.Version != int64(i) || e.Stream != stream {
			t.Fatalf("event %d = %+v, want id %s version %d", i, e, evs[i].ID, i)
		}
	}
	if got[2].Position != res.Position {
		t.Fatalf("last position %v, append said %v", got[2].Position, res.Position)
	}
	tail, err := s.ReadStream(c, stream, 2, 100)
	if err != nil || len(tail) != 1 || tail[0].ID != evs[2].ID {
		t.Fatalf("read from version 2 = %v, %v", tail, err)
	}
	none, err := s.ReadStream(c, "missing-"+rnd(), 0, 10)
	if err != nil || len(none) != 0 {
		t.Fatalf("missing stream read = %v, %v; want empty", none, err)
	}
}

func testExpectedVersions(t *testing.T, s eventstore.Store) {
	closeAtEnd(t, s)
	c := ctx(t)
	stream := "test-" + rnd()
	if _, err := s.Append(c, stream, 0, events(1, "A")); !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("append at version 0 to a missing stream: %v, want ErrConflict", err)
	}
	if _, err := s.Append(c, stream, eventstore.NoStream, events(2, "A")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(c, stream, eventstore.NoStream, events(1, "A")); !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("NoStream on existing stream: %v, want ErrConflict", err)
	}
	if _, err := s.Append(c, stream, 0, events(1, "A")); !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("stale version: %v, want ErrConflict", err)
	}
	res, err := s.Append(c, stream, 1, events(1, "A"))
	if err != nil || res.NextExpected != 2 {
		t.Fatalf("append at 1: %v, %v", res, err)
	}
	res, err = s.Append(c, stream, eventstore.Any, events(2, "A"))
	if err != nil || res.NextExpected != 4 {
		t.Fatalf("append Any: %v, %v", res, err)
	}
	all, err := s.ReadStream(c, stream, 0, 100)
	if err != nil || len(all) != 5 {
		t.Fatalf("stream has %d events (%v), want 5", len(all), err)
	}
}

func testTwoWritersOneWins(t *testing.T, s eventstore.Store) {
	closeAtEnd(t, s)
	c := ctx(t)
	for round := 0; round < 20; round++ {
		stream := "test-" + rnd()
		if _, err := s.Append(c, stream, eventstore.NoStream, events(1, "Opened")); err != nil {
			t.Fatal(err)
		}
		var wins, conflicts atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := s.Append(c, stream, 0, events(1, "Decided"))
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, eventstore.ErrConflict):
					conflicts.Add(1)
				default:
					t.Errorf("append: %v", err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins.Load() != 1 || conflicts.Load() != 1 {
			t.Fatalf("round %d: %d wins, %d conflicts; want exactly one of each", round, wins.Load(), conflicts.Load())
		}
		all, _ := s.ReadStream(c, stream, 0, 10)
		if len(all) != 2 {
			t.Fatalf("round %d: stream has %d events, want 2", round, len(all))
		}
	}
}

func testIdempotentReappend(t *testing.T, s eventstore.Store) {
	closeAtEnd(t, s)
	c := ctx(t)
	stream := "test-" + rnd()
	evs := events(2, "Created")
	first, err := s.Append(c, stream, eventstore.NoStream, evs)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Append(c, stream, eventstore.NoStream, evs)
	if err != nil {
		t.Fatalf("re-append of the same ids: %v, want success", err)
	}
	if first.Replayed {
		t.Fatalf("first append says Replayed: %+v", first)
	}
	if _, reports := s.(eventstore.ReplayReporter); reports && !again.Replayed {
		t.Fatalf("re-append on a ReplayReporter does not say Replayed: %+v", again)
	}
	if again.NextExpected != first.NextExpected || again.Position != first.Position {
		t.Fatalf("re-append result %+v, first %+v", again, first)
	}
	all, _ := s.ReadStream(c, stream, 0, 10)
	if len(all) != 2 {
		t.Fatalf("stream has %d events after re-append, want 2", len(all))
	}
	// Concurrent duplicates of one command produce one copy.
	stream2 := "test-" + rnd()
	dup := events(1, "Created")
	var wg sync.WaitGroup
	var failures atomic.Int32
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Append(c, stream2, eventstore.NoStream, dup); err != nil {
				failures.Add(1)
			}
		}()
	}
	wg.Wait()
	all, _ = s.ReadStream(c, stream2, 0, 10)
	if len(all) != 1 {
		t.Fatalf("8 concurrent duplicates stored %d events, want 1", len(all))
	}
	if failures.Load() != 0 {
		t.Fatalf("%d of 8 concurrent duplicates failed, want all to succeed", failures.Load())
	}
}

func testInvalid(t *testing.T, s eventstore.Store) {
	closeAtEnd(t, s)
	c := ctx(t)
	e := events(1, "X")
	cases := map[string]struct {
		stream string
		evs    []eventstore.EventData
	}{
		"empty stream": {"", e},
		"no events":    {"s-" + rnd(), nil},
		"no type":      {"s-" + rnd(), []eventstore.EventData{{ID: NewEventID()}}},
		"no id":        {"s-" + rnd(), []eventstore.EventData{{Type: "X"}}},
	}
	for name, tc := range cases {
		if _, err := s.Append(c, tc.stream, eventstore.Any, tc.evs); !errors.Is(err, eventstore.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

func testReadAllPaging(t *testing.T, s eventstore.Store) {
	closeAtEnd(t, s)
	c := ctx(t)
	start := headPosition(t, s)
	streams := []string{"a-" + rnd(), "b-" + rnd()}
	var want []string
	for i := 0; i < 10; i++ {
		evs := events(2, "Paged")
		if _, err := s.Append(c, streams[i%2], eventstore.Any, evs); err != nil {
			t.Fatal(err)
		}
		want = append(want, evs[0].ID, evs[1].ID)
	}
	var got []string
	pos := start
	deadline := time.Now().Add(30 * time.Second)
	for pages := 0; pages < 1000 && len(got) < len(want); pages++ {
		page, err := s.ReadAll(c, pos, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			// A store may hold events back while an earlier one could still
			// commit (Postgres: any transaction of the cluster); wait.
			if time.Now().After(deadline) {
				break
			}
			wc, cancel := context.WithTimeout(c, 200*time.Millisecond)
			_ = s.Wait(wc, pos)
			cancel()
			continue
		}
		for _, e := range page {
			if !pos.Less(e.Position) {
				t.Fatalf("position %v not after %v", e.Position, pos)
			}
			pos = e.Position
			if e.Stream == streams[0] || e.Stream == streams[1] {
				got = append(got, e.ID)
			}
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("global log order\n got %v\nwant %v", got, want)
	}
}

// untyped hides a store's own type filter, so that eventstore.ReadAllOfTypes
// takes its generic path.
type untyped struct{ eventstore.Store }

// testReadAllOfTypes: filtered reads of the global log return exactly the
// events of the asked types, in order, through the store's filter and
// through the generic one, and their Reached positions never go back.
func testReadAllOfTypes(t *testing.T, s eventstore.Store) {
	closeAtEnd(t, s)
	c := ctx(t)
	start := headPosition(t, s)
	// Distinct type names per run: a shared store may hold earlier runs' events.
	wanted, also, other := "Wanted"+rnd(), "Also"+rnd(), "Other"+rnd()
	stream := "typed-" + rnd()
	var want []string
	for i := 0; i < 12; i++ {
		typ := other
		switch i % 4 {
		case 0:
			typ = wanted
		case 3:
			typ = also
		}
		evs := events(1+i%3, typ)
		if _, err := s.Append(c, stream, eventstore.Any, evs); err != nil {
			t.Fatal(err)
		}
		if typ != other {
			for _, e := range evs {
				want = append(want, e.ID)
			}
		}
	}
	for name, store := range map[string]eventstore.Store{"store": s, "generic": untyped{s}} {
		t.Run(name, func(t *testing.T) {
			var got []string
			pos := start
			deadline := time.Now().Add(30 * time.Second)
			for len(got) < len(want) {
				page, err := eventstore.ReadAllOfTypes(c, store, pos, 3, []string{wanted, also})
				if err != nil {
					t.Fatal(err)
				}
				if len(page.Events) > 3 {
					t.Fatalf("%d events for max 3", len(page.Events))
				}
				if page.Reached.Less(pos) {
					t.Fatalf("reached %v before the start %v", page.Reached, pos)
				}
				for _, e := range page.Events {
					if !pos.Less(e.Position) || page.Reached.Less(e.Position) {
						t.Fatalf("event at %v outside (%v, %v]", e.Position, pos, page.Reached)
					}
					if e.Type != wanted && e.Type != also {
						t.Fatalf("event of type %s", e.Type)
					}
					pos = e.Position
					got = append(got, e.ID)
				}
				pos = page.Reached
				if !page.More && len(got) < len(want) {
					if time.Now().After(deadline) {
						break
					}
					wc, cancel := context.WithTimeout(c, 200*time.Millisecond)
					_ = s.Wait(wc, pos)
					cancel()
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("typed read\n got %v\nwant %v", got, want)
			}
			page, err := eventstore.ReadAllOfTypes(c, store, pos, 3, []string{wanted, also})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Events) != 0 {
				t.Fatalf("%d more events after the last wanted one", len(page.Events))
			}
		})
	}
}

// testReadAllOfTypesLongRun: a wanted event behind ten thousand others is
// reached by reads that each return in bounded steps (More with no events)
// and never go back.
func testReadAllOfTypesLongRun(t *testing.T, s eventstore.Store) {
	closeAtEnd(t, s)
	c := ctx(t)
	start := headPosition(t, s)
	wanted, other := "Wanted"+rnd(), "Other"+rnd()
	for i := 0; i < 10; i++ {
		if _, err := s.Append(c, "long-"+rnd(), eventstore.NoStream, events(1000, other)); err != nil {
			t.Fatal(err)
		}
	}
	last := events(1, wanted)
	if _, err := s.Append(c, "long-"+rnd(), eventstore.NoStream, last); err != nil {
		t.Fatal(err)
	}
	pos, emptySteps := start, 0
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		page, err := eventstore.ReadAllOfTypes(c, s, pos, 100, []string{wanted})
		if err != nil {
			t.Fatal(err)
		}
		if page.Reached.Less(pos) {
			t.Fatalf("reached %v before the start %v", page.Reached, pos)
		}
		if len(page.Events) > 0 {
			if len(page.Events) != 1 || page.Events[0].ID != last[0].ID {
				t.Fatalf("got %d events, first %s; want only %s", len(page.Events), page.Events[0].ID, last[0].ID)
			}
			if emptySteps == 0 {
				t.Fatal("ten thousand events skipped in one read: the read is not bounded")
			}
			return
		}
		// An empty read that moved on is a bounded step. On Postgres a read
		// stops below the oldest append still open, so another process's
		// append in flight can end a read early without More.
		if pos.Less(page.Reached) {
			emptySteps++
		}
		if page.More {
			if !pos.Less(page.Reached) {
				t.Fatalf("More without progress at %v", pos)
			}
		} else {
			wc, cancel := context.WithTimeout(c, 200*time.Millisecond)
			_ = s.Wait(wc, page.Reached)
			cancel()
		}
		pos = page.Reached
	}
	t.Fatal("the wanted event was never read")
}

// headPosition returns the position of the last event currently readable.
func headPosition(t testing.TB, s eventstore.Store) eventstore.Position {
	pos := eventstore.Start
	for {
		page, err := s.ReadAll(context.Background(), pos, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return pos
		}
		pos = page[len(page)-1].Position
	}
}

func testWait(t *testing.T, s eventstore.Store) {
	closeAtEnd(t, s)
	c := ctx(t)
	pos := headPosition(t, s)
	woke := make(chan error, 1)
	go func() {
		wc, cancel := context.WithTimeout(c, 30*time.Second)
		defer cancel()
		for {
			if err := s.Wait(wc, pos); err != nil {
				woke <- err
				return
			}
			page, err := s.ReadAll(wc, pos, 10)
			if err != nil || len(page) > 0 {
				woke <- err
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	if _, err := s.Append(c, "w-"+rnd(), eventstore.NoStream, events(1, "Woke")); err != nil {
		t.Fatal(err)
	}
	if err := <-woke; err != nil {
		t.Fatalf("waiting reader: %v", err)
	}
}

// testStress: concurrent appenders and a concurrent global reader; the reader
// must see every appended event exactly once, in the one order that a later
// full read also gives, with nothing skipped.
func testStress(t *testing.T, s eventstore.Store) {
	closeAtEnd(t, s)
	c := ctx(t)
	const writers, perWriter = 16, 40
	start := headPosition(t, s)
	prefix := "stress-" + rnd() + "-"

	var appended sync.Map
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			stream := fmt.Sprintf("%s%d", prefix, w)
			for i := 0; i < perWriter; i++ {
				n := 1 + i%3
				evs := events(n, "Stress")
				if _, err := s.Append(c, stream, eventstore.ExpectedVersion(streamLen(i)-1), evs); err != nil {
					t.Errorf("writer %d append %d: %v", w, i, err)
					return
				}
				for _, e := range evs {
					appended.Store(e.ID, true)
				}
			}
		}(w)
	}
	total := 0
	for i := 0; i < perWriter; i++ {
		total += 1 + i%3
	}
	total *= writers

	done := make(chan struct{})
	var seen []string
	readerErr := make(chan error, 1)
	go func() {
		pos := start
		ids := map[string]bool{}
		deadline := time.Now().Add(90 * time.Second)
		for len(seen) < total && time.Now().Before(deadline) {
			page, err := s.ReadAll(c, pos, 37)
			if err != nil {
				readerErr <- err
				return
			}
			for _, e := range page {
				if !pos.Less(e.Position) {
					readerErr <- fmt.Errorf("position %v not after %v", e.Position, pos)
					return
				}
				pos = e.Position
				if len(e.Stream) < len(prefix) || e.Stream[:len(prefix)] != prefix {
					continue
				}
				if ids[e.ID] {
					readerErr <- fmt.Errorf("event %s seen twice", e.ID)
					return
				}
				ids[e.ID] = true
				seen = append(seen, e.ID)
			}
			if len(page) == 0 {
				wc, cancel := context.WithTimeout(c, 100*time.Millisecond)
				_ = s.Wait(wc, pos)
				cancel()
			}
		}
		close(done)
	}()
	wg.Wait()
	select {
	case err := <-readerErr:
		t.Fatal(err)
	case <-done:
	}
	if len(seen) != total {
		t.Fatalf("reader saw %d events, want %d", len(seen), total)
	}
	for _, id := range seen {
		if _, ok := appended.Load(id); !ok {
			t.Fatalf("reader saw %s that no writer appended", id)
		}
	}
	// One order: a fresh read of the log gives the same sequence.
	var again []string
	pos := start
	for len(again) < total {
		page, err := s.ReadAll(c, pos, 500)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			pos = e.Position
			if len(e.Stream) >= len(prefix) && e.Stream[:len(prefix)] == prefix {
				again = append(again, e.ID)
			}
		}
	}
	if fmt.Sprint(again) != fmt.Sprint(seen) {
		t.Fatalf("a second read of the log gives another order")
	}
	// Per stream, versions are gapless.
	for w := 0; w < writers; w++ {
		evs, err := eventstore.ReadFullStream(c, s, fmt.Sprintf("%s%d", prefix, w))
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range evs {
			if e.Version != int64(i) {
				t.Fatalf("stream %d event %d has version %d", w, i, e.Version)
			}
		}
	}
}

// streamLen is the length of a stress stream before its i-th append.
func streamLen(i int) int {
	n := 0
	for j := 0; j < i; j++ {
		n += 1 + j%3
	}
	return n
}

// testGivenRecordedTime: an event appended with a recorded time (a copied
// log's, money rule 8) reads back with that time, from its stream and from
// the global log, and with its metadata intact; an event without one gets
// the store's own time.
func testGivenRecordedTime(t *testing.T, s eventstore.Store) {
	closeAtEnd(t, s)
	c := ctx(t)
	stream := "test-" + rnd()
	given := time.Date(2021, 5, 6, 7, 8, 9, 123456000, time.UTC)
	before := headPosition(t, s)
	evs := events(3, "Thing")
	evs[0].RecordedAt = given
	evs[0].Metadata = []byte(`{"m": 1, "x":"y"}`) // spacing kept byte for byte
	evs[1].RecordedAt = given.Add(time.Second).In(time.FixedZone("X", 3600))
	if _, err := s.Append(c, stream, eventstore.NoStream, evs); err != nil {
		t.Fatalf("append: %v", err)
	}
	check := func(where string, got []eventstore.RecordedEvent) {
		t.Helper()
		if len(got) != 3 {
			t.Fatalf("%s: %d events, want 3", where, len(got))
		}
		if !got[0].RecordedAt.Equal(given) || string(got[0].Metadata) != string(evs[0].Metadata) {
			t.Errorf("%s: event 0 recorded at %v with metadata %q, want %v and %q", where, got[0].RecordedAt, got[0].Metadata, given, evs[0].Metadata)
		}
		if !got[1].RecordedAt.Equal(evs[1].RecordedAt) || got[1].Metadata != nil {
			t.Errorf("%s: event 1 recorded at %v with metadata %q, want %v and none", where, got[1].RecordedAt, got[1].Metadata, evs[1].RecordedAt)
		}
		if got[2].RecordedAt.IsZero() || got[2].RecordedAt.Equal(given) || got[2].RecordedAt.Equal(evs[1].RecordedAt) {
			t.Errorf("%s: event 2 (no time given) recorded at %v", where, got[2].RecordedAt)
		}
	}
	got, err := s.ReadStream(c, stream, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	check("ReadStream", got)
	var all []eventstore.RecordedEvent
	// ReadAll may hold our events back while another writer's earlier
	// position is still uncommitted (a store shared with other tests): an
	// empty page means wait, up to a bound.
	deadline := time.Now().Add(30 * time.Second)
	for pos := before; len(all) < 3; {
		page, err := s.ReadAll(c, pos, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("ReadAll found %d of the 3 events", len(all))
			}
			wctx, cancel := context.WithTimeout(c, time.Second)
			s.Wait(wctx, pos)
			cancel()
			continue
		}
		for _, e := range page {
			if e.Stream == stream {
				all = append(all, e)
			}
		}
		pos = page[len(page)-1].Position
	}
	check("ReadAll", all)
}
