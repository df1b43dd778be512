// Package esdb is the EventStoreDB (KurrentDB) adapter of the event store
// port, on the official gRPC client.
//
// Mapping:
//   - a stream is an EventStoreDB stream of the same name; versions are
//     stream revisions;
//   - the global log is $all with resolveLinkTos off, less system records
//     (event type or stream name starting with "$"); a Position is the $all
//     commit/prepare pair;
//   - event ids must be UUIDs in canonical lowercase form, so that an id reads
//     back exactly as it was written.
//
// Server requirements (not checked here): EventStoreDB 22.6 or later, which
// reports $all positions on stream reads and wrong-expected-version in the
// append response; reading $all needs an admin user on a secure cluster.
//
// Limits of EventStoreDB that the port cannot hide cheaply: event ids are not
// unique across streams, so ErrDuplicateEvent is only returned when the
// batch's first id is found in the same stream followed by other ids; and
// with ExpectedVersion Any, EventStoreDB's idempotency is best effort
// (a cache of recent ids), so a re-append with Any long after the original
// may be written twice.
package esdb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/acceptcryptohere/gateway/backoff"
	"github.com/acceptcryptohere/gateway/eventstore"
)

const (
	// locateScanMax bounds how far back from a stream's end Append looks for
	// an already stored batch after a conflict or an idempotent write.
	locateScanMax = 10_000
	// conflictSettleTries bounds how often Append re-reads a stream whose
	// readable state does not yet explain a wrong-expected-version answer
	// (a concurrent write that the server saw but readers do not see yet).
	conflictSettleTries = 5
	// readAllScanMax bounds how many $all records one ReadAll skips (system
	// records) before it gives up with an error instead of a short page.
	readAllScanMax = 1_000_000
	// readAllChunkMax is the largest $all read request ReadAll sends.
	readAllChunkMax = 4096
	// waitMessagesMax bounds the subscription messages one Wait looks at;
	// after that it returns early (allowed by the port) and the caller reads.
	waitMessagesMax = 100_000
)

var _ eventstore.Store = (*Store)(nil)

// Store is an eventstore.Store on an EventStoreDB client.
type Store struct {
	client *esdb.Client
	closed atomic.Bool
}

// Open parses an EventStoreDB connection string (for example
// "esdb://localhost:2113?tls=false") and creates a client. The client
// connects lazily: an unreachable server shows up on the first call.
func Open(connString string) (*Store, error) {
	cfg, err := esdb.ParseConnectionString(connString)
	if err != nil {
		return nil, fmt.Errorf("esdb: open: %w", err)
	}
	cfg.Logger = clientLog
	client, err := esdb.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("esdb: open: %w", err)
	}
	return &Store{client: client}, nil
}

// Close closes the client. Calls after Close return eventstore.ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.client.Close()
}

// Append writes events to the end of stream if it is at expected.
//
// A re-append of a batch already stored in stream, in the same order,
// returns the original result: EventStoreDB itself answers an idempotent
// write (with no position, which is then read back), and a
// wrong-expected-version answer is checked against the stream's tail first.
//
// Errors: eventstore.ErrInvalid (including an id that is not a canonical
// UUID), eventstore.ErrConflict, eventstore.ErrDuplicateEvent,
// eventstore.ErrClosed, or the client's error wrapped.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData) (eventstore.AppendResult, error) {
	if err := eventstore.Validate(stream, expected, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	proposed, ids, err := toEventData(events)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	if s.closed.Load() {
		return eventstore.AppendResult{}, eventstore.ErrClosed
	}
	wr, err := s.client.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: toExpectedRevision(expected)}, proposed...)
	if err != nil {
		if isCode(err, esdb.ErrorCodeWrongExpectedVersion) {
			return s.resolveConflict(ctx, stream, expected, ids)
		}
		return eventstore.AppendResult{}, s.wrap("append to "+stream, err)
	}
	res := fromWriteResult(wr)
	if res.Position != eventstore.Start {
		return res, nil
	}
	// No position: the server recognised the batch as already written and
	// did not write it again. Report where the original landed.
	orig, found, _, err := s.locate(ctx, stream, ids)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	if !found {
		return eventstore.AppendResult{}, fmt.Errorf("esdb: append to %s: server reported an idempotent write at version %d, but the events are not in the last %d of the stream", stream, res.NextExpected, locateScanMax)
	}
	return orig, nil
}

// resolveConflict decides what a wrong-expected-version answer means: the
// batch is already stored (return the original result), its first id is
// stored before other events (ErrDuplicateEvent), or a real conflict.
func (s *Store) resolveConflict(ctx context.Context, stream string, expected eventstore.ExpectedVersion, ids []uuid.UUID) (eventstore.AppendResult, error) {
	for try := 0; try < conflictSettleTries; try++ {
		res, found, last, err := s.locate(ctx, stream, ids)
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		if found {
			return res, nil
		}
		// If the readable stream is where the caller expected it, the server
		// refused because of a write readers cannot see yet (possibly this
		// very batch sent by a concurrent duplicate): look again shortly.
		if expected == eventstore.Any || last != int64(expected) {
			break
		}
		if !conflictSettle.Wait(ctx, try+1) {
			return eventstore.AppendResult{}, ctx.Err()
		}
	}
	return eventstore.AppendResult{}, fmt.Errorf("esdb: append to %s at %d: %w", stream, expected, eventstore.ErrConflict)
}

// locate looks for ids, in order and consecutive, among the last
// locateScanMax events of stream. It also returns the stream's last readable
// version (-1 when the stream does not exist).
func (s *Store) locate(ctx context.Context, stream string, ids []uuid.UUID) (res eventstore.AppendResult, found bool, last int64, err error) {
	last = -1
	rs, err := s.client.ReadStream(ctx, stream, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, locateScanMax)
	if err != nil {
		if isCode(err, esdb.ErrorCodeResourceNotFound) {
			return res, false, last, nil
		}
		return res, false, last, s.wrap("read back "+stream, err)
	}
	defer rs.Close()
	type stub struct {
		id      uuid.UUID
		version int64
		pos     eventstore.Position
	}
	var newer []stub // the events after the current one, newest first
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return res, false, last, nil
		}
		if err != nil {
			if isCode(err, esdb.ErrorCodeResourceNotFound) {
				return res, false, -1, nil
			}
			return res, false, last, s.wrap("read back "+stream, err)
		}
		e := ev.OriginalEvent()
		if e == nil {
			continue
		}
		cur := stub{id: e.EventID, version: int64(e.EventNumber), pos: toPosition(e.Position)}
		if last == -1 {
			last = cur.version // the first record read backwards is the newest
		}
		if cur.id != ids[0] {
			newer = append(newer, cur)
			continue
		}
		// The batch's first id is here: the rest must follow it directly.
		n := len(newer)
		if n < len(ids)-1 {
			return res, false, last, fmt.Errorf("esdb: append to %s: event %s stored at version %d without the rest of the batch: %w", stream, ids[0], cur.version, eventstore.ErrDuplicateEvent)
		}
		end := cur
		for i := 1; i < len(ids); i++ {
			end = newer[n-i]
			if end.id != ids[i] {
				return res, false, last, fmt.Errorf("esdb: append to %s: event %s stored at version %d in another batch: %w", stream, ids[0], cur.version, eventstore.ErrDuplicateEvent)
			}
		}
		if !positionKnown(end.pos) {
			return res, false, last, fmt.Errorf("esdb: append to %s: the server reports no $all position on stream reads (EventStoreDB 22.6 or later needed)", stream)
		}
		return eventstore.AppendResult{NextExpected: end.version, Position: end.pos}, true, last, nil
	}
}

// ReadStream returns up to max events of stream from version from on. A
// stream that does not exist (or was soft-deleted) reads as empty.
//
// Errors: eventstore.ErrClosed, or the client's error wrapped (a tombstoned
// stream gives the client's stream-deleted error).
func (s *Store) ReadStream(ctx context.Context, stream string, from int64, max int) ([]eventstore.RecordedEvent, error) {
	if s.closed.Load() {
		return nil, eventstore.ErrClosed
	}
	out := []eventstore.RecordedEvent{}
	if max <= 0 {
		return out, nil
	}
	if from < 0 {
		from = 0
	}
	rs, err := s.client.ReadStream(ctx, stream, esdb.ReadStreamOptions{Direction: esdb.Forwards, From: esdb.Revision(uint64(from))}, uint64(max))
	if err != nil {
		if isCode(err, esdb.ErrorCodeResourceNotFound) {
			return out, nil
		}
		return nil, s.wrap("read "+stream, err)
	}
	defer rs.Close()
	for len(out) < max {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if isCode(err, esdb.ErrorCodeResourceNotFound) {
				return []eventstore.RecordedEvent{}, nil
			}
			return nil, s.wrap("read "+stream, err)
		}
		if e := ev.OriginalEvent(); e != nil {
			out = append(out, toRecorded(e))
		}
	}
	return out, nil
}

// ReadAll returns up to max non-system events strictly after pos in $all
// order. A page may be short when system records were skipped; a stretch of
// only system records is skipped over in growing reads, so a reader never
// gets stuck on one.
//
// Errors: eventstore.ErrClosed, or the client's error wrapped; an error too
// when more than readAllScanMax system records follow after without one event.
func (s *Store) ReadAll(ctx context.Context, after eventstore.Position, max int) ([]eventstore.RecordedEvent, error) {
	if s.closed.Load() {
		return nil, eventstore.ErrClosed
	}
	out := []eventstore.RecordedEvent{}
	if max <= 0 {
		return out, nil
	}
	floor := after // records at or before floor are not returned
	// +1: reading from a position includes the record at it.
	chunk := min(uint64(max)+1, readAllChunkMax)
	for scanned := 0; scanned < readAllScanMax; {
		got, lastPos, err := s.readAllChunk(ctx, floor, chunk, max, &out)
		if err != nil {
			return nil, err
		}
		scanned += got
		if len(out) > 0 || uint64(got) < chunk {
			return out, nil // a (possibly short) page, or the end of the log
		}
		// A whole chunk of system records: go on after them, in bigger reads.
		floor = lastPos
		chunk = min(chunk*2, readAllChunkMax)
	}
	return nil, fmt.Errorf("esdb: read $all after %v: more than %d system records in a row", after, readAllScanMax)
}

// readAllChunk reads up to count records of $all from floor on (inclusive)
// and appends the non-system events after floor to out, up to max in total.
// It returns how many records it received and the position of the last one.
func (s *Store) readAllChunk(ctx context.Context, floor eventstore.Position, count uint64, max int, out *[]eventstore.RecordedEvent) (int, eventstore.Position, error) {
	rs, err := s.client.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Forwards, From: toAllPosition(floor), ResolveLinkTos: false}, count)
	if err != nil {
		return 0, floor, s.wrap("read $all", err)
	}
	defer rs.Close()
	got, lastPos := 0, floor
	for len(*out) < max {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return got, lastPos, s.wrap("read $all", err)
		}
		got++
		e := ev.OriginalEvent()
		if e == nil {
			continue
		}
		p := toPosition(e.Position)
		lastPos = p
		if !floor.Less(p) || isSystem(e) {
			continue
		}
		*out = append(*out, toRecorded(e))
	}
	return got, lastPos, nil
}

// Wait blocks until a non-system event after pos is in $all, or ctx ends. It
// uses a catch-up subscription to $all from pos, filtered on the server to
// non-system event types, and closes it before returning.
//
// Errors: ctx's error, eventstore.ErrClosed, or the client's error wrapped.
func (s *Store) Wait(ctx context.Context, after eventstore.Position) error {
	if s.closed.Load() {
		return eventstore.ErrClosed
	}
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	sub, err := s.client.SubscribeToAll(subCtx, esdb.SubscribeToAllOptions{
		From:           toAllPosition(after),
		ResolveLinkTos: false,
		Filter:         esdb.ExcludeSystemEventsFilter(),
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return s.wrap("subscribe to $all", err)
	}
	defer sub.Close()
	for i := 0; i < waitMessagesMax; i++ {
		msg := sub.Recv()
		switch {
		case msg.EventAppeared != nil:
			e := msg.EventAppeared.OriginalEvent()
			if e != nil && !isSystem(e) && after.Less(toPosition(e.Position)) {
				return nil
			}
		case msg.SubscriptionDropped != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if msg.SubscriptionDropped.Error == nil {
				return fmt.Errorf("esdb: subscription to $all dropped")
			}
			return s.wrap("subscription to $all dropped", msg.SubscriptionDropped.Error)
		}
		// Checkpoints, caught-up and fell-behind notices: keep waiting.
	}
	return nil
}

// toExpectedRevision maps the port's expected version to the client's.
func toExpectedRevision(v eventstore.ExpectedVersion) esdb.ExpectedRevision {
	switch v {
	case eventstore.Any:
		return esdb.Any{}
	case eventstore.NoStream:
		return esdb.NoStream{}
	default:
		return esdb.Revision(uint64(v))
	}
}

// toEventData converts events to the client's form. Errors:
// eventstore.ErrInvalid when an id is not a UUID in canonical lowercase form.
func toEventData(events []eventstore.EventData) ([]esdb.EventData, []uuid.UUID, error) {
	out := make([]esdb.EventData, len(events))
	ids := make([]uuid.UUID, len(events))
	for i, e := range events {
		id, err := uuid.Parse(e.ID)
		if err != nil || id.String() != e.ID {
			return nil, nil, fmt.Errorf("%w: event %d id %q is not a UUID in canonical lowercase form (EventStoreDB stores ids as UUIDs)", eventstore.ErrInvalid, i, e.ID)
		}
		ids[i] = id
		meta := e.Metadata
		if !e.RecordedAt.IsZero() {
			if meta, err = wrapRecordedAt(e.RecordedAt, e.Metadata); err != nil {
				return nil, nil, fmt.Errorf("%w: event %d: %w", eventstore.ErrInvalid, i, err)
			}
		}
		out[i] = esdb.EventData{
			EventID:     id,
			EventType:   e.Type,
			ContentType: esdb.ContentTypeJson,
			Data:        e.Data,
			Metadata:    meta,
		}
	}
	return out, ids, nil
}

// EventStoreDB stamps every event with the server's time and lets no client
// set it, so a given recorded time (a copied log's, money rule 8) travels in
// the user metadata, in an envelope that also holds the event's own
// metadata byte for byte; reads unwrap it. The "$" prefix is the one
// EventStoreDB reserves for its own metadata keys, which our events never use.
const recordedAtKey = "$pic.recordedAt"

type recordedEnvelope struct {
	RecordedAt time.Time `json:"$pic.recordedAt"`
	Metadata   []byte    `json:"$pic.metadata,omitempty"` // base64: any bytes round-trip
}

var envelopePrefix = []byte(`{"` + recordedAtKey + `":`)

func wrapRecordedAt(at time.Time, meta []byte) ([]byte, error) {
	return json.Marshal(recordedEnvelope{RecordedAt: at.UTC().Truncate(time.Microsecond), Metadata: meta})
}

// unwrapRecordedAt returns the recorded time and metadata of an envelope,
// ok=false for user metadata that is not one.
func unwrapRecordedAt(meta []byte) (time.Time, []byte, bool) {
	if !bytes.HasPrefix(meta, envelopePrefix) {
		return time.Time{}, nil, false
	}
	var env recordedEnvelope
	if err := json.Unmarshal(meta, &env); err != nil {
		return time.Time{}, nil, false
	}
	return env.RecordedAt, env.Metadata, true
}

func fromWriteResult(wr *esdb.WriteResult) eventstore.AppendResult {
	return eventstore.AppendResult{
		NextExpected: int64(wr.NextExpectedVersion),
		Position:     eventstore.Position{Commit: wr.CommitPosition, Prepare: wr.PreparePosition},
	}
}

// toAllPosition maps a port position to a $all read or subscription start.
func toAllPosition(p eventstore.Position) esdb.AllPosition {
	if p == eventstore.Start {
		return esdb.Start{}
	}
	return esdb.Position{Commit: p.Commit, Prepare: p.Prepare}
}

func toPosition(p esdb.Position) eventstore.Position {
	return eventstore.Position{Commit: p.Commit, Prepare: p.Prepare}
}

// positionKnown is false for the all-ones position that servers before 22.6
// put on events read from a stream instead of their $all position.
func positionKnown(p eventstore.Position) bool {
	return p.Commit != math.MaxUint64
}

func toRecorded(e *esdb.RecordedEvent) eventstore.RecordedEvent {
	var meta []byte
	if len(e.UserMetadata) > 0 {
		meta = e.UserMetadata
	}
	at := e.CreatedDate
	if given, inner, ok := unwrapRecordedAt(meta); ok {
		at, meta = given, inner
	}
	return eventstore.RecordedEvent{
		ID:         e.EventID.String(),
		Stream:     e.StreamID,
		Type:       e.EventType,
		Version:    int64(e.EventNumber),
		Position:   toPosition(e.Position),
		Data:       e.Data,
		Metadata:   meta,
		RecordedAt: at,
	}
}

// isSystem reports whether a record of $all is EventStoreDB's own (stats,
// settings, links, metadata) rather than one of ours.
func isSystem(e *esdb.RecordedEvent) bool {
	return strings.HasPrefix(e.EventType, "$") || strings.HasPrefix(e.StreamID, "$")
}

// isCode reports whether err is, or wraps, a client error with code.
func isCode(err error, code esdb.ErrorCode) bool {
	var e *esdb.Error
	return errors.As(err, &e) && e.IsErrorCode(code)
}

// wrap names the operation, and turns a closed client into eventstore.ErrClosed.
func (s *Store) wrap(op string, err error) error {
	if s.closed.Load() || isCode(err, esdb.ErrorCodeConnectionClosed) {
		return fmt.Errorf("esdb: %s: %w", op, eventstore.ErrClosed)
	}
	return fmt.Errorf("esdb: %s: %w", op, err)
}

// clientLog passes the client's warnings and errors to the standard logger,
// less its debug and info chatter (the default logs every connection step)
// and the drop notices of the subscriptions that Wait ends on purpose when
// its context ends.
func clientLog(level esdb.LogLevel, format string, args ...any) {
	if level != esdb.LogWarn && level != esdb.LogError {
		return
	}
	for _, a := range args {
		if err, ok := a.(error); ok && isContextEnd(err) {
			return
		}
	}
	log.Printf("esdb client: ["+level+"] "+format, args...)
}

func isContextEnd(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	c := status.Code(err)
	return c == codes.Canceled || c == codes.DeadlineExceeded
}

// conflictSettle paces the looks for a write readers cannot see yet.
var conflictSettle = backoff.Policy{Base: 10 * time.Millisecond}
