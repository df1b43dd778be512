package readapi

import (
	"sync"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

// KeyCache remembers which merchant an API key belongs to, so that a
// request does not query the merchants table (on Postgres that lookup was a
// third of the statements of creating an invoice).
//
// It answers only while this process runs the projectors (it is their
// projections.Observer): then every change to the keys is applied here, and
// the cache drops its entries after the change commits and before WaitFor
// reports it, so a rotation is never answered from memory once the rotating
// request has returned. A process that only follows another's projections
// (a Postgres follower) never enables it and queries every time. Only keys
// found are kept; unknown keys always reach the database.
type KeyCache struct {
	mu      sync.Mutex
	enabled bool
	// gen changes whenever entries are dropped: a lookup that read the
	// database before the drop must not put its (maybe old) answer back.
	gen     uint64
	entries map[keyRef]string
	max     int
}

type keyRef struct {
	kind   KeyKind
	lookup string
}

// NewKeyCache returns a disabled cache of at most max keys.
func NewKeyCache(max int) *KeyCache {
	return &KeyCache{entries: map[keyRef]string{}, max: max}
}

// get returns the cached merchant of a key, and the generation to hand to
// put after a database lookup.
func (c *KeyCache) get(kind KeyKind, lookup string) (string, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.enabled {
		return "", c.gen, false
	}
	id, ok := c.entries[keyRef{kind, lookup}]
	return id, c.gen, ok
}

// put keeps a database answer read at generation gen, unless entries were
// dropped since.
func (c *KeyCache) put(kind KeyKind, lookup, merchantID string, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.enabled || gen != c.gen {
		return
	}
	if len(c.entries) >= c.max {
		clear(c.entries)
	}
	c.entries[keyRef{kind, lookup}] = merchantID
}

func (c *KeyCache) reset(enabled bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.enabled = enabled
	c.gen++
	clear(c.entries)
}

// Started implements projections.Observer.
func (c *KeyCache) Started() { c.reset(true) }

// Stopped implements projections.Observer.
func (c *KeyCache) Stopped() { c.reset(false) }

// Applied implements projections.Observer: a key rotation, or changes it
// cannot see (recs nil), drop every entry. A new merchant's keys need
// nothing: unknown keys are never cached.
func (c *KeyCache) Applied(recs []eventstore.RecordedEvent) {
	if recs == nil {
		c.reset(true)
		return
	}
	for _, rec := range recs {
		if rec.Type == domain.TypeAPIKeysRotated {
			c.reset(true)
			return
		}
	}
}

// Len is the number of keys cached.
func (c *KeyCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
