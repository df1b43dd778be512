package history

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

// worker writes the history of its share of the merchants, in time order,
// on a clock of its own (the handlers' Now).
type worker struct {
	id, of int
	cfg    Config
	store  eventstore.Store
	assets domain.Assets
	h      commands.Handlers
	total  *atomic.Int64

	mu  sync.Mutex
	now time.Time
	// credited is what the log credits each merchant:asset's available
	// account outside its funds stream: the Credits port of the payouts.
	credited map[string]domain.Amount
	// since counts credited invoices since the last payout per merchant:asset.
	since map[string]int

	// inflight holds the invoice appends sent and not yet answered (at
	// most Config.Pipeline): a worker decides its next invoices while the
	// store commits the earlier ones, so each commit carries more of them.
	inflight  chan struct{}
	appended  sync.WaitGroup
	appendMu  sync.Mutex
	appendErr error
	head      eventstore.Position // the furthest position an append of appendAsync reached
	// tails: the invoices' events after their creation, held back by Config.Spread.
	tails []tail

	merchants []Merchant
	events    int64
	counts    map[Kind]int64
	payouts   int64
	failed    int64
}

func newWorker(id, of int, cfg Config, store eventstore.Store, assets domain.Assets, sealer commands.SecretSealer, total *atomic.Int64) *worker {
	w := &worker{id: id, of: of, cfg: cfg, store: store, assets: assets, total: total, now: cfg.Start,
		credited: map[string]domain.Amount{}, since: map[string]int{}, counts: map[Kind]int64{}, inflight: make(chan struct{}, cfg.Pipeline)}
	clock := func() time.Time { w.mu.Lock(); defer w.mu.Unlock(); return w.now }
	deps := commands.Deps{Store: store, Assets: assets, Now: clock, NewID: commands.NewIDGenerator(clock), Credits: w, WebhookSecrets: sealer}
	w.h = commands.New(deps, nil, nil)
	return w
}

// Credited is commands.Credits from what this worker appended.
func (w *worker) Credited(_ context.Context, merchantID, asset string, _ eventstore.Position) (domain.Amount, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.credited[merchantID+" "+asset], nil
}

func (w *worker) setNow(t time.Time) {
	w.mu.Lock()
	w.now = t
	w.mu.Unlock()
}

func (w *worker) budget() int64 {
	b := int64(w.cfg.Events / w.of)
	if w.id < w.cfg.Events%w.of {
		b++
	}
	return b
}

func (w *worker) run(ctx context.Context) error {
	if err := w.write(ctx); err != nil {
		return errors.Join(err, w.drain())
	}
	return w.flushTails(ctx)
}

func (w *worker) write(ctx context.Context) error {
	for i := w.id; i < w.cfg.Merchants; i += w.of {
		if err := w.register(ctx, i); err != nil {
			return err
		}
	}
	budget := w.budget()
	// Invoices spread evenly over [Start, End - 3h], open ones just before End.
	expected := max(1, float64(budget)/w.cfg.eventsPerInvoice())
	span := w.cfg.End.Add(-3 * time.Hour).Sub(w.cfg.Start)
	for j := 0; w.events < budget; j++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := w.appendFailure(); err != nil {
			return err
		}
		r := rand.New(rand.NewPCG(w.cfg.Seed, uint64(w.id)<<40|uint64(j)))
		at := w.cfg.Start.Add(time.Duration(float64(span) * min(1, float64(j)/expected)))
		m := w.merchants[j%len(w.merchants)]
		if err := w.invoice(ctx, r, m.ID, at, w.cfg.pick(r)); err != nil {
			return err
		}
	}
	return nil
}

func (w *worker) register(ctx context.Context, i int) error {
	r := rand.New(rand.NewPCG(w.cfg.Seed, 1<<62|uint64(i)))
	w.setNow(w.cfg.Start)
	res, err := w.h.RegisterMerchant.Handle(ctx, commands.RegisterMerchant{CommandID: commandID(w.cfg.Start, r), Name: fmt.Sprintf("Merchant %d", i)})
	if err != nil {
		return fmt.Errorf("history: register merchant %d: %w", i, err)
	}
	w.merchants = append(w.merchants, Merchant{ID: res.MerchantID, SecretKey: res.SecretKey})
	w.added(1)
	return nil
}

func (w *worker) added(n int) {
	w.events += int64(n)
	w.total.Add(int64(n))
}

// life is one invoice's events, decided in order and encoded per command.
type life struct {
	inv      *domain.Invoice
	stream   string
	merchant string
	command  string
	data     []eventstore.EventData
	events   []domain.Event
}

// step records what one command decided at t.
func (l *life) step(name string, t time.Time, evs []domain.Event, err error) error {
	if err != nil {
		return fmt.Errorf("history: invoice %s: %s: %w", l.inv.ID(), name, err)
	}
	id := l.command
	if name != "create" {
		id += "/" + name
	}
	data, err := commands.Encode(evs, l.stream, commands.Metadata{CommandID: id, MerchantID: l.merchant, OccurredAt: t.UTC()})
	if err != nil {
		return err
	}
	for _, e := range evs {
		l.inv.Apply(e)
	}
	l.data = append(l.data, data...)
	l.events = append(l.events, evs...)
	return nil
}

// invoice writes one invoice of kind k created at t, and a payout when it
// is the merchant's turn.
func (w *worker) invoice(ctx context.Context, r *rand.Rand, merchantID string, t time.Time, k Kind) error {
	asset, amount := w.asset("USDT.ETH"), fmt.Sprintf("%d.%02d", 5+r.IntN(495), r.IntN(100))
	if r.IntN(100) < 15 {
		asset, amount = w.asset("ETH"), fmt.Sprintf("0.%06d", 1000+r.IntN(499000))
	}
	expiresIn := time.Duration(0)
	if k == Open {
		t, expiresIn = w.cfg.End.Add(-time.Duration(r.IntN(3600))*time.Second), domain.MaxExpiresIn
	}
	cmd := commandID(t, r)
	id := domain.DerivedID("inv_", cmd, "", t)
	n := domain.NewInvoice{InvoiceID: id, MerchantID: merchantID, Asset: asset, Amount: domain.MustAmount(amount), PayAmount: domain.MustAmount(amount),
		PayAddress: "0x" + hexOf(40, w.cfg.Seed, id), AddressIndex: -1, OrderID: fmt.Sprintf("order-%d-%d", w.id, w.counts[k]), ExpiresIn: expiresIn}
	l := &life{inv: &domain.Invoice{}, stream: commands.InvoiceStream(id), merchant: merchantID, command: cmd}
	created, err := domain.CreateInvoice(n, w.assets, t)
	if err := l.step("create", t, []domain.Event{created}, err); err != nil {
		return err
	}
	if err := w.live(l, r, asset, t, k); err != nil {
		return err
	}
	if err := w.appendLife(ctx, l); err != nil {
		return err
	}
	w.counts[k]++
	w.added(len(l.data))
	w.credit(l.events, merchantID)
	if k != Paid && k != Late || w.cfg.PayoutEvery == 0 {
		return nil
	}
	key := merchantID + " " + asset.Code
	if w.since[key]++; w.since[key] < w.cfg.PayoutEvery {
		return nil
	}
	w.since[key] = 0
	// The payout spends what the invoices credited: they go in the log first.
	if err := w.flushTails(ctx); err != nil {
		return err
	}
	return w.payout(ctx, r, merchantID, asset, t.Add(3*time.Hour))
}

type tail struct {
	stream string
	data   []eventstore.EventData
}

// appendLife appends an invoice's life: whole, or its creation now and
// the rest after Config.Spread more invoices.
func (w *worker) appendLife(ctx context.Context, l *life) error {
	if w.cfg.Spread <= 0 || len(l.data) == 1 {
		w.appendAsync(ctx, l.stream, eventstore.NoStream, l.data)
		return nil
	}
	w.appendAsync(ctx, l.stream, eventstore.NoStream, l.data[:1])
	w.tails = append(w.tails, tail{stream: l.stream, data: l.data[1:]})
	if len(w.tails) < w.cfg.Spread {
		return nil
	}
	return w.flushTails(ctx)
}

// flushTails appends the tails held back, once their creations are in the
// log, and waits for every append in flight.
func (w *worker) flushTails(ctx context.Context) error {
	if err := w.drain(); err != nil {
		return err
	}
	for _, t := range w.tails {
		w.appendAsync(ctx, t.stream, eventstore.ExpectedVersion(0), t.data)
	}
	w.tails = w.tails[:0]
	return w.drain()
}

// appendAsync appends to an invoice's stream without waiting for the
// commit; at most Config.Pipeline are in flight. Invoice streams are
// independent of each other, so their order in the log is free.
func (w *worker) appendAsync(ctx context.Context, stream string, expected eventstore.ExpectedVersion, data []eventstore.EventData) {
	w.inflight <- struct{}{}
	w.appended.Add(1)
	go func() {
		defer w.appended.Done()
		defer func() { <-w.inflight }()
		res, err := w.store.Append(ctx, stream, expected, data)
		w.appendMu.Lock()
		defer w.appendMu.Unlock()
		if err != nil && w.appendErr == nil {
			w.appendErr = fmt.Errorf("history: append %s: %w", stream, err)
		}
		if err == nil && w.head.Less(res.Position) {
			w.head = res.Position
		}
	}()
}

// drain waits for the appends in flight and returns the first that failed.
func (w *worker) drain() error {
	w.appended.Wait()
	return w.appendFailure()
}

func (w *worker) appendFailure() error {
	w.appendMu.Lock()
	defer w.appendMu.Unlock()
	return w.appendErr
}

// live decides what happens to the invoice after its creation.
func (w *worker) live(l *life, r *rand.Rand, asset domain.Asset, t time.Time, k Kind) error {
	inv := l.inv
	pay := inv.Created().PayAmount
	dep := domain.ObservedDeposit{DepositID: "0x" + hexOf(64, w.cfg.Seed, inv.ID(), "tx") + ":0", Amount: pay, Confirmations: 1}
	dep.TxID = dep.DepositID[:66]
	seen := t.Add(time.Duration(1+r.IntN(20)) * time.Minute)
	expired := inv.ExpiresAt().Add(time.Minute)
	observe := func(at time.Time) error {
		evs, err := inv.ObserveDeposit(dep, at)
		return l.step("observe", at, evs, err)
	}
	expire := func() error {
		evs, err := inv.Expire(expired)
		return l.step("expire", expired, evs, err)
	}
	confirm := func(at time.Time) error {
		evs, err := inv.ConfirmDeposit(dep.DepositID, asset.Confirmations, "", at)
		return l.step("confirm", at, evs, err)
	}
	finalize := func(at time.Time) error {
		evs, err := inv.FinalizeDeposit(dep.DepositID, asset.FinalityDepth(), at)
		return l.step("finalize", at, evs, err)
	}
	switch k {
	case Paid:
		return run(func() error { return observe(seen) }, func() error { return confirm(seen.Add(15 * time.Minute)) },
			func() error { return finalize(seen.Add(2 * time.Hour)) })
	case Partial:
		dep.Amount = fraction(pay, asset.Decimals, 2)
		return run(func() error { return observe(seen) }, expire)
	case Late:
		seen = expired.Add(time.Duration(1+r.IntN(60)) * time.Minute)
		return run(expire, func() error { return observe(seen) }, func() error { return confirm(seen.Add(15 * time.Minute)) },
			func() error { return finalize(seen.Add(2 * time.Hour)) })
	case Reverted:
		return run(func() error { return observe(seen) }, func() error { return confirm(seen.Add(15 * time.Minute)) }, func() error {
			at := seen.Add(20 * time.Minute)
			evs, err := inv.RevertDeposit(dep.DepositID, "reorg (generated)", at)
			return l.step("revert", at, evs, err)
		})
	case Expired:
		return expire()
	}
	return nil // Open
}

func run(steps ...func() error) error {
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	return nil
}

// credit adds what the events post to the merchant's available accounts.
func (w *worker) credit(evs []domain.Event, merchantID string) {
	account := domain.AvailableAccount(merchantID)
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range evs {
		m, ok := e.(domain.MoneyEvent)
		if !ok {
			continue
		}
		for _, p := range m.LedgerPostings() {
			if p.Account == account {
				key := merchantID + " " + p.Asset
				w.credited[key] = w.credited[key].Add(p.Amount)
			}
		}
	}
}

// payout withdraws the merchant's whole balance of asset at t through the
// command handlers: requested, then signed, sent and confirmed, or failed.
func (w *worker) payout(ctx context.Context, r *rand.Rand, merchantID string, asset domain.Asset, t time.Time) error {
	w.setNow(t)
	cmd := commandID(t, r)
	req, err := w.h.RequestPayout.Handle(ctx, commands.RequestPayout{CommandID: cmd, MerchantID: merchantID, Asset: asset.Code,
		ToAddress: "0x" + hexOf(40, w.cfg.Seed, merchantID, "payout"), Kind: domain.PayoutKindWithdrawal})
	if err != nil {
		return fmt.Errorf("history: payout of %s %s: %w", merchantID, asset.Code, err)
	}
	w.added(1)
	// The request went through its handler: it spends the credits. The
	// payout's own stream (signed, sent, confirmed, or failed) is decided
	// here by the domain, as each handler decides it, and written in one
	// append that the next invoices need not wait for: the handlers would
	// each read the request and the stream back and commit alone.
	ref, amount := req.Ref, req.Payout.Amount
	stream := commands.PayoutStream(ref.PayoutID)
	p := &domain.Payout{}
	p.Apply(req.Payout)
	var data []eventstore.EventData
	step := func(name string, at time.Time, decide func() ([]domain.Event, error)) error {
		evs, err := decide()
		if err != nil {
			return fmt.Errorf("history: payout %s: %s: %w", ref.PayoutID, name, err)
		}
		d, err := commands.Encode(evs, stream, commands.Metadata{CommandID: cmd + "/" + name, MerchantID: merchantID, OccurredAt: at.UTC()})
		if err != nil {
			return err
		}
		for _, e := range evs {
			p.Apply(e)
		}
		data = append(data, d...)
		return nil
	}
	if w.cfg.FailEvery > 0 && r.IntN(w.cfg.FailEvery) == 0 {
		at := t.Add(time.Minute)
		if err := step("fail", at, func() ([]domain.Event, error) { return p.Fail("broadcast refused (generated)", at) }); err != nil {
			return err
		}
		w.mu.Lock()
		w.credited[merchantID+" "+asset.Code] = w.credited[merchantID+" "+asset.Code].Add(amount)
		w.mu.Unlock()
		w.failed++
	} else {
		tx := domain.SignedTx{TxID: "0x" + hexOf(64, w.cfg.Seed, ref.PayoutID), Raw: "0x" + hexOf(64, w.cfg.Seed, ref.PayoutID, "raw"),
			NetworkFee: fraction(amount, asset.Decimals, 200)}
		at := func(i int) time.Time { return t.Add(time.Duration(i) * 5 * time.Minute) }
		if err := run(
			func() error { return step("sign", at(1), func() ([]domain.Event, error) { return p.Sign(tx, at(1)) }) },
			func() error { return step("sent", at(2), func() ([]domain.Event, error) { return p.MarkSent(at(2)) }) },
			func() error {
				return step("confirm", at(3), func() ([]domain.Event, error) {
					return p.ConfirmPaid(asset.Confirmations, asset.Confirmations, nil, at(3))
				})
			}); err != nil {
			return err
		}
		w.payouts++
	}
	w.appendAsync(ctx, stream, eventstore.NoStream, data)
	w.added(len(data))
	return nil
}

func (w *worker) asset(code string) domain.Asset {
	a, err := w.assets.Lookup(code)
	if err != nil {
		panic("history: " + err.Error()) // the default assets hold it
	}
	return a
}
