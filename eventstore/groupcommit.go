package eventstore

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Group commit: concurrent appends are queued and written by one goroutine,
// many per database transaction, so that N writers pay for one commit (one
// fsync) instead of N. Each append still succeeds or fails on its own: the
// version checks are decided per request by Plan before the batch is written.

// Request is one queued append.
type Request struct {
	Stream   string
	Expected ExpectedVersion
	Events   []EventData
}

// StoredID says where an already stored event id lives.
type StoredID struct {
	Stream   string
	Version  int64
	Position Position
}

// Decision is what Plan decided for one request of a batch.
type Decision struct {
	// Err is set when the request fails (ErrConflict, ErrDuplicateEvent).
	Err error
	// Write is true when the request's events must be inserted at
	// FirstVersion, FirstVersion+1, ...
	Write        bool
	FirstVersion int64
	// Result is set for an idempotent re-append of events already stored.
	Result AppendResult
	// DuplicateOf >= 0 when the request repeats an earlier request of the
	// same batch; it gets that request's result once the batch commits.
	DuplicateOf int
}

// Plan decides every request of a batch in order. versions holds each
// stream's current last version (absent: no stream); stored holds the ids
// of the batch that are already in the store. Streams touched by an earlier
// request of the batch are seen at their new version.
func Plan(reqs []Request, versions map[string]int64, stored map[string]StoredID) []Decision {
	out := make([]Decision, len(reqs))
	cur := make(map[string]int64, len(versions))
	for k, v := range versions {
		cur[k] = v
	}
	pending := map[string]int{} // event id -> index of the request writing it
	for i, r := range reqs {
		d := Decision{DuplicateOf: -1}
		if j, ok := pending[r.Events[0].ID]; ok {
			if sameBatch(reqs[j], r) {
				d.DuplicateOf = j
			} else {
				d.Err = fmt.Errorf("%w: %s", ErrDuplicateEvent, r.Events[0].ID)
			}
			out[i] = d
			continue
		}
		if res, matched, err := idempotent(r, stored); err != nil || matched {
			d.Err, d.Result = err, res
			out[i] = d
			continue
		}
		if dup := firstKnown(r, stored, pending); dup != "" {
			d.Err = fmt.Errorf("%w: %s", ErrDuplicateEvent, dup)
			out[i] = d
			continue
		}
		last, exists := cur[r.Stream]
		if !exists {
			last = -1
		}
		switch {
		case r.Expected == Any:
		case r.Expected == NoStream && exists:
			d.Err = fmt.Errorf("%w: stream %s exists at version %d", ErrConflict, r.Stream, last)
		case r.Expected >= 0 && int64(r.Expected) != last:
			d.Err = fmt.Errorf("%w: stream %s is at version %d, expected %d", ErrConflict, r.Stream, last, r.Expected)
		}
		if d.Err == nil {
			d.Write, d.FirstVersion = true, last+1
			cur[r.Stream] = last + int64(len(r.Events))
			for _, e := range r.Events {
				pending[e.ID] = i
			}
		}
		out[i] = d
	}
	return out
}

func sameBatch(a, b Request) bool {
	if a.Stream != b.Stream || len(a.Events) != len(b.Events) {
		return false
	}
	for i := range a.Events {
		if a.Events[i].ID != b.Events[i].ID {
			return false
		}
	}
	return true
}

// idempotent reports whether r is an exact re-append of stored events.
func idempotent(r Request, stored map[string]StoredID) (AppendResult, bool, error) {
	first, ok := stored[r.Events[0].ID]
	if !ok {
		return AppendResult{}, false, nil
	}
	var last StoredID
	for i, e := range r.Events {
		s, ok := stored[e.ID]
		if !ok || s.Stream != r.Stream || s.Version != first.Version+int64(i) || first.Stream != r.Stream {
			return AppendResult{}, false, fmt.Errorf("%w: %s", ErrDuplicateEvent, e.ID)
		}
		last = s
	}
	return AppendResult{NextExpected: last.Version, Position: last.Position, Replayed: true}, true, nil
}

func firstKnown(r Request, stored map[string]StoredID, pending map[string]int) string {
	for _, e := range r.Events {
		if _, ok := stored[e.ID]; ok {
			return e.ID
		}
		if _, ok := pending[e.ID]; ok {
			return e.ID
		}
	}
	return ""
}

// Outcome is the answer to one queued append.
type Outcome struct {
	Result AppendResult
	Err    error
}

type queued struct {
	req  Request
	done chan Outcome
}

// Committer queues appends and hands them in batches to flush, which must
// return one Outcome per request. With one worker, one flush runs at a time
// (a single writer, as SQLite wants); with more, batches overlap, which
// pays where the database commits many transactions at once (Postgres).
type Committer struct {
	flush    func([]Request) []Outcome
	maxBatch int
	// gather is how long a writer waits, once a request is queued, before
	// it takes the batch, when its previous batch held more than one
	// request (appends are arriving concurrently). Zero: it takes at once.
	gather time.Duration
	queue  chan queued
	stop   chan struct{}
	wg     sync.WaitGroup
	// mu makes Close wait for sends in flight, so nothing is queued after
	// the writer's final drain.
	mu     sync.RWMutex
	closed bool
}

// NewCommitter starts one writer goroutine. maxBatch bounds a batch.
func NewCommitter(maxBatch int, flush func([]Request) []Outcome) *Committer {
	return NewCommitterN(maxBatch, 1, flush)
}

// NewCommitterGather is NewCommitter with a gather pause: under concurrent
// appends the writer waits gather before taking each batch, so that one
// commit (one fsync) serves more of them. A lone append (the previous
// batch held one) is written at once.
func NewCommitterGather(maxBatch int, gather time.Duration, flush func([]Request) []Outcome) *Committer {
	return newCommitter(maxBatch, 1, gather, flush)
}

// NewCommitterN starts workers writer goroutines; flush must then be safe
// for concurrent use and keep appends to one stream correct across
// overlapping batches (Postgres does with stream locks).
func NewCommitterN(maxBatch, workers int, flush func([]Request) []Outcome) *Committer {
	return newCommitter(maxBatch, workers, 0, flush)
}

func newCommitter(maxBatch, workers int, gather time.Duration, flush func([]Request) []Outcome) *Committer {
	c := &Committer{flush: flush, maxBatch: maxBatch, gather: gather, queue: make(chan queued, maxBatch*4), stop: make(chan struct{})}
	for i := 0; i < workers; i++ {
		c.wg.Add(1)
		go c.run()
	}
	return c
}

// Append queues one append and waits for its outcome. Once queued, an
// append is carried out even if ctx ends meanwhile: the caller just stops
// waiting for the answer.
func (c *Committer) Append(ctx context.Context, r Request) (AppendResult, error) {
	q := queued{req: r, done: make(chan Outcome, 1)}
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return AppendResult{}, ErrClosed
	}
	select {
	case c.queue <- q:
		c.mu.RUnlock()
	case <-ctx.Done():
		c.mu.RUnlock()
		return AppendResult{}, ctx.Err()
	}
	select {
	case o := <-q.done:
		return o.Result, o.Err
	case <-ctx.Done():
		return AppendResult{}, ctx.Err()
	}
}

func (c *Committer) run() {
	defer c.wg.Done()
	batch := make([]queued, 0, c.maxBatch)
	var timer *time.Timer
	if c.gather > 0 {
		timer = time.NewTimer(0)
		<-timer.C
	}
	last := 0 // requests in the previous batch
	for {
		batch = batch[:0]
		select {
		case q := <-c.queue:
			batch = append(batch, q)
		case <-c.stop:
			c.drain()
			return
		}
		if timer != nil && last > 1 {
			timer.Reset(c.gather)
			select {
			case <-timer.C:
			case <-c.stop: // drain writes what is queued
			}
		}
	fill:
		for len(batch) < c.maxBatch {
			select {
			case q := <-c.queue:
				batch = append(batch, q)
			default:
				break fill
			}
		}
		last = len(batch)
		c.write(batch)
	}
}

func (c *Committer) write(batch []queued) {
	reqs := make([]Request, len(batch))
	for i, q := range batch {
		reqs[i] = q.req
	}
	outs := c.flush(reqs)
	if len(outs) != len(reqs) {
		panic(fmt.Sprintf("eventstore: flush returned %d outcomes for %d requests", len(outs), len(reqs)))
	}
	for i, q := range batch {
		q.done <- outs[i]
	}
}

// drain writes what was queued before Close, so nothing accepted is dropped.
func (c *Committer) drain() {
	for {
		select {
		case q := <-c.queue:
			c.write([]queued{q})
		default:
			return
		}
	}
}

// Close stops the writer after writing everything already queued.
func (c *Committer) Close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.stop)
	}
	c.mu.Unlock()
	c.wg.Wait()
}
