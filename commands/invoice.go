package commands

import (
	"context"
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
// domain.ErrValidation, ErrAddressUnavailable.
func (h CreateInvoiceHandler) Handle(ctx context.Context, c CreateInvoice) (InvoiceCreated, error) {
	asset, err := h.d.Assets.Lookup(c.Asset)
	if err != nil {
		return InvoiceCreated{}, err
	}
	amount, err := domain.ParseAmount(c.Amount, asset.Decimals)
	if err != nil {
		return InvoiceCreated{}, err
	}
	now := h.d.Now()
	n := domain.NewInvoice{InvoiceID: h.d.NewID("inv_"), MerchantID: c.MerchantID, Asset: asset, Amount: amount, PayAmount: amount,
		SettleAsset: c.SettleAs, OrderID: c.OrderID, ExpiresIn: c.ExpiresIn}
	// Validate before an address is spent on a request that will fail.
	n.PayAddress, n.AddressIndex = "-", -1
	if _, err := domain.CreateInvoice(n, h.d.Assets, now); err != nil {
		return InvoiceCreated{}, err
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
		if n.PayAmount, err = h.reservePayAmount(ctx, c.CommandID, asset, alloc.Address, n.InvoiceID, amount, now.Add(expiresIn)); err != nil {
			return InvoiceCreated{}, err
		}
	}
	ev, err := domain.CreateInvoice(n, h.d.Assets, now)
	if err != nil {
		return InvoiceCreated{}, err
	}
	stream := InvoiceStream(ev.InvoiceID)
	data, err := encode([]domain.Event{ev}, stream, Metadata{CommandID: c.CommandID, MerchantID: c.MerchantID, OccurredAt: ev.CreatedAt})
	if err != nil {
		return InvoiceCreated{}, err
	}
	res, err := h.d.Store.Append(ctx, stream, eventstore.NoStream, data)
	if err != nil {
		return InvoiceCreated{}, fmt.Errorf("create invoice: %w", err)
	}
	return InvoiceCreated{Invoice: ev, Position: res.Position}, nil
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
	_, evs, err := execute(ctx, h.d.Store, stream, &meta, func() (func(domain.Event), func() ([]domain.Event, error)) {
		r := &domain.AddressReservations{}
		return r.Apply, func() ([]domain.Event, error) {
			pay := domain.UniquePayAmount(amount, asset.Decimals, r.Taken(h.d.Now()))
			return []domain.Event{domain.AddressReserved{Asset: asset.Code, Address: address, InvoiceID: invoiceID, PayAmount: pay,
				OpenUntil: expiresAt.Add(domain.LatePaymentWindow).UTC()}}, nil
		}
	})
	if err != nil {
		return domain.Amount{}, fmt.Errorf("reserve pay amount: %w", err)
	}
	return evs[0].(domain.AddressReserved).PayAmount, nil
}

// invoiceCommand runs decide against the invoice's current state.
func invoiceCommand(ctx context.Context, d Deps, commandID, invoiceID string,
	decide func(inv *domain.Invoice) ([]domain.Event, error)) (eventstore.AppendResult, []domain.Event, error) {
	meta := Metadata{CommandID: commandID, OccurredAt: d.Now().UTC()}
	return execute(ctx, d.Store, InvoiceStream(invoiceID), &meta, func() (func(domain.Event), func() ([]domain.Event, error)) {
		inv := &domain.Invoice{}
		return inv.Apply, func() ([]domain.Event, error) {
			if !inv.Exists() {
				return nil, fmt.Errorf("invoice %s: %w", invoiceID, domain.ErrNotFound)
			}
			meta.MerchantID = inv.MerchantID()
			return decide(inv)
		}
	})
}

// ExpireInvoice closes an unpaid invoice after its window.
type ExpireInvoice struct {
	CommandID string
	InvoiceID string
}

type ExpireInvoiceHandler struct{ d Deps }

// Handle errors: domain.ErrNotFound, domain.ErrInvalidState.
func (h ExpireInvoiceHandler) Handle(ctx context.Context, c ExpireInvoice) (eventstore.AppendResult, error) {
	res, _, err := invoiceCommand(ctx, h.d, c.CommandID, c.InvoiceID, func(inv *domain.Invoice) ([]domain.Event, error) {
		return inv.Expire(h.d.Now())
	})
	return res, err
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
	res, _, err := invoiceCommand(ctx, h.d, c.CommandID, c.InvoiceID, func(inv *domain.Invoice) ([]domain.Event, error) {
		return inv.ObserveDeposit(c.Deposit, h.d.Now())
	})
	return res, err
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
	res, _, err := invoiceCommand(ctx, h.d, c.CommandID, c.InvoiceID, func(inv *domain.Invoice) ([]domain.Event, error) {
		return inv.ConfirmDeposit(c.DepositID, c.Confirmations, h.d.Now())
	})
	return res, err
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
	res, _, err := invoiceCommand(ctx, h.d, c.CommandID, c.InvoiceID, func(inv *domain.Invoice) ([]domain.Event, error) {
		return inv.RevertDeposit(c.DepositID, c.Reason, h.d.Now())
	})
	return res, err
}
