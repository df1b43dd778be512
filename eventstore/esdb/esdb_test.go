package esdb_test

import (
	"os"
	"testing"

	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/esdb"
	"github.com/acceptcryptohere/gateway/eventstore/storetest"
)

const skipMsg = "EVENTSTORE_URL not set: EventStoreDB cannot run here; set it to run the contract suite against a server"

// connString returns EVENTSTORE_URL (for example esdb://localhost:2113?tls=false)
// or skips.
func connString(tb testing.TB) string {
	tb.Helper()
	url := os.Getenv("EVENTSTORE_URL")
	if url == "" {
		tb.Skip(skipMsg)
	}
	return url
}

// factory opens a new client per test; the suite names its streams at
// random, so tests share one server without colliding.
func factory(url string) storetest.Factory {
	return func(tb testing.TB) eventstore.Store {
		s, err := esdb.Open(url)
		if err != nil {
			tb.Fatalf("open %s: %v", url, err)
		}
		return s
	}
}

func TestContract(t *testing.T) {
	storetest.Run(t, factory(connString(t)))
}

func BenchmarkAppend(b *testing.B) {
	storetest.Bench(b, factory(connString(b)))
}
