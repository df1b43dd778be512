package btc

import (
	"context"
	"fmt"
	"testing"

	"github.com/acceptcryptohere/gateway/chain"
)

// refusing is a ledger that takes no payment to addr, as when an
// invoice's read-model row is not there yet: the payment is unmatched.
type refusing struct {
	deposits
	addr string
}

func (r refusing) Observe(ctx context.Context, t chain.Transfer) (string, error) {
	if t.Address == r.addr {
		return "", fmt.Errorf("%w: %s %s", chain.ErrNotOurs, t.Asset, t.Address)
	}
	return r.deposits.Observe(ctx, t)
}

// An unmatched payment decided "sweep" joins the wallet only once final
// on the node: one a reorg took away and a double-spend replaced is never
// taken in, however deep the chain grows; a final one is taken in once
// (again, or by a second process, adds nothing), is swept naming its
// outpoint, and a payout spends it with the address's key.
func TestUnmatchedSweepJoinsTheWalletWhenFinal(t *testing.T) {
	g := newWalletGateway(t)
	g.fund("0.01")
	inv := g.newInvoice("0.02")
	g.w.sink = refusing{g.sink, inv.PayAddress}
	u := chain.Unmatched{DB: g.db}
	s := g.sender()
	unmatched := func(depositID string) chain.UnmatchedDeposit {
		t.Helper()
		list, err := u.List(g.ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range list {
			if d.DepositID == depositID {
				return d
			}
		}
		t.Fatalf("no unmatched deposit %s in %+v", depositID, list)
		return chain.UnmatchedDeposit{}
	}
	takeIn := func(want int) {
		t.Helper()
		if n, err := s.TakeInUnmatched(g.ctx); err != nil || n != want {
			t.Fatalf("took in %d (%v), want %d", n, err, want)
		}
	}
	inWallet := func(op string) bool {
		var n int
		if err := g.db.Read.QueryRow(g.db.Q(`SELECT count(*) FROM chain_btc_utxos WHERE outpoint = ?`), op).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}

	// Gone: seen in a block, decided, then reorged away and double-spent.
	gone := g.node.pay(t, feeSat, payment{inv.PayAddress, sat(t, "0.03")})
	block := g.node.mine(t, 1)[0]
	g.scan()
	goneID := txid(gone) + ":0"
	if err := u.Decide(g.ctx, unmatched(goneID).ID, chain.UnmatchedSweep, "", "", g.clock); err != nil {
		t.Fatal(err)
	}
	takeIn(0) // one block deep: not final
	if err := g.node.client.InvalidateBlock(block); err != nil {
		t.Fatal(err)
	}
	g.node.replace(t, gone)
	g.node.mine(t, uint32(s.finality)+1)
	g.scan()
	takeIn(0)
	if d := unmatched(goneID); d.Status != chain.UnmatchedSweep || inWallet(goneID) {
		t.Fatalf("a deposit the chain lost: %+v, in the wallet %v", d, inWallet(goneID))
	}

	// Final: taken in, once.
	kept := g.node.pay(t, feeSat, payment{inv.PayAddress, sat(t, "0.04")})
	g.node.mine(t, uint32(s.finality)-1)
	g.scan()
	keptID := txid(kept) + ":0"
	if err := u.Decide(g.ctx, unmatched(keptID).ID, chain.UnmatchedSweep, "", "kept", g.clock); err != nil {
		t.Fatal(err)
	}
	takeIn(0) // finality − 1 deep
	g.node.mine(t, 1)
	takeIn(1)
	takeIn(0)
	if n, err := g.sender().TakeInUnmatched(g.ctx); err != nil || n != 0 {
		t.Fatalf("a second process took in %d (%v)", n, err)
	}
	if d := unmatched(keptID); d.Status != chain.UnmatchedSwept || d.Note != "kept; swept to the hot wallet as output "+keptID+" (spendable by payouts; no transaction)" {
		t.Fatalf("kept: %+v", d)
	}
	bal, err := s.WalletBalance(g.ctx)
	if err != nil {
		t.Fatal(err)
	}
	// (The merchant's final deposit joins at the next payout's sync.)
	if bal[utxoAvailable] != sat(t, "0.04") {
		t.Fatalf("wallet %v: want the operator's 0.04 available", bal)
	}
	if f, err := OperatorFloat(g.ctx, g.db); err != nil || f != sat(t, "0.04") {
		t.Fatalf("operator float %d (%v)", f, err)
	}

	// A payout spends it (largest first), signed with the address's key.
	signed, err := s.Build(g.ctx, btcPayout(t, "po_1", outsider(t), "0.035"))
	if err != nil {
		t.Fatal(err)
	}
	if len(signed.Inputs) != 1 || signed.Inputs[0] != keptID {
		t.Fatalf("payout inputs %v, want %s", signed.Inputs, keptID)
	}
	if err := s.Broadcast(g.ctx, signed); err != nil {
		t.Fatal(err)
	}
	g.node.mine(t, 1)
	if n, err := s.Confirmations(g.ctx, signed.TxID); err != nil || n != 1 {
		t.Fatalf("payout: %d confirmations, %v", n, err)
	}
	if f, err := OperatorFloat(g.ctx, g.db); err != nil || f != sat(t, "0.04") {
		t.Fatalf("operator float after the payout %d (%v)", f, err)
	}
}
