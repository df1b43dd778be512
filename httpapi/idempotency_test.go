package httpapi

import (
	"bytes"
	"context"
	"database/sql"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/opstore"
	"github.com/acceptcryptohere/gateway/sqldb"
)

func TestIdempotentReplay(t *testing.T) {
	b := setup(t)
	m := b.signUp(t, "Shop")
	key := map[string]string{"Idempotency-Key": "order-123-attempt"}
	first := b.do(t, req{method: "POST", path: "/v1/invoices", key: m.secret, body: usdtBody, header: key})
	if first.status != http.StatusCreated || first.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first: %d %v %s", first.status, first.header, first.raw)
	}
	again := b.do(t, req{method: "POST", path: "/v1/invoices", key: m.secret, body: usdtBody, header: key})
	if again.status != http.StatusCreated || !bytes.Equal(again.raw, first.raw) || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %v %s", again.status, again.header, again.raw)
	}
	// The publishable key has its own key space (TestPublishableKeyOwnIdempotencySpace):
	// the same key is another key there.
	viaPub := b.do(t, req{method: "POST", path: "/v1/invoices", key: m.pub, body: usdtBody, header: key})
	if viaPub.status != http.StatusCreated || viaPub.header.Get("Idempotent-Replayed") != "" || bytes.Equal(viaPub.raw, first.raw) {
		t.Fatalf("the publishable key got the secret key's answer: %d %s", viaPub.status, viaPub.raw)
	}
	conflict := b.do(t, req{method: "POST", path: "/v1/invoices", key: m.secret, body: btcBody, header: key})
	if conflict.status != http.StatusConflict || conflict.code() != "idempotency_conflict" {
		t.Fatalf("different body: %d %s", conflict.status, conflict.raw)
	}
	if n := b.countInvoices(t, m.secret); n != 2 {
		t.Fatalf("%d invoices, want 2 (one per key space)", n)
	}

	// Another merchant's identical key is another key.
	other := b.signUp(t, "Other")
	theirs := b.do(t, req{method: "POST", path: "/v1/invoices", key: other.secret, body: usdtBody, header: key})
	if theirs.status != http.StatusCreated || theirs.header.Get("Idempotent-Replayed") != "" || bytes.Equal(theirs.raw, first.raw) {
		t.Fatalf("cross-merchant key: %d %s", theirs.status, theirs.raw)
	}

	// Validation failures are answers too: replayed, not re-run.
	bad := map[string]string{"Idempotency-Key": "bad-one"}
	r1 := b.do(t, req{method: "POST", path: "/v1/invoices", key: m.secret, body: `{"asset":"DOGE","amount":"1"}`, header: bad})
	r2 := b.do(t, req{method: "POST", path: "/v1/invoices", key: m.secret, body: `{"asset":"DOGE","amount":"1"}`, header: bad})
	if r1.status != 400 || r2.status != 400 || r2.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("400 replay: %d %d %v", r1.status, r2.status, r2.header)
	}
}

func TestIdempotentConcurrentDuplicates(t *testing.T) {
	b := setup(t)
	m := b.signUp(t, "Shop")
	const n = 20
	var wg sync.WaitGroup
	results := make([]response, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = b.do(t, req{method: "POST", path: "/v1/invoices", key: m.secret, body: usdtBody,
				header: map[string]string{"Idempotency-Key": "burst"}})
		}(i)
	}
	wg.Wait()
	replayed := 0
	for i, r := range results {
		if r.status != http.StatusCreated || !bytes.Equal(r.raw, results[0].raw) {
			t.Fatalf("request %d: %d %s", i, r.status, r.raw)
		}
		if r.header.Get("Idempotent-Replayed") == "true" {
			replayed++
		}
	}
	if replayed != n-1 {
		t.Errorf("%d replayed, want %d", replayed, n-1)
	}
	if got := b.countInvoices(t, m.secret); got != 1 {
		t.Fatalf("%d invoices, want 1", got)
	}
}

// TestIdempotentKeepsSecretsOutOfTheDatabase: the stored answer of a key
// rotation holds the new secret key; the table must not reveal it. (Sign-up
// answers are never stored: TestSignUpNeverReplaysSecrets.)
func TestIdempotentKeepsSecretsOutOfTheDatabase(t *testing.T) {
	b := setup(t)
	m := b.signUp(t, "Shop")
	key := map[string]string{"Idempotency-Key": "rotate-1"}
	res := b.do(t, req{method: "POST", path: "/v1/account/keys/rotate", key: m.secret, header: key})
	if res.status != http.StatusOK {
		t.Fatalf("rotate: %d %s", res.status, res.raw)
	}
	secret := res.json(t)["secret_key"].(string)
	rows, err := b.db.Read.Query(`SELECT id, claim, request_mac, state, response FROM idempotency_keys`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	count := 0
	for rows.Next() {
		var id, claim, mac, state string
		var resp []byte
		if err := rows.Scan(&id, &claim, &mac, &state, &resp); err != nil {
			t.Fatal(err)
		}
		count++
		for _, col := range [][]byte{[]byte(id), []byte(claim), []byte(mac), []byte(state), resp} {
			if bytes.Contains(col, []byte(secret)) || bytes.Contains(col, []byte("rotate-1")) || bytes.Contains(col, []byte("pic_live_")) ||
				bytes.Contains(col, []byte(m.id)) {
				t.Fatalf("the idempotency table holds a secret, the key or the merchant in clear")
			}
		}
	}
	if count != 1 {
		t.Fatalf("%d rows", count)
	}
}

// TestIdempotencyStore drives the store directly: release after a failure,
// expiry after a day, and the stale-claim lease.
func TestIdempotencyStoreSQLite(t *testing.T) { testIdempotencyStore(t, setup(t).deps.Idempotency) }

// TestIdempotencyStorePostgres runs the same checks on the real Postgres,
// in a schema of its own (PIC_TEST_POSTGRES_URL, as projections' tests).
func TestIdempotencyStorePostgres(t *testing.T) {
	url := os.Getenv("PIC_TEST_POSTGRES_URL")
	if url == "" {
		url = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	admin, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	schema := "idem_" + strings.ToLower(strconv.FormatInt(time.Now().UnixNano(), 36))
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Skipf("no Postgres (set PIC_TEST_POSTGRES_URL): %v", err)
	}
	defer admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
	pool, err := sql.Open("pgx", url+"&search_path="+schema)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	db := sqldb.DB{Read: pool, Write: pool, Dialect: sqldb.Postgres}
	for i := 0; i < 2; i++ { // migrating twice is harmless
		if err := opstore.Migrate(context.Background(), db); err != nil {
			t.Fatal(err)
		}
	}
	testIdempotencyStore(t, opstore.NewIdempotency(db))
}

func testIdempotencyStore(t *testing.T, s IdempotencyStore) {
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	body := []byte(`{"a":1}`)

	rec, err := s.Claim(ctx, "scope", "k", body, now)
	if err != nil || !rec.Claimed {
		t.Fatalf("claim: %+v %v", rec, err)
	}
	dup, err := s.Claim(ctx, "scope", "k", body, now)
	if err != nil || dup.Claimed || dup.Done || !dup.SameBody {
		t.Fatalf("duplicate while in progress: %+v %v", dup, err)
	}
	if err := s.Release(ctx, "scope", "k", rec.Token); err != nil {
		t.Fatal(err)
	}
	rec, err = s.Claim(ctx, "scope", "k", body, now)
	if err != nil || !rec.Claimed {
		t.Fatalf("claim after release: %+v %v", rec, err)
	}
	if err := s.Complete(ctx, "scope", "k", rec.Token, StoredResponse{Status: 201, Body: []byte(`{"ok":true}`)}); err != nil {
		t.Fatal(err)
	}
	done, err := s.Claim(ctx, "scope", "k", body, now.Add(23*time.Hour))
	if err != nil || !done.Done || done.Response.Status != 201 || string(done.Response.Body) != `{"ok":true}` {
		t.Fatalf("replay: %+v %v", done, err)
	}
	if other, _ := s.Claim(ctx, "scope", "k", []byte(`{"a":2}`), now); other.SameBody {
		t.Fatal("a different body matched")
	}
	if fresh, _ := s.Claim(ctx, "scope", "k", []byte(`{"a":2}`), now.Add(25*time.Hour)); !fresh.Claimed {
		t.Fatal("the key did not expire after 24 h")
	}

	// A claim abandoned by a crashed process is taken over after the lease.
	stale, _ := s.Claim(ctx, "scope", "crash", body, now)
	if again, _ := s.Claim(ctx, "scope", "crash", body, now.Add(opstore.ClaimLease+time.Second)); !again.Claimed {
		t.Fatal("a stale claim was not taken over")
	}
	if err := s.Complete(ctx, "scope", "crash", stale.Token, StoredResponse{Status: 200}); err == nil {
		t.Fatal("the superseded claim could still complete")
	}
}

// gateWaiter stands for projections that do not move (no process leads
// them, issue #27) until the test opens the gate.
type gateWaiter struct {
	open atomic.Bool
	real Waiter
}

func (g *gateWaiter) WaitFor(ctx context.Context, pos eventstore.Position) error {
	if g.open.Load() {
		return g.real.WaitFor(ctx, pos)
	}
	<-ctx.Done()
	return ctx.Err()
}

func (g *gateWaiter) WaitRecordedBefore(ctx context.Context, t time.Time) error {
	if g.open.Load() {
		return g.real.WaitRecordedBefore(ctx, t)
	}
	<-ctx.Done()
	return ctx.Err()
}

// A create is never answered before it is readable: while the projections
// stand still it answers 503 with Retry-After (never a 201 that a GET on
// another instance would answer 404), and the client's retry with the same
// Idempotency-Key answers the one invoice once they move.
func TestCreateAnswers503UntilReadable(t *testing.T) {
	b := setup(t)
	m := b.signUp(t, "Shop")
	gate := &gateWaiter{real: b.deps.Wait}
	deps := b.deps
	deps.Wait = gate
	cfg := b.cfg
	cfg.ReadYourWritesWait = 50 * time.Millisecond
	srv := httptest.NewServer(recordAnswers(New(cfg, deps)))
	defer srv.Close()
	stuck := *b
	stuck.srv = srv
	create := req{method: "POST", path: "/v1/invoices", key: m.secret, body: btcBody, header: map[string]string{"Idempotency-Key": "order-1"}}
	res := stuck.do(t, create)
	if res.status != http.StatusServiceUnavailable || res.code() != "service_unavailable" || res.header.Get("Retry-After") == "" {
		t.Fatalf("create while nothing projects: %d %v %s", res.status, res.header, res.raw)
	}
	gate.open.Store(true)
	again := stuck.do(t, create)
	if again.status != http.StatusCreated {
		t.Fatalf("retry once readable: %d %s", again.status, again.raw)
	}
	id := again.json(t)["id"].(string)
	if got := stuck.do(t, req{method: "GET", path: "/v1/invoices/" + id, key: m.secret}); got.status != http.StatusOK {
		t.Fatalf("GET of the created invoice: %d", got.status)
	}
	list := stuck.do(t, req{method: "GET", path: "/v1/invoices", key: m.secret}).json(t)
	if n := len(list["data"].([]any)); n != 1 {
		t.Fatalf("%d invoices after a 503 and its retry, want 1", n)
	}
}

// A duplicate that outwaits IdempotencyWait gets 409 idempotency_in_progress.
func TestIdempotencyInProgress(t *testing.T) {
	b := setup(t, func(c *Config) { c.IdempotencyWait = 100 * time.Millisecond })
	m := b.signUp(t, "Shop")
	// Another request holds the key (claimed, never finished).
	if rec, err := b.deps.Idempotency.Claim(context.Background(), m.id+"|POST|/v1/invoices", "held", []byte(btcBody), b.clock.Now()); err != nil || !rec.Claimed {
		t.Fatalf("claim: %+v %v", rec, err)
	}
	res := b.do(t, req{method: "POST", path: "/v1/invoices", key: m.secret, body: btcBody, header: map[string]string{"Idempotency-Key": "held"}})
	if res.status != http.StatusConflict || res.code() != "idempotency_in_progress" || res.header.Get("Retry-After") == "" {
		t.Fatalf("%d %v %s", res.status, res.header, res.raw)
	}
}

// A first request that fails with a 5xx releases the key: the retry runs
// again instead of replaying the failure.
func TestIdempotencyReleasesAfterServerError(t *testing.T) {
	b := setup(t)
	m := b.signUp(t, "Shop")
	deps := b.deps
	cd := commands.Deps{Store: b.store, Assets: domain.DefaultAssets(), Now: b.clock.Now, NewID: commands.NewIDGenerator(b.clock.Now)}
	deps.Commands = commands.New(cd, commands.StaticAddresses{}, nil) // no address for any chain: 503
	srv := httptest.NewServer(recordAnswers(New(b.cfg, deps)))
	defer srv.Close()
	broken := *b
	broken.srv = srv
	for i := 0; i < 2; i++ {
		res := broken.do(t, req{method: "POST", path: "/v1/invoices", key: m.secret, body: btcBody, header: map[string]string{"Idempotency-Key": "k"}})
		if res.status != http.StatusServiceUnavailable || res.code() != "service_unavailable" || res.header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("attempt %d: %d %v %s", i, res.status, res.header, res.raw)
		}
		if strings.Contains(string(res.raw), "no address configured") {
			t.Fatalf("internal detail leaked: %s", res.raw)
		}
	}
	// With addresses back, the same key now creates the invoice.
	if res := b.do(t, req{method: "POST", path: "/v1/invoices", key: m.secret, body: btcBody, header: map[string]string{"Idempotency-Key": "k"}}); res.status != http.StatusCreated {
		t.Fatalf("after recovery: %d %s", res.status, res.raw)
	}
}
