package httpapi

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/opstore"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// postgresSchema returns the read-model database in a schema of its own on
// the test Postgres (PIC_TEST_POSTGRES_URL), dropped at the end; the test
// is skipped without a Postgres.
func postgresSchema(t *testing.T, prefix string) sqldb.DB {
	t.Helper()
	url := os.Getenv("PIC_TEST_POSTGRES_URL")
	if url == "" {
		url = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	admin, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	schema := prefix + strings.ToLower(strconv.FormatInt(time.Now().UnixNano(), 36))
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Skipf("no Postgres (set PIC_TEST_POSTGRES_URL): %v", err)
	}
	t.Cleanup(func() { admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`) })
	pool, err := sql.Open("pgx", url+"&search_path="+schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	return sqldb.DB{Read: pool, Write: pool, Dialect: sqldb.Postgres}
}

func TestSessionStoreMemory(t *testing.T) { testSessionStore(t, newMemorySessions()) }

func TestSessionStoreSQLite(t *testing.T) { testSessionStore(t, setup(t).deps.Sessions) }

func TestSessionStorePostgres(t *testing.T) {
	db := postgresSchema(t, "sess_")
	for i := 0; i < 2; i++ { // migrating twice is harmless
		if err := opstore.Migrate(context.Background(), db); err != nil {
			t.Fatal(err)
		}
	}
	testSessionStore(t, opstore.NewSessions(db))
}

func testSessionStore(t *testing.T, s SessionStore) {
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	mk := func(id, merchant string) Session {
		return Session{ID: id, MerchantID: merchant, KeyHash: "hash-" + merchant, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	for _, sess := range []Session{mk("a1", "mer_a"), mk("a2", "mer_a"), mk("b1", "mer_b")} {
		if err := s.Create(ctx, sess, now); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Get(ctx, "a1", now)
	if err != nil || got.MerchantID != "mer_a" || got.KeyHash != "hash-mer_a" || !got.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("get: %+v %v", got, err)
	}
	if _, err := s.Get(ctx, "nope", now); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("unknown session: %v", err)
	}
	if _, err := s.Get(ctx, "a1", now.Add(time.Hour)); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("expired session: %v", err)
	}
	if err := s.End(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if err := s.End(ctx, "a1"); err != nil { // ending twice is no error
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "a1", now); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("ended session: %v", err)
	}
	if _, err := s.Get(ctx, "a2", now); err != nil {
		t.Fatalf("ending one ended another: %v", err)
	}
	if err := s.Create(ctx, mk("a3", "mer_a"), now); err != nil {
		t.Fatal(err)
	}
	if err := s.EndAll(ctx, "mer_a"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a2", "a3"} {
		if _, err := s.Get(ctx, id, now); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("%s after EndAll: %v", id, err)
		}
	}
	if _, err := s.Get(ctx, "b1", now); err != nil {
		t.Fatalf("EndAll ended another merchant's session: %v", err)
	}
	// A day later, creating a session sweeps the expired ones away (b1).
	later := now.Add(24 * time.Hour)
	if err := s.Create(ctx, Session{ID: "c1", MerchantID: "mer_c", KeyHash: "h", CreatedAt: later, ExpiresAt: later.Add(time.Hour)}, later); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "b1", now); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("an expired session was not swept: %v", err)
	}
}

// TestSessionsAcrossProcessesPostgres: two servers, as two picd processes,
// share one Postgres and nothing else. A session made on one works on the
// other; signing out on either, or everywhere, ends it on both at once.
func TestSessionsAcrossProcessesPostgres(t *testing.T) {
	db := postgresSchema(t, "sess_")
	if err := opstore.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	b := setup(t)
	procs := make([]*bundle, 2)
	for i := range procs {
		deps := b.deps
		deps.Sessions = opstore.NewSessions(db)
		srv := httptest.NewServer(recordAnswers(New(b.cfg, deps)))
		t.Cleanup(srv.Close)
		p := *b
		p.srv = srv
		procs[i] = &p
	}
	one, two := procs[0], procs[1]
	account := func(p *bundle, c *http.Cookie) int {
		return p.do(t, req{method: "GET", path: "/v1/account", header: withCookie(c)}).status
	}
	m := one.signUp(t, "Shop")
	c := one.login(t, m.secret)
	if got := account(two, c); got != http.StatusOK {
		t.Fatalf("a session of one process on the other: %d", got)
	}
	if res := two.do(t, req{method: "DELETE", path: "/v1/sessions", header: withCookie(c)}); res.status != http.StatusNoContent {
		t.Fatalf("sign-out: %d", res.status)
	}
	if got := account(one, c); got != http.StatusUnauthorized {
		t.Fatalf("signed out on two, still valid on one: %d", got)
	}
	onTwo, onOne := two.login(t, m.secret), one.login(t, m.secret)
	if res := one.do(t, req{method: "DELETE", path: "/v1/sessions?all=true", key: m.secret}); res.status != http.StatusNoContent {
		t.Fatalf("sign out everywhere: %d", res.status)
	}
	for _, p := range procs {
		if a, b := account(p, onTwo), account(p, onOne); a != http.StatusUnauthorized || b != http.StatusUnauthorized {
			t.Fatalf("after sign out everywhere: %d %d", a, b)
		}
	}
}
