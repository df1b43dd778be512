package readapi

import (
	"sync"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

// KeyCache remembers which merchant an API key belongs to, so that a
// request does not query the merchants table (on Postgres that lookup was
// a large share of the statements of creating an invoice).
//
// It answers only while this process runs the projectors (it is their
// projections.Observer): then every change to the keys is applied here, and
// the cache drops its entries after the change commits and before WaitFor
// reports it, so a rotation is never answered from memory once the rotating
// request has returned. A process that only follows another's projections
// (a Postgres follower) never enables it and queries every time. Only keys
// found are kept; unknown keys always reach the database.
type KeyCache = observedCache[keyRef]

type keyRef struct {
	kind   KeyKind
	lookup string
}

// NewKeyCache returns a disabled cache of at most max keys; a key rotation
// drops every entry.
func NewKeyCache(max int) *KeyCache { return newObservedCache[keyRef](max, domain.TypeAPIKeysRotated) }

// AccountCache remembers each merchant's consolidate_to for invoice
// creation (a query per invoice measurably slowed creation), under
// the same rule as KeyCache: answered only while this process runs the
// projectors; a settings change drops every entry.
type AccountCache = observedCache[string]

// NewAccountCache returns a disabled cache of at most max merchants.
func NewAccountCache(max int) *AccountCache {
	return newObservedCache[string](max, domain.TypeAccountSettingsChanged)
}

// observedCache is a map from K to a string that a projections.Observer
// keeps in step with the read models: enabled between Started and
// Stopped, emptied after a batch with an event of type drops commits (and
// before WaitFor reports it), or after changes it cannot see.
type observedCache[K comparable] struct {
	// Live, when set, is whether this process still leads in its own view
	// (cmd/picd's lease): a leader paused past its lease wakes with Run
	// not yet stopped, while another process projected what happened
	// meanwhile (a key rotation): nothing is answered from memory then.
	Live func() bool

	mu      sync.Mutex
	enabled bool
	// gen changes whenever entries are dropped: a lookup that read the
	// database before the drop must not put its (maybe old) answer back.
	gen     uint64
	entries map[K]string
	max     int
	drops   string
}

func newObservedCache[K comparable](max int, drops string) *observedCache[K] {
	return &observedCache[K]{entries: map[K]string{}, max: max, drops: drops}
}

// get returns the cached value of k, and the generation to hand to put
// after a database lookup.
func (c *observedCache[K]) get(k K) (string, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.enabled || (c.Live != nil && !c.Live()) {
		return "", c.gen, false
	}
	v, ok := c.entries[k]
	return v, c.gen, ok
}

// put keeps a database answer read at generation gen, unless entries were
// dropped since.
func (c *observedCache[K]) put(k K, v string, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.enabled || gen != c.gen || (c.Live != nil && !c.Live()) {
		return
	}
	if len(c.entries) >= c.max {
		clear(c.entries)
	}
	c.entries[k] = v
}

func (c *observedCache[K]) reset(enabled bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.enabled = enabled
	c.gen++
	clear(c.entries)
}

// Started implements projections.Observer.
func (c *observedCache[K]) Started() { c.reset(true) }

// Stopped implements projections.Observer.
func (c *observedCache[K]) Stopped() { c.reset(false) }

// Applied implements projections.Observer: an event of the dropping type,
// or changes it cannot see (recs nil), drop every entry. New merchants
// need nothing: what is not found is never cached.
func (c *observedCache[K]) Applied(recs []eventstore.RecordedEvent) {
	if recs == nil {
		c.reset(true)
		return
	}
	for _, rec := range recs {
		if rec.Type == c.drops {
			c.reset(true)
			return
		}
	}
}

// Len is the number of entries cached.
func (c *observedCache[K]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
