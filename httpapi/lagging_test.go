package httpapi

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/readapi"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// A key signed up on one instance and used at once on another whose read
// models lag (issue #27) is not answered 401, which would tell the client
// its new key is wrong: 503 with Retry-After while that instance cannot
// tell, the merchant once it has caught up; an unknown key then gets 401.
func TestNewKeyOnALaggingInstance(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	other, err := sqlite.Open(filepath.Join(t.TempDir(), "read.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	db := sqldb.DB{Read: other.DB(), Write: other.WriteDB(), Dialect: sqldb.SQLite}
	if err := projections.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	// The second instance reads the same log into its own read models,
	// with a runner that has not moved yet.
	lagging := projections.NewRunner(b.store, db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	deps := b.deps
	deps.Reader, deps.Events, deps.Wait = readapi.NewSQL(db), readapi.NewSQL(db), lagging
	cfg := b.cfg
	cfg.ReadYourWritesWait = 100 * time.Millisecond
	second := httptest.NewServer(New(cfg, deps))
	defer second.Close()
	get := func(key string) *http.Response {
		r, _ := http.NewRequest("GET", second.URL+"/v1/balance", nil)
		r.Header.Set("Authorization", "Bearer "+key)
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}

	m := b.signUp(t, "Shop")
	if res := get(m.secret); res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Fatalf("a new key on an instance that has not projected it: %d (Retry-After %q), want 503 with Retry-After",
			res.StatusCode, res.Header.Get("Retry-After"))
	}
	if err := lagging.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if res := get(m.secret); res.StatusCode != http.StatusOK {
		t.Fatalf("the new key once the instance caught up: %d", res.StatusCode)
	}
	if res := get("pic_live_000000000000000000000000000000000000000000000000"); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("an unknown key on a caught-up instance: %d, want 401", res.StatusCode)
	}
}
