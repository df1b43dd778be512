package postgres

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/acceptcryptohere/gateway/eventstore"
)

// The horizon query reads pg_locks, and every follower of the log asks for
// it before each read and each wait: after an append batch commits, all of
// them wake at once and ask together. horizonFlights lets them share one
// query: a caller joins the next query to start, never one already running
// (that one's snapshot may predate the commit the caller was woken for), so
// each caller gets a horizon read after it asked, as if it had asked alone.
type horizonFlights struct {
	mu      sync.Mutex
	running *horizonFlight // the query in flight, if any
	next    *horizonFlight // callers waiting for the query after it
	queries int64          // queries sent (for tests)
}

type horizonFlight struct {
	done   chan struct{}
	h      uint64
	err    error
	joined int // callers (for tests)
}

// horizonTimeout bounds a shared query, which runs on no caller's context.
const horizonTimeout = 30 * time.Second

// horizon is the transaction id below which the log is complete: no append
// that could still commit an event there is open (the horizon query). It
// must be read in a statement before the read that uses it.
func (s *Store) horizon(ctx context.Context) (uint64, error) {
	hf := &s.horizons
	hf.mu.Lock()
	f := hf.next
	if f == nil {
		f = &horizonFlight{done: make(chan struct{})}
		hf.next = f
	}
	f.joined++
	if hf.running == nil {
		// Nothing in flight: send f now. On a goroutine of its own, so
		// that this caller can still give up when its ctx ends.
		hf.running, hf.next = f, nil
		go s.fly(f)
	}
	hf.mu.Unlock()
	select {
	case <-f.done:
		if f.err != nil {
			return 0, fmt.Errorf("horizon: %w", ctxErr(ctx, f.err))
		}
		return f.h, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("horizon: %w", ctx.Err())
	}
}

// fly sends f's query.
func (s *Store) fly(f *horizonFlight) {
	ctx, cancel := context.WithTimeout(context.Background(), horizonTimeout)
	f.err = s.pool.QueryRow(ctx, s.q.horizon, s.q.appendKey).Scan(&f.h)
	cancel()
	s.horizons.mu.Lock()
	s.horizons.queries++
	s.horizons.mu.Unlock()
	s.landed(f)
}

// landed answers f's callers and, when callers queued behind it, starts
// their query.
func (s *Store) landed(f *horizonFlight) {
	hf := &s.horizons
	hf.mu.Lock()
	hf.running = nil
	if n := hf.next; n != nil {
		hf.running, hf.next = n, nil
		go s.fly(n)
	}
	hf.mu.Unlock()
	close(f.done)
}

// readTo remembers, per position a read reached the horizon at, the
// notifier's generation taken before that read: a Wait from there has
// nothing to check in the database until the next notification (an append
// that commits later, or an older one that ends and so moves the horizon,
// notifies). It saves a follower at the log's end two statements per wake.
type readTo struct {
	mu  sync.Mutex
	gen map[eventstore.Position]uint64
}

// readToMax bounds the map; it holds about one entry per follower.
const readToMax = 1024

// reached records that a read which began at notifier generation gen
// returned everything readable up to pos.
func (r *readTo) reached(pos eventstore.Position, gen uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gen == nil || len(r.gen) >= readToMax {
		r.gen = make(map[eventstore.Position]uint64)
	}
	// Two followers at one position: keep the older generation, so that
	// neither waits past a notification its read did not see.
	if g, ok := r.gen[pos]; !ok || gen < g {
		r.gen[pos] = gen
	}
}

// take returns and forgets the generation recorded for pos.
func (r *readTo) take(pos eventstore.Position) (uint64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	g, ok := r.gen[pos]
	delete(r.gen, pos)
	return g, ok
}
