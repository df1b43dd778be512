package commands

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/acceptcryptohere/gateway/domain"
)

// ErrAddressUnavailable: no address could be derived or reserved (503).
var ErrAddressUnavailable = errors.New("address generation unavailable")

// Allocation is the address a new invoice is paid to.
type Allocation struct {
	Address string
	// Index is the HD derivation index, or -1 for an address we reuse.
	Index int64
	// Reused addresses need a unique pay_amount per open invoice.
	Reused bool
}

// AddressSource hands out pay addresses.
type AddressSource interface {
	Allocate(ctx context.Context, asset domain.Asset, merchantID string) (Allocation, error)
}

// Deriver turns an HD index into a chain's address (chain/ implements it).
type Deriver func(chain domain.Chain, index int64) (string, error)

// indexBlock is how many indexes one log append reserves: a crash wastes at
// most this many, and allocation costs one append per block, not per invoice.
const indexBlock = 64

// IndexAllocator allocates derivation indexes through the event log
// (stream addresses-<chain>), so that two invoices never share a fresh
// address, across restarts and across processes.
type IndexAllocator struct {
	d      Deps
	derive Deriver
	mu     sync.Mutex
	chains map[domain.Chain]*indexRange
}

type indexRange struct {
	next, end int64
}

func NewIndexAllocator(d Deps, derive Deriver) *IndexAllocator {
	return &IndexAllocator{d: d, derive: derive, chains: map[domain.Chain]*indexRange{}}
}

// Allocate returns a fresh address of the asset's chain.
// Errors: ErrAddressUnavailable.
func (a *IndexAllocator) Allocate(ctx context.Context, asset domain.Asset, merchantID string) (Allocation, error) {
	index, err := a.nextIndex(ctx, asset.Chain)
	if err != nil {
		return Allocation{}, fmt.Errorf("%w: %v", ErrAddressUnavailable, err)
	}
	addr, err := a.derive(asset.Chain, index)
	if err != nil {
		return Allocation{}, fmt.Errorf("%w: derive %s index %d: %v", ErrAddressUnavailable, asset.Chain, index, err)
	}
	return Allocation{Address: addr, Index: index}, nil
}

func (a *IndexAllocator) nextIndex(ctx context.Context, chain domain.Chain) (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.chains[chain]
	if r == nil || r.next >= r.end {
		from, err := a.reserveBlock(ctx, chain)
		if err != nil {
			return 0, err
		}
		r = &indexRange{next: from, end: from + indexBlock}
		a.chains[chain] = r
	}
	i := r.next
	r.next++
	return i, nil
}

func (a *IndexAllocator) reserveBlock(ctx context.Context, chain domain.Chain) (int64, error) {
	var from int64
	meta := Metadata{CommandID: a.d.NewID("cmd_"), OccurredAt: a.d.Now().UTC()}
	_, _, err := execute(ctx, a.d.Store, indexStream(chain), &meta, func() (func(domain.Event), func() ([]domain.Event, error)) {
		end := int64(0)
		apply := func(e domain.Event) {
			if r, ok := e.(domain.AddressIndexesReserved); ok && r.From+r.Count > end {
				end = r.From + r.Count
			}
		}
		return apply, func() ([]domain.Event, error) {
			from = end
			return []domain.Event{domain.AddressIndexesReserved{Chain: chain, From: end, Count: indexBlock}}, nil
		}
	})
	return from, err
}

// StaticAddresses pays every invoice of a chain to one configured address
// (for operators who receive on an address they already own); pay_amount
// then tells invoices apart.
type StaticAddresses map[domain.Chain]string

// Allocate errors: ErrAddressUnavailable when no address is configured.
func (s StaticAddresses) Allocate(_ context.Context, asset domain.Asset, _ string) (Allocation, error) {
	addr, ok := s[asset.Chain]
	if !ok {
		return Allocation{}, fmt.Errorf("%w: no address configured for %s", ErrAddressUnavailable, asset.Chain)
	}
	return Allocation{Address: addr, Index: -1, Reused: true}, nil
}

var (
	_ AddressSource = (*IndexAllocator)(nil)
	_ AddressSource = StaticAddresses(nil)
)
