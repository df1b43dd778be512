package webhooks

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/sqldb"
	"github.com/acceptcryptohere/gateway/sqldb/sqldbtest"
)

// fakeClock is the injected clock of commands, subscriber and worker.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
}

// After is a Config.After that jumps the clock instead of sleeping.
func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.Advance(d)
	ch := make(chan time.Time, 1)
	ch <- c.Now()
	return ch
}

// env is a real SQLite event store, real commands, a read-model database
// with the projections' and the webhooks' tables, and a subscriber.
type env struct {
	t      *testing.T
	ctx    context.Context
	store  *sqlite.Store
	db     sqldb.DB
	h      commands.Handlers
	clock  *fakeClock
	runner *projections.Runner
	sub    *Subscriber
	n      int // command counter
	// box seals the webhook secrets h writes and opens them in e.worker,
	// as in picd; clear writes them in clear, as logs from before sealing.
	box   *SecretBox
	clear commands.Handlers
}

const baseURL = "https://pay.example"

// embedded puts the read models in the event store's own file, as picd's
// default mode does (one writer connection for appends and read models).
func embedded(t *testing.T, s *sqlite.Store) sqldb.DB {
	return sqldb.DB{Read: s.DB(), Write: s.WriteDB(), Dialect: sqldb.SQLite}
}

// postgresDB gives the test its own schema on the real Postgres.
func postgresDB(t *testing.T, _ *sqlite.Store) sqldb.DB {
	return sqldbtest.Postgres(t, "wh")
}

func setup(t *testing.T, newDB func(*testing.T, *sqlite.Store) sqldb.DB) *env {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	clock := &fakeClock{now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	d := commands.Deps{Store: store, Assets: domain.DefaultAssets(), Now: clock.Now, NewID: commands.NewIDGenerator(clock.Now)}
	derive := func(chain domain.Chain, index int64) (string, error) {
		return fmt.Sprintf("%s-addr-%d", chain, index), nil
	}
	clearHandlers := commands.New(d, commands.NewIndexAllocator(d, derive), func(domain.Chain, string) error { return nil })
	key := make([]byte, 32)
	rand.Read(key)
	box, err := NewSecretBox(key)
	if err != nil {
		t.Fatal(err)
	}
	d.WebhookSecrets = box
	h := commands.New(d, commands.NewIndexAllocator(d, derive), func(domain.Chain, string) error { return nil })
	db := newDB(t, store)
	if err := projections.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, db); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	return &env{t: t, ctx: ctx, store: store, db: db, h: h, clock: clock, box: box, clear: clearHandlers,
		runner: projections.NewRunner(store, db, quiet),
		sub:    NewSubscriber(store, db, SubscriberConfig{BaseURL: baseURL, Now: clock.Now, Logger: quiet})}
}

func (e *env) id(prefix string) string {
	e.n++
	return fmt.Sprint(prefix, e.n)
}

func (e *env) merchant(name, url string) commands.Registered {
	e.t.Helper()
	m, err := e.h.RegisterMerchant.Handle(e.ctx, commands.RegisterMerchant{CommandID: e.id("r"), Name: name, WebhookURL: url})
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

func (e *env) setURL(merchantID, url string) {
	e.t.Helper()
	if _, err := e.h.UpdateAccount.Handle(e.ctx, commands.UpdateAccount{CommandID: e.id("u"), MerchantID: merchantID,
		Patch: domain.AccountPatch{WebhookURL: &url}}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) invoice(merchantID string) string {
	e.t.Helper()
	e.clock.Advance(time.Millisecond)
	inv, err := e.h.CreateInvoice.Handle(e.ctx, commands.CreateInvoice{CommandID: e.id("i"), MerchantID: merchantID, Asset: "USDT.ETH", Amount: "10"})
	if err != nil {
		e.t.Fatal(err)
	}
	return inv.Invoice.InvoiceID
}

// observe pays amount to the invoice (a new deposit); confirm confirms it.
func (e *env) observe(inv, amount string) string {
	e.t.Helper()
	dep := e.id("dep")
	if _, err := e.h.ObserveDeposit.Handle(e.ctx, commands.ObserveDeposit{CommandID: e.id("o"), InvoiceID: inv,
		Deposit: domain.ObservedDeposit{DepositID: dep, TxID: "tx" + dep, Amount: domain.MustAmount(amount)}}); err != nil {
		e.t.Fatal(err)
	}
	return dep
}

func (e *env) confirm(inv, dep string) {
	e.t.Helper()
	if _, err := e.h.ConfirmDeposit.Handle(e.ctx, commands.ConfirmDeposit{CommandID: e.id("c"), InvoiceID: inv, DepositID: dep, Confirmations: 12}); err != nil {
		e.t.Fatal(err)
	}
}

// payFully takes an invoice through confirming to paid (two deliveries).
func (e *env) payFully(inv string) {
	e.t.Helper()
	dep := e.observe(inv, "10")
	e.confirm(inv, dep)
}

func (e *env) expire(inv string) {
	e.t.Helper()
	e.clock.Advance(2 * time.Hour)
	if _, err := e.h.ExpireInvoice.Handle(e.ctx, commands.ExpireInvoice{CommandID: e.id("x"), InvoiceID: inv}); err != nil {
		e.t.Fatal(err)
	}
}

// sync brings the merchants read model and the deliveries up to the log.
func (e *env) sync() {
	e.t.Helper()
	if err := e.runner.CatchUp(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	if err := e.sub.CatchUp(e.ctx); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) worker(cfg Config) *Worker {
	if cfg.Now == nil {
		cfg.Now = e.clock.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Secrets == nil {
		cfg.Secrets = e.box
	}
	return NewWorker(e.db, cfg)
}

// drain runs passes until nothing is due, advancing the clock by step
// between passes; it gives up after max passes.
func (e *env) drain(w *Worker, step time.Duration, maxPasses int) int {
	e.t.Helper()
	total := 0
	for i := 0; i < maxPasses; i++ {
		n, err := w.Pass(e.ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		total += n
		if n == 0 {
			return total
		}
		e.clock.Advance(step)
	}
	e.t.Fatalf("still sending after %d passes", maxPasses)
	return total
}

func (e *env) delivery(w *Worker, merchantID, id string) Delivery {
	e.t.Helper()
	d, err := w.DeliveryByID(e.ctx, merchantID, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

func (e *env) all(w *Worker, merchantID string) []Delivery {
	e.t.Helper()
	var out []Delivery
	f := DeliveryFilter{Limit: 100}
	for {
		page, more, err := w.ListDeliveries(e.ctx, merchantID, f)
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, page...)
		if !more {
			return out
		}
		f.StartingAfter = page[len(page)-1].ID
	}
}

// receiver is a real HTTP endpoint on loopback that records what it gets.
type receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	got     []request
	respond func(r request, n int) (status int, header http.Header, body string)
}

type request struct {
	Status int // what the receiver answered (0 while it has not)
	Body   []byte
	Header http.Header
	Path   string
	Type   string // the body's type
}

func newReceiver(t *testing.T) *receiver { return newReceiverAt(t, "") }

// newReceiverAt listens on addr ("" for any free loopback port).
func newReceiverAt(t *testing.T, addr string) *receiver {
	rc := &receiver{}
	rc.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		req := request{Body: raw, Header: r.Header.Clone(), Path: r.URL.Path}
		var b struct{ Type string }
		json.Unmarshal(raw, &b)
		req.Type = b.Type
		rc.mu.Lock()
		n := len(rc.got)
		rc.got = append(rc.got, req)
		respond := rc.respond
		rc.mu.Unlock()
		status, header, body := http.StatusOK, http.Header(nil), "ok"
		if respond != nil {
			status, header, body = respond(req, n)
		}
		rc.mu.Lock()
		rc.got[n].Status = status
		rc.mu.Unlock()
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	if addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		rc.srv.Listener.Close()
		rc.srv.Listener = ln
	}
	rc.srv.Start()
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) set(f func(r request, n int) (int, http.Header, string)) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.respond = f
}

func (rc *receiver) requests() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]request(nil), rc.got...)
}
