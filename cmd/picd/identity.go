package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/acceptcryptohere/gateway/chain/scan"
	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// identityGuard refuses invoice addresses on a chain whose node follows
// another chain (the watcher stored the mismatch; #16): nobody is asked to
// pay on a network the gateway does not watch, nor given an address of
// the configured network to pay from another. It answers 503 until the
// right node is back. The stored mismatch is read at most once per
// identityGuardTTL per chain, off the invoice path's hot loop.
type identityGuard struct {
	next   commands.AddressSource
	db     sqldb.DB
	tables map[domain.Chain]chainScan
	now    func() time.Time

	mu    sync.Mutex
	cache map[domain.Chain]guardEntry
}

type guardEntry struct {
	mismatch string
	at       time.Time
}

const identityGuardTTL = time.Second

// guardAddresses wraps next for the chains scanned from a node.
func guardAddresses(next commands.AddressSource, db sqldb.DB, scans []chainScan, now func() time.Time) commands.AddressSource {
	if len(scans) == 0 {
		return next
	}
	g := &identityGuard{next: next, db: db, tables: map[domain.Chain]chainScan{}, now: now, cache: map[domain.Chain]guardEntry{}}
	for _, c := range scans {
		switch c.chain {
		case "btc":
			g.tables[domain.ChainBitcoin] = c
		case "eth":
			g.tables[domain.ChainEthereum] = c
		case "tron":
			g.tables[domain.ChainTron] = c
		}
	}
	return g
}

func (g *identityGuard) Allocate(ctx context.Context, asset domain.Asset, merchantID string) (commands.Allocation, error) {
	if c, ok := g.tables[asset.Chain]; ok {
		mismatch, err := g.mismatch(ctx, asset.Chain, c)
		if err != nil {
			return commands.Allocation{}, fmt.Errorf("%w: %v", commands.ErrAddressUnavailable, err)
		}
		if mismatch != "" {
			return commands.Allocation{}, fmt.Errorf("%w: %s", commands.ErrAddressUnavailable, mismatch)
		}
	}
	return g.next.Allocate(ctx, asset, merchantID)
}

func (g *identityGuard) mismatch(ctx context.Context, ch domain.Chain, c chainScan) (string, error) {
	now := g.now()
	g.mu.Lock()
	e, ok := g.cache[ch]
	g.mu.Unlock()
	if ok && now.Sub(e.at) < identityGuardTTL {
		return e.mismatch, nil
	}
	m, err := identityMismatch(ctx, g.db, c)
	if err != nil {
		return "", err
	}
	g.mu.Lock()
	g.cache[ch] = guardEntry{mismatch: m, at: now}
	g.mu.Unlock()
	return m, nil
}

// nodeIdentity is how a chain's node names the chain it follows (its
// watcher's Identity), and the table where the watcher recorded the first
// identity it saw and the mismatch of the moment.
type nodeIdentity struct {
	identity func(ctx context.Context) (string, error)
	table    scan.IdentityTable
}

// checkPayoutNode is the payout processor's CheckNode (#16): before a
// payout is signed, broadcast or counted as confirmed, the node must
// answer with the identity its watcher recorded, and the watcher must not
// have stopped on a mismatch. A node of another chain behind the same URL
// (a fresh dev chain with the same chain id) would otherwise take the
// transaction and confirm it there, and the ledger would record a payout
// the merchant never receives. One identity call per payout step.
func checkPayoutNode(nodes map[domain.Chain]nodeIdentity) func(ctx context.Context, c domain.Chain) error {
	return func(ctx context.Context, c domain.Chain) error {
		n, ok := nodes[c]
		if !ok {
			return nil // simulated: no node
		}
		if m, err := n.table.Mismatch(ctx); err != nil || m != "" {
			return cmp.Or(err, errors.New(m))
		}
		found, err := n.identity(ctx)
		if err != nil {
			return err
		}
		recorded, ok, err := n.table.RecordedIdentity(ctx)
		if err != nil {
			return err
		}
		if ok && found != recorded {
			return &scan.MismatchError{Chain: string(c), Expected: recorded, Found: found}
		}
		return nil
	}
}
