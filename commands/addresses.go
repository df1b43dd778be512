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

// Deriver turns an HD index into a chain's address. chain/hd and chain/sim
// return plain functions of this shape, so they need not import commands.
type Deriver func(chain domain.Chain, index int64) (string, error)

// indexBlock is how many indexes one log append reserves: a crash wastes at
// most this many, and allocation costs one append per block, not per invoice.
const indexBlock = 64

// IndexAllocator allocates derivation indexes through the event log
// (stream addresses-<chain>), so that two invoices never share a fresh
// address, across restarts and across processes.
type IndexAllocator struct {
	// KeyNumber turns an allocated index into what the deriver takes and
	// Allocation.Index records: the key number of the index in the
	// current seed generation (hd.Wallet.Current). nil: the index itself.
	KeyNumber func(index int64) int64

	d      Deps
	derive Deriver
	mu     sync.Mutex
	chains map[domain.Chain]*indexRange
}

type indexRange struct {
	next, end int64
	// The allocator's view of the index stream, and the end of the highest
	// block reserved so far. A reservation reads only the events after the
	// view's version, so reserving stays cheap however long the stream grows.
	state    *state
	reserved int64
}

func newIndexRange() *indexRange {
	r := &indexRange{}
	r.state = newCachedState(func(e domain.Event) {
		if b, ok := e.(domain.AddressIndexesReserved); ok && b.From+b.Count > r.reserved {
			r.reserved = b.From + b.Count
		}
	})
	return r
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
	if a.KeyNumber != nil {
		index = a.KeyNumber(index)
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
	if r == nil {
		r = newIndexRange()
		a.chains[chain] = r
	}
	if r.next >= r.end {
		if err := a.reserveBlock(ctx, chain, r); err != nil {
			return 0, err
		}
	}
	i := r.next
	r.next++
	return i, nil
}

// reserveBlock appends AddressIndexesReserved for the next block after
// every block reserved so far (by any process), with optimistic
// concurrency on the index stream, and points r at it.
func (a *IndexAllocator) reserveBlock(ctx context.Context, chain domain.Chain, r *indexRange) error {
	meta := Metadata{CommandID: a.d.NewID("cmd_"), OccurredAt: a.d.Now().UTC()}
	w, err := write(ctx, a.d.Store, command{stream: indexStream(chain), meta: &meta,
		attempt: func() (*state, func() ([]domain.Event, error)) {
			return r.state, func() ([]domain.Event, error) {
				return []domain.Event{domain.AddressIndexesReserved{Chain: chain, From: r.reserved, Count: indexBlock}}, nil
			}
		}})
	if err != nil {
		return err
	}
	b := w.events[0].(domain.AddressIndexesReserved)
	r.next, r.end = b.From, b.From+b.Count
	return nil
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
