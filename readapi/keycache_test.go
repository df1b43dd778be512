package readapi

import (
	"testing"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

func TestKeyCache(t *testing.T) {
	c := NewKeyCache(3)
	// Disabled until the runner starts: nothing is kept.
	_, gen, _ := c.get(SecretKey, "h1")
	c.put(SecretKey, "h1", "mer_1", gen)
	if c.Len() != 0 {
		t.Fatal("a disabled cache kept a key")
	}
	c.Started()
	_, gen, _ = c.get(SecretKey, "h1")
	c.put(SecretKey, "h1", "mer_1", gen)
	if id, _, ok := c.get(SecretKey, "h1"); !ok || id != "mer_1" {
		t.Fatalf("get = %q %v", id, ok)
	}
	if _, _, ok := c.get(PublishableKey, "h1"); ok {
		t.Fatal("a secret key's hash answered for a publishable key")
	}

	// A lookup that read the database before a rotation was applied must
	// not put its answer back after the drop.
	_, stale, _ := c.get(PublishableKey, "pk_1")
	c.Applied([]eventstore.RecordedEvent{{Type: domain.TypeInvoiceCreated}})
	if c.Len() != 1 {
		t.Fatal("an invoice dropped the keys")
	}
	c.Applied([]eventstore.RecordedEvent{{Type: domain.TypeInvoiceCreated}, {Type: domain.TypeAPIKeysRotated}})
	if c.Len() != 0 {
		t.Fatal("a rotation left keys cached")
	}
	c.put(PublishableKey, "pk_1", "mer_1", stale)
	if _, _, ok := c.get(PublishableKey, "pk_1"); ok {
		t.Fatal("an answer read before the rotation was cached after it")
	}

	// Changes the runner did not see drop everything too.
	_, gen, _ = c.get(SecretKey, "h2")
	c.put(SecretKey, "h2", "mer_2", gen)
	c.Applied(nil)
	if c.Len() != 0 {
		t.Fatal("unknown changes left keys cached")
	}

	// Bounded: a full cache starts again.
	_, gen, _ = c.get(SecretKey, "a")
	for _, k := range []string{"a", "b", "c", "d"} {
		c.put(SecretKey, k, "mer_"+k, gen)
	}
	if n := c.Len(); n != 1 {
		t.Fatalf("%d keys after overflowing a cache of 3, want 1", n)
	}

	// Stopped (no longer the process that projects): no answers.
	c.Stopped()
	if _, _, ok := c.get(SecretKey, "d"); ok {
		t.Fatal("a stopped cache answered")
	}
}
