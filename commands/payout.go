package commands

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

// ErrMoneyOutUnavailable: payouts and conversions are not wired on this
// server (no Credits or Prices in Deps) (503).
var ErrMoneyOutUnavailable = errors.New("payouts and conversions are not configured")

// Credits reads how much a merchant has been credited in an asset: every
// posting to its available account except the debits of its funds stream
// (payout requests and conversions out). The balances read model provides
// it; because it lags the log it can only under-estimate, which is the
// safe direction for a withdrawal. atLeast asks the reader to wait until
// the read model has applied that position (the zero Position: no wait).
type Credits interface {
	Credited(ctx context.Context, merchantID, asset string, atLeast eventstore.Position) (domain.Amount, error)
}

// Prices is the price oracle port (chain/oracle implements it). Errors:
// domain.ErrPriceUnavailable when no fresh price exists.
type Prices interface {
	Price(ctx context.Context, base, quote string) (domain.PriceQuote, error)
}

// fundsResult is a debit that the funds stream holds.
type fundsResult struct {
	event    domain.Event
	position eventstore.Position
	version  int64
}

// executeFunds runs the write path on a funds stream, on the view of it
// this process keeps. A retried command (the same command id) is found
// before deciding and answers with the event, position and version it
// recorded the first time, instead of deciding again against funds it
// already took.
func executeFunds(ctx context.Context, d Deps, stream string, meta Metadata,
	decide func(f *domain.Funds) (domain.Event, error)) (fundsResult, error) {
	views := d.funds
	if views == nil { // Deps not built by New: no cache, same result
		views = newFundsViews(1)
	}
	view := views.view(stream)
	view.mu.Lock()
	defer view.mu.Unlock()
	snaps, _ := d.Store.(eventstore.Snapshots)
	if snaps != nil && !view.started {
		if err := view.start(ctx, snaps); err != nil {
			return fundsResult{}, err
		}
	}
	w, err := write(ctx, d.Store, command{stream: stream, meta: &meta,
		attempt: func() (*state, func() ([]domain.Event, error)) {
			return view.state, func() ([]domain.Event, error) {
				ev, err := decide(view.funds.Clone())
				if err != nil {
					return nil, err
				}
				return []domain.Event{ev}, nil
			}
		}})
	if snaps != nil {
		view.snapshot(ctx, snaps)
	}
	if err != nil {
		return fundsResult{}, err
	}
	return fundsResult{event: w.events[0], position: w.res.Position, version: w.res.NextExpected}, nil
}

// fundsSnapshotEvery: a funds view saves a snapshot of its fold once it
// has folded this many events past the last one, so that the first debit
// after a start reads at most about this many events, not every payout
// the merchant ever made.
const fundsSnapshotEvery = 1000

// start begins the view at the stream's snapshot, when the store has one
// of this fold. Ids of events before it are then found through the store.
func (fv *fundsView) start(ctx context.Context, snaps eventstore.Snapshots) error {
	snap, ok, err := snaps.LoadSnapshot(ctx, fv.stream, domain.FundsSnapshotKind)
	if err != nil {
		return fmt.Errorf("load %s: %w", fv.stream, err)
	}
	fv.started = true
	if !ok {
		return nil
	}
	f, err := domain.UnmarshalFundsSnapshot(snap.Data)
	if err != nil {
		return nil // unreadable: the view folds the stream from the start, as without one
	}
	*fv.funds = *f // fv.state folds into fv.funds
	fv.state.version = eventstore.ExpectedVersion(snap.Version)
	fv.forgetBefore(snaps, snap.Version)
	return nil
}

// snapshot saves the fold when it has gone fundsSnapshotEvery events past
// the last snapshot. A failed save is not the command's failure (its
// debit is stored): the view keeps what it folded and a later command
// saves again.
func (fv *fundsView) snapshot(ctx context.Context, snaps eventstore.Snapshots) {
	v := int64(fv.state.version)
	if v-fv.base < fundsSnapshotEvery || ctx.Err() != nil {
		return
	}
	data, err := fv.funds.MarshalSnapshot()
	if err != nil {
		return
	}
	if err := snaps.SaveSnapshot(ctx, eventstore.Snapshot{Stream: fv.stream, Kind: domain.FundsSnapshotKind, Version: v, Data: data}); err != nil {
		return
	}
	fv.forgetBefore(snaps, v)
}

// forgetBefore drops the ids the view folded up to version: a retried
// command looks its events up in the store instead, so the view holds at
// most fundsSnapshotEvery ids however long the stream grows.
func (fv *fundsView) forgetBefore(snaps eventstore.Snapshots, version int64) {
	fv.base = version
	clear(fv.state.seen)
	stream := fv.stream
	fv.state.lookup = func(ctx context.Context, id string) (int64, error) {
		return snaps.EventVersion(ctx, stream, id)
	}
}

// maxFundsViews bounds the funds streams this process keeps folded; the
// least recently used is dropped (and read again from the log when used).
const maxFundsViews = 4096

// fundsViews keeps, per funds stream, the state folded so far, so a debit
// reads only the events appended since the last one in this process (the
// stream grows by one event per payout or conversion, for ever).
type fundsViews struct {
	mu      sync.Mutex
	max     int
	recent  *list.List // of *fundsView, most recently used first
	streams map[string]*list.Element
}

type fundsView struct {
	stream string
	mu     sync.Mutex // one decision at a time per stream in this process
	state  *state     // folds into funds; seen finds a retried command's debit
	funds  *domain.Funds
	// started: the store's snapshot, if any, has been looked for. base is
	// the version of the last snapshot read or saved (-1: none).
	started bool
	base    int64
}

func newFundsViews(max int) *fundsViews {
	return &fundsViews{max: max, recent: list.New(), streams: map[string]*list.Element{}}
}

// view returns the stream's view, made and cached when it has none. Two
// views of one stream (one dropped while in use) stay correct: their
// appends are checked against the stream's version.
func (v *fundsViews) view(stream string) *fundsView {
	v.mu.Lock()
	defer v.mu.Unlock()
	if el, ok := v.streams[stream]; ok {
		v.recent.MoveToFront(el)
		return el.Value.(*fundsView)
	}
	fv := &fundsView{stream: stream, funds: &domain.Funds{}, base: -1}
	fv.state = newCachedState(fv.funds.Apply)
	v.streams[stream] = v.recent.PushFront(fv)
	for v.recent.Len() > v.max {
		last := v.recent.Back()
		v.recent.Remove(last)
		delete(v.streams, last.Value.(*fundsView).stream)
	}
	return fv
}

// RequestPayout reserves an amount for a payout.
type RequestPayout struct {
	CommandID  string
	MerchantID string
	Asset      string
	// Amount is the API's decimal string; "" pays out the whole available balance.
	Amount string
	// ToAddress "" uses the asset's configured payout_address.
	ToAddress       string
	Kind            domain.PayoutKind
	SourceInvoiceID string
	SourceDepositID string
	// AtMost pays out what is available when that is less than Amount
	// (instant payouts after a debt), but not below MinAmount.
	AtMost    bool
	MinAmount domain.Amount
	// AtLeast: read the credits once the read model has applied this position.
	AtLeast eventstore.Position
}

// PayoutRequestedResult is the reservation and where it is in the log.
type PayoutRequestedResult struct {
	Payout   domain.PayoutRequested
	Ref      PayoutRef
	Position eventstore.Position
}

// PayoutRef finds a payout's request: the funds stream and its version there.
type PayoutRef struct {
	MerchantID     string
	Asset          string
	PayoutID       string
	RequestVersion int64
}

type RequestPayoutHandler struct {
	d            Deps
	checkAddress domain.AddressCheck
}

// Handle errors: domain.ErrNotFound (merchant), domain.ErrUnsupportedAsset,
// domain.ErrInvalidAmount, domain.ErrValidation (no or bad address),
// domain.ErrInsufficientFunds, ErrMoneyOutUnavailable, ErrBusy.
func (h RequestPayoutHandler) Handle(ctx context.Context, c RequestPayout) (PayoutRequestedResult, error) {
	if h.d.Credits == nil {
		return PayoutRequestedResult{}, ErrMoneyOutUnavailable
	}
	asset, err := h.d.Assets.Lookup(c.Asset)
	if err != nil {
		return PayoutRequestedResult{}, err
	}
	var amount *domain.Amount
	if c.Amount != "" {
		a, err := domain.ParseAmount(c.Amount, asset.Decimals)
		if err != nil {
			return PayoutRequestedResult{}, err
		}
		amount = &a
	}
	m, err := loadMerchant(ctx, h.d, c.MerchantID)
	if err != nil {
		return PayoutRequestedResult{}, err
	}
	to := c.ToAddress
	if to == "" {
		if s, ok := m.Payout(asset.Code); ok {
			to = s.PayoutAddress
		}
	}
	if to != "" && h.checkAddress != nil {
		if err := h.checkAddress(asset.Chain, to); err != nil {
			if errors.Is(err, domain.ErrValidation) {
				return PayoutRequestedResult{}, err
			}
			return PayoutRequestedResult{}, fmt.Errorf("%w: to_address: %v", domain.ErrValidation, err)
		}
	}
	stream := FundsStream(c.MerchantID, asset.Code)
	meta := Metadata{CommandID: c.CommandID, MerchantID: c.MerchantID, OccurredAt: h.d.Now().UTC()}
	if meta.CommandID == "" {
		meta.CommandID = randomCommandID()
	}
	res, err := executeFunds(ctx, h.d, stream, meta, func(f *domain.Funds) (domain.Event, error) {
		credited, err := h.d.Credits.Credited(ctx, c.MerchantID, asset.Code, c.AtLeast)
		if err != nil {
			return nil, fmt.Errorf("credits of %s %s: %w", c.MerchantID, asset.Code, err)
		}
		if c.AtMost && f.Available(credited).LessThan(c.MinAmount) {
			return nil, fmt.Errorf("%w: %s available after debts, below instant_min_amount", domain.ErrInsufficientFunds, f.Available(credited))
		}
		return f.RequestPayout(domain.PayoutRequest{PayoutID: domain.DerivedID("po_", meta.CommandID, stream, h.d.Now()), MerchantID: c.MerchantID, CommandID: meta.CommandID,
			Asset: asset, Amount: amount, ToAddress: to, Kind: c.Kind, SourceInvoiceID: c.SourceInvoiceID, SourceDepositID: c.SourceDepositID,
			AtMost: c.AtMost}, credited, h.d.Now())
	})
	if err != nil {
		return PayoutRequestedResult{}, err
	}
	p, ok := res.event.(domain.PayoutRequested)
	if !ok {
		return PayoutRequestedResult{}, fmt.Errorf("%w: command %s already recorded a %s", domain.ErrInvalidState, meta.CommandID, res.event.EventType())
	}
	return PayoutRequestedResult{Payout: p, Position: res.position,
		Ref: PayoutRef{MerchantID: p.MerchantID, Asset: p.Asset, PayoutID: p.PayoutID, RequestVersion: res.version}}, nil
}

func loadMerchant(ctx context.Context, d Deps, merchantID string) (*domain.Merchant, error) {
	m := &domain.Merchant{}
	if _, err := load(ctx, d.Store, MerchantStream(merchantID), m.Apply); err != nil {
		return nil, err
	}
	if !m.Registered() {
		return nil, fmt.Errorf("merchant %s: %w", merchantID, domain.ErrNotFound)
	}
	return m, nil
}

// loadRequest reads a payout's request from its funds stream.
// Errors: domain.ErrNotFound.
func loadRequest(ctx context.Context, store eventstore.Store, ref PayoutRef) (domain.PayoutRequested, error) {
	recs, err := store.ReadStream(ctx, FundsStream(ref.MerchantID, ref.Asset), ref.RequestVersion, 1)
	if err != nil {
		return domain.PayoutRequested{}, fmt.Errorf("payout %s: %w", ref.PayoutID, err)
	}
	if len(recs) == 1 && recs[0].Type == domain.TypePayoutRequested {
		e, err := domain.DecodeStored(recs[0].Type, recs[0].Data, recs[0].Metadata)
		if err != nil {
			return domain.PayoutRequested{}, err
		}
		if req := e.(domain.PayoutRequested); req.PayoutID == ref.PayoutID {
			return req, nil
		}
	}
	return domain.PayoutRequested{}, fmt.Errorf("payout %s: %w", ref.PayoutID, domain.ErrNotFound)
}

// payoutCommand runs decide against a payout: its request, read from the
// funds stream at ref, then its own stream.
func payoutCommand(ctx context.Context, d Deps, commandID string, ref PayoutRef,
	decide func(p *domain.Payout) ([]domain.Event, error)) (written, error) {
	req, err := loadRequest(ctx, d.Store, ref)
	if err != nil {
		return written{}, err
	}
	meta := Metadata{CommandID: commandID, MerchantID: ref.MerchantID, OccurredAt: d.Now().UTC()}
	w, err := write(ctx, d.Store, command{stream: PayoutStream(ref.PayoutID), meta: &meta,
		attempt: func() (*state, func() ([]domain.Event, error)) {
			p := &domain.Payout{}
			p.Apply(req)
			return newState(p.Apply), func() ([]domain.Event, error) { return decide(p) }
		}})
	return w, err
}

// LoadPayout folds a payout from the log. Errors: domain.ErrNotFound.
func LoadPayout(ctx context.Context, store eventstore.Store, ref PayoutRef) (*domain.Payout, error) {
	req, err := loadRequest(ctx, store, ref)
	if err != nil {
		return nil, err
	}
	p := &domain.Payout{}
	p.Apply(req)
	if _, err := load(ctx, store, PayoutStream(ref.PayoutID), p.Apply); err != nil {
		return nil, err
	}
	return p, nil
}

// SignPayout records the signed transaction before its broadcast.
type SignPayout struct {
	CommandID string
	Ref       PayoutRef
	Tx        domain.SignedTx
}

type SignPayoutHandler struct{ d Deps }

// Handle errors: domain.ErrNotFound, domain.ErrInvalidState (signed as
// another transaction, or ended), domain.ErrValidation, domain.ErrInvalidAmount.
func (h SignPayoutHandler) Handle(ctx context.Context, c SignPayout) (eventstore.AppendResult, error) {
	w, err := payoutCommand(ctx, h.d, c.CommandID, c.Ref, func(p *domain.Payout) ([]domain.Event, error) {
		return p.Sign(c.Tx, h.d.Now())
	})
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	if w.replayed {
		// The command id names the signing; another transaction under it
		// must not pass for the stored one (it could spend twice).
		if ev, ok := w.events[0].(domain.PayoutSigned); !ok || ev.TxID != c.Tx.TxID {
			return eventstore.AppendResult{}, fmt.Errorf("%w: payout %s is already signed under command %s", domain.ErrInvalidState, c.Ref.PayoutID, c.CommandID)
		}
	}
	return w.res, nil
}

// MarkPayoutSent records an accepted broadcast.
type MarkPayoutSent struct {
	CommandID string
	Ref       PayoutRef
}

type MarkPayoutSentHandler struct{ d Deps }

// Handle errors: domain.ErrNotFound, domain.ErrInvalidState.
func (h MarkPayoutSentHandler) Handle(ctx context.Context, c MarkPayoutSent) (eventstore.AppendResult, error) {
	w, err := payoutCommand(ctx, h.d, c.CommandID, c.Ref, func(p *domain.Payout) ([]domain.Event, error) {
		return p.MarkSent(h.d.Now())
	})
	return w.res, err
}

// ConfirmPayout settles a payout whose transaction is deep enough.
type ConfirmPayout struct {
	CommandID     string
	Ref           PayoutRef
	Confirmations int
	// PaidFee is the network fee the chain says was paid, when the sender
	// knows it (nil: the fee recorded when signed).
	PaidFee *domain.Amount
}

type ConfirmPayoutHandler struct{ d Deps }

// Handle errors: domain.ErrNotFound, domain.ErrInvalidState, domain.ErrUnsupportedAsset.
func (h ConfirmPayoutHandler) Handle(ctx context.Context, c ConfirmPayout) (eventstore.AppendResult, error) {
	asset, err := h.d.Assets.Lookup(c.Ref.Asset)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	w, err := payoutCommand(ctx, h.d, c.CommandID, c.Ref, func(p *domain.Payout) ([]domain.Event, error) {
		return p.ConfirmPaid(c.Confirmations, asset.Confirmations, c.PaidFee, h.d.Now())
	})
	return w.res, err
}

// FailPayout ends a payout that cannot be sent and releases its funds.
type FailPayout struct {
	CommandID string
	Ref       PayoutRef
	Reason    string
}

type FailPayoutHandler struct{ d Deps }

// Handle errors: domain.ErrNotFound, domain.ErrInvalidState (already sent).
func (h FailPayoutHandler) Handle(ctx context.Context, c FailPayout) (eventstore.AppendResult, error) {
	w, err := payoutCommand(ctx, h.d, c.CommandID, c.Ref, func(p *domain.Payout) ([]domain.Event, error) {
		return p.Fail(c.Reason, h.d.Now())
	})
	return w.res, err
}
