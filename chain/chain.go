// Package chain connects blockchains to the ledger. Watchers (chain/btc,
// chain/eth, chain/tron, chain/sim) turn what they see into the commands
// ObserveDeposit, ConfirmDeposit, FinalizeDeposit and RevertDeposit through a Sink; they keep
// their own scan checkpoints and are safe to restart at any block.
package chain

import (
	"context"
	"errors"
	"fmt"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
)

// ErrNotOurs: nothing of ours is paid at that address.
var ErrNotOurs = errors.New("chain: address is not one of ours")

// Transfer is one payment seen on a chain to an address.
type Transfer struct {
	Asset   string // asset code, e.g. "USDT.ETH"
	Address string // receiving address, as stored on invoices
	TxID    string
	// DepositID is unique on the chain: "<txid>:<vout>" for Bitcoin,
	// "<txhash>:<log index>" for tokens, "<txhash>" for native ETH/TRX.
	DepositID     string
	Amount        domain.Amount
	Confirmations int
	// InvoiceID, when set, is the invoice an operator credited this
	// deposit to (picd chain unmatched credit): no matching by address.
	InvoiceID string
}

// Addresses finds the invoices paid to an address.
type Addresses interface {
	InvoicesByAddress(ctx context.Context, address string) ([]domain.AddressInvoice, error)
}

// Sink applies what watchers see to the ledger through the commands.
type Sink struct {
	Commands  commands.Handlers
	Addresses Addresses
}

// MatchInvoice picks the invoice a transfer pays: on a reused address the
// open invoice whose pay_amount equals the amount; otherwise the newest
// open invoice of that asset; otherwise the newest invoice of that asset, so
// that late and unexpected payments are still credited, never dropped.
// Errors: ErrNotOurs.
func (s Sink) MatchInvoice(ctx context.Context, t Transfer) (string, error) {
	invs, err := s.Addresses.InvoicesByAddress(ctx, t.Address)
	if err != nil {
		return "", err
	}
	var open, any string
	for _, inv := range invs {
		if inv.Asset != t.Asset {
			continue
		}
		if !inv.Status.Terminal() {
			if inv.PayAmount.Equal(t.Amount) {
				return inv.ID, nil
			}
			if open == "" {
				open = inv.ID
			}
		}
		if any == "" {
			any = inv.ID
		}
	}
	switch {
	case open != "":
		return open, nil
	case any != "":
		return any, nil
	}
	return "", fmt.Errorf("%w: %s %s", ErrNotOurs, t.Asset, t.Address)
}

// Observe records a transfer and returns the invoice it was credited to.
// Seeing a transfer again is harmless: the invoice ignores a deposit it
// already has, and takes back one that a reorg had reverted. The commands
// carry no fixed command id for that reason. Errors: ErrNotOurs.
func (s Sink) Observe(ctx context.Context, t Transfer) (invoiceID string, err error) {
	invoiceID = t.InvoiceID
	if invoiceID == "" {
		if invoiceID, err = s.MatchInvoice(ctx, t); err != nil {
			return "", err
		}
	}
	_, err = s.Commands.ObserveDeposit.Handle(ctx, commands.ObserveDeposit{
		InvoiceID: invoiceID,
		Deposit:   domain.ObservedDeposit{DepositID: t.DepositID, TxID: t.TxID, Amount: t.Amount, Confirmations: t.Confirmations},
	})
	return invoiceID, err
}

// Confirm credits a deposit that reached the asset's confirmations.
func (s Sink) Confirm(ctx context.Context, invoiceID, depositID string, confirmations int) error {
	_, err := s.Commands.ConfirmDeposit.Handle(ctx, commands.ConfirmDeposit{
		InvoiceID: invoiceID, DepositID: depositID, Confirmations: confirmations})
	return err
}

// Finalize makes a credited deposit available once its block is final.
func (s Sink) Finalize(ctx context.Context, invoiceID, depositID string, depth int) error {
	_, err := s.Commands.FinalizeDeposit.Handle(ctx, commands.FinalizeDeposit{
		InvoiceID: invoiceID, DepositID: depositID, Depth: depth})
	return err
}

// Revert undoes a deposit that a reorg removed.
func (s Sink) Revert(ctx context.Context, invoiceID, depositID, reason string) error {
	_, err := s.Commands.RevertDeposit.Handle(ctx, commands.RevertDeposit{
		InvoiceID: invoiceID, DepositID: depositID, Reason: reason})
	return err
}

// CostRecorder books a network fee the gateway paid from its own coins
// (money rule 7) once the chain says what a transaction paid; cmd/picd
// passes commands.RecordNetworkCost. Recording the same transaction again
// adds nothing, so a sender records whenever it sees a mined transaction
// of its own. Nil: costs are not booked (tests of other things).
type CostRecorder func(ctx context.Context, c commands.RecordNetworkCost) error

// RecordCostWith returns the CostRecorder over h.
func RecordCostWith(h commands.RecordNetworkCostHandler) CostRecorder {
	return func(ctx context.Context, c commands.RecordNetworkCost) error {
		_, err := h.Handle(ctx, c)
		return err
	}
}
