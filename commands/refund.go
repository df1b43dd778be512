package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

// RequestRefund sends an invoice's money back to its customer: a payout of
// kind refund, in the invoice's asset, through the merchant's funds stream.
type RequestRefund struct {
	CommandID  string
	MerchantID string
	InvoiceID  string
	// Amount is the API's decimal string; "" refunds what is left of the
	// invoice's net (what it received less its fee, less earlier refunds).
	Amount    string
	ToAddress string
	// AtLeast: read the credits once the read model has applied this position.
	AtLeast eventstore.Position
}

// Refund reserves a refund. Refunds of one invoice are decided in the
// funds stream of its merchant and asset, which serialises them with
// every other debit of that balance: two concurrent refunds of the same
// invoice cannot both take the same room. A failed refund gives its room
// back (its failure is read from its own stream; a failure recorded while
// this decision runs is seen by the next one, the safe direction).
//
// Errors: domain.ErrNotFound (invoice or merchant; another merchant's
// invoice too), domain.ErrRefundExceeded, domain.ErrInsufficientFunds,
// domain.ErrInvalidAmount, domain.ErrValidation (no or bad address),
// ErrMoneyOutUnavailable, ErrBusy.
func (h RequestPayoutHandler) Refund(ctx context.Context, c RequestRefund) (PayoutRequestedResult, error) {
	if h.d.Credits == nil {
		return PayoutRequestedResult{}, ErrMoneyOutUnavailable
	}
	inv := &domain.Invoice{}
	if _, err := load(ctx, h.d.Store, InvoiceStream(c.InvoiceID), inv.Apply); err != nil {
		return PayoutRequestedResult{}, err
	}
	if !inv.Exists() || inv.MerchantID() != c.MerchantID {
		return PayoutRequestedResult{}, fmt.Errorf("invoice %s: %w", c.InvoiceID, domain.ErrNotFound)
	}
	asset, err := h.d.Assets.Lookup(inv.Created().Asset)
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
	if _, err := loadMerchant(ctx, h.d, c.MerchantID); err != nil {
		return PayoutRequestedResult{}, err
	}
	if c.ToAddress == "" {
		return PayoutRequestedResult{}, fmt.Errorf("%w: to_address is required", domain.ErrValidation)
	}
	if h.checkAddress != nil {
		if err := h.checkAddress(asset.Chain, c.ToAddress); err != nil {
			if errors.Is(err, domain.ErrValidation) {
				return PayoutRequestedResult{}, err
			}
			return PayoutRequestedResult{}, fmt.Errorf("%w: to_address: %v", domain.ErrValidation, err)
		}
	}
	net := inv.RefundableNet()
	stream := FundsStream(c.MerchantID, asset.Code)
	meta := Metadata{CommandID: c.CommandID, MerchantID: c.MerchantID, OccurredAt: h.d.Now().UTC()}
	if meta.CommandID == "" {
		meta.CommandID = randomCommandID()
	}
	res, err := executeFunds(ctx, h.d, stream, meta, func(f *domain.Funds) (domain.Event, error) {
		room := net
		for _, r := range f.Refunds(c.InvoiceID) {
			failed, err := payoutFailed(ctx, h.d.Store, r)
			if err != nil {
				return nil, err
			}
			if !failed {
				room = room.Sub(r.Amount)
			}
		}
		credited, err := h.d.Credits.Credited(ctx, c.MerchantID, asset.Code, c.AtLeast)
		if err != nil {
			return nil, fmt.Errorf("credits of %s %s: %w", c.MerchantID, asset.Code, err)
		}
		return f.RequestRefund(domain.PayoutRequest{PayoutID: domain.DerivedID("po_", meta.CommandID, stream, h.d.Now()), MerchantID: c.MerchantID, CommandID: meta.CommandID,
			Asset: asset, Amount: amount, ToAddress: c.ToAddress, SourceInvoiceID: c.InvoiceID}, credited, room, h.d.Now())
	})
	if err != nil {
		return PayoutRequestedResult{}, err
	}
	p, ok := res.event.(domain.PayoutRequested)
	if !ok || p.Kind != domain.PayoutKindRefund {
		return PayoutRequestedResult{}, fmt.Errorf("%w: command %s already recorded a %s", domain.ErrInvalidState, meta.CommandID, res.event.EventType())
	}
	return PayoutRequestedResult{Payout: p, Position: res.position,
		Ref: PayoutRef{MerchantID: p.MerchantID, Asset: p.Asset, PayoutID: p.PayoutID, RequestVersion: res.version}}, nil
}

// payoutFailed reports whether a requested payout has failed or was
// canceled (its reservation released).
func payoutFailed(ctx context.Context, store eventstore.Store, req domain.PayoutRequested) (bool, error) {
	p := &domain.Payout{}
	p.Apply(req)
	if _, err := load(ctx, store, PayoutStream(req.PayoutID), p.Apply); err != nil {
		return false, err
	}
	return p.Released(), nil
}
