// Package commands holds the only writers of the event log. Every handler
// follows one path: load the aggregate's stream, decide with pure domain
// code, append with the expected version, and retry a bounded number of
// times when another writer got there first.
package commands

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

// maxConflictRetries bounds the load-decide-append loop under contention.
const maxConflictRetries = 8

// ErrBusy: the stream kept changing under us for maxConflictRetries rounds.
var ErrBusy = errors.New("commands: too much contention, try again")

// Deps are what every handler needs; cmd/picd builds one and passes it down.
type Deps struct {
	Store  eventstore.Store
	Assets domain.Assets
	Now    func() time.Time
	// NewID returns a fresh public id with the prefix ("mer_", "inv_").
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
}

// Stream names: one stream per aggregate.
func MerchantStream(id string) string { return "merchant-" + id }
func InvoiceStream(id string) string  { return "invoice-" + id }
func addressStream(asset, address string) string {
	return "address-" + asset + "-" + address
}
func indexStream(chain domain.Chain) string { return "addresses-" + string(chain) }

// EventID derives an event id (UUID-shaped, as EventStoreDB wants) from the
// command, the stream and the event's index among the command's events, so
// that retrying the same command is recognised by the store instead of
// duplicated.
//
// In a stream named after a time-ordered id (invoice-inv_01jfz3k8m2...) the
// id begins with that id's milliseconds, UUIDv7-style: the stores' unique
// index on event ids then grows at its end instead of at a random page per
// event. With random ids that page was a sixth of the write calls and of
// the bytes written per invoice (SQLite, 15.7 against 13.2 write calls).
func EventID(commandID, stream string, index int) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00%d", commandID, stream, index)))
	h[6] = h[6]&0x0f | 0x50 // version 5 style: name-based
	if ms, ok := idTime(stream); ok {
		h[0], h[1], h[2], h[3], h[4], h[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
		h[6] = h[6]&0x0f | 0x70 // version 7: time-ordered
	}
	h[8] = h[8]&0x3f | 0x80
	s := hex.EncodeToString(h[:16])
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}

// load reads a stream and folds it into an aggregate; it returns the
// stream's version (eventstore.NoStream when empty).
func load(ctx context.Context, store eventstore.Store, stream string, apply func(domain.Event)) (eventstore.ExpectedVersion, error) {
	recs, err := eventstore.ReadFullStream(ctx, store, stream)
	if err != nil {
		return 0, fmt.Errorf("load %s: %w", stream, err)
	}
	for _, r := range recs {
		e, err := domain.Decode(r.Type, r.Data)
		if err != nil {
			return 0, fmt.Errorf("load %s: %w", stream, err)
		}
		apply(e)
	}
	return eventstore.ExpectedVersion(len(recs) - 1), nil
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
		out[i] = eventstore.EventData{ID: EventID(meta.CommandID, stream, i), Type: e.EventType(), Data: data, Metadata: md}
	}
	return out, nil
}

// execute runs the write path for one stream. fresh returns an empty
// aggregate's apply and decide functions; decide may return no events
// (nothing to do) and may fill in meta (the merchant it found). The result's Position is the zero Position when nothing
// was appended.
func execute(ctx context.Context, store eventstore.Store, stream string, meta *Metadata,
	fresh func() (apply func(domain.Event), decide func() ([]domain.Event, error))) (eventstore.AppendResult, []domain.Event, error) {
	if meta.CommandID == "" {
		meta.CommandID = randomCommandID()
	}
	for attempt := 0; attempt < maxConflictRetries; attempt++ {
		apply, decide := fresh()
		version, err := load(ctx, store, stream, apply)
		if err != nil {
			return eventstore.AppendResult{}, nil, err
		}
		evs, err := decide()
		if err != nil || len(evs) == 0 {
			return eventstore.AppendResult{}, nil, err
		}
		data, err := encode(evs, stream, *meta)
		if err != nil {
			return eventstore.AppendResult{}, nil, err
		}
		res, err := store.Append(ctx, stream, version, data)
		if errors.Is(err, eventstore.ErrConflict) {
			backoff(ctx, attempt)
			continue
		}
		if err != nil {
			return eventstore.AppendResult{}, nil, fmt.Errorf("append %s: %w", stream, err)
		}
		if res.NextExpected != int64(version)+int64(len(evs)) {
			// The store recognised a retry of this command: answer with
			// what was stored the first time, not with today's decision.
			evs, err = storedEvents(ctx, store, stream, res.NextExpected-int64(len(evs))+1, len(evs))
			if err != nil {
				return eventstore.AppendResult{}, nil, err
			}
		}
		return res, evs, nil
	}
	return eventstore.AppendResult{}, nil, fmt.Errorf("%s: %w", stream, ErrBusy)
}

func storedEvents(ctx context.Context, store eventstore.Store, stream string, from int64, n int) ([]domain.Event, error) {
	recs, err := store.ReadStream(ctx, stream, from, n)
	if err != nil {
		return nil, fmt.Errorf("read back %s: %w", stream, err)
	}
	out := make([]domain.Event, len(recs))
	for i, r := range recs {
		if out[i], err = domain.Decode(r.Type, r.Data); err != nil {
			return nil, err
		}
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

// backoff waits a random time below 2^attempt ms before a retry, so writers
// that collided on a stream do not collide again in lockstep.
func backoff(ctx context.Context, attempt int) {
	d := time.Duration(mrand.Int64N(int64(time.Millisecond) << attempt))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// idTime reads the milliseconds of the NewIDGenerator id a name ends with
// (prefix_ then 10 characters of time and 16 random, Crockford's base32).
func idTime(name string) (uint64, bool) {
	i := strings.LastIndexByte(name, '_')
	if i < 0 || len(name)-i-1 != 26 {
		return 0, false
	}
	var ms uint64
	for k, c := range name[i+1:] {
		v := strings.IndexRune(crockford, c)
		if v < 0 {
			return 0, false
		}
		if k < 10 {
			ms = ms<<5 | uint64(v)
		}
	}
	return ms, ms < 1<<48
}
