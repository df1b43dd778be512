package sqlite

import (
	"slices"
	"sync"

	"github.com/acceptcryptohere/gateway/eventstore"
)

// recentMax is how many of the last committed events the store keeps in
// memory (about 1 KiB each for an invoice).
const recentMax = 8192

// recentLog holds the events this process committed last, at consecutive
// positions with nothing of another writer between them, so that the
// readers that follow the log right behind the writer (the projector reads
// every event just after it commits; the webhook and chain subscribers
// look for their types in it) are answered from memory instead of reading
// back what was just written: that read and its row scanning were 8 % of
// the CPU of creating invoices. The events are copies of what was appended,
// shared by every reader: readers must not modify them (none does).
type recentLog struct {
	mu   sync.RWMutex
	recs []eventstore.RecordedEvent // recs[i] is at position first+i
}

// add appends a committed batch. A batch that does not follow the last one
// directly (another process appended between, or a commit whose outcome is
// unknown used positions) starts the log again from itself.
func (l *recentLog) add(batch []eventstore.RecordedEvent) {
	if len(batch) == 0 {
		return
	}
	for i := 1; i < len(batch); i++ {
		if batch[i].Position.Commit != batch[0].Position.Commit+uint64(i) {
			l.reset() // not consecutive: not ours alone; read from the file
			return
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.recs); n > 0 && l.recs[n-1].Position.Commit+1 != batch[0].Position.Commit {
		l.recs = nil
	}
	if len(l.recs)+len(batch) > 2*recentMax {
		// Keep the newest recentMax in a fresh array: readers may still
		// hold sub-slices of the old one.
		keep := max(0, recentMax-len(batch))
		l.recs = slices.Clone(l.recs[len(l.recs)-keep:])
	}
	l.recs = append(l.recs, batch...)
}

func (l *recentLog) reset() {
	l.mu.Lock()
	l.recs = nil
	l.mu.Unlock()
}

// span returns the held events after position after, if the log holds the
// one right after it; ok is false when the file must be read instead.
func (l *recentLog) span(after uint64) (recs []eventstore.RecordedEvent, ok bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if len(l.recs) == 0 {
		return nil, false
	}
	first := l.recs[0].Position.Commit
	last := first + uint64(len(l.recs)) - 1
	if after+1 < first || after >= last {
		return nil, false
	}
	// The slice is never written again where it is shared (add appends past
	// it or clones), so returning it without the lock is safe.
	return l.recs[after+1-first:], true
}

// readAll answers ReadAll from memory when it can.
func (l *recentLog) readAll(after uint64, max int) ([]eventstore.RecordedEvent, bool) {
	recs, ok := l.span(after)
	if !ok {
		return nil, false
	}
	return slices.Clone(recs[:min(max, len(recs))]), true
}

// readTypes answers ReadAllOfTypes from memory when it can, looking at no
// more than window positions.
func (l *recentLog) readTypes(after uint64, max int, types []string, window uint64) (eventstore.Page, bool) {
	recs, ok := l.span(after)
	if !ok {
		return eventstore.Page{}, false
	}
	page := eventstore.Page{}
	more := false
	if uint64(len(recs)) > window {
		recs, more = recs[:window], true
	}
	for _, r := range recs {
		if !slices.Contains(types, r.Type) {
			continue
		}
		page.Events = append(page.Events, r)
		if len(page.Events) == max {
			page.Reached, page.More = r.Position, true
			return page, true
		}
	}
	// The last held event may not be the last in the file (another
	// process's, or one this process committed but has not added yet): More
	// stays false and the caller's next read, after it, goes to the file.
	page.Reached, page.More = recs[len(recs)-1].Position, more
	return page, true
}
