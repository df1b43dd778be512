package tron_test

import (
	"strings"
	"testing"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/tron"
)

// #16 on the fake node: USDT sent to a TRX invoice's address is kept
// unmatched and not swept; decided "sweep" by the operator, and final, it
// is swept with the address's key into the hot wallet (after a TRX
// top-up), to the unit, and recorded swept with the transfer's txid. No
// invoice is credited.
func TestUnmatchedDepositDecidedSweepIsSwept(t *testing.T) {
	e := setup(t, tron.Config{})
	s := e.sweeper(e.client, 50_000_000)
	id, addr := e.invoice("TRX", "40", 0)
	e.payUSDT(addr, "7")
	e.node.mine(confirmations)
	e.scan()
	u := chain.Unmatched{DB: e.db}
	list, err := u.List(e.ctx)
	if err != nil || len(list) != 1 || list[0].Asset != "USDT.TRON" || list[0].Address != addr || list[0].Status != chain.UnmatchedOpen {
		t.Fatalf("unmatched: %+v %v", list, err)
	}
	if res := sweepOnce(t, s); len(res) != 0 {
		t.Fatalf("an undecided deposit was swept: %+v", res)
	}
	if err := u.Decide(e.ctx, list[0].ID, chain.UnmatchedSweep, "", "", e.now); err != nil {
		t.Fatal(err)
	}
	e.node.mine(30)
	e.scan()
	var res []tron.SweepResult
	for i := 0; i < 4; i++ {
		res = sweepOnce(t, s)
		e.node.mine(1)
	}
	if _, usdt := e.node.balances(addr); usdt.Sign() != 0 {
		t.Fatalf("the address still holds %s", usdt)
	}
	if _, usdt := e.node.balances(s.HotWalletAddress()); usdt.Int64() != 7_000_000 {
		t.Fatalf("the hot wallet holds %s USDT units", usdt)
	}
	d, err := u.Get(e.ctx, list[0].ID)
	if err != nil || d.Status != chain.UnmatchedSwept || !strings.HasPrefix(d.Note, "swept to the hot wallet in ") || d.InvoiceID != "" {
		t.Fatalf("after the sweep: %+v %v (last pass %+v)", d, err, res)
	}
	if res := sweepOnce(t, s); len(res) != 0 {
		t.Fatalf("swept again: %+v", res)
	}
	e.wantStatus(id, "new")
}
