package commands

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
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
	// The allocator's view of the index stream: its version and the end of
	// the highest block reserved so far. A reservation reads only the events
	// after that version, so reserving stays cheap however long the stream grows.
	version  eventstore.ExpectedVersion
	reserved int64
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
	if r == nil {
		r = &indexRange{version: eventstore.NoStream}
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
	stream := indexStream(chain)
	meta := Metadata{CommandID: a.d.NewID("cmd_"), OccurredAt: a.d.Now().UTC()}
	for attempt := 0; attempt < maxConflictRetries; attempt++ {
		if err := a.catchUp(ctx, stream, r); err != nil {
			return err
		}
		ev := domain.AddressIndexesReserved{Chain: chain, From: r.reserved, Count: indexBlock}
		data, err := encode([]domain.Event{ev}, stream, meta)
		if err != nil {
			return err
		}
		res, err := a.d.Store.Append(ctx, stream, r.version, data)
		if errors.Is(err, eventstore.ErrConflict) {
			backoff(ctx, attempt)
			continue
		}
		if err != nil {
			return fmt.Errorf("append %s: %w", stream, err)
		}
		if res.NextExpected != int64(r.version)+1 {
			// A retry of this very command was already stored: read it back.
			if err := a.catchUp(ctx, stream, r); err != nil {
				return err
			}
			continue
		}
		r.version, r.reserved = eventstore.ExpectedVersion(res.NextExpected), ev.From+ev.Count
		r.next, r.end = ev.From, ev.From+ev.Count
		return nil
	}
	return fmt.Errorf("%s: %w", stream, ErrBusy)
}

// catchUp folds the index stream's events after r.version into r.
func (a *IndexAllocator) catchUp(ctx context.Context, stream string, r *indexRange) error {
	for {
		recs, err := a.d.Store.ReadStream(ctx, stream, int64(r.version)+1, 500)
		if err != nil {
			return fmt.Errorf("load %s: %w", stream, err)
		}
		for _, rec := range recs {
			e, err := domain.Decode(rec.Type, rec.Data)
			if err != nil {
				return fmt.Errorf("load %s: %w", stream, err)
			}
			if b, ok := e.(domain.AddressIndexesReserved); ok && b.From+b.Count > r.reserved {
				r.reserved = b.From + b.Count
			}
			r.version = eventstore.ExpectedVersion(rec.Version)
		}
		if len(recs) < 500 {
			return nil
		}
	}
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
