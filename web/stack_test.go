package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/oracle"
	"github.com/acceptcryptohere/gateway/chain/sim"
	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/httpapi"
	"github.com/acceptcryptohere/gateway/opstore"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/readapi"
	"github.com/acceptcryptohere/gateway/sqldb"
	"github.com/acceptcryptohere/gateway/webhooks"
)

// clock is real time plus an offset the test can move forward, so the
// browser's countdown stays real while an invoice can be made due.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// stack is the whole gateway in process, wired as cmd/picd wires it: the
// SQLite event store with its read models, the projection runner, the
// commands, the /v1 API, the simulator's operator routes and these pages.
type stack struct {
	srv      *httptest.Server
	handlers commands.Handlers
	reader   *readapi.SQL
	clock    *clock
	sim      *sim.Simulator
	simToken string
	// webhookURL acknowledges every delivery.
	webhookURL string
	// prices is the oracle's source; a test takes a price away and gives
	// it back (prices.set).
	prices *switchPrices
	// webhookDown makes the receiver answer 503 while set.
	webhookDown *atomic.Bool
	// browserCalls records the requests the browser made (browserRequests).
	browserCalls *requestLog
}

// requestLog is the method and path of every request the browser sent to
// the stack (not those of the test's own Go client).
type requestLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *requestLog) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.UserAgent(), "Go-http-client/") {
			l.mu.Lock()
			l.calls = append(l.calls, r.Method+" "+r.URL.Path)
			l.mu.Unlock()
		}
		next.ServeHTTP(w, r)
	})
}

func (l *requestLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.calls...)
}

// switchPrices is a price source a test can change while the stack runs:
// a pair whose asset has no price is domain.ErrPriceUnavailable, as when
// the real oracle's source is down.
type switchPrices struct {
	mu  sync.Mutex
	usd map[string]decimal.Decimal
	now func() time.Time
}

func (p *switchPrices) Price(ctx context.Context, base, quote string) (domain.PriceQuote, error) {
	p.mu.Lock()
	usd := maps.Clone(p.usd)
	p.mu.Unlock()
	return oracle.Static{USD: usd, Now: p.now}.Price(ctx, base, quote)
}

// set gives asset a USD price, or takes its price away ("").
func (p *switchPrices) set(asset, usd string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if usd == "" {
		delete(p.usd, asset)
		return
	}
	p.usd[asset] = decimal.RequireFromString(usd)
}

// stackOption changes what newStack runs.
type stackOption func(*stackConfig)

type stackConfig struct {
	settlement bool
	usd        map[string]string
}

// withSettlement runs the settlement process (chain.Settlement) as picd
// serve does: final payments are converted (settle_as, consolidate_to) or
// wait for a price; the waits are retried on the stack's clock.
func withSettlement() stackOption { return func(c *stackConfig) { c.settlement = true } }

// withPrice adds a USD price to the oracle's source.
func withPrice(asset, usd string) stackOption {
	return func(c *stackConfig) { c.usd[asset] = usd }
}

const testSimToken = "sim-operator-token-for-tests"

// testExplorers links Bitcoin's transactions (as an operator would with
// PIC_EXPLORER_BTC_TX) and leaves the other chains without a link.
var testExplorers = Explorers{domain.ChainBitcoin: "https://explorer.invalid/tx/{txid}"}

func newStack(t *testing.T, opts ...stackOption) *stack {
	t.Helper()
	// Fixed prices for invoices priced in fiat (issue #19).
	cfg := stackConfig{usd: map[string]string{"BTC": "60000", "EUR": "1.08"}}
	for _, o := range opts {
		o(&cfg)
	}
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
	if err := sim.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := webhooks.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := chain.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	clk := &clock{}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	warn := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	runner := projections.NewRunner(store, db, quiet)
	// Webhooks go to a receiver that acknowledges them, so invoice pages
	// show a real delivery log.
	webhookDown := &atomic.Bool{}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if webhookDown.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(receiver.Close)
	worker := webhooks.NewWorker(db, webhooks.Config{AllowPrivate: true, PollInterval: 200 * time.Millisecond, Logger: warn})
	subscriber := webhooks.NewSubscriber(store, db, webhooks.SubscriberConfig{Notify: worker.Notify, Logger: warn})
	runs := []func(context.Context) error{runner.Run, worker.Run, subscriber.Run}

	assets := domain.DefaultAssets()
	prices := &switchPrices{usd: map[string]decimal.Decimal{}, now: clk.Now}
	for asset, usd := range cfg.usd {
		prices.set(asset, usd)
	}
	reader := readapi.NewSQL(db)
	// Credits let the dashboard's withdrawals and refunds be requested
	// (nothing sends them here: no payout processor runs).
	cd := commands.Deps{Store: store, Assets: assets, Now: clk.Now, NewID: commands.NewIDGenerator(clk.Now), Prices: prices,
		Credits: readapi.Credits{SQL: reader, Wait: runner, MaxWait: 5 * time.Second}}
	handlers := commands.New(cd, commands.NewIndexAllocator(cd, sim.Deriver([]byte("web-test-seed"))), func(domain.Chain, string) error { return nil })
	if cfg.settlement {
		settlement := chain.NewSettlement(store, db, handlers, warn)
		settlement.SetWaits(clk.Now, 0)
		runs = append(runs, settlement.Run)
	}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, run := range runs {
		wg.Add(1)
		go func() { defer wg.Done(); _ = run(runCtx) }()
	}
	t.Cleanup(func() { stop(); wg.Wait() })
	api := httpapi.New(httpapi.Config{
		RegistrationOpen: true, SessionSecret: []byte("web-test-session-secret-32-bytes"),
		// The checkout polls fast in tests; every page shares 127.0.0.1.
		PublicRatePerMinute: 100000, KeyRatePerMinute: 100000, SignupRatePerMinute: 1000,
	}, httpapi.Deps{Commands: handlers, Reader: reader, Wait: runner, Idempotency: opstore.NewIdempotency(db),
		Sessions: opstore.NewSessions(db), Webhooks: worker, Assets: assets, Now: clk.Now, Logger: warn})
	simulator, err := sim.New(sim.Config{Now: clk.Now}, chain.Sink{Commands: handlers, Addresses: reader}, db, assets, warn)
	if err != nil {
		t.Fatal(err)
	}
	simRoutes, err := simulator.Routes(testSimToken)
	if err != nil {
		t.Fatal(err)
	}
	site := New(Config{Invoices: reader, Branding: reader, Assets: assets, Now: clk.Now, Logger: warn, Explorers: testExplorers,
		PollInterval: 150 * time.Millisecond, MaxPollInterval: 600 * time.Millisecond})

	mux := http.NewServeMux()
	mux.Handle("/v1/sim/", simRoutes)
	mux.Handle("/pay/", site)
	mux.Handle("/dashboard", site)
	mux.Handle("/dashboard/", site)
	mux.Handle("/", api)
	calls := &requestLog{}
	srv := httptest.NewServer(calls.wrap(mux))
	t.Cleanup(srv.Close)
	return &stack{srv: srv, handlers: handlers, reader: reader, clock: clk, sim: simulator, simToken: testSimToken, webhookURL: receiver.URL + "/ipn",
		prices: prices, webhookDown: webhookDown, browserCalls: calls}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// call sends a JSON request to the stack and decodes a JSON answer into out
// (when not nil). It returns the status.
func (s *stack) call(t *testing.T, method, path, key string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, res.StatusCode, raw, err)
		}
	}
	return res.StatusCode
}

type merchantKeys struct {
	ID             string `json:"merchant_id"`
	SecretKey      string `json:"secret_key"`
	PublishableKey string `json:"publishable_key"`
}

func (s *stack) signUp(t *testing.T, name string) merchantKeys {
	t.Helper()
	var m merchantKeys
	if st := s.call(t, "POST", "/v1/merchants", "", map[string]any{"name": name, "webhook_url": s.webhookURL}, &m); st != http.StatusCreated {
		t.Fatalf("sign-up: %d", st)
	}
	return m
}

type invoiceJSON struct {
	ID             string `json:"id"`
	Asset          string `json:"asset"`
	Status         string `json:"status"`
	PayAddress     string `json:"pay_address"`
	PayAmount      string `json:"pay_amount"`
	AmountReceived string `json:"amount_received"`
}

func (s *stack) createInvoice(t *testing.T, key string, body map[string]any) invoiceJSON {
	t.Helper()
	var inv invoiceJSON
	if st := s.call(t, "POST", "/v1/invoices", key, body, &inv); st != http.StatusCreated {
		t.Fatalf("create invoice: %d", st)
	}
	return inv
}

// simPay sends a simulated payment through the simulator's operator route.
func (s *stack) simPay(t *testing.T, invoiceID, amount string) {
	t.Helper()
	var out map[string]any
	if st := s.call(t, "POST", "/v1/sim/pay", s.simToken, map[string]any{"invoice_id": invoiceID, "amount": amount}, &out); st != http.StatusOK && st != http.StatusCreated {
		t.Fatalf("sim pay: %d %v", st, out)
	}
}

// simMine mines blocks on every simulated chain.
func (s *stack) simMine(t *testing.T, blocks int) {
	t.Helper()
	var out map[string]any
	if st := s.call(t, "POST", "/v1/sim/mine", s.simToken, map[string]any{"blocks": blocks}, &out); st != http.StatusOK {
		t.Fatalf("sim mine: %d %v", st, out)
	}
}

// simReorg replaces the last depth blocks of every simulated chain: the
// transfers mined in them are reverted, and with reinclude back in the
// mempool, mined again by the next blocks.
func (s *stack) simReorg(t *testing.T, depth int, reinclude bool) {
	t.Helper()
	res, err := s.sim.Reorg(context.Background(), depth, reinclude)
	if err != nil {
		t.Fatalf("sim reorg: %v", err)
	}
	if len(res.Reverted) == 0 {
		t.Fatalf("sim reorg of %d blocks reverted nothing", depth)
	}
}

// waitBalance waits until GET /v1/balance shows the merchant's asset with
// available and pending as given (the projections run behind the commands).
func (s *stack) waitBalance(t *testing.T, key, asset, available, pending string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var bal struct {
			Data []struct {
				Asset     string `json:"asset"`
				Available string `json:"available"`
				Pending   string `json:"pending"`
			} `json:"data"`
		}
		st := s.call(t, "GET", "/v1/balance", key, nil, &bal)
		got := fmt.Sprintf("%d %+v", st, bal.Data)
		for _, b := range bal.Data {
			if st == http.StatusOK && b.Asset == asset && b.Available == available && b.Pending == pending {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s balance: %s, want %s available and %s pending", asset, got, available, pending)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// expire makes the invoice due on the stack's clock and closes it, as
// picd's expiry loop does.
func (s *stack) expire(t *testing.T, invoiceID string, after time.Duration) {
	t.Helper()
	s.clock.Advance(after)
	if _, err := s.handlers.ExpireInvoice.Handle(context.Background(), commands.ExpireInvoice{CommandID: "expire-" + invoiceID, InvoiceID: invoiceID}); err != nil {
		t.Fatal(err)
	}
}

type deliveryJSON struct {
	ID        string `json:"id"`
	InvoiceID string `json:"invoice_id"`
	Status    string `json:"status"`
	Attempts  []struct {
		StatusCode *int `json:"status_code"`
	} `json:"attempts"`
}

// waitDelivery waits until the invoice has a webhook delivery for which ok
// is true, and returns it.
func (s *stack) waitDelivery(t *testing.T, key, invoiceID string, ok func(deliveryJSON) bool) deliveryJSON {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var list struct {
			Data []deliveryJSON `json:"data"`
		}
		st := s.call(t, "GET", "/v1/webhooks/deliveries?invoice_id="+invoiceID, key, nil, &list)
		for _, d := range list.Data {
			if st == http.StatusOK && ok(d) {
				return d
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("invoice %s's deliveries: %d %+v", invoiceID, st, list.Data)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type paidInvoiceJSON struct {
	ID       string `json:"id"`
	Payments []struct {
		TxID string `json:"txid"`
	} `json:"payments"`
}

// paidInvoice is the merchant's one paid invoice, with its payments.
func (s *stack) paidInvoice(t *testing.T, key string) paidInvoiceJSON {
	t.Helper()
	var list struct {
		Data []paidInvoiceJSON `json:"data"`
	}
	if st := s.call(t, "GET", "/v1/invoices?status=paid", key, nil, &list); st != http.StatusOK || len(list.Data) != 1 || len(list.Data[0].Payments) != 2 {
		t.Fatalf("paid invoices: %d %+v", st, list.Data)
	}
	return list.Data[0]
}
