package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

// CreateInvoice asks for a new invoice. Amount is the API's decimal string.
type CreateInvoice struct {
	CommandID  string
	MerchantID string
	Asset      string
	Amount     string
	OrderID    string
	SettleAs   string
	ExpiresIn  time.Duration // 0: the default
	// CreatedBy is the kind of key that asks; "" is the secret key.
	CreatedBy domain.CreatedBy
	// PriceAmount and PriceCurrency price the invoice in fiat instead of
	// Amount (issue #19): the asset amount comes from the oracle's rate.
	PriceAmount   string
	PriceCurrency string
	// The merchant's details (issue #19), validated by the domain.
	Description string
	Metadata    map[string]string
	RedirectURL string
}

// InvoiceCreated is the handler's answer.
type InvoiceCreated struct {
	Invoice  domain.InvoiceCreated
	Position eventstore.Position
}

type CreateInvoiceHandler struct {
	d         Deps
	addresses AddressSource
	// reserving serialises reservations on one address within this process;
	// optimistic concurrency still guards against other processes.
	reserving *stripedLock
}

// Handle errors: domain.ErrUnsupportedAsset, domain.ErrInvalidAmount,
// domain.ErrValidation, domain.ErrPriceUnavailable (an invoice that will be
// converted, and no fresh price: money rule 3), ErrAddressUnavailable.
func (h CreateInvoiceHandler) Handle(ctx context.Context, c CreateInvoice) (InvoiceCreated, error) {
	asset, err := h.d.Assets.Lookup(c.Asset)
	if err != nil {
		return InvoiceCreated{}, err
	}
	var amount domain.Amount
	var price *domain.InvoicePrice
	if c.PriceAmount != "" || c.PriceCurrency != "" {
		if amount, price, err = h.priceInFiat(ctx, c, asset); err != nil {
			return InvoiceCreated{}, err
		}
	} else if amount, err = domain.ParseAmount(c.Amount, asset.Decimals); err != nil {
		return InvoiceCreated{}, err
	}
	consolidateTo, err := h.consolidateTo(ctx, c.MerchantID)
	if err != nil {
		return InvoiceCreated{}, err
	}
	now := h.d.Now()
	// A retry (the same command id) names the same invoice, and the store
	// answers it with the invoice it recorded.
	commandID := c.CommandID
	if commandID == "" {
		commandID = randomCommandID()
	}
	n := domain.NewInvoice{InvoiceID: domain.DerivedID("inv_", commandID, "", now), MerchantID: c.MerchantID, Asset: asset, Amount: amount, PayAmount: amount,
		SettleAsset: c.SettleAs, ConsolidateTo: consolidateTo, OrderID: c.OrderID, ExpiresIn: c.ExpiresIn, CreatedBy: c.CreatedBy,
		Description: c.Description, Metadata: c.Metadata, RedirectURL: c.RedirectURL, Price: price}
	// Validate before an address is spent on a request that will fail.
	n.PayAddress, n.AddressIndex = "-", -1
	draft, err := domain.CreateInvoice(n, h.d.Assets, now)
	if err != nil {
		return InvoiceCreated{}, err
	}
	if draft.ConvertTo != "" {
		if err := h.checkPrice(ctx, asset.Code, draft.ConvertTo); err != nil {
			return InvoiceCreated{}, err
		}
	}
	alloc, err := h.addresses.Allocate(ctx, asset, c.MerchantID)
	if err != nil {
		return InvoiceCreated{}, err
	}
	n.PayAddress, n.AddressIndex = alloc.Address, alloc.Index
	if alloc.Reused {
		expiresIn := n.ExpiresIn
		if expiresIn == 0 {
			expiresIn = domain.DefaultExpiresIn
		}
		if n.PayAmount, err = h.reservePayAmount(ctx, commandID, asset, alloc.Address, n.InvoiceID, amount, now.Add(expiresIn)); err != nil {
			return InvoiceCreated{}, err
		}
	}
	ev, err := domain.CreateInvoice(n, h.d.Assets, now)
	if err != nil {
		return InvoiceCreated{}, err
	}
	meta := Metadata{CommandID: commandID, MerchantID: c.MerchantID, OccurredAt: ev.CreatedAt}
	w, err := write(ctx, h.d.Store, command{stream: InvoiceStream(ev.InvoiceID), meta: &meta, created: true,
		attempt: func() (*state, func() ([]domain.Event, error)) {
			inv := &domain.Invoice{}
			return newState(inv.Apply), func() ([]domain.Event, error) {
				if inv.Exists() { // another command's invoice: the ids collided
					return nil, fmt.Errorf("%w: invoice %s exists", domain.ErrInvalidState, ev.InvoiceID)
				}
				return []domain.Event{ev}, nil
			}
		}})
	if err != nil {
		return InvoiceCreated{}, fmt.Errorf("create invoice: %w", err)
	}
	created, ok := w.events[0].(domain.InvoiceCreated)
	if !ok {
		return InvoiceCreated{}, fmt.Errorf("%w: command %s already recorded a %s", domain.ErrInvalidState, commandID, w.events[0].EventType())
	}
	return InvoiceCreated{Invoice: created, Position: w.res.Position}, nil
}

// fiats are the currencies an invoice may be priced in (domain/fiats.json).
var fiats = domain.DefaultFiats()

// priceInFiat turns price_amount in price_currency into the asset amount
// at the oracle's rate now, rounded up to the asset's unit, and the price
// to record. Errors: domain.ErrValidation (amount with a price, half a
// price, an unknown currency), domain.ErrInvalidAmount,
// domain.ErrPriceUnavailable (no oracle, no fresh price).
func (h CreateInvoiceHandler) priceInFiat(ctx context.Context, c CreateInvoice, asset domain.Asset) (domain.Amount, *domain.InvoicePrice, error) {
	switch {
	case c.Amount != "":
		return domain.Amount{}, nil, fmt.Errorf("%w: send either amount or price_amount with price_currency, not both", domain.ErrValidation)
	case c.PriceAmount == "" || c.PriceCurrency == "":
		return domain.Amount{}, nil, fmt.Errorf("%w: price_amount and price_currency go together", domain.ErrValidation)
	}
	fiat, err := fiats.Lookup(c.PriceCurrency)
	if err != nil {
		return domain.Amount{}, nil, err
	}
	priceAmount, err := domain.ParseAmount(c.PriceAmount, fiat.Decimals)
	if err != nil {
		return domain.Amount{}, nil, fmt.Errorf("price_amount: %w", err)
	}
	if !priceAmount.IsPositive() {
		return domain.Amount{}, nil, fmt.Errorf("%w: price_amount must be greater than 0", domain.ErrInvalidAmount)
	}
	if h.d.Prices == nil {
		return domain.Amount{}, nil, fmt.Errorf("%w: no price oracle is configured", domain.ErrPriceUnavailable)
	}
	q, err := h.d.Prices.Price(ctx, asset.Code, fiat.Code)
	if err != nil {
		if errors.Is(err, domain.ErrPriceUnavailable) {
			return domain.Amount{}, nil, err
		}
		return domain.Amount{}, nil, fmt.Errorf("%w: %v", domain.ErrPriceUnavailable, err)
	}
	amount, err := domain.FiatToAsset(priceAmount, q.Rate, asset.Decimals)
	if err != nil {
		return domain.Amount{}, nil, err
	}
	return amount, &domain.InvoicePrice{Currency: fiat.Code, Amount: priceAmount, Rate: q.Rate, Source: q.Source,
		RateAt: q.At.UTC().Truncate(time.Millisecond)}, nil
}

// consolidateTo is the account's setting, from the read model when there is one.
func (h CreateInvoiceHandler) consolidateTo(ctx context.Context, merchantID string) (string, error) {
	if h.d.Accounts != nil {
		return h.d.Accounts.ConsolidateTo(ctx, merchantID)
	}
	m, err := loadMerchant(ctx, h.d, merchantID)
	if err != nil {
		return "", err
	}
	return m.ConsolidateTo(), nil
}

// checkPrice refuses an invoice whose payments could not be converted now.
func (h CreateInvoiceHandler) checkPrice(ctx context.Context, from, to string) error {
	if h.d.Prices == nil {
		return fmt.Errorf("%w: no price oracle is configured", domain.ErrPriceUnavailable)
	}
	if _, err := h.d.Prices.Price(ctx, from, to); err != nil {
		if errors.Is(err, domain.ErrPriceUnavailable) {
			return err
		}
		return fmt.Errorf("%w: %v", domain.ErrPriceUnavailable, err)
	}
	return nil
}

// reservePayAmount picks the smallest pay amount >= amount that no open
// invoice on a reused address expects, and records it on the address's
// stream (optimistic concurrency makes concurrent invoices pick apart).
func (h CreateInvoiceHandler) reservePayAmount(ctx context.Context, commandID string, asset domain.Asset, address, invoiceID string,
	amount domain.Amount, expiresAt time.Time) (domain.Amount, error) {
	meta := Metadata{CommandID: commandID, OccurredAt: h.d.Now().UTC()}
	stream := addressStream(asset.Code, address)
	unlock := h.reserving.lock(stream)
	defer unlock()
	w, err := write(ctx, h.d.Store, command{stream: stream, meta: &meta,
		attempt: func() (*state, func() ([]domain.Event, error)) {
			r := &domain.AddressReservations{}
			return newState(r.Apply), func() ([]domain.Event, error) {
				pay := domain.UniquePayAmount(amount, asset.Decimals, r.Taken(h.d.Now()))
				return []domain.Event{domain.AddressReserved{Asset: asset.Code, Address: address, InvoiceID: invoiceID, PayAmount: pay,
					OpenUntil: expiresAt.Add(domain.LatePaymentWindow).UTC()}}, nil
			}
		}})
	if err != nil {
		return domain.Amount{}, fmt.Errorf("reserve pay amount: %w", err)
	}
	return w.events[0].(domain.AddressReserved).PayAmount, nil
}

// invoiceCommand runs decide against the invoice's current state.
func invoiceCommand(ctx context.Context, d Deps, commandID, invoiceID string,
	decide func(inv *domain.Invoice) ([]domain.Event, error)) (written, error) {
	meta := Metadata{CommandID: commandID, OccurredAt: d.Now().UTC()}
	w, err := write(ctx, d.Store, command{stream: InvoiceStream(invoiceID), meta: &meta,
		attempt: func() (*state, func() ([]domain.Event, error)) {
			inv := &domain.Invoice{}
			return newState(inv.Apply), func() ([]domain.Event, error) {
				if !inv.Exists() {
					return nil, fmt.Errorf("invoice %s: %w", invoiceID, domain.ErrNotFound)
				}
				meta.MerchantID = inv.MerchantID()
				return decide(inv)
			}
		}})
	return w, err
}

// ExpireInvoice closes an unpaid invoice after its window.
type ExpireInvoice struct {
	CommandID string
	InvoiceID string
}

type ExpireInvoiceHandler struct{ d Deps }

// Handle errors: domain.ErrNotFound, domain.ErrInvalidState.
func (h ExpireInvoiceHandler) Handle(ctx context.Context, c ExpireInvoice) (eventstore.AppendResult, error) {
	w, err := invoiceCommand(ctx, h.d, c.CommandID, c.InvoiceID, func(inv *domain.Invoice) ([]domain.Event, error) {
		return inv.Expire(h.d.Now())
	})
	return w.res, err
}

// ObserveDeposit records a payment seen on a chain (chain watchers send it).
type ObserveDeposit struct {
	CommandID string
	InvoiceID string
	Deposit   domain.ObservedDeposit
}

type ObserveDepositHandler struct{ d Deps }

// Handle errors: domain.ErrNotFound, domain.ErrInvalidAmount, domain.ErrValidation.
func (h ObserveDepositHandler) Handle(ctx context.Context, c ObserveDeposit) (eventstore.AppendResult, error) {
	w, err := invoiceCommand(ctx, h.d, c.CommandID, c.InvoiceID, func(inv *domain.Invoice) ([]domain.Event, error) {
		return inv.ObserveDeposit(c.Deposit, h.d.Now())
	})
	return w.res, err
}

// ConfirmDeposit credits a deposit that reached its confirmations.
type ConfirmDeposit struct {
	CommandID     string
	InvoiceID     string
	DepositID     string
	Confirmations int
}

type ConfirmDepositHandler struct{ d Deps }

// Handle errors: domain.ErrNotFound, domain.ErrInvalidState.
func (h ConfirmDepositHandler) Handle(ctx context.Context, c ConfirmDeposit) (eventstore.AppendResult, error) {
	w, err := invoiceCommand(ctx, h.d, c.CommandID, c.InvoiceID, func(inv *domain.Invoice) ([]domain.Event, error) {
		// The account's consolidate_to as the payment is credited fixes
		// the tier of an invoice without settle_as (money rule 2).
		m, err := loadMerchant(ctx, h.d, inv.MerchantID())
		if err != nil {
			return nil, err
		}
		return inv.ConfirmDeposit(c.DepositID, c.Confirmations, m.ConsolidateTo(), h.d.Now())
	})
	return w.res, err
}

// FinalizeDeposit makes a credited deposit available once its block is final.
type FinalizeDeposit struct {
	CommandID string
	InvoiceID string
	DepositID string
	Depth     int
}

type FinalizeDepositHandler struct{ d Deps }

// Handle errors: domain.ErrNotFound, domain.ErrInvalidState.
func (h FinalizeDepositHandler) Handle(ctx context.Context, c FinalizeDeposit) (eventstore.AppendResult, error) {
	w, err := invoiceCommand(ctx, h.d, c.CommandID, c.InvoiceID, func(inv *domain.Invoice) ([]domain.Event, error) {
		return inv.FinalizeDeposit(c.DepositID, c.Depth, h.d.Now())
	})
	return w.res, err
}

// RevertDeposit undoes a deposit that a reorg removed.
type RevertDeposit struct {
	CommandID string
	InvoiceID string
	DepositID string
	Reason    string
}

type RevertDepositHandler struct{ d Deps }

// Handle errors: domain.ErrNotFound.
func (h RevertDepositHandler) Handle(ctx context.Context, c RevertDeposit) (eventstore.AppendResult, error) {
	w, err := invoiceCommand(ctx, h.d, c.CommandID, c.InvoiceID, func(inv *domain.Invoice) ([]domain.Event, error) {
		return inv.RevertDeposit(c.DepositID, c.Reason, h.d.Now())
	})
	return w.res, err
}
