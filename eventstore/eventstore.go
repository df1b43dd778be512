// Package eventstore is the port to the immutable event log: streams with
// optimistic concurrency and one global, totally ordered log that projectors,
// webhooks and the analytics feed read from a checkpoint.
//
// Adapters live in sub-packages (sqlite, postgres, esdb) and all pass the
// contract suite in eventstore/storetest.
package eventstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Errors returned by every adapter.
var (
	// ErrConflict: the stream is not at the expected version. Commands reload and retry.
	ErrConflict = errors.New("eventstore: wrong expected version")
	// ErrDuplicateEvent: an event id is already stored, but not as an exact
	// re-append of the same batch (for example in another stream).
	ErrDuplicateEvent = errors.New("eventstore: event id already stored elsewhere")
	// ErrInvalid: the append itself is malformed (empty stream name, no events, empty id or type).
	ErrInvalid = errors.New("eventstore: invalid append")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("eventstore: closed")
	// ErrNotMigrated: a store opened without migrating lacks a migration
	// of this build (run picd migrate).
	ErrNotMigrated = errors.New("eventstore: schema not migrated (run picd migrate)")
)

// ExpectedVersion is the version the caller believes a stream is at: the
// 0-based version of its last event, or one of the special values below.
type ExpectedVersion int64

const (
	// Any skips the concurrency check.
	Any ExpectedVersion = -2
	// NoStream requires that the stream has no events yet.
	NoStream ExpectedVersion = -1
)

// EventData is an event to append. ID must be unique in the whole store and
// derived from the command that produced it, so that a retried append is
// recognised instead of duplicated.
type EventData struct {
	ID       string
	Type     string
	Data     []byte // JSON
	Metadata []byte // JSON or nil
	// RecordedAt, when set, is stored as the event's recorded time (to the
	// microsecond) instead of the store's clock: a copy of a log keeps each
	// event's original time (money rule 8). Writers of new events leave it zero.
	RecordedAt time.Time
}

// Position is a place in the global log. Its meaning is the adapter's
// (SQLite: sequence; Postgres: transaction id and sequence; EventStoreDB:
// commit and prepare positions) but every adapter orders positions
// lexicographically by (Commit, Prepare). The zero Position is the start.
type Position struct {
	Commit  uint64
	Prepare uint64
}

// Start is the position before the first event.
var Start = Position{}

// Less reports whether p comes before q in the global log.
func (p Position) Less(q Position) bool {
	if p.Commit != q.Commit {
		return p.Commit < q.Commit
	}
	return p.Prepare < q.Prepare
}

// String renders a position as "commit/prepare"; ParsePosition reads it back.
func (p Position) String() string {
	return strconv.FormatUint(p.Commit, 10) + "/" + strconv.FormatUint(p.Prepare, 10)
}

// ParsePosition parses the String form of a position.
func ParsePosition(s string) (Position, error) {
	c, pr, ok := strings.Cut(s, "/")
	if !ok {
		return Position{}, fmt.Errorf("eventstore: position %q: want commit/prepare", s)
	}
	commit, err := strconv.ParseUint(c, 10, 64)
	if err != nil {
		return Position{}, fmt.Errorf("eventstore: position %q: %w", s, err)
	}
	prepare, err := strconv.ParseUint(pr, 10, 64)
	if err != nil {
		return Position{}, fmt.Errorf("eventstore: position %q: %w", s, err)
	}
	return Position{Commit: commit, Prepare: prepare}, nil
}

// RecordedEvent is an event as stored.
type RecordedEvent struct {
	ID         string
	Stream     string
	Type       string
	Version    int64 // 0-based position in its stream
	Position   Position
	Data       []byte
	Metadata   []byte
	RecordedAt time.Time
}

// AppendResult tells where an append landed.
type AppendResult struct {
	// NextExpected is the stream version after the append (the version of its last event).
	NextExpected int64
	// Position is the global position of the last appended event. A reader
	// that has passed it has seen the whole append.
	Position Position
	// Replayed: the events were already stored (an idempotent re-append);
	// nothing was written. Reliable only from a ReplayReporter.
	Replayed bool
}

// ReplayReporter is a Store whose AppendResult.Replayed is reliable, so
// that a writer of a stream that must be new can append without reading it
// first and still recognise a retry.
type ReplayReporter interface {
	ReportsReplays() bool
}

// Store is the event store port.
type Store interface {
	// Append writes events atomically to the end of stream if it is at
	// expected. Re-appending a batch whose ids are already stored in that
	// stream, in the same order, succeeds without writing and returns the
	// original result. Errors: ErrConflict, ErrDuplicateEvent, ErrInvalid.
	Append(ctx context.Context, stream string, expected ExpectedVersion, events []EventData) (AppendResult, error)
	// ReadStream returns up to max events of stream with version >= from, in
	// order. A stream that does not exist reads as empty.
	ReadStream(ctx context.Context, stream string, from int64, max int) ([]RecordedEvent, error)
	// ReadAll returns up to max events strictly after pos in global order.
	// It never returns an event while an earlier one may still commit, so a
	// reader that checkpoints the last position it saw never skips one.
	ReadAll(ctx context.Context, after Position, max int) ([]RecordedEvent, error)
	// Wait blocks until events after pos may be readable, or ctx ends. It
	// may return early; callers loop over ReadAll.
	Wait(ctx context.Context, after Position) error
	Close() error
}

// Validate checks the shape of an append shared by all adapters.
func Validate(stream string, expected ExpectedVersion, events []EventData) error {
	if stream == "" {
		return fmt.Errorf("%w: empty stream name", ErrInvalid)
	}
	if len(events) == 0 {
		return fmt.Errorf("%w: no events", ErrInvalid)
	}
	if expected < Any {
		return fmt.Errorf("%w: expected version %d", ErrInvalid, expected)
	}
	seen := make(map[string]bool, len(events))
	for i, e := range events {
		if e.ID == "" || e.Type == "" {
			return fmt.Errorf("%w: event %d needs an id and a type", ErrInvalid, i)
		}
		if seen[e.ID] {
			return fmt.Errorf("%w: event id %s twice in one append", ErrInvalid, e.ID)
		}
		seen[e.ID] = true
	}
	return nil
}

// ReadFullStream reads a whole stream in pages of pageSize.
func ReadFullStream(ctx context.Context, s Store, stream string) ([]RecordedEvent, error) {
	const pageSize = 500
	var all []RecordedEvent
	for from := int64(0); ; {
		page, err := s.ReadStream(ctx, stream, from, pageSize)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) < pageSize {
			return all, nil
		}
		from = page[len(page)-1].Version + 1
	}
}

// Page is what a filtered read of the global log returns.
type Page struct {
	// Events are the events of the asked types, in global order.
	Events []RecordedEvent
	// Reached is where the read stopped looking: the next read starts after
	// it. No event of the asked types lies between the read's start and
	// Reached other than Events, and Reached never passes an event that may
	// still commit.
	Reached Position
	// More is true when the read stopped before the end of what is
	// readable now; the caller reads again instead of waiting.
	More bool
}

// TypeReader is a store that filters the global log by event type itself,
// so that a subscriber acting on a few types is not sent every event.
type TypeReader interface {
	// ReadAllOfTypes returns up to max events strictly after pos whose type
	// is one of types.
	ReadAllOfTypes(ctx context.Context, after Position, max int, types []string) (Page, error)
}

// ReadAllOfTypes reads the events of the given types after pos: through
// the store's own filter when it has one, otherwise by reading max events
// and keeping those of the types.
func ReadAllOfTypes(ctx context.Context, s Store, after Position, max int, types []string) (Page, error) {
	if tr, ok := s.(TypeReader); ok {
		return tr.ReadAllOfTypes(ctx, after, max, types)
	}
	recs, err := s.ReadAll(ctx, after, max)
	if err != nil || len(recs) == 0 {
		return Page{Reached: after}, err
	}
	page := Page{Reached: recs[len(recs)-1].Position, More: len(recs) == max}
	for _, r := range recs {
		if slices.Contains(types, r.Type) {
			page.Events = append(page.Events, r)
		}
	}
	return page, nil
}

// Snapshot is a fold's state at Version of Stream, so that a reader may
// read the stream from Version+1 instead of from its first event. Kind
// names the fold and the shape of Data: a reader ignores a kind it does
// not know. Snapshots are a cache beside the log, never part of it:
// dropping them all loses nothing.
type Snapshot struct {
	Stream  string
	Kind    string
	Version int64
	Data    []byte
}

// Snapshots is a store that keeps snapshots and finds an event by its id.
// A writer that starts from a snapshot needs both: a command retried after
// the snapshot was taken must still find the events it stored before it.
// The EventStoreDB adapter has no lookup by id, so it does not implement
// this and its streams are folded from the start.
type Snapshots interface {
	// LoadSnapshot returns the stream's snapshot of kind; ok is false when
	// there is none. Errors: ErrClosed, ctx errors, database errors.
	LoadSnapshot(ctx context.Context, stream, kind string) (s Snapshot, ok bool, err error)
	// SaveSnapshot keeps s, unless the stream has a snapshot of that kind
	// at a later version already. Errors: ErrInvalid (no stream or kind, a
	// negative version), ErrClosed, ctx errors, database errors.
	SaveSnapshot(ctx context.Context, s Snapshot) error
	// EventVersion returns the version in stream of the event with id, or
	// -1 when the stream holds no such event. Errors: ErrClosed, ctx
	// errors, database errors.
	EventVersion(ctx context.Context, stream, id string) (int64, error)
}

// ValidateSnapshot checks what SaveSnapshot requires of s.
func ValidateSnapshot(s Snapshot) error {
	switch {
	case s.Stream == "":
		return fmt.Errorf("%w: a snapshot names its stream", ErrInvalid)
	case s.Kind == "":
		return fmt.Errorf("%w: a snapshot names its kind", ErrInvalid)
	case s.Version < 0:
		return fmt.Errorf("%w: a snapshot's version is not negative", ErrInvalid)
	}
	return nil
}
