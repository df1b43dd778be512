package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/acceptcryptohere/gateway/chain/oracle"
	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/opstore"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/readapi"
	"github.com/acceptcryptohere/gateway/sqldb"
	"github.com/acceptcryptohere/gateway/webhooks"
)

// clock is the tests' settable time, shared by commands and the HTTP layer.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// bundle is the running stack behind the test server.
type bundle struct {
	srv    *httptest.Server
	store  *sqlite.Store
	clock  *clock
	db     sqldb.DB
	reader *readapi.SQL
	cfg    Config
	deps   Deps
	// webhooks is the real worker behind /v1/webhooks (AllowPrivate, so it
	// reaches loopback receivers); it does not run: tests call Pass.
	webhooks *webhooks.Worker
	// subscriber turns status events into deliveries when a test calls
	// syncWebhooks.
	subscriber *webhooks.Subscriber
	n          int // command counter of payDeposit
	runner     *projections.Runner
	prices     *oracle.Static
}

// testDerive stands in for HD derivation: distinct per chain and index.
func testDerive(chain domain.Chain, index int64) (string, error) {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", chain, index)))
	return "0x" + hex.EncodeToString(h[:20]), nil
}

// setup builds the real stack: SQLite event store, read models in the same
// file, the projection runner, readapi, commands, the idempotency store, the
// webhook tables with a worker and a subscriber, and the handler behind an
// httptest.Server.
func setup(t testing.TB, configure ...func(*Config)) *bundle {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "pic.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	db := sqldb.DB{Read: store.DB(), Write: store.WriteDB(), Dialect: sqldb.SQLite}
	if err := projections.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := opstore.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := webhooks.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	runner := projections.NewRunner(store, db, quiet)
	reader := readapi.NewSQL(db)
	// As picd serve does: keys from memory while the runner runs, so every
	// test of rotation and isolation goes through the cache.
	reader.Keys = readapi.NewKeyCache(1000)
	runner.Observe(reader.Keys)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); runner.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })

	// Fixed test prices; tests make them stale through prices.At. The
	// commands always have them (creating an invoice that will be converted
	// needs a fresh price: money rule 3); the HTTP layer sees them only in
	// setupMoney (Deps.Prices stays nil here). TRX has no price, for the
	// tests of a missing one.
	prices := &oracle.Static{USD: map[string]decimal.Decimal{"BTC": decimal.RequireFromString("60000"),
		"ETH": decimal.RequireFromString("3000"), "USDT.ETH": decimal.RequireFromString("1"),
		"USDT.TRON": decimal.RequireFromString("1")}, Now: clk.Now}
	cd := commands.Deps{Store: store, Assets: domain.DefaultAssets(), Now: clk.Now, NewID: commands.NewIDGenerator(clk.Now),
		Credits: readapi.Credits{SQL: reader, Wait: runner}, Prices: prices}
	acceptAll := func(domain.Chain, string) error { return nil }
	cfg := Config{RegistrationOpen: true, SessionSecret: []byte("test-session-secret-of-32-bytes!"), BaseURL: "https://pay.example"}
	for _, f := range configure {
		f(&cfg)
	}
	worker := webhooks.NewWorker(db, webhooks.Config{AllowPrivate: true, Now: clk.Now, AttemptTimeout: 5 * time.Second, Logger: quiet})
	subscriber := webhooks.NewSubscriber(store, db, webhooks.SubscriberConfig{BaseURL: cfg.BaseURL, Now: clk.Now, Notify: worker.Notify, Logger: quiet})
	deps := Deps{
		Commands:    commands.New(cd, commands.NewIndexAllocator(cd, testDerive), acceptAll),
		Reader:      reader,
		Wait:        runner,
		Idempotency: opstore.NewIdempotency(db),
		Sessions:    opstore.NewSessions(db),
		Assets:      domain.DefaultAssets(),
		Webhooks:    worker,
		Events:      reader,
		Statements:  readapi.LogStatements{Store: store},
		Now:         clk.Now,
		Logger:      slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	srv := httptest.NewServer(recordAnswers(New(cfg, deps)))
	t.Cleanup(srv.Close)
	return &bundle{srv: srv, store: store, clock: clk, db: db, reader: reader, cfg: cfg, deps: deps, webhooks: worker, subscriber: subscriber, runner: runner,
		prices: prices}
}

// testWriter sends the handler's warnings to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// response is a decoded answer.
type response struct {
	status int
	header http.Header
	raw    []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.raw, &m); err != nil {
		t.Fatalf("response %d is not a JSON object: %s", r.status, r.raw)
	}
	return m
}

func (r response) code() string {
	var e struct{ Error string }
	json.Unmarshal(r.raw, &e)
	return e.Error
}

// req describes a request; header values override the defaults.
type req struct {
	method, path string
	key          string // an API key, "" for none
	body         string
	header       map[string]string
}

func (b *bundle) do(t *testing.T, rq req) response {
	t.Helper()
	var body io.Reader
	if rq.body != "" {
		body = strings.NewReader(rq.body)
	}
	hr, err := http.NewRequest(rq.method, b.srv.URL+rq.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if rq.body != "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	if rq.key != "" {
		hr.Header.Set("Authorization", "Bearer "+rq.key)
	}
	for k, v := range rq.header {
		hr.Header.Set(k, v)
	}
	return b.send(t, hr)
}

// merchant is a signed-up merchant's credentials.
type merchant struct {
	id, secret, pub, whsec string
}

func (b *bundle) signUp(t *testing.T, name string) merchant {
	t.Helper()
	res := b.do(t, req{method: "POST", path: "/v1/merchants", body: `{"name":"` + name + `","webhook_url":"https://shop.example/ipn"}`})
	if res.status != http.StatusCreated {
		t.Fatalf("sign-up: %d %s", res.status, res.raw)
	}
	m := res.json(t)
	return merchant{id: m["merchant_id"].(string), secret: m["secret_key"].(string), pub: m["publishable_key"].(string), whsec: m["webhook_secret"].(string)}
}

func (b *bundle) createInvoice(t *testing.T, key, body string) map[string]any {
	t.Helper()
	res := b.do(t, req{method: "POST", path: "/v1/invoices", key: key, body: body})
	if res.status != http.StatusCreated {
		t.Fatalf("create invoice: %d %s", res.status, res.raw)
	}
	return res.json(t)
}

// countInvoices lists all of a merchant's invoices.
func (b *bundle) countInvoices(t *testing.T, key string) int {
	t.Helper()
	res := b.do(t, req{method: "GET", path: "/v1/invoices?limit=100", key: key})
	if res.status != http.StatusOK {
		t.Fatalf("list: %d %s", res.status, res.raw)
	}
	return len(res.json(t)["data"].([]any))
}

// payDeposit pays amount to an invoice through the command a chain watcher
// would send, which records a status change (partially_paid or confirming).
func (b *bundle) payDeposit(t *testing.T, invoiceID, amount string) {
	t.Helper()
	b.n++
	dep := fmt.Sprintf("dep%d", b.n)
	_, err := b.deps.Commands.ObserveDeposit.Handle(context.Background(), commands.ObserveDeposit{
		CommandID: "cmd_observe_" + dep, InvoiceID: invoiceID,
		Deposit: domain.ObservedDeposit{DepositID: dep, TxID: "tx_" + dep, Amount: domain.MustAmount(amount)},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// syncWebhooks turns every status event in the log into its delivery.
func (b *bundle) syncWebhooks(t *testing.T) {
	t.Helper()
	if err := b.subscriber.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
}
