package projections

import (
	"context"
	"errors"
	"sync"

	"github.com/acceptcryptohere/gateway/sqldb"
)

// A rebuild on Postgres spends most of its catch-up waiting for the server
// to take each batch: at 10M events (12-07, a slower machine) the writer's
// backend used 85 CPU s of the 165 s, picd 89, and the two cores were a
// fifth idle, since a batch's apply in picd and its rows in the server run
// one after the other on one connection. Projectors share no tables, so
// the catch-up runs them in lanes: each lane is a runner of its own (its
// connection, its transactions, its projectors' checkpoints), all fed the
// pages of one reader, decoded once: at 10M events the catch-up took
// 50–54 s instead of 66–67 s (alternating, one machine). SQLite has one
// writer connection, so there it stays one lane.

// laneOf names the lane a projector's catch-up runs in: the invoices, whose
// rows are most of a batch's, beside the rest (the feed's references, the
// balances, merchants and payouts).
func laneOf(p Projector) int {
	if _, ok := p.(Invoices); ok {
		return 0
	}
	return 1
}

// lanes splits r's projectors by laneOf, leaving out empty lanes.
func (r *Runner) lanes() [][]Projector {
	var byLane [2][]Projector
	for _, p := range r.projectors {
		i := laneOf(p)
		byLane[i] = append(byLane[i], p)
	}
	var out [][]Projector
	for _, ps := range byLane {
		if len(ps) > 0 {
			out = append(out, ps)
		}
	}
	return out
}

// catchUpInLanes is CatchUp with r's projectors split into lanes that
// write concurrently. A rebuild's held state goes to the lane of the
// projectors that hold (the feed and balances), and stays r's for
// writeHeld after. Progress is reported by the first lane, whose rows
// are the most.
func (r *Runner) catchUpInLanes(ctx context.Context) error {
	groups := r.lanes()
	if len(groups) < 2 || r.db.Dialect != sqldb.Postgres {
		return r.CatchUp(ctx)
	}
	checkpoints, err := r.loadCheckpoints(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runners := make([]*Runner, len(groups))
	feeds := make([]chan decodedPage, len(groups))
	for i, ps := range groups {
		l := NewRunner(r.store, r.db, r.log, ps...)
		l.suffix, l.tables, l.batchSize, l.Now = r.suffix, r.tables, r.batchSize, r.Now
		if i == 0 {
			l.progress = r.progress
		}
		for _, p := range ps {
			if _, ok := p.(heldByRebuild); ok {
				l.hold = r.hold
			}
		}
		// Unbuffered: the lanes take each page at about the same time, so
		// few decoded pages are alive at once (at 10M events the rebuild's
		// peak RSS was 467–475 MB with two pages buffered per lane and one
		// more ahead of the reader, 340–348 MB like this; 300–306 MB in
		// one lane), and it was no slower.
		runners[i], feeds[i] = l, make(chan decodedPage)
	}
	pages := make(chan decodedPage, 1)
	go r.readAhead(ctx, minPosition(checkpoints), pages)
	go func() {
		defer func() {
			for _, f := range feeds {
				close(f)
			}
		}()
		for page := range pages {
			for _, f := range feeds {
				select {
				case f <- page:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	errs := make([]error, len(runners))
	var wg sync.WaitGroup
	for i, l := range runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = l.drainFrom(ctx, feeds[i]); errs[i] != nil {
				cancel() // the other lanes and the reader stop too
			}
		}()
	}
	wg.Wait()
	// The lane that failed first, not one it cancelled.
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return ctx.Err()
}

// drainFrom applies the pages until an empty one, a failed read, or the
// end of pages; like drain, from pages read elsewhere. A lane's runner has
// no observers and nothing waits for its position, so it publishes none.
func (r *Runner) drainFrom(ctx context.Context, pages <-chan decodedPage) error {
	checkpoints, err := r.loadCheckpoints(ctx)
	if err != nil {
		return err
	}
	for page := range pages {
		if page.err != nil {
			return page.err
		}
		if len(page.recs) == 0 {
			return nil
		}
		if err := r.applyDecoded(ctx, page, checkpoints); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// heldByRebuild marks the projectors whose rows a rebuild holds across
// batches (Tx.held, Tx.holding).
type heldByRebuild interface{ heldByRebuild() }

func (Balances) heldByRebuild()  {}
func (EventFeed) heldByRebuild() {}
