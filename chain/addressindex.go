package chain

import (
	"context"
	"fmt"
	"sync"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

// StreamReader reads an event stream; eventstore.Store satisfies it.
type StreamReader interface {
	ReadStream(ctx context.Context, stream string, from int64, max int) ([]eventstore.RecordedEvent, error)
}

// AddressIndexes finds the HD index of an invoice's pay address, which
// only its InvoiceCreated event records (the read models do not), and
// remembers it: the senders need it to sign for a deposit address.
type AddressIndexes struct {
	invoices StreamReader
	mu       sync.Mutex
	byID     map[string]int64
}

func NewAddressIndexes(invoices StreamReader) *AddressIndexes {
	return &AddressIndexes{invoices: invoices, byID: map[string]int64{}}
}

// Of returns the index of the invoice's pay address; -1 for a reused
// address that was not derived. Errors: a missing invoice or log errors.
func (a *AddressIndexes) Of(ctx context.Context, invoiceID string) (int64, error) {
	a.mu.Lock()
	i, ok := a.byID[invoiceID]
	a.mu.Unlock()
	if ok {
		return i, nil
	}
	recs, err := a.invoices.ReadStream(ctx, domain.InvoiceStream(invoiceID), 0, 1)
	if err != nil {
		return 0, fmt.Errorf("invoice %s: %w", invoiceID, err)
	}
	if len(recs) == 0 || recs[0].Type != domain.TypeInvoiceCreated {
		return 0, fmt.Errorf("invoice %s: no InvoiceCreated", invoiceID)
	}
	e, err := domain.DecodeStored(recs[0].Type, recs[0].Data, recs[0].Metadata)
	if err != nil {
		return 0, fmt.Errorf("invoice %s: %w", invoiceID, err)
	}
	i = e.(domain.InvoiceCreated).AddressIndex
	a.mu.Lock()
	a.byID[invoiceID] = i
	a.mu.Unlock()
	return i, nil
}
