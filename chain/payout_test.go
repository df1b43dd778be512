package chain_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/oracle"
	"github.com/acceptcryptohere/gateway/chain/sim"
	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/readapi"
	"github.com/acceptcryptohere/gateway/sqldb"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// stack is the money-out machinery on the embedded store with the
// simulated chains: commands, projections, the settlement process
// manager, the payout processor with simulated senders.
type stack struct {
	ctx       context.Context
	store     *sqlite.Store
	db        sqldb.DB
	clock     *clock
	h         commands.Handlers
	runner    *projections.Runner
	reader    *readapi.SQL
	sim       *sim.Simulator
	eth, btc  *sim.Sender
	proc      *chain.Processor
	settle    *chain.Settlement
	prices    *oracle.Static
	processor func(senders ...chain.Sender) *chain.Processor
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func setup(t *testing.T) *stack {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "pic.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	db := sqldb.DB{Read: store.DB(), Write: store.WriteDB(), Dialect: sqldb.SQLite}
	for _, m := range []func(context.Context, sqldb.DB) error{projections.Migrate, chain.Migrate, sim.Migrate} {
		if err := m(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
	clk := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	assets, err := sim.WithConfirmations(domain.DefaultAssets(), 1)
	if err != nil {
		t.Fatal(err)
	}
	runner := projections.NewRunner(store, db, quiet)
	reader := readapi.NewSQL(db)
	prices := &oracle.Static{USD: map[string]decimal.Decimal{
		"BTC": decimal.RequireFromString("60000"), "ETH": decimal.RequireFromString("3000"),
		"USDT.ETH": decimal.RequireFromString("1"), "USDT.TRON": decimal.RequireFromString("1"),
	}, Now: clk.Now}
	d := commands.Deps{Store: store, Assets: assets, Now: clk.Now, NewID: commands.NewIDGenerator(clk.Now),
		Credits: readapi.Credits{SQL: reader, Wait: runner, MaxWait: 2 * time.Second}, Prices: prices}
	h := commands.New(d, commands.NewIndexAllocator(d, sim.Deriver([]byte("seed"))), func(domain.Chain, string) error { return nil })
	simulator, err := sim.New(sim.Config{Now: clk.Now}, chain.Sink{Commands: h, Addresses: reader}, db, assets, quiet)
	if err != nil {
		t.Fatal(err)
	}
	eth, err := sim.NewSender(ctx, db, sim.SenderConfig{Chain: domain.ChainEthereum, Now: clk.Now,
		NetworkFee: map[string]domain.Amount{"USDT.ETH": domain.MustAmount("0.5"), "ETH": domain.MustAmount("0.0001")}})
	if err != nil {
		t.Fatal(err)
	}
	btc, err := sim.NewSender(ctx, db, sim.SenderConfig{Chain: domain.ChainBitcoin, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{ctx: ctx, store: store, db: db, clock: clk, h: h, runner: runner, reader: reader, sim: simulator, eth: eth, btc: btc, prices: prices}
	s.processor = func(senders ...chain.Sender) *chain.Processor {
		return chain.NewProcessor(store, db, h, assets, senders, chain.ProcessorConfig{Now: clk.Now, RetryBase: time.Second, PollInterval: time.Second, Logger: quiet})
	}
	s.proc = s.processor(eth, btc)
	s.settle = chain.NewSettlement(store, db, h, quiet)
	// The projections run as in the service: the settlement waits for
	// them before it reads credits.
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); runner.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })
	return s
}

// project waits until the projections have applied the whole log.
func (s *stack) project(ctx context.Context) error {
	head := s.runner.Position()
	for {
		recs, err := s.store.ReadAll(ctx, head, 1000)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			break
		}
		head = recs[len(recs)-1].Position
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return s.runner.WaitFor(wctx, head)
}

// sync runs everything that follows the log until nothing moves.
func (s *stack) sync(t *testing.T) {
	t.Helper()
	for i := 0; i < 3; i++ {
		for _, f := range []func(context.Context) error{s.project, s.settle.CatchUp, s.project, s.proc.CatchUp} {
			if err := f(s.ctx); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.proc.Pass(s.ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.project(s.ctx); err != nil {
		t.Fatal(err)
	}
}

func (s *stack) merchant(t *testing.T, settings ...domain.PayoutSettings) string {
	t.Helper()
	r, err := s.h.RegisterMerchant.Handle(s.ctx, commands.RegisterMerchant{CommandID: "reg-" + t.Name() + fmt.Sprint(len(settings)), Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ps := range settings {
		if _, err := s.h.SetPayoutSettings.Handle(s.ctx, commands.SetPayoutSettings{MerchantID: r.MerchantID, Settings: ps}); err != nil {
			t.Fatal(err)
		}
	}
	return r.MerchantID
}

// paid creates an invoice, pays it in full, mines it to confirmation and
// then one block more, to finality: money rule 4, the simulator finalizes
// one block past confirmations. It checks the net is in pending once the
// invoice is paid, and moves to available (nothing settled yet: the
// settlement runs in sync) once final.
func (s *stack) paid(t *testing.T, merchantID, asset, amount, settleAs string) string {
	t.Helper()
	id := s.confirmed(t, merchantID, asset, amount, settleAs)
	s.finalize(t, merchantID, id)
	return id
}

// confirmed creates an invoice, pays it in full and mines it to
// confirmation: the invoice is paid, its net is in pending.
func (s *stack) confirmed(t *testing.T, merchantID, asset, amount, settleAs string) string {
	t.Helper()
	s.clock.Advance(time.Millisecond)
	inv, err := s.h.CreateInvoice.Handle(s.ctx, commands.CreateInvoice{MerchantID: merchantID, Asset: asset, Amount: amount, SettleAs: settleAs})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.project(s.ctx); err != nil {
		t.Fatal(err)
	}
	before := s.balance(t, merchantID, asset)
	if _, err := s.sim.Pay(s.ctx, inv.Invoice.InvoiceID, inv.Invoice.PayAmount.String()); err != nil {
		t.Fatal(err)
	}
	res, err := s.sim.Mine(s.ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.project(s.ctx); err != nil {
		t.Fatal(err)
	}
	got, err := s.reader.InvoiceByID(s.ctx, merchantID, inv.Invoice.InvoiceID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != domain.StatusPaid {
		t.Fatalf("invoice %s is %s after its confirmation, want paid (mined: %+v)", got.ID, got.Status, res)
	}
	net := got.AmountReceived.Sub(got.Fee)
	after := s.balance(t, merchantID, asset)
	want(t, "pending once paid (the net, not yet final)", after.Pending.Sub(before.Pending), net.String())
	want(t, "available once paid (unchanged until final)", after.Available.Sub(before.Available), "0")
	return inv.Invoice.InvoiceID
}

// finalize mines the one block that makes a confirmed payment of invoice
// final (the simulator's finality), and checks its net moved from pending
// to available.
func (s *stack) finalize(t *testing.T, merchantID, invoiceID string) {
	t.Helper()
	inv, err := s.reader.InvoiceByID(s.ctx, merchantID, invoiceID)
	if err != nil {
		t.Fatal(err)
	}
	net := inv.AmountReceived.Sub(inv.Fee)
	before := s.balance(t, merchantID, inv.Asset)
	res, err := s.sim.Mine(s.ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Final) == 0 {
		t.Fatalf("no deposit became final: %+v", res)
	}
	if err := s.project(s.ctx); err != nil {
		t.Fatal(err)
	}
	after := s.balance(t, merchantID, inv.Asset)
	want(t, "pending once final", before.Pending.Sub(after.Pending), net.String())
	want(t, "available once final", after.Available.Sub(before.Available), net.String())
}

func (s *stack) balance(t *testing.T, merchantID, asset string) readapi.Balance {
	t.Helper()
	bs, err := s.reader.Balances(s.ctx, merchantID)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if b.Asset == asset {
			return b
		}
	}
	return readapi.Balance{Asset: asset}
}

func (s *stack) payouts(t *testing.T, merchantID string) []readapi.Payout {
	t.Helper()
	page, _, err := s.reader.ListPayouts(s.ctx, merchantID, readapi.PayoutFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return page
}

func (s *stack) audit(t *testing.T) projections.AuditReport {
	t.Helper()
	if err := s.project(s.ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := projections.Audit(s.ctx, s.store, s.db)
	if err != nil {
		t.Fatal(err)
	}
	// Letting every invoice go after each event, and rebuilding it from
	// its stream when the log names it again, gives the same report.
	revived, err := projections.AuditWith(s.ctx, s.store, s.db, projections.AuditOptions{Window: 1, CompareBatch: 1})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := auditFindings(revived), auditFindings(rep); a != b {
		t.Fatalf("audit with every invoice revived (%d):\n%s\nholding them:\n%s", revived.InvoicesRevived, a, b)
	}
	return rep
}

// auditFindings is what an audit found, without its timing.
func auditFindings(r projections.AuditReport) string {
	return fmt.Sprintln(r.Events, r.MoneyEvents, r.FeesChecked, r.Payouts, r.Conversions, r.RowsCompared, r.Ledger, r.FeeRevenue,
		r.Debts, r.NetworkCosts, r.Held, r.Problems)
}

func want(t *testing.T, what string, got domain.Amount, w string) {
	t.Helper()
	if !got.Equal(domain.MustAmount(w)) {
		t.Fatalf("%s = %s, want %s", what, got, w)
	}
}

const ethAddr = "0x1111111111111111111111111111111111111111"

func TestInstantPayoutAfterConfirmedInvoice(t *testing.T) {
	s := setup(t)
	m := s.merchant(t, domain.PayoutSettings{Asset: "USDT.ETH", PayoutAddress: ethAddr, Mode: domain.PayoutInstant, InstantMinAmount: domain.MustAmount("10")})
	inv := s.confirmed(t, m, "USDT.ETH", "49.99", "")
	// Money rule 4: paid is not yet spendable; the settlement acts on
	// finality, so a confirmed payment is not paid out.
	s.sync(t)
	if ps := s.payouts(t, m); len(ps) != 0 {
		t.Fatalf("paid out before the payment was final: %+v", ps)
	}
	s.finalize(t, m, inv)
	small := s.paid(t, m, "USDT.ETH", "5", "") // below instant_min_amount: accrues
	s.sync(t)

	ps := s.payouts(t, m)
	if len(ps) != 1 {
		t.Fatalf("payouts: %+v", ps)
	}
	p := ps[0]
	if p.Kind != domain.PayoutKindInstant || p.SourceInvoiceID != inv || p.Status != domain.PayoutSentStatus || p.ToAddress != ethAddr {
		t.Fatalf("payout %+v", p)
	}
	want(t, "payout amount (net of the 0.25 % fee)", p.Amount, "49.865025")
	want(t, "network fee", *p.NetworkFee, "0.5")
	want(t, "sent", *p.Sent, "49.365025")
	b := s.balance(t, m, "USDT.ETH")
	want(t, "available (the small invoice accrued)", b.Available, "4.9875")
	want(t, "reserved while sending", b.Reserved, "49.865025")

	if _, err := s.sim.Mine(s.ctx, 1); err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(2 * time.Second)
	s.sync(t)
	p = s.payouts(t, m)[0]
	if p.Status != domain.PayoutConfirmedStatus || p.ConfirmedAt == nil {
		t.Fatalf("after a block: %+v", p)
	}
	b = s.balance(t, m, "USDT.ETH")
	want(t, "available", b.Available, "4.9875")
	want(t, "reserved", b.Reserved, "0")
	txs, _ := s.eth.PayoutTxs(s.ctx)
	if len(txs) != 1 || txs[0].Amount != "49.365025" || txs[0].To != ethAddr || txs[0].TxID != p.TxID {
		t.Fatalf("chain: %+v", txs)
	}
	_ = small

	// Exactly once: the settlement handles the whole log again.
	if _, err := s.db.Write.Exec(`UPDATE chain_checkpoints SET position = '0/0' WHERE name = 'settlement'`); err != nil {
		t.Fatal(err)
	}
	s.sync(t)
	if n := len(s.payouts(t, m)); n != 1 {
		t.Fatalf("replaying the settlement made %d payouts", n)
	}
	if rep := s.audit(t); !rep.OK() {
		t.Fatalf("audit: %v", rep.Problems)
	}
}

func TestManualAccrualThenWithdrawal(t *testing.T) {
	s := setup(t)
	m := s.merchant(t, domain.PayoutSettings{Asset: "BTC", PayoutAddress: "simbtc1qpayout", Mode: domain.PayoutManual})
	s.paid(t, m, "BTC", "0.01", "")
	s.paid(t, m, "BTC", "0.02", "")
	s.sync(t)
	if n := len(s.payouts(t, m)); n != 0 {
		t.Fatalf("manual mode paid out %d times", n)
	}
	want(t, "accrued", s.balance(t, m, "BTC").Available, "0.029925")

	if _, err := s.h.RequestPayout.Handle(s.ctx, commands.RequestPayout{MerchantID: m, Asset: "BTC", Amount: "0.03", Kind: domain.PayoutKindWithdrawal}); !errors.Is(err, domain.ErrInsufficientFunds) {
		t.Fatalf("more than the balance: %v", err)
	}
	res, err := s.h.RequestPayout.Handle(s.ctx, commands.RequestPayout{CommandID: "w1", MerchantID: m, Asset: "BTC", Kind: domain.PayoutKindWithdrawal})
	if err != nil {
		t.Fatal(err)
	}
	want(t, "withdrawal of everything", res.Payout.Amount, "0.029925")
	if res.Payout.ToAddress != "simbtc1qpayout" {
		t.Fatalf("configured address not used: %q", res.Payout.ToAddress)
	}
	// The same command again is the same payout, not a second one.
	again, err := s.h.RequestPayout.Handle(s.ctx, commands.RequestPayout{CommandID: "w1", MerchantID: m, Asset: "BTC", Kind: domain.PayoutKindWithdrawal})
	if err != nil || again.Payout.PayoutID != res.Payout.PayoutID {
		t.Fatalf("retried withdrawal: %+v %v", again.Payout, err)
	}
	if _, err := s.h.RequestPayout.Handle(s.ctx, commands.RequestPayout{MerchantID: m, Asset: "BTC", Kind: domain.PayoutKindWithdrawal}); !errors.Is(err, domain.ErrInsufficientFunds) {
		t.Fatalf("a second withdrawal of the same funds: %v", err)
	}
	s.sync(t)
	s.sim.Mine(s.ctx, 1)
	s.clock.Advance(2 * time.Second)
	s.sync(t)
	p := s.payouts(t, m)[0]
	if p.Status != domain.PayoutConfirmedStatus {
		t.Fatalf("payout %+v", p)
	}
	b := s.balance(t, m, "BTC")
	want(t, "available", b.Available, "0")
	want(t, "reserved", b.Reserved, "0")
	if rep := s.audit(t); !rep.OK() {
		t.Fatalf("audit: %v", rep.Problems)
	}
}

func TestConcurrentWithdrawalsOfTheWholeBalance(t *testing.T) {
	s := setup(t)
	m := s.merchant(t, domain.PayoutSettings{Asset: "USDT.ETH", PayoutAddress: ethAddr, Mode: domain.PayoutManual})
	s.paid(t, m, "USDT.ETH", "100", "")
	s.sync(t)
	const n = 12
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, errs[i] = s.h.RequestPayout.Handle(s.ctx, commands.RequestPayout{CommandID: fmt.Sprint("cw", i), MerchantID: m, Asset: "USDT.ETH",
				Kind: domain.PayoutKindWithdrawal})
		}(i)
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, domain.ErrInsufficientFunds):
		default:
			t.Fatalf("unexpected: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of %d concurrent withdrawals of the whole balance succeeded", ok, n)
	}
	s.sync(t)
	b := s.balance(t, m, "USDT.ETH")
	want(t, "available", b.Available, "0")
	want(t, "reserved", b.Reserved, "99.75")
	if rep := s.audit(t); !rep.OK() {
		t.Fatalf("audit: %v", rep.Problems)
	}
}

func TestBroadcastFailsThenSucceedsWithoutDoubleSpending(t *testing.T) {
	s := setup(t)
	m := s.merchant(t, domain.PayoutSettings{Asset: "USDT.ETH", PayoutAddress: ethAddr, Mode: domain.PayoutInstant})
	s.paid(t, m, "USDT.ETH", "20", "")
	s.eth.FailBroadcasts(2)
	s.sync(t) // signs, broadcast fails
	p := s.payouts(t, m)[0]
	if p.Status != domain.PayoutSignedStatus || p.TxID == "" {
		t.Fatalf("after a failed broadcast: %+v", p)
	}
	signedTx := p.TxID
	for i := 0; i < 3; i++ { // backoff: 1 s, then 2 s
		s.clock.Advance(3 * time.Second)
		s.sync(t)
	}
	p = s.payouts(t, m)[0]
	if p.Status != domain.PayoutSentStatus || p.TxID != signedTx {
		t.Fatalf("after the retries: %+v (signed %s)", p, signedTx)
	}
	if n := s.eth.Builds(p.ID); n != 1 {
		t.Fatalf("built %d times", n)
	}
	txs, _ := s.eth.PayoutTxs(s.ctx)
	if len(txs) != 1 {
		t.Fatalf("%d transactions on chain", len(txs))
	}
	s.sim.Mine(s.ctx, 1)
	s.clock.Advance(2 * time.Second)
	s.sync(t)
	if p := s.payouts(t, m)[0]; p.Status != domain.PayoutConfirmedStatus {
		t.Fatalf("%+v", p)
	}
	if rep := s.audit(t); !rep.OK() {
		t.Fatalf("audit: %v", rep.Problems)
	}
}

// crashing stands for a process that dies right after recording the
// signed transaction: its broadcast never happens.
type crashing struct{ chain.Sender }

var errCrash = errors.New("process killed")

func (c crashing) Broadcast(context.Context, chain.Signed) error { return errCrash }

func TestRestartBetweenSigningAndBroadcast(t *testing.T) {
	s := setup(t)
	m := s.merchant(t, domain.PayoutSettings{Asset: "USDT.ETH", PayoutAddress: ethAddr, Mode: domain.PayoutInstant})
	s.paid(t, m, "USDT.ETH", "30", "")
	s.proc = s.processor(crashing{s.eth})
	s.sync(t)
	p := s.payouts(t, m)[0]
	if p.Status != domain.PayoutSignedStatus {
		t.Fatalf("before the restart: %+v", p)
	}
	// Restart: a new processor with a working sender.
	s.proc = s.processor(s.eth)
	s.clock.Advance(time.Minute)
	s.sync(t)
	after := s.payouts(t, m)[0]
	if after.Status != domain.PayoutSentStatus || after.TxID != p.TxID {
		t.Fatalf("after the restart: %+v, signed as %s", after, p.TxID)
	}
	if n := s.eth.Builds(p.ID); n != 1 {
		t.Fatalf("signed %d times", n)
	}
	txs, _ := s.eth.PayoutTxs(s.ctx)
	if len(txs) != 1 || txs[0].TxID != p.TxID {
		t.Fatalf("chain: %+v", txs)
	}
}

func TestPermanentFailureReleasesTheReservation(t *testing.T) {
	s := setup(t)
	poor, err := sim.NewSender(s.ctx, s.db, sim.SenderConfig{Chain: domain.ChainEthereum, Now: s.clock.Now,
		HotWallet: map[string]domain.Amount{"USDT.ETH": domain.MustAmount("1")}})
	if err != nil {
		t.Fatal(err)
	}
	s.proc = s.processor(poor)
	m := s.merchant(t, domain.PayoutSettings{Asset: "USDT.ETH", PayoutAddress: ethAddr, Mode: domain.PayoutInstant})
	s.paid(t, m, "USDT.ETH", "10", "")
	s.sync(t)
	p := s.payouts(t, m)[0]
	if p.Status != domain.PayoutFailedStatus || p.FailureReason == "" {
		t.Fatalf("%+v", p)
	}
	b := s.balance(t, m, "USDT.ETH")
	want(t, "available after the release", b.Available, "9.975")
	want(t, "reserved", b.Reserved, "0")
	// The released funds can be withdrawn again.
	if _, err := s.h.RequestPayout.Handle(s.ctx, commands.RequestPayout{MerchantID: m, Asset: "USDT.ETH", Kind: domain.PayoutKindWithdrawal}); err != nil {
		t.Fatal(err)
	}
	if rep := s.audit(t); !rep.OK() {
		t.Fatalf("audit: %v", rep.Problems)
	}
}

func TestSettleAsConvertsAtTheOraclePrice(t *testing.T) {
	s := setup(t)
	m := s.merchant(t)
	s.paid(t, m, "BTC", "0.01", "USDT.ETH")
	s.sync(t)
	// 0.01 BTC, fee 50 bps on the deposit (the conversion tier): net 0.00995
	// BTC × 60000 = 597 USDT, no second fee.
	want(t, "BTC left", s.balance(t, m, "BTC").Available, "0")
	want(t, "USDT.ETH", s.balance(t, m, "USDT.ETH").Available, "597")

	// A stale price: no conversion, a 503 for the API.
	s.prices.At, s.prices.MaxAge = s.clock.Now().Add(-time.Hour), time.Minute
	s.paid(t, m, "BTC", "0.01", "")
	s.sync(t)
	_, err := s.h.Convert.Handle(s.ctx, commands.Convert{MerchantID: m, From: "BTC", To: "USDT.ETH"})
	if !errors.Is(err, domain.ErrPriceUnavailable) {
		t.Fatalf("stale price: %v", err)
	}
	s.prices.At = time.Time{}
	res, err := s.h.Consolidate.Handle(s.ctx, commands.Consolidate{CommandID: "c1", MerchantID: m, To: "USDT.ETH"})
	if err != nil || len(res.Conversions) != 1 {
		t.Fatalf("consolidate: %+v %v", res, err)
	}
	c := res.Conversions[0]
	// 0.009975 BTC × 60000 = 598.5. Money rule 2 (changed from 50 bps on the
	// conversion): the balance was credited at 25 bps, so consolidating
	// charges the other 25 bps on what it converts: 1.49625.
	want(t, "converted", c.ToAmount, "598.5")
	want(t, "fee", c.Fee.Fee, "1.49625")
	if c.Fee.Bps != 25 || c.Rate.String() != "60000" || c.RateSource != "static" {
		t.Fatalf("conversion %+v", c)
	}
	s.sync(t)
	want(t, "USDT.ETH after consolidating", s.balance(t, m, "USDT.ETH").Available, "1194.00375")
	rep := s.audit(t)
	if !rep.OK() {
		t.Fatalf("audit: %v", rep.Problems)
	}
	// Each payment paid 0.5 % in total, never more: the settle_as one 50 bps
	// on the BTC at its confirmation and nothing on its conversion, the
	// consolidated one 25 bps on the BTC and 25 bps on the conversion.
	want(t, "USDT.ETH revenue at 25 bps (the consolidation)", rep.FeeRevenue[25]["USDT.ETH"], "1.49625")
	want(t, "USDT.ETH revenue at 50 bps (none: conversions charge at most 25)", rep.FeeRevenue[50]["USDT.ETH"], "0")
	want(t, "USDT.ETH revenue at 0 bps (the settle_as conversion)", rep.FeeRevenue[0]["USDT.ETH"], "0")
	want(t, "BTC revenue at 50 bps", rep.FeeRevenue[50]["BTC"], "0.00005")
	want(t, "BTC revenue at 25 bps", rep.FeeRevenue[25]["BTC"], "0.000025")
}

// TestAuditMixedLog runs every scenario into one log, audits it clean,
// then corrupts one read-model row, and separately one fee, and expects
// the audit to fail each time.
func TestAuditMixedLog(t *testing.T) {
	s := setup(t)
	a := s.merchant(t, domain.PayoutSettings{Asset: "USDT.ETH", PayoutAddress: ethAddr, Mode: domain.PayoutInstant})
	b := s.merchant(t, domain.PayoutSettings{Asset: "BTC", PayoutAddress: "simbtc1qb", Mode: domain.PayoutManual},
		domain.PayoutSettings{Asset: "ETH", PayoutAddress: ethAddr, Mode: domain.PayoutInstant, InstantMinAmount: domain.MustAmount("0.5")})
	s.paid(t, a, "USDT.ETH", "49.99", "")
	s.paid(t, a, "BTC", "0.01", "USDT.ETH")
	s.paid(t, b, "BTC", "0.5", "")
	s.paid(t, b, "ETH", "0.1", "")
	s.paid(t, b, "ETH", "1", "")
	s.eth.FailBroadcasts(1)
	s.sync(t)
	if _, err := s.h.RequestPayout.Handle(s.ctx, commands.RequestPayout{MerchantID: b, Asset: "BTC", Amount: "0.1", Kind: domain.PayoutKindWithdrawal}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.h.Consolidate.Handle(s.ctx, commands.Consolidate{MerchantID: b, To: "USDT.ETH"}); err != nil {
		t.Fatal(err)
	}
	// A reorg of an unconfirmed payment, and a partly paid invoice.
	inv, _ := s.h.CreateInvoice.Handle(s.ctx, commands.CreateInvoice{MerchantID: a, Asset: "ETH", Amount: "2"})
	s.project(s.ctx)
	s.sim.Pay(s.ctx, inv.Invoice.InvoiceID, "1")
	s.sync(t)
	s.clock.Advance(time.Minute)
	s.sim.Mine(s.ctx, 3)
	s.sync(t)
	rep := s.audit(t)
	if !rep.OK() {
		t.Fatalf("audit of the mixed log: %v", rep.Problems)
	}
	if rep.Payouts < 3 || rep.Conversions < 2 || rep.RowsCompared < 8 {
		t.Fatalf("the mixed log is too thin: %+v", rep)
	}

	// One read-model row off by the smallest unit.
	if _, err := s.db.Write.Exec(`UPDATE balances SET available = '0.000001' WHERE merchant_id = ? AND asset = 'USDT.ETH'`, a); err != nil {
		t.Fatal(err)
	}
	if rep := s.audit(t); rep.OK() {
		t.Fatal("a corrupted balance passed the audit")
	}
	if _, err := s.db.Write.Exec(`UPDATE balances SET available = ? WHERE merchant_id = ? AND asset = 'USDT.ETH'`,
		rep.Ledger[domain.AvailableAccount(a)]["USDT.ETH"].String(), a); err != nil {
		t.Fatal(err)
	}
	if rep := s.audit(t); !rep.OK() {
		t.Fatalf("restored: %v", rep.Problems)
	}

	// One fee that does not follow the rule, written past the commands.
	fee := domain.ComputeFee(domain.MustAmount("10"), 25, 6)
	fee.Fee = domain.MustAmount("0.026") // the rule says 0.025
	bad := domain.DepositConfirmed{InvoiceID: "inv_x", MerchantID: a, DepositID: "d", Asset: "USDT.ETH", Amount: domain.MustAmount("10"),
		Fee: fee, Net: domain.MustAmount("9.974"), Postings: []domain.Posting{
			{Account: domain.ExternalAccount, Asset: "USDT.ETH", Amount: domain.MustAmount("-10")},
			{Account: domain.AvailableAccount(a), Asset: "USDT.ETH", Amount: domain.MustAmount("9.974")},
			{Account: domain.FeeAccount, Asset: "USDT.ETH", Amount: domain.MustAmount("0.026")},
		}}
	data, _ := domain.Encode(bad)
	if _, err := s.store.Append(s.ctx, "invoice-inv_x", eventstore.NoStream, []eventstore.EventData{{ID: commands.EventID("bad", "x", 0), Type: bad.EventType(), Data: data}}); err != nil {
		t.Fatal(err)
	}
	rep = s.audit(t)
	if rep.OK() {
		t.Fatal("a wrong fee passed the audit")
	}
	t.Logf("problems found: %v", rep.Problems)
}

// recordingBuilds keeps what the processor asked a sender to build.
type recordingBuilds struct {
	chain.Sender
	mu  sync.Mutex
	got []chain.PayoutToSend
}

func (r *recordingBuilds) Build(ctx context.Context, p chain.PayoutToSend) (chain.Signed, error) {
	r.mu.Lock()
	r.got = append(r.got, p)
	r.mu.Unlock()
	return r.Sender.Build(ctx, p)
}

// TestBuildNamesWhereTheRequestIs: the processor tells the sender (and so
// the signer) the version of each payout's request in the funds stream,
// so that a signer reads that one event, not the merchant's every payout.
func TestBuildNamesWhereTheRequestIs(t *testing.T) {
	s := setup(t)
	m := s.merchant(t, domain.PayoutSettings{Asset: "BTC", PayoutAddress: "simbtc1qpayout", Mode: domain.PayoutManual})
	s.paid(t, m, "BTC", "0.03", "")
	s.sync(t)
	rec := &recordingBuilds{Sender: s.btc}
	s.proc = s.processor(rec, s.eth)
	for _, amount := range []string{"0.01", "0.005", "0.002"} {
		if _, err := s.h.RequestPayout.Handle(s.ctx, commands.RequestPayout{MerchantID: m, Asset: "BTC", Amount: amount, Kind: domain.PayoutKindWithdrawal}); err != nil {
			t.Fatal(err)
		}
	}
	s.sync(t)
	if len(rec.got) != 3 {
		t.Fatalf("%d builds, want 3", len(rec.got))
	}
	for _, p := range rec.got {
		recs, err := s.store.ReadStream(s.ctx, domain.FundsStream(m, "BTC"), p.RequestVersion, 1)
		if err != nil || len(recs) != 1 || recs[0].Type != domain.TypePayoutRequested || !strings.Contains(string(recs[0].Data), `"`+p.PayoutID+`"`) {
			t.Fatalf("payout %s built with request version %d; the funds stream holds there %v (%v)", p.PayoutID, p.RequestVersion, recs, err)
		}
	}
}
