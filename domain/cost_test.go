package domain

import (
	"errors"
	"testing"
	"time"
)

// A network cost moves its amount from the operator to the network, in its
// coin and exactly to the unit; bad input is refused.
func TestNewNetworkCost(t *testing.T) {
	eth := Asset{Code: "ETH", Decimals: 18}
	at := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	c, err := NewNetworkCost(ChainEthereum, "0xABC", CostSweepGas, eth, MustAmount("0.000021000000000001"), "0xdep", "swp_1", 7, at)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckBalanced(c.Postings); err != nil || len(c.Postings) != 2 || c.CostID != "ethereum:0xabc" {
		t.Fatalf("%+v %v", c, err)
	}
	for _, p := range c.Postings {
		want := "0.000021000000000001"
		if p.Account == OperatorNetworkCostsAccount {
			want = "-" + want
		} else if p.Account != NetworkFeeAccount {
			t.Fatalf("posting to %s", p.Account)
		}
		if p.Amount.String() != want || p.Asset != "ETH" {
			t.Fatalf("posting %+v, want %s ETH", p, want)
		}
	}
	if NetworkCostStream(ChainEthereum, "0xABC") != NetworkCostStream(ChainEthereum, "0xabc") {
		t.Fatal("one transaction, two streams")
	}
	if _, err := NewNetworkCost(ChainEthereum, "0xabc", CostSweepGas, eth, MustAmount("-1"), "0xdep", "", 0, at); !errors.Is(err, ErrInvalidAmount) {
		t.Fatalf("negative cost: %v", err)
	}
	if _, err := NewNetworkCost(ChainTron, "t", CostSweepBurn, Asset{Code: "TRX", Decimals: 6}, MustAmount("0.0000001"), "T", "", 0, at); err == nil {
		t.Fatal("a cost below the coin's unit was accepted")
	}
	if _, err := NewNetworkCost(ChainTron, "", CostSweepBurn, Asset{Code: "TRX", Decimals: 6}, MustAmount("1"), "T", "", 0, at); !errors.Is(err, ErrValidation) {
		t.Fatalf("no txid: %v", err)
	}
}
