package readapi

import (
	"testing"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

func TestKeyCache(t *testing.T) {
	c := NewKeyCache(3)
	// Disabled until the runner starts: nothing is kept.
	_, gen, _ := c.get(keyRef{SecretKey, "h1"})
	c.put(keyRef{SecretKey, "h1"}, "mer_1", gen)
	if c.Len() != 0 {
		t.Fatal("a disabled cache kept a key")
	}
	c.Started()
	_, gen, _ = c.get(keyRef{SecretKey, "h1"})
	c.put(keyRef{SecretKey, "h1"}, "mer_1", gen)
	if id, _, ok := c.get(keyRef{SecretKey, "h1"}); !ok || id != "mer_1" {
		t.Fatalf("get = %q %v", id, ok)
	}
	if _, _, ok := c.get(keyRef{PublishableKey, "h1"}); ok {
		t.Fatal("a secret key's hash answered for a publishable key")
	}

	// A lookup that read the database before a rotation was applied must
	// not put its answer back after the drop.
	_, stale, _ := c.get(keyRef{PublishableKey, "pk_1"})
	c.Applied([]eventstore.RecordedEvent{{Type: domain.TypeInvoiceCreated}})
	if c.Len() != 1 {
		t.Fatal("an invoice dropped the keys")
	}
	c.Applied([]eventstore.RecordedEvent{{Type: domain.TypeInvoiceCreated}, {Type: domain.TypeAPIKeysRotated}})
	if c.Len() != 0 {
		t.Fatal("a rotation left keys cached")
	}
	c.put(keyRef{PublishableKey, "pk_1"}, "mer_1", stale)
	if _, _, ok := c.get(keyRef{PublishableKey, "pk_1"}); ok {
		t.Fatal("an answer read before the rotation was cached after it")
	}

	// Changes the runner did not see drop everything too.
	_, gen, _ = c.get(keyRef{SecretKey, "h2"})
	c.put(keyRef{SecretKey, "h2"}, "mer_2", gen)
	c.Applied(nil)
	if c.Len() != 0 {
		t.Fatal("unknown changes left keys cached")
	}

	// Bounded: a full cache starts again.
	_, gen, _ = c.get(keyRef{SecretKey, "a"})
	for _, k := range []string{"a", "b", "c", "d"} {
		c.put(keyRef{SecretKey, k}, "mer_"+k, gen)
	}
	if n := c.Len(); n != 1 {
		t.Fatalf("%d keys after overflowing a cache of 3, want 1", n)
	}

	// Stopped (no longer the process that projects): no answers.
	c.Stopped()
	if _, _, ok := c.get(keyRef{SecretKey, "d"}); ok {
		t.Fatal("a stopped cache answered")
	}
}

// The account cache forgets every merchant's consolidate_to when a settings
// change is applied, and keeps it across other events.
func TestAccountCacheDropsOnSettingsChange(t *testing.T) {
	c := NewAccountCache(10)
	c.Started()
	_, gen, _ := c.get("mer_1")
	c.put("mer_1", "USDT.TRON", gen)
	c.Applied([]eventstore.RecordedEvent{{Type: domain.TypeInvoiceCreated}})
	if to, _, ok := c.get("mer_1"); !ok || to != "USDT.TRON" {
		t.Fatalf("after an invoice: %q %v", to, ok)
	}
	c.Applied([]eventstore.RecordedEvent{{Type: domain.TypeAccountSettingsChanged}})
	if _, _, ok := c.get("mer_1"); ok {
		t.Fatal("consolidate_to answered from memory after a settings change")
	}
	c.Stopped()
	_, gen, _ = c.get("mer_1")
	c.put("mer_1", "BTC", gen)
	if _, _, ok := c.get("mer_1"); ok {
		t.Fatal("answered while this process does not run the projectors")
	}
}

// A leader paused past its lease wakes with the runner not yet stopped,
// while another process projected a rotation meanwhile: once Live says
// the lease may be lost, nothing is answered from memory or kept (#27).
func TestKeyCacheAnswersOnlyWhileLive(t *testing.T) {
	live := true
	c := NewKeyCache(10)
	c.Live = func() bool { return live }
	c.Started()
	_, gen, _ := c.get(keyRef{SecretKey, "h1"})
	c.put(keyRef{SecretKey, "h1"}, "mer_1", gen)
	if _, _, ok := c.get(keyRef{SecretKey, "h1"}); !ok {
		t.Fatal("a live leader's cache missed")
	}
	live = false
	if _, _, ok := c.get(keyRef{SecretKey, "h1"}); ok {
		t.Fatal("a key answered from memory after the lease lapsed")
	}
	_, gen, _ = c.get(keyRef{SecretKey, "h2"})
	c.put(keyRef{SecretKey, "h2"}, "mer_2", gen)
	live = true
	if _, _, ok := c.get(keyRef{SecretKey, "h2"}); ok {
		t.Fatal("a key looked up while the lease had lapsed was kept")
	}
}
