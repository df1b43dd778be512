package simulation

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/shopspring/decimal"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/sim"
	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/postgres"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/readapi"
	"github.com/acceptcryptohere/gateway/sqldb"
	"github.com/acceptcryptohere/gateway/webhooks"
)

// go test ./simulation -run TestSimulation -seed N replays one seed;
// -seeds N (or PIC_SIM_SEEDS) runs N seeds from -first (long mode).
var (
	seedFlag  = flag.Uint64("seed", 0, "replay this one seed")
	seedsFlag = flag.Int("seeds", 0, "how many seeds to run (default 40, or PIC_SIM_SEEDS)")
	firstFlag = flag.Uint64("first", 1, "first seed of a run of -seeds")
	stepsFlag = flag.Int("steps", 60, "steps per seed")
	pgFlag    = flag.Int("pg-seeds", 5, "seeds TestSimulationPostgres runs on Postgres (PIC_TEST_POSTGRES_URL)")
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

const maxWait = time.Hour

// The simulation's price feed: fixed cross rates, which the model uses too.
// It is a fake of the price oracle (the live APIs cannot run here).
var usd = map[string]string{"BTC": "60000.5", "ETH": "3000.25", "USDT.ETH": "1", "USDT.TRON": "0.9999", "TRX": "0.25"}

// The fiat currencies an invoice may be priced in, in dollars: the feed
// quotes every asset in them (currency per one unit of the asset), as
// the oracle does (the euro through the dollar).
var fiatUSD = map[string]string{"USD": "1", "EUR": "1.0825"}

func rates() map[[2]string]decimal.Decimal {
	out := map[[2]string]decimal.Decimal{}
	for a, pa := range usd {
		for b, pb := range usd {
			if a != b {
				out[[2]string{a, b}] = decimal.RequireFromString(pa).DivRound(decimal.RequireFromString(pb), 12)
			}
		}
		for f, pf := range fiatUSD {
			out[[2]string{a, f}] = decimal.RequireFromString(pa).DivRound(decimal.RequireFromString(pf), 12)
		}
	}
	return out
}

type fakePrices struct {
	mu    sync.Mutex
	up    bool
	rates map[[2]string]decimal.Decimal
	now   func() time.Time
}

func (p *fakePrices) Price(_ context.Context, base, quote string) (domain.PriceQuote, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.rates[[2]string{base, quote}]
	if !p.up || !ok {
		return domain.PriceQuote{}, fmt.Errorf("%w: simulated outage", domain.ErrPriceUnavailable)
	}
	return domain.PriceQuote{Base: base, Quote: quote, Rate: r, Source: "simulation", At: p.now()}, nil
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// world is the gateway under test: the real store, handlers, projections,
// settlement, payout processor and simulated chains, with an injected clock.
type world struct {
	t        *testing.T
	ctx      context.Context
	store    eventstore.Store
	db       sqldb.DB
	clock    *clock
	prices   *fakePrices
	assets   domain.Assets
	h        commands.Handlers
	reader   *readapi.SQL
	runner   *projections.Runner
	stopRun  func()
	sim      *sim.Simulator
	settle   *chain.Settlement
	proc     *chain.Processor
	hooks    *webhooks.Subscriber
	deriveIn []byte
}

// newWorld builds the gateway on the embedded store, or on Postgres (a
// schema of its own for the log and the read models) when pg.
func newWorld(t *testing.T, seed uint64, pg ...bool) *world {
	ctx := context.Background()
	var store interface {
		eventstore.Store
		Close() error
	}
	var db sqldb.DB
	if len(pg) > 0 && pg[0] {
		s, rm := openPostgres(t)
		store, db = s, rm
	} else {
		s, err := sqlite.Open(filepath.Join(t.TempDir(), "pic.db"))
		if err != nil {
			t.Fatal(err)
		}
		store, db = s, sqldb.DB{Read: s.DB(), Write: s.WriteDB(), Dialect: sqldb.SQLite}
	}
	store = &trackedStore{Store: store, closer: store}
	for _, m := range []func(context.Context, sqldb.DB) error{projections.Migrate, chain.Migrate, sim.Migrate, webhooks.Migrate} {
		if err := m(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
	assets, err := sim.WithConfirmations(domain.DefaultAssets(), 2)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	w := &world{t: t, ctx: ctx, store: store, db: db, clock: clk, assets: assets,
		prices: &fakePrices{up: true, rates: rates(), now: clk.Now}, deriveIn: []byte(fmt.Sprint("seed", seed))}
	w.start()
	t.Cleanup(func() { w.stopRun(); store.Close() })
	return w
}

// trackedStore remembers the furthest position an append reached, so the
// harness waits for the projections to apply everything written: Postgres
// shows a commit to readers only once every older transaction has ended,
// so reading the log's end right after a step can stop short of it.
type trackedStore struct {
	eventstore.Store
	closer interface{ Close() error }
	mu     sync.Mutex
	head   eventstore.Position
}

func (s *trackedStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData) (eventstore.AppendResult, error) {
	res, err := s.Store.Append(ctx, stream, expected, events)
	if err == nil {
		s.mu.Lock()
		if s.head.Less(res.Position) {
			s.head = res.Position
		}
		s.mu.Unlock()
	}
	return res, err
}

// ReadAllOfTypes keeps the store's own filtering (the wrapper would hide it).
func (s *trackedStore) ReadAllOfTypes(ctx context.Context, after eventstore.Position, max int, types []string) (eventstore.Page, error) {
	return eventstore.ReadAllOfTypes(ctx, s.Store, after, max, types)
}

func (s *trackedStore) Close() error { return s.closer.Close() }

func (s *trackedStore) written() eventstore.Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.head
}

func openPostgres(t *testing.T) (*postgres.Store, sqldb.DB) {
	url := os.Getenv("PIC_TEST_POSTGRES_URL")
	if url == "" {
		url = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	admin, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	schema := fmt.Sprintf("sim_%d", time.Now().UnixNano())
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("postgres (set PIC_TEST_POSTGRES_URL): %v", err)
	}
	t.Cleanup(func() { admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`); admin.Close() })
	ctx := context.Background()
	store, err := postgres.Open(ctx, url, postgres.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	rm, err := sql.Open("pgx", url+"&search_path="+schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rm.Close() })
	return store, sqldb.DB{Read: rm, Write: rm, Dialect: sqldb.Postgres}
}

// TestSimulationPostgres runs a few seeds with the log and the read models
// on Postgres: the money rules hold on every store.
func TestSimulationPostgres(t *testing.T) {
	for i := 0; i < *pgFlag; i++ {
		seed := *firstFlag + uint64(i)
		if !t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { runSeed(t, seed, *stepsFlag, map[string]int{}, true) }) {
			t.Fatalf("seed %d failed on Postgres", seed)
		}
	}
}

// start builds every process part anew on the same store: a restart.
func (w *world) start() {
	if w.stopRun != nil {
		w.stopRun()
	}
	w.runner = projections.NewRunner(w.store, w.db, quiet)
	w.reader = readapi.NewSQL(w.db)
	d := commands.Deps{Store: w.store, Assets: w.assets, Now: w.clock.Now, NewID: commands.NewIDGenerator(w.clock.Now),
		Credits: readapi.Credits{SQL: w.reader, Wait: w.runner, MaxWait: 10 * time.Second}, Prices: w.prices, Accounts: w.reader}
	w.h = commands.New(d, commands.NewIndexAllocator(d, sim.Deriver(w.deriveIn)), func(domain.Chain, string) error { return nil })
	s, err := sim.New(sim.Config{Now: w.clock.Now}, chain.Sink{Commands: w.h, Addresses: w.reader}, w.db, w.assets, quiet)
	if err != nil {
		w.t.Fatal(err)
	}
	w.sim = s
	var senders []chain.Sender
	zero := map[string]domain.Amount{}
	for _, a := range w.assets.List() {
		zero[a.Code] = domain.Amount{}
	}
	for _, c := range []domain.Chain{domain.ChainBitcoin, domain.ChainEthereum, domain.ChainTron} {
		snd, err := sim.NewSender(w.ctx, w.db, sim.SenderConfig{Chain: c, Now: w.clock.Now, NetworkFee: zero})
		if err != nil {
			w.t.Fatal(err)
		}
		senders = append(senders, snd)
	}
	w.proc = chain.NewProcessor(w.store, w.db, w.h, w.assets, senders, chain.ProcessorConfig{Now: w.clock.Now, RetryBase: time.Second,
		PollInterval: time.Second, Logger: quiet})
	w.settle = chain.NewSettlement(w.store, w.db, w.h, quiet)
	w.settle.SetWaits(w.clock.Now, maxWait)
	w.hooks = webhooks.NewSubscriber(w.store, w.db, webhooks.SubscriberConfig{Now: w.clock.Now, Logger: quiet, Gather: -1})
	runCtx, stop := context.WithCancel(w.ctx)
	done := make(chan struct{})
	go func() { defer close(done); w.runner.Run(runCtx) }()
	w.stopRun = func() { stop(); <-done }
}

func (w *world) project() error {
	head := w.runner.Position()
	for {
		recs, err := w.store.ReadAll(w.ctx, head, 1000)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			break
		}
		head = recs[len(recs)-1].Position
	}
	if written := w.store.(*trackedStore).written(); head.Less(written) {
		head = written
	}
	ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
	defer cancel()
	return w.runner.WaitFor(ctx, head)
}

// sync runs what follows the log until nothing moves.
func (w *world) sync() error {
	for i := 0; i < 2; i++ {
		steps := []func() error{w.project, func() error { return w.settle.CatchUp(w.ctx) }, w.project,
			func() error { _, err := w.settle.RetryWaits(w.ctx); return err }, w.project,
			func() error { return w.proc.CatchUp(w.ctx) }, func() error { _, err := w.proc.Pass(w.ctx); return err },
			func() error { return w.hooks.CatchUp(w.ctx) }, w.project}
		for _, f := range steps {
			if err := f(); err != nil {
				return err
			}
		}
	}
	return nil
}

func TestSimulation(t *testing.T) {
	var seeds []uint64
	switch n := *seedsFlag; {
	case *seedFlag != 0:
		seeds = []uint64{*seedFlag}
	default:
		if n == 0 {
			n = 40
			if v, err := strconv.Atoi(os.Getenv("PIC_SIM_SEEDS")); err == nil && v > 0 {
				n = v
			}
		}
		for i := 0; i < n; i++ {
			seeds = append(seeds, *firstFlag+uint64(i))
		}
	}
	start := time.Now()
	counts := map[string]int{}
	for _, seed := range seeds {
		ok := t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { runSeed(t, seed, *stepsFlag, counts) })
		if !ok {
			t.Fatalf("seed %d failed; replay: go test ./simulation -run TestSimulation -seed %d -v", seed, seed)
		}
	}
	t.Logf("%d seeds of %d steps in %s", len(seeds), *stepsFlag, time.Since(start).Round(time.Millisecond))
	// What the histories covered: a run that never reverts or converts proves little.
	for _, k := range []string{domain.TypeDepositConfirmed, domain.TypeDepositFinalized, domain.TypeDepositReverted, domain.TypeInvoiceReverted,
		domain.TypeInvoiceAwaitingPayment, domain.TypeInvoiceExpired, domain.TypeConversionExecuted, domain.TypeConversionWaiting,
		domain.TypeConversionAbandoned, domain.TypePayoutRequested, domain.TypeBalanceNegative, "open debts", "refunds", "invoice.refunded", "fiat invoices", "fiat refused"} {
		t.Logf("%-26s %d", k, counts[k])
	}
}

// run is one seed's history, so a failure can print it.
type run struct {
	t       *testing.T
	w       *world
	m       *Model
	rng     *rand.Rand
	history []string
	counts  map[string]int // what the history did, for the run's summary
	merch   []string
	inv     []string // invoice ids, in creation order
}

func (r *run) logf(format string, args ...any) {
	r.history = append(r.history, fmt.Sprintf("%3d  ", len(r.history)+1)+fmt.Sprintf(format, args...))
}

func (r *run) fail(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("%s\nhistory:\n%s", fmt.Sprintf(format, args...), strings.Join(r.history, "\n"))
}

func (r *run) must(err error) {
	r.t.Helper()
	if err != nil {
		r.fail("%v", err)
	}
}

var simAssets = []string{"BTC", "ETH", "USDT.ETH", "USDT.TRON"}

func runSeed(t *testing.T, seed uint64, steps int, counts map[string]int, pg ...bool) {
	w := newWorld(t, seed, pg...)
	var massets []MAsset
	for _, a := range w.assets.List() {
		massets = append(massets, MAsset{Code: a.Code, Decimals: a.Decimals, Confirmations: a.Confirmations})
	}
	r := &run{t: t, w: w, counts: counts, m: NewModel(massets, rates(), maxWait, w.clock.Now()), rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	r.merchants()
	for i := 0; i < steps; i++ {
		r.step()
		r.compare()
	}
	r.final()
}

// merchants registers three merchants with every payout and conversion setting.
func (r *run) merchants() {
	w := r.w
	for i := 0; i < 3; i++ {
		reg, err := w.h.RegisterMerchant.Handle(w.ctx, commands.RegisterMerchant{Name: fmt.Sprint("Shop ", i)})
		r.must(err)
		id := reg.MerchantID
		payouts := map[string]MPayout{}
		for _, a := range simAssets {
			instant := r.rng.IntN(2) == 0
			min := decimal.Zero
			if r.rng.IntN(3) == 0 {
				min = decimal.New(int64(1+r.rng.IntN(5)), -2)
			}
			mode := domain.PayoutManual
			if instant {
				mode = domain.PayoutInstant
			}
			_, err := w.h.SetPayoutSettings.Handle(w.ctx, commands.SetPayoutSettings{MerchantID: id, Settings: domain.PayoutSettings{
				Asset: a, PayoutAddress: "payout-" + a, Mode: mode, InstantMinAmount: domain.MustAmount(min.String())}})
			r.must(err)
			payouts[a] = MPayout{Instant: instant, Min: min}
		}
		consolidate := ""
		if i == 2 {
			consolidate = simAssets[r.rng.IntN(len(simAssets))]
			r.setConsolidate(id, consolidate)
		}
		r.m.Merchant(id, consolidate, payouts)
		r.merch = append(r.merch, id)
		r.logf("merchant %s consolidate_to=%q payouts=%v", id, consolidate, payouts)
	}
	r.must(w.project())
}

func (r *run) setConsolidate(id, to string) {
	_, err := r.w.h.UpdateAccount.Handle(r.w.ctx, commands.UpdateAccount{MerchantID: id, Patch: domain.AccountPatch{ConsolidateTo: &to}})
	r.must(err)
}

func (r *run) step() {
	w, m := r.w, r.m
	switch k := r.rng.IntN(100); {
	case k < 20 || len(r.inv) == 0:
		r.createInvoice()
	case k < 45:
		r.pay()
	case k < 65:
		n := 1 + r.rng.IntN(3)
		toConfirm, toFinal := m.Mine(n)
		res, err := w.sim.Mine(w.ctx, n)
		r.must(err)
		r.logf("mine %d: confirmed %d, final %d", n, len(res.Confirmed), len(res.Final))
		r.sameSet("confirmed", toConfirm, res.Confirmed)
		r.sameSet("final", toFinal, res.Final)
		for _, c := range res.Confirmed {
			m.Confirm(c.DepositID)
		}
		for _, c := range res.Final {
			m.Finalize(c.DepositID)
		}
		for _, c := range res.Final {
			m.Settle(c.DepositID)
		}
	case k < 72:
		depth, reinclude := 1+r.rng.IntN(4), r.rng.IntN(10) < 7
		want := m.Reorgable(depth)
		res, err := w.sim.Reorg(w.ctx, depth, reinclude)
		r.must(err)
		r.logf("reorg depth %d reinclude %v: %d reverted", depth, reinclude, len(res.Reverted))
		r.sameSet("reverted", want, res.Reverted)
		for _, c := range res.Reverted {
			m.Revert(c.DepositID, reinclude)
		}
	case k < 78:
		d := []time.Duration{time.Minute, 10 * time.Minute, 30 * time.Minute, 2 * time.Hour}[r.rng.IntN(4)]
		w.clock.Advance(d)
		m.Advance(d)
		r.logf("advance %s", d)
		r.must(w.project())
		ids, err := w.reader.DueInvoices(w.ctx, w.clock.Now(), 1000)
		r.must(err)
		for _, id := range ids {
			if _, err := w.h.ExpireInvoice.Handle(w.ctx, commands.ExpireInvoice{CommandID: "expire-" + id, InvoiceID: id}); err != nil &&
				!errors.Is(err, domain.ErrInvalidState) {
				r.fail("expire %s: %v", id, err)
			}
		}
		m.RetryWaits()
	case k < 83:
		up := !w.prices.up
		w.prices.mu.Lock()
		w.prices.up = up
		w.prices.mu.Unlock()
		m.SetPrices(up)
		r.logf("prices up=%v", up)
	case k < 84:
		r.withdraw()
	case k < 88:
		r.refund()
	case k < 91:
		if !w.prices.up {
			return
		}
		id, to := r.merch[r.rng.IntN(len(r.merch))], simAssets[r.rng.IntN(len(simAssets))]
		_, err := w.h.Consolidate.Handle(w.ctx, commands.Consolidate{MerchantID: id, To: to})
		r.must(err)
		m.Consolidate(id, to)
		r.logf("consolidate %s into %s", id, to)
	case k < 94:
		id := r.merch[2]
		to := ""
		if r.rng.IntN(2) == 0 {
			to = simAssets[r.rng.IntN(len(simAssets))]
		}
		r.setConsolidate(id, to)
		m.merchants[id].consolidateTo = to
		r.logf("consolidate_to of %s = %q", id, to)
	default:
		r.logf("restart")
		w.start()
	}
	r.must(w.sync())
}

func (r *run) sameSet(what string, want map[string]bool, got []sim.Confirmed) {
	r.t.Helper()
	gotSet := map[string]bool{}
	for _, c := range got {
		gotSet[c.DepositID] = true
	}
	if len(gotSet) != len(want) {
		r.fail("%s: the chain did %v, the model expects %v", what, keys(gotSet), keys(want))
	}
	for id := range want {
		if !gotSet[id] {
			r.fail("%s: the chain did %v, the model expects %v", what, keys(gotSet), keys(want))
		}
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// units picks an amount in smallest units; often one whose fee at bps is
// exactly half a unit (rule 1's rounding edge).
func (r *run) units(dec int32, bps int64) decimal.Decimal {
	maxDigits := min(int(dec)+2, 12)
	u := r.rng.Int64N(pow10(r.rng.IntN(maxDigits)+1)) + 1
	if r.rng.IntN(2) == 0 {
		step := 10000 / bps // fee of u is u×bps/10000 units: half when u ≡ step/2 (mod step)
		u = u - u%step + step/2
		if u <= 0 {
			u = step / 2
		}
	}
	return decimal.New(u, -dec)
}

func pow10(n int) int64 {
	p := int64(1)
	for i := 0; i < n; i++ {
		p *= 10
	}
	return p
}

func (r *run) createInvoice() {
	w, m := r.w, r.m
	merchant := r.merch[r.rng.IntN(len(r.merch))]
	asset := simAssets[r.rng.IntN(len(simAssets))]
	a, _ := w.assets.Lookup(asset)
	settleAs := ""
	if r.rng.IntN(5) == 0 {
		settleAs = simAssets[r.rng.IntN(len(simAssets))]
		if settleAs == asset {
			settleAs = ""
		}
	}
	bps := int64(25)
	if settleAs != "" {
		bps = 50
	}
	amount := r.units(a.Decimals, bps)
	cmd := commands.CreateInvoice{MerchantID: merchant, Asset: asset, Amount: amount.String(), SettleAs: settleAs}
	// A quarter are priced in fiat (API.md, additions of 2026-12-03): the
	// model works the asset amount out itself.
	var price *MPrice
	if r.rng.IntN(4) == 0 {
		cents := r.rng.Int64N(pow10(1+r.rng.IntN(8))) + 1
		price = &MPrice{Currency: []string{"USD", "EUR"}[r.rng.IntN(2)], Amount: decimal.New(cents, -2)}
		cmd.Amount, cmd.PriceAmount, cmd.PriceCurrency = "", price.Amount.StringFixed(2), price.Currency
	}
	expiresIn := time.Duration(60+r.rng.IntN(7200)) * time.Second
	cmd.ExpiresIn = expiresIn
	w.clock.Advance(time.Millisecond)
	m.Tick(time.Millisecond)
	res, err := w.h.CreateInvoice.Handle(w.ctx, cmd)
	probe := &MInvoice{Merchant: merchant, Asset: asset, SettleAs: settleAs}
	converting := m.converts(probe) != ""
	if (converting || price != nil) && !w.prices.up {
		if !errors.Is(err, domain.ErrPriceUnavailable) {
			r.fail("invoice to convert or priced in fiat with no price: %v, want price unavailable (rule 3, fiat 503)", err)
		}
		if price != nil {
			r.counts["fiat refused"]++
		}
		r.logf("invoice %s %s price %v settle_as=%q refused: no price", asset, amount, price, settleAs)
		return
	}
	if price != nil {
		var ok bool
		if amount, price.Rate, ok = m.FiatAmount(asset, price.Currency, price.Amount); !ok {
			r.fail("the model has no %s rate of %s", price.Currency, asset)
		}
	}
	r.must(err)
	e := res.Invoice
	if !eq(e.Amount, amount) {
		r.fail("invoice %s %s price %v: amount %s, the model computes %s", e.InvoiceID, asset, price, e.Amount, amount)
	}
	inv := m.CreateInvoice(e.InvoiceID, merchant, asset, amount, decimal.RequireFromString(e.PayAmount.String()), settleAs, e.ExpiresAt)
	inv.Price = price
	if price != nil {
		r.counts["fiat invoices"]++
	}
	r.inv = append(r.inv, e.InvoiceID)
	r.logf("invoice %s %s %s price %v settle_as=%q expires in %s (pay %s)", inv.ID, asset, amount, price, settleAs, expiresIn, e.PayAmount)
}

func (r *run) pay() {
	w, m := r.w, r.m
	inv := m.Invoices[r.inv[r.rng.IntN(len(r.inv))]]
	a, _ := w.assets.Lookup(inv.Asset)
	unit := decimal.New(1, -a.Decimals)
	due := inv.Due()
	var amount decimal.Decimal
	kind := []string{"exact", "under", "over", "split", "random"}[r.rng.IntN(5)]
	switch kind {
	case "exact":
		amount = due
	case "under", "split":
		amount = due.Div(decimal.NewFromInt(2)).RoundDown(a.Decimals)
	case "over":
		amount = due.Add(r.units(a.Decimals, 25))
	default:
		amount = r.units(a.Decimals, 25)
	}
	if !amount.IsPositive() {
		amount = unit
	}
	p, err := w.sim.PayDetailed(w.ctx, inv.ID, amount.String())
	r.must(err)
	if p.InvoiceID != inv.ID {
		r.fail("payment to %s was matched to %s", inv.ID, p.InvoiceID)
	}
	m.Pay(inv.ID, p.DepositID, amount)
	r.logf("pay %s %s %s (%s) as %s", inv.ID, amount, inv.Asset, kind, p.DepositID)
}

// withdraw asks twice at once for the whole balance: one may succeed.
func (r *run) withdraw() {
	w := r.w
	id, asset := r.merch[r.rng.IntN(len(r.merch))], simAssets[r.rng.IntN(len(simAssets))]
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = w.h.RequestPayout.Handle(w.ctx, commands.RequestPayout{MerchantID: id, Asset: asset, ToAddress: "withdraw-" + asset,
				Kind: domain.PayoutKindWithdrawal})
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, domain.ErrInsufficientFunds):
		default:
			r.fail("withdrawal: %v", err)
		}
	}
	want := 0
	if r.m.Withdraw(id, asset) {
		want = 1
	}
	r.logf("withdraw all %s of %s: %d of 2 succeeded", asset, id, ok)
	if ok != want {
		r.fail("%d concurrent whole-balance withdrawals succeeded, the model expects %d", ok, want)
	}
}

// refund asks twice at once for the same refund of an invoice: the whole
// rest, a part of it, or one unit more than is left.
func (r *run) refund() {
	w, m := r.w, r.m
	inv := m.Invoices[r.inv[r.rng.IntN(len(r.inv))]]
	if r.rng.IntN(3) > 0 {
		// Mostly an invoice that has something left to refund.
		var open []*MInvoice
		for _, id := range r.inv {
			if x := m.Invoices[id]; x.credited().Sub(x.chargedTotal()).Sub(x.refunded).IsPositive() {
				open = append(open, x)
			}
		}
		if len(open) > 0 {
			inv = open[r.rng.IntN(len(open))]
		}
	}
	dec := m.assets[inv.Asset].Decimals
	room := inv.credited().Sub(inv.chargedTotal()).Sub(inv.refunded)
	var amount decimal.Decimal // zero: the rest
	switch r.rng.IntN(3) {
	case 1:
		if room.IsPositive() {
			amount = room.Mul(decimal.New(int64(1+r.rng.IntN(3)), 0)).Div(decimal.New(4, 0)).Truncate(dec)
		}
	case 2:
		amount = room.Add(decimal.New(1, -dec))
	}
	if amount.IsNegative() {
		amount = decimal.New(1, -dec)
	}
	text := ""
	if !amount.IsZero() {
		text = amount.String()
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	got := make([]commands.PayoutRequestedResult, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = w.h.RequestPayout.Refund(w.ctx, commands.RequestRefund{MerchantID: inv.Merchant, InvoiceID: inv.ID, Amount: text,
				ToAddress: "customer-" + inv.Asset})
		}()
	}
	wg.Wait()
	var outcomes []string
	for i, err := range errs {
		switch {
		case err == nil:
			outcomes = append(outcomes, refundOK+" "+got[i].Payout.Amount.String())
		case errors.Is(err, domain.ErrRefundExceeded):
			outcomes = append(outcomes, refundExceeded)
		case errors.Is(err, domain.ErrInsufficientFunds):
			outcomes = append(outcomes, refundInsufficient)
		default:
			r.fail("refund of %s: %v", inv.ID, err)
		}
	}
	var want []string
	for range errs {
		a, outcome := m.Refund(inv.ID, amount)
		if outcome == refundOK {
			outcome += " " + a.String()
		}
		want = append(want, outcome)
	}
	sort.Strings(outcomes)
	sort.Strings(want)
	r.logf("refund %q of %s (%s left) twice at once: %v", text, inv.ID, room, outcomes)
	if strings.Join(outcomes, ",") != strings.Join(want, ",") {
		r.fail("concurrent refunds of %s: %v, the model expects %v", inv.ID, outcomes, want)
	}
	for _, o := range outcomes {
		if strings.HasPrefix(o, refundOK) {
			r.counts["refunds"]++
		}
	}
}

// compare checks every invoice and balance against the model.
func (r *run) compare() {
	w, m := r.w, r.m
	r.t.Helper()
	for _, id := range r.inv {
		got, err := w.reader.InvoiceByID(w.ctx, "", id)
		r.must(err)
		want := m.Invoices[id]
		gotFee := decimal.RequireFromString(got.Fee.String())
		if !eq(got.Amount, want.Amount) || !samePrice(got.Price, want.Price) {
			r.fail("invoice %s: amount %s price %+v; model: amount %s price %v", id, got.Amount, got.Price, want.Amount, want.Price)
		}
		if string(got.Status) != want.Status || !eq(got.AmountReceived, want.Received()) || !eq(got.AmountDue(), want.Due()) ||
			!gotFee.Equal(m.Fee(want)) {
			r.fail("invoice %s: status %s received %s due %s fee %s; model: %s fee %s", id, got.Status, got.AmountReceived, got.AmountDue(),
				got.Fee, want, m.Fee(want))
		}
	}
	for _, id := range r.merch {
		bals, err := w.reader.Balances(w.ctx, id)
		r.must(err)
		got := map[string]readapi.Balance{}
		for _, b := range bals {
			got[b.Asset] = b
		}
		for _, a := range w.assets.List() {
			want := m.BalanceOf(id, a.Code)
			g := got[a.Code]
			if !eq(g.Available, want.Available) || !eq(g.Pending, want.Pending) {
				r.fail("balance %s %s: available %s pending %s; model: available %s pending %s", id, a.Code, g.Available, g.Pending,
					want.Available, want.Pending)
			}
		}
	}
	rows, err := w.db.Read.QueryContext(w.ctx, `SELECT merchant_id, asset, amount FROM payouts`)
	r.must(err)
	paid := map[bkey]decimal.Decimal{}
	for rows.Next() {
		var mid, asset, amount string
		r.must(rows.Scan(&mid, &asset, &amount))
		paid[bkey{mid, asset}] = paid[bkey{mid, asset}].Add(decimal.RequireFromString(amount))
	}
	rows.Close()
	for k, v := range m.PaidOut {
		if !paid[k].Equal(v) {
			r.fail("payouts of %s %s: %s requested, the model expects %s", k.merchant, k.asset, paid[k], v)
		}
	}
	for k, v := range paid {
		if !m.PaidOut[k].Equal(v) {
			r.fail("payouts of %s %s: %s requested, the model expects %s", k.merchant, k.asset, v, m.PaidOut[k])
		}
	}
}

// samePrice compares an invoice's recorded fiat price with the model's.
func samePrice(got *domain.InvoicePrice, want *MPrice) bool {
	if got == nil || want == nil {
		return got == nil && want == nil
	}
	return got.Currency == want.Currency && eq(got.Amount, want.Amount) && got.Rate.Equal(want.Rate)
}

func eq(a domain.Amount, b decimal.Decimal) bool {
	return decimal.RequireFromString(a.String()).Equal(b)
}

// final checks what only the whole log shows: one status event per change,
// in order; no payout beyond final funds; the audit; a rebuild.
func (r *run) final() {
	w, m := r.w, r.m
	var recs []eventstore.RecordedEvent
	for pos := eventstore.Start; ; {
		page, err := w.store.ReadAll(w.ctx, pos, 5000)
		r.must(err)
		if len(page) == 0 {
			break
		}
		recs, pos = append(recs, page...), page[len(page)-1].Position
	}
	statuses := map[string][]string{}
	running := map[bkey]decimal.Decimal{}
	for _, rec := range recs {
		r.counts[rec.Type]++
		e, err := domain.Decode(rec.Type, rec.Data)
		r.must(err)
		if s, ok := e.(domain.InvoiceStatusChanged); ok {
			statuses[s.InvoiceID] = append(statuses[s.InvoiceID], string(s.To))
		}
		if me, ok := e.(domain.MoneyEvent); ok {
			for _, p := range me.LedgerPostings() {
				if strings.HasSuffix(p.Account, ":available") {
					k := bkey{p.Account, p.Asset}
					running[k] = running[k].Add(decimal.RequireFromString(p.Amount.String()))
				}
			}
			if p, ok := e.(domain.PayoutRequested); ok {
				if k := (bkey{domain.AvailableAccount(p.MerchantID), p.Asset}); running[k].IsNegative() {
					r.fail("payout %s of %s took available to %s: more than the final funds", p.PayoutID, p.Amount, running[k])
				}
			}
		}
	}
	// Exactly one webhook per status change, in order, named after the new status.
	hooks, refunded := map[string][]string{}, map[string]int{}
	rows, err := w.db.Read.QueryContext(w.ctx, `SELECT invoice_id, event_type FROM webhook_deliveries ORDER BY seq`)
	r.must(err)
	for rows.Next() {
		var id, typ string
		r.must(rows.Scan(&id, &typ))
		if typ == "invoice.refunded" {
			refunded[id]++
			continue
		}
		hooks[id] = append(hooks[id], strings.TrimPrefix(typ, "invoice."))
	}
	rows.Close()
	for _, id := range r.inv {
		want := strings.Join(m.Invoices[id].Statuses, ",")
		if got := strings.Join(statuses[id], ","); got != want {
			r.fail("invoice %s status changes %q, the model expects %q", id, got, want)
		}
		if got := strings.Join(hooks[id], ","); got != want {
			r.fail("invoice %s webhooks %q, the model expects one per status change: %q", id, got, want)
		}
	}
	// One invoice.refunded per confirmed refund.
	confirmedRefunds := map[string]int{}
	rows, err = w.db.Read.QueryContext(w.ctx, `SELECT source_invoice_id FROM payouts WHERE kind = 'refund' AND status = 'confirmed'`)
	r.must(err)
	for rows.Next() {
		var id string
		r.must(rows.Scan(&id))
		confirmedRefunds[id]++
	}
	rows.Close()
	if fmt.Sprint(confirmedRefunds) != fmt.Sprint(refunded) {
		r.fail("invoice.refunded deliveries %v, confirmed refunds %v", refunded, confirmedRefunds)
	}
	r.counts["invoice.refunded"] += len(refunded)
	rep, err := projections.Audit(w.ctx, w.store, w.db)
	r.must(err)
	if !rep.OK() {
		r.fail("audit: %s", strings.Join(rep.Problems, "\n"))
	}
	// An audit that lets every invoice go after each event, and rebuilds
	// it from its stream when the log names it again, finds the same.
	revived, err := projections.AuditWith(w.ctx, w.store, w.db, projections.AuditOptions{Window: 1, CompareBatch: 1})
	r.must(err)
	if a, b := auditFindings(revived), auditFindings(rep); a != b {
		r.fail("audit with every invoice revived (%d):\n%s\nholding them:\n%s", revived.InvoicesRevived, a, b)
	}
	r.counts["open debts"] += len(rep.Debts)
	before := r.dump()
	r.must(projections.Rebuild(w.ctx, w.store, w.db, nil, nil))
	r.must(w.project())
	if after := r.dump(); after != before {
		r.fail("a projection rebuild changed the read models:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func (r *run) dump() string {
	var b strings.Builder
	for _, q := range []string{
		`SELECT invoice_id, status, fee, fee_bps, amount_received, settlement_status FROM invoices ORDER BY invoice_id`,
		`SELECT invoice_id, deposit_id, amount, status FROM payments ORDER BY invoice_id, deposit_id`,
		`SELECT merchant_id, asset, available, pending, reserved FROM balances ORDER BY merchant_id, asset`,
	} {
		rows, err := r.w.db.Read.QueryContext(r.w.ctx, q)
		r.must(err)
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			r.must(rows.Scan(ptrs...))
			fmt.Fprintln(&b, vals...)
		}
		rows.Close()
	}
	return b.String()
}

// auditFindings is what an audit found, without its timing.
func auditFindings(a projections.AuditReport) string {
	return fmt.Sprintln(a.Events, a.MoneyEvents, a.FeesChecked, a.Payouts, a.Conversions, a.RowsCompared, a.Ledger, a.FeeRevenue,
		a.Debts, a.NetworkCosts, a.Held, a.Problems)
}
