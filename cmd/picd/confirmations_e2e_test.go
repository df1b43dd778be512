package main

import (
	"fmt"
	"testing"

	"github.com/acceptcryptohere/gateway/chain/eth/gethtest"
)

// #16 item 6 on a real node: the confirmations of an ETH payment, on the
// merchant's API and on the checkout's public endpoint, move with every
// block geth mines (before, they kept the count from first sight until
// the payment was confirmed).
func TestEthereumConfirmationsEveryBlock(t *testing.T) {
	node := gethtest.Start(t)
	token := node.DeployToken("USDT", 6)
	g := startEthGateway(t, ethEnv(t, node, token, t.TempDir()))
	key := tronSignUp(t, g)
	id, addr := ethInvoice(t, g, key, "ETH", "0.5")
	paidIn := node.Fund(addr, ether("0.5")).BlockNumber.Uint64()

	seen := func() map[string]any {
		_, priv := g.do("GET", "/v1/invoices/"+id, key, nil)
		_, pub := g.do("GET", "/v1/public/invoices/"+id, "", nil)
		out := map[string]any{"invoice": priv["confirmations"], "public": pub["confirmations"], "status": priv["status"]}
		if p, ok := priv["payments"].([]any); ok && len(p) == 1 {
			out["payment"] = p[0].(map[string]any)["confirmations"]
		}
		if p, ok := pub["payments"].([]any); ok && len(p) == 1 {
			out["public_payment"] = p[0].(map[string]any)["confirmations"]
		}
		return out
	}
	last := 0
	for range 5 {
		want := float64(node.Head() - paidIn + 1)
		waitFor(t, g, fmt.Sprintf("%v confirmations", want), seen, func(m map[string]any) bool {
			return m["invoice"] == want && m["public"] == want && m["payment"] == want && m["public_payment"] == want
		})
		if int(want) != last+1 {
			t.Fatalf("the count went from %d to %v in one block", last, want)
		}
		last = int(want)
		node.Mine(1)
	}
	// Paid at the asset's 12.
	node.MineTo(paidIn + 11)
	waitFor(t, g, "paid at 12", seen, func(m map[string]any) bool {
		return m["status"] == "paid" && m["payment"] == float64(12) && m["public"] == float64(12)
	})
}
