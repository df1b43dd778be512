package btc

import (
	"testing"

	"github.com/acceptcryptohere/gateway/domain"
)

// #16 item 6 on btcd: the API's count of a payment moves with every block
// (not only when first seen and when confirmed), goes back with the node's
// tip when a block above it is invalidated, is 0 while a reorg has put it
// back in the mempool, counts again from the block that mines it again,
// and stops at the depth where it became final.
func TestConfirmationsEveryBlockAndReorg(t *testing.T) {
	g := newGateway(t)
	inv := g.newInvoice("0.01")
	g.node.pay(t, feeSat, payment{inv.PayAddress, sat(t, "0.01")})
	count := func(want int, status domain.Status) {
		t.Helper()
		g.scan()
		got := g.wantInvoice(inv.ID, status, "0.01")
		if len(got.Payments) != 1 || got.Payments[0].Confirmations != want || got.Confirmations() != want {
			t.Fatalf("%s: payments %+v, want one with %d confirmations", status, got.Payments, want)
		}
	}
	count(0, domain.StatusConfirming) // in the mempool
	first := g.node.mine(t, 1)[0]
	count(1, domain.StatusConfirming)
	g.node.mine(t, 1)
	count(2, domain.StatusPaid)
	top := g.node.mine(t, 1)[0]
	count(3, domain.StatusPaid)

	// The node's tip goes back one block: so does the count.
	if err := g.node.client.InvalidateBlock(top); err != nil {
		t.Fatal(err)
	}
	count(2, domain.StatusPaid)
	// The payment's own block goes: back in the mempool, in no block.
	if err := g.node.client.InvalidateBlock(first); err != nil {
		t.Fatal(err)
	}
	count(0, domain.StatusReverted)
	g.node.mine(t, 1)
	count(1, domain.StatusReverted)
	g.node.mine(t, 1)
	count(2, domain.StatusPaid)

	// Final at the watcher's 6 blocks, where the count stops.
	g.node.mine(t, 4)
	count(6, domain.StatusPaid)
	g.wantBalance("0.009975", "0")
	g.node.mine(t, 2)
	count(6, domain.StatusPaid)
}
