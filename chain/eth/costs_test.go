package eth_test

import (
	"context"
	"errors"
	"math/big"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/eth"
	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

// TestCostAppendFailedIsBookedOnceLater (#24): a token sweep's top-up and
// transfer are mined while every cost append fails — half of them after
// the event was stored (the reply lost), half before. The sweep ends all
// the same; both costs stay due in eth_txs and the audit's check names
// them. BookCosts appends them again once the log takes them: each is
// booked exactly once, what the hot wallet and the address lost to gas,
// and another pass adds nothing.
func TestCostAppendFailedIsBookedOnceLater(t *testing.T) {
	e := setupWallet(t)
	record := chain.RecordCostWith(e.h.RecordNetworkCost)
	var failing atomic.Bool
	var calls atomic.Int64
	failing.Store(true)
	costs := func(ctx context.Context, c commands.RecordNetworkCost) error {
		calls.Add(1)
		if !failing.Load() {
			return record(ctx, c)
		}
		if c.Kind == domain.CostSweepGas {
			// Stored, and the caller told otherwise (a timeout).
			if err := record(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		return errors.New("event store unavailable")
	}
	s, err := eth.NewSender(eth.SenderConfig{Contracts: e.cfg.Contracts, Now: time.Now}, e.client,
		eth.SenderDeps{DB: e.db, Keys: e.wallet, Invoices: e.store, Assets: e.assets, Log: quiet, Costs: costs})
	if err != nil {
		t.Fatal(err)
	}
	e.fundHot(s, "1", "")
	const index = 5
	addrHex, _ := e.wallet.Address(domain.ChainEthereum, index)
	e.payUSDT(addrHex, "10")
	e.mine(1)
	hotBefore := e.balance(s.HotWallet())
	res, err := s.Sweep(e.ctx, "USDT.ETH", index)
	if err != nil || res.State != eth.SweepTopUp {
		t.Fatalf("top-up %+v %v", res, err)
	}
	e.commitTxs(res.TxIDs...)
	if res, err = s.Sweep(e.ctx, "USDT.ETH", index); err != nil || res.State != eth.SweepTransfer {
		t.Fatalf("transfer %+v %v", res, err)
	}
	e.commitTxs(res.TxIDs[1])
	if res, err = s.Sweep(e.ctx, "USDT.ETH", index); err != nil || res.State != eth.SweepDone {
		t.Fatalf("a failed cost append stopped the sweep: %+v %v", res, err)
	}
	topup := res.TxIDs[0]
	booked, n := e.costs()
	if n != 1 || booked[domain.CostSweepGas] == nil {
		t.Fatalf("costs in the log while appends fail: %v (%d), want the transfer's only (stored before its error)", booked, n)
	}
	due := func() int {
		var n int
		if err := e.db.Read.QueryRow(`SELECT COUNT(*) FROM eth_txs WHERE cost_booked = 0 AND fee_paid_wei <> ''`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if d := due(); d != 2 {
		t.Fatalf("%d costs due in eth_txs, want the top-up's and the transfer's", d)
	}
	costOf := func(txid string) *big.Int {
		recs, err := e.store.ReadAll(e.ctx, eventstore.Start, 100000)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.Type == domain.TypeNetworkCostPaid {
				ev, _ := domain.DecodeStored(r.Type, r.Data, r.Metadata)
				if c := ev.(domain.NetworkCostPaid); strings.EqualFold(c.TxID, txid) {
					u, _ := c.Amount.BaseUnits(18)
					return u
				}
			}
		}
		return new(big.Int)
	}
	problems, err := eth.CostProblems(e.ctx, e.db, "ETH", costOf)
	if err != nil || len(problems) != 1 || !strings.Contains(problems[0], "topup "+topup) || !strings.Contains(problems[0], "due") {
		t.Fatalf("audit's cost check: %v %v", problems, err)
	}

	// Still failing: BookCosts says so and books nothing.
	if err := s.BookCosts(e.ctx); err == nil {
		t.Fatal("BookCosts with the log refusing: no error")
	}
	failing.Store(false)
	if err := s.BookCosts(e.ctx); err != nil {
		t.Fatal(err)
	}
	before := calls.Load()
	if err := s.BookCosts(e.ctx); err != nil || calls.Load() != before {
		t.Fatalf("a second pass appended again (%d calls) %v", calls.Load()-before, err)
	}
	if d := due(); d != 0 {
		t.Fatalf("%d costs still due after the retry", d)
	}
	if problems, err := eth.CostProblems(e.ctx, e.db, "ETH", costOf); err != nil || len(problems) != 0 {
		t.Fatalf("audit's cost check after the retry: %v %v", problems, err)
	}
	booked, n = e.costs()
	if n != 2 || booked[domain.CostGasTopUp] == nil || booked[domain.CostSweepGas] == nil {
		t.Fatalf("costs after the retry: %v (%d), want the top-up and the transfer once each", booked, n)
	}
	spent := new(big.Int).Sub(hotBefore, e.balance(s.HotWallet()))
	left := e.balance(common.HexToAddress(addrHex))
	if sum := new(big.Int).Add(booked[domain.CostGasTopUp], booked[domain.CostSweepGas]); sum.Cmp(new(big.Int).Sub(spent, left)) != 0 {
		t.Fatalf("costs booked %s wei; the hot wallet spent %s and the address kept %s", sum, spent, left)
	}
}
