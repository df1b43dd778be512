package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

// Convert converts part of a merchant's balance into another asset at the
// oracle's price.
type Convert struct {
	CommandID  string
	MerchantID string
	From, To   string
	// Amount is the API's decimal string; "" converts the whole available balance.
	Amount    string
	Reason    string // domain.Conversion…; the fee follows from it
	InvoiceID string
	DepositID string
	AtLeast   eventstore.Position
}

// Converted is the conversion and where it is in the log.
type Converted struct {
	Conversion domain.ConversionExecuted
	Position   eventstore.Position
}

type ConvertHandler struct{ d Deps }

// Handle errors: domain.ErrUnsupportedAsset, domain.ErrInvalidAmount,
// domain.ErrValidation, domain.ErrInsufficientFunds,
// domain.ErrPriceUnavailable, ErrMoneyOutUnavailable, ErrBusy.
func (h ConvertHandler) Handle(ctx context.Context, c Convert) (Converted, error) {
	if h.d.Credits == nil || h.d.Prices == nil {
		return Converted{}, ErrMoneyOutUnavailable
	}
	from, err := h.d.Assets.Lookup(c.From)
	if err != nil {
		return Converted{}, err
	}
	to, err := h.d.Assets.Lookup(c.To)
	if err != nil {
		return Converted{}, err
	}
	var amount *domain.Amount
	if c.Amount != "" {
		a, err := domain.ParseAmount(c.Amount, from.Decimals)
		if err != nil {
			return Converted{}, err
		}
		amount = &a
	}
	if from.Code == to.Code {
		return Converted{}, fmt.Errorf("%w: cannot convert %s into itself", domain.ErrValidation, from.Code)
	}
	reason := c.Reason
	if reason == "" {
		reason = domain.ConversionConsolidate
	}
	var price *domain.PriceQuote // asked once, and only when there is something to convert
	meta := Metadata{CommandID: c.CommandID, MerchantID: c.MerchantID, OccurredAt: h.d.Now().UTC()}
	if meta.CommandID == "" {
		meta.CommandID = randomCommandID()
	}
	stream := FundsStream(c.MerchantID, from.Code)
	res, err := executeFunds(ctx, h.d, stream, meta, func(f *domain.Funds) (domain.Event, error) {
		credited, err := h.d.Credits.Credited(ctx, c.MerchantID, from.Code, c.AtLeast)
		if err != nil {
			return nil, fmt.Errorf("credits of %s %s: %w", c.MerchantID, from.Code, err)
		}
		if amount == nil && !f.Available(credited).IsPositive() {
			return nil, fmt.Errorf("%w: no %s is available", domain.ErrInsufficientFunds, from.Code)
		}
		if price == nil {
			q, err := h.d.Prices.Price(ctx, from.Code, to.Code)
			if err != nil {
				if !errors.Is(err, domain.ErrPriceUnavailable) {
					err = fmt.Errorf("%w: %v", domain.ErrPriceUnavailable, err)
				}
				return nil, err
			}
			price = &q
		}
		return f.Convert(domain.ConversionRequest{ConversionID: domain.DerivedID("cnv_", meta.CommandID, stream, h.d.Now()), MerchantID: c.MerchantID, CommandID: meta.CommandID,
			From: from, To: to, Amount: amount, Price: *price, FeeBps: domain.ConversionFeeFor(reason), Reason: reason,
			InvoiceID: c.InvoiceID, DepositID: c.DepositID}, credited, h.d.Now())
	})
	if err != nil {
		return Converted{}, err
	}
	conv, ok := res.event.(domain.ConversionExecuted)
	if !ok {
		return Converted{}, fmt.Errorf("%w: command %s already recorded a %s", domain.ErrInvalidState, meta.CommandID, res.event.EventType())
	}
	return Converted{Conversion: conv, Position: res.position}, nil
}

// Consolidate converts every other balance of the merchant into one asset.
type Consolidate struct {
	CommandID  string
	MerchantID string
	To         string
}

// Consolidated lists the conversions made; Position is the last one's.
type Consolidated struct {
	Conversions []domain.ConversionExecuted
	Position    eventstore.Position
}

type ConsolidateHandler struct{ convert ConvertHandler }

// Handle converts each asset with an available balance; assets with
// nothing available are skipped. It stops at the first other error (the
// conversions made before it stand; retrying with the same command id
// finds them instead of converting again).
// Errors: those of Convert except domain.ErrInsufficientFunds.
func (h ConsolidateHandler) Handle(ctx context.Context, c Consolidate) (Consolidated, error) {
	to, err := h.convert.d.Assets.Lookup(c.To)
	if err != nil {
		return Consolidated{}, err
	}
	if _, err := loadMerchant(ctx, h.convert.d, c.MerchantID); err != nil {
		return Consolidated{}, err
	}
	base := c.CommandID
	if base == "" {
		base = randomCommandID()
	}
	out := Consolidated{Conversions: []domain.ConversionExecuted{}}
	for _, a := range h.convert.d.Assets.List() {
		if a.Code == to.Code {
			continue
		}
		res, err := h.convert.Handle(ctx, Convert{CommandID: base + "/" + a.Code, MerchantID: c.MerchantID, From: a.Code, To: to.Code,
			Reason: domain.ConversionConsolidate})
		if errors.Is(err, domain.ErrInsufficientFunds) || errors.Is(err, domain.ErrInvalidAmount) {
			continue // nothing (or too little to convert) in this asset
		}
		if err != nil {
			return out, err
		}
		out.Conversions = append(out.Conversions, res.Conversion)
		out.Position = res.Position
	}
	return out, nil
}

// SettleDeposit is what happens to a payment once it is final (money
// rule 4): its net is converted when its invoice converts (settle_as, or
// the account's consolidate_to when it was credited; the invoice already
// paid the 50 bps tier, so the conversion charges nothing more), then paid
// out at once when the resulting asset's payout mode is instant, at most
// what is available (a debt is repaid first: rule 6); otherwise it accrues.
// The process manager (chain.Settlement) sends it once per
// DepositFinalized; the command ids derive from EventID, so a repeat does
// nothing new.
type SettleDeposit struct {
	EventID  string // the DepositFinalized's event id
	Deposit  domain.DepositFinalized
	Position eventstore.Position // the DepositFinalized's position
	// GiveUp credits the payment unconverted: no price came within the
	// longest wait (money rule 3); Reason says so on the invoice.
	GiveUp       bool
	GiveUpReason string
}

// Settled says what SettleDeposit did.
type Settled struct {
	Conversion  *domain.ConversionExecuted
	Unconverted bool
	Payout      *PayoutRequestedResult
	// Accrued explains why no payout was requested ("" when one was).
	Accrued string
}

type SettleDepositHandler struct {
	convert ConvertHandler
	payout  RequestPayoutHandler
}

// Handle errors: domain.ErrPriceUnavailable (the conversion waits; the
// invoice says so; retry later), ErrBusy, storage errors. Insufficient
// funds (the merchant withdrew first, or a debt took it) and invalid
// addresses are not errors: the money accrues, as Settled.Accrued says.
func (h SettleDepositHandler) Handle(ctx context.Context, c SettleDeposit) (Settled, error) {
	d := h.convert.d
	dep := c.Deposit
	inv := &domain.Invoice{}
	if _, err := load(ctx, d.Store, InvoiceStream(dep.InvoiceID), inv.Apply); err != nil {
		return Settled{}, err
	}
	if !inv.StillFinal(dep.DepositID, dep.Round) {
		// Reorganised away since (a later finalization settles it anew).
		return Settled{Accrued: "the payment is no longer final"}, nil
	}
	m, err := loadMerchant(ctx, d, dep.MerchantID)
	if err != nil {
		return Settled{}, err
	}
	out := Settled{}
	asset, amount, pos := dep.Asset, dep.Net, c.Position
	if target := inv.ConvertTo(); target != "" && target != asset && amount.IsPositive() {
		reason := domain.ConversionSettleAs
		if inv.Created().SettleAsset == "" {
			reason = domain.ConversionConsolidateTo
		}
		if c.GiveUp {
			w, err := invoiceCommand(ctx, d, "unconverted/"+c.EventID, dep.InvoiceID, func(inv *domain.Invoice) ([]domain.Event, error) {
				return inv.AbandonConversion(dep.DepositID, c.GiveUpReason, d.Now())
			})
			if err != nil {
				return out, fmt.Errorf("give up conversion: %w", err)
			}
			out.Unconverted = true
			for _, e := range w.events {
				if a, ok := e.(domain.ConversionAbandoned); ok && a.DepositID == dep.DepositID {
					amount = amount.Add(a.Refunds[dep.DepositID])
				}
			}
			if w.res.Position != (eventstore.Position{}) {
				pos = w.res.Position
			}
		} else {
			conv, err := h.convert.Handle(ctx, Convert{CommandID: "settle/" + c.EventID, MerchantID: dep.MerchantID, From: asset, To: target,
				Amount: amount.String(), Reason: reason, InvoiceID: dep.InvoiceID, DepositID: dep.DepositID, AtLeast: pos})
			switch {
			case err == nil:
				out.Conversion = &conv.Conversion
				asset, amount, pos = target, conv.Conversion.Net, conv.Position
				if _, err := invoiceCommand(ctx, d, "converted/"+c.EventID, dep.InvoiceID, func(inv *domain.Invoice) ([]domain.Event, error) {
					return inv.RecordConversion(conv.Conversion, d.Now())
				}); err != nil {
					return out, fmt.Errorf("record the conversion on the invoice: %w", err)
				}
			case errors.Is(err, domain.ErrPriceUnavailable):
				if _, werr := invoiceCommand(ctx, d, "wait/"+c.EventID, dep.InvoiceID, func(inv *domain.Invoice) ([]domain.Event, error) {
					return inv.WaitForPrice(dep.DepositID, err.Error(), d.Now())
				}); werr != nil {
					return out, fmt.Errorf("record the wait for a price: %w", werr)
				}
				return out, err
			case errors.Is(err, domain.ErrInsufficientFunds), errors.Is(err, domain.ErrInvalidAmount), errors.Is(err, domain.ErrUnsupportedAsset):
				// Withdrawn, taken by a debt, or too small: it stays as it is.
			default:
				return out, err
			}
		}
	}
	settings, ok := m.Payout(asset)
	switch {
	case !ok || settings.Mode != domain.PayoutInstant:
		out.Accrued = "manual payout mode"
		return out, nil
	case settings.PayoutAddress == "":
		out.Accrued = "no payout address"
		return out, nil
	case amount.LessThan(settings.InstantMinAmount) || !amount.IsPositive():
		out.Accrued = "below instant_min_amount"
		return out, nil
	}
	p, err := h.payout.Handle(ctx, RequestPayout{CommandID: "instant/" + c.EventID, MerchantID: dep.MerchantID, Asset: asset,
		Amount: amount.String(), AtMost: true, MinAmount: settings.InstantMinAmount, Kind: domain.PayoutKindInstant,
		SourceInvoiceID: dep.InvoiceID, SourceDepositID: dep.DepositID, AtLeast: pos})
	switch {
	case err == nil:
		out.Payout = &p
	case errors.Is(err, domain.ErrInsufficientFunds), errors.Is(err, domain.ErrValidation), errors.Is(err, domain.ErrInvalidAmount):
		out.Accrued = err.Error()
	default:
		return out, err
	}
	return out, nil
}

// NoteBalance records a BalanceNegative when a reversal (event CauseID)
// left the merchant's available balance of asset below zero (money rule 6).
type NoteBalance struct {
	CauseID    string
	MerchantID string
	Asset      string
	InvoiceID  string
	AtLeast    eventstore.Position // the reversal's position
}

type NoteBalanceHandler struct{ d Deps }

// Handle returns the event when one was recorded (or had been, for a
// repeat). Errors: ErrMoneyOutUnavailable, storage errors.
func (h NoteBalanceHandler) Handle(ctx context.Context, c NoteBalance) (*domain.BalanceNegative, error) {
	if h.d.Credits == nil {
		return nil, ErrMoneyOutUnavailable
	}
	credited, err := h.d.Credits.Credited(ctx, c.MerchantID, c.Asset, c.AtLeast)
	if err != nil {
		return nil, err
	}
	funds := &domain.Funds{}
	if _, err := load(ctx, h.d.Store, FundsStream(c.MerchantID, c.Asset), funds.Apply); err != nil {
		return nil, err
	}
	balance := funds.Balance(credited)
	if !balance.IsNegative() {
		return nil, nil
	}
	// One stream per cause: a repeat finds the notice and adds nothing.
	meta := Metadata{CommandID: "balance/" + c.CauseID, MerchantID: c.MerchantID, OccurredAt: h.d.Now().UTC()}
	var out *domain.BalanceNegative
	w, err := write(ctx, h.d.Store, command{stream: "balance-negative-" + c.CauseID, meta: &meta,
		attempt: func() (*state, func() ([]domain.Event, error)) {
			return newState(func(e domain.Event) {
					if b, ok := e.(domain.BalanceNegative); ok {
						out = &b
					}
				}), func() ([]domain.Event, error) {
					if out != nil {
						return nil, nil
					}
					ev := domain.BalanceNegative{MerchantID: c.MerchantID, Asset: c.Asset, Available: balance, CauseID: c.CauseID,
						InvoiceID: c.InvoiceID, At: h.d.Now().UTC()}
					out = &ev
					return []domain.Event{ev}, nil
				}
		}})
	if err == nil && len(w.events) > 0 {
		if b, ok := w.events[0].(domain.BalanceNegative); ok {
			out = &b // what was stored, for a repeat the store recognised
		}
	}
	return out, err
}
