// Package commands holds the only writers of the event log. Every handler
// goes through one function, write: load the aggregate's stream, decide
// with pure domain code, append with the expected version, retry a bounded
// number of times when another writer got there first, and answer a
// recognised retry (the command's events already stored) with what was
// stored.
package commands

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/acceptcryptohere/gateway/backoff"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

// maxConflictRetries bounds the load-decide-append loop under contention.
const maxConflictRetries = 8

// conflictBackoff waits a random time below 2^(n-1) ms after the n-th
// conflict, so writers that collided on a stream do not collide again in
// lockstep.
var conflictBackoff = backoff.Policy{Base: time.Millisecond, Jitter: 1}

// ErrBusy: the stream kept changing under us for maxConflictRetries rounds.
var ErrBusy = errors.New("commands: too much contention, try again")

// Deps are what every handler needs; cmd/picd builds one and passes it down.
type Deps struct {
	Store  eventstore.Store
	Assets domain.Assets
	Now    func() time.Time
	// NewID returns a fresh public id with the prefix ("cmd_"); the ids of
	// the aggregates a command creates derive from its command id instead.
	NewID func(prefix string) string

	// funds caches the funds streams' state for this process (set by New).
	funds *fundsViews
	// Credits and Prices serve payouts and conversions; without them those
	// commands answer ErrMoneyOutUnavailable.
	Credits Credits
	Prices  Prices
	// Accounts answers an account's consolidate_to for invoice creation
	// from the read model; nil reads the merchant's stream instead.
	Accounts Accounts
	// WebhookSecrets seals webhook secrets before they enter the log
	// (picd always sets it); nil writes them in clear, as tests may.
	WebhookSecrets SecretSealer
}

// Accounts reads account settings. Errors: domain.ErrNotFound.
type Accounts interface {
	ConsolidateTo(ctx context.Context, merchantID string) (string, error)
}

// Metadata travels with every event: who it belongs to and what caused it.
type Metadata struct {
	CommandID  string    `json:"command_id"`
	MerchantID string    `json:"merchant_id,omitempty"`
	OccurredAt time.Time `json:"occurred_at"`
	// SchemaVersion is the version of the event's body shape when above 1
	// (domain.DecodeStored upcasts older ones); set per event by encode.
	SchemaVersion int `json:"schema_version,omitempty"`
}

// state is a stream as the write path sees it: the version folded so far
// and how to fold an event into the aggregate. A state made per attempt
// (newState) is read from the start; a cached one (funds, address indexes)
// reads only what was appended since, and keeps in seen the versions of
// the event ids it folded, to find a command's events appended before.
type state struct {
	version eventstore.ExpectedVersion
	fold    func(domain.Event)
	seen    map[string]int64
	// lookup finds the version of an event the state folded but no longer
	// holds in seen (a view started from a snapshot); nil: seen has them all.
	lookup func(ctx context.Context, id string) (int64, error)
}

func newState(fold func(domain.Event)) *state {
	return &state{version: eventstore.NoStream, fold: fold}
}

func newCachedState(fold func(domain.Event)) *state {
	return &state{version: eventstore.NoStream, fold: fold, seen: map[string]int64{}}
}

// catchUp folds the stream's events after s.version. It returns the
// version of the event with id want, when it folded it or had, or lookup
// finds it before the state's snapshot (-1: not stored).
func (s *state) catchUp(ctx context.Context, store eventstore.Store, stream, want string) (int64, error) {
	const page = 500
	found := int64(-1)
	if v, ok := s.seen[want]; ok {
		found = v
	}
	for {
		recs, err := store.ReadStream(ctx, stream, int64(s.version)+1, page)
		if err != nil {
			return -1, fmt.Errorf("load %s: %w", stream, err)
		}
		for _, r := range recs {
			e, err := domain.DecodeStored(r.Type, r.Data, r.Metadata)
			if err != nil {
				return -1, fmt.Errorf("load %s: %w", stream, err)
			}
			s.fold(e)
			if s.seen != nil {
				s.seen[r.ID] = r.Version
			}
			if r.ID == want {
				found = r.Version
			}
			s.version = eventstore.ExpectedVersion(r.Version)
		}
		if len(recs) < page {
			break
		}
	}
	if found < 0 && s.lookup != nil {
		return s.lookup(ctx, want)
	}
	return found, nil
}

// command is one write: the stream, the metadata of its events, and per
// attempt the state to decide on and the decision. decide may return no
// events (nothing to do) and may fill in meta (the merchant it found).
type command struct {
	stream string
	meta   *Metadata
	// attempt returns the state and the decision for one round; a fresh
	// state (newState) is read from the start.
	attempt func() (*state, func() ([]domain.Event, error))
	// created: the stream is named by an id derived from the command id,
	// so it is empty unless this is a retry. On a store that reports
	// replays the first round appends without reading it: a retry shows as
	// Replayed (or, when another command took the id, as a conflict, and
	// the next round reads).
	created bool
}

// written is what a command wrote, or had written when it is a retry.
type written struct {
	res    eventstore.AppendResult
	events []domain.Event
	// replayed: the events are a retry's, stored before this call.
	replayed bool
}

// write runs the write path for one command. A retry of a command (its
// events, named by its command id, are in the stream already) is answered
// with what was stored, without deciding again: found while loading, or
// reported by the store when another writer's retry appended them between
// our load and our append. When nothing was appended the result's Position
// is the zero Position. Errors: the decision's, ErrBusy, storage errors.
func write(ctx context.Context, store eventstore.Store, c command) (written, error) {
	if c.meta.CommandID == "" {
		c.meta.CommandID = randomCommandID()
	}
	firstID := domain.EventID(c.meta.CommandID, c.stream, 0)
	for attempt := 0; attempt < maxConflictRetries; attempt++ {
		st, decide := c.attempt()
		if !c.created || attempt > 0 || !reportsReplays(store) {
			v, err := st.catchUp(ctx, store, c.stream, firstID)
			if err != nil {
				return written{}, err
			}
			if v >= 0 {
				return readStored(ctx, store, c.stream, c.meta.CommandID, v)
			}
		}
		evs, err := decide()
		if err != nil || len(evs) == 0 {
			return written{}, err
		}
		data, err := encode(evs, c.stream, *c.meta)
		if err != nil {
			return written{}, err
		}
		res, err := store.Append(ctx, c.stream, st.version, data)
		if errors.Is(err, eventstore.ErrConflict) {
			conflictBackoff.Wait(ctx, attempt+1)
			continue
		}
		if err != nil {
			return written{}, fmt.Errorf("append %s: %w", c.stream, err)
		}
		if res.Replayed || res.NextExpected != int64(st.version)+int64(len(evs)) {
			// The store recognised the command's events as stored.
			return readStored(ctx, store, c.stream, c.meta.CommandID, res.NextExpected-int64(len(evs))+1)
		}
		return written{res: res, events: evs}, nil
	}
	return written{}, fmt.Errorf("%s: %w", c.stream, ErrBusy)
}

// readStored reads back the events a command stored from version from:
// those whose ids the command derives, in order.
func readStored(ctx context.Context, store eventstore.Store, stream, commandID string, from int64) (written, error) {
	const most = 64 // more events than any command writes
	recs, err := store.ReadStream(ctx, stream, from, most)
	if err != nil {
		return written{}, fmt.Errorf("read back %s: %w", stream, err)
	}
	out := written{replayed: true}
	for i, r := range recs {
		if r.ID != domain.EventID(commandID, stream, i) {
			break
		}
		e, err := domain.DecodeStored(r.Type, r.Data, r.Metadata)
		if err != nil {
			return written{}, fmt.Errorf("read back %s: %w", stream, err)
		}
		out.events = append(out.events, e)
		out.res = eventstore.AppendResult{NextExpected: r.Version, Position: r.Position}
	}
	if len(out.events) == 0 {
		return written{}, fmt.Errorf("read back %s: command %s's events are not at version %d", stream, commandID, from)
	}
	return out, nil
}

// load reads a stream and folds it into an aggregate; it returns the
// stream's version (eventstore.NoStream when empty).
func load(ctx context.Context, store eventstore.Store, stream string, apply func(domain.Event)) (eventstore.ExpectedVersion, error) {
	st := newState(apply)
	if _, err := st.catchUp(ctx, store, stream, ""); err != nil {
		return 0, err
	}
	return st.version, nil
}

// encode turns a command's domain events into events to append.
func encode(evs []domain.Event, stream string, meta Metadata) ([]eventstore.EventData, error) {
	md, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	out := make([]eventstore.EventData, len(evs))
	for i, e := range evs {
		if m, ok := e.(domain.MoneyEvent); ok {
			if err := domain.CheckBalanced(m.LedgerPostings()); err != nil {
				panic("commands: " + e.EventType() + ": " + err.Error()) // a bug, never an input error
			}
		}
		data, err := domain.Encode(e)
		if err != nil {
			return nil, err
		}
		emd := md
		if v := domain.SchemaVersionOf(e.EventType()); v > 1 {
			// Version 1 is left unsaid, so logs from before versions and
			// today's version-1 events read the same.
			m := meta
			m.SchemaVersion = v
			if emd, err = json.Marshal(m); err != nil {
				return nil, err
			}
		}
		out[i] = eventstore.EventData{ID: domain.EventID(meta.CommandID, stream, i), Type: e.EventType(), Data: data, Metadata: emd}
	}
	return out, nil
}

// randomCommandID names a command that has no natural identity (the domain
// itself makes it idempotent, as with a deposit seen twice).
func randomCommandID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic("commands: crypto/rand: " + err.Error())
	}
	return "cmd_" + hex.EncodeToString(b)
}

func reportsReplays(store eventstore.Store) bool {
	r, ok := store.(eventstore.ReplayReporter)
	return ok && r.ReportsReplays()
}
