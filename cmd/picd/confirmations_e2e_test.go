package main

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/chain/eth/gethtest"
	"github.com/acceptcryptohere/gateway/chain/tron/tronfake"
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

	seen := confirmationsSeen(g, key, id)
	last := 0
	for range 5 {
		want := float64(node.Head() - paidIn + 1)
		waitFor(t, g, fmt.Sprintf("%v confirmations", want), seen, showsConfirmations(int(want)))
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

// confirmationsSeen reads an invoice's count on the merchant's API (the
// invoice's and its one payment's) and on the checkout's public endpoint.
func confirmationsSeen(g *gateway, key, id string) func() map[string]any {
	return func() map[string]any {
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
}

// showsConfirmations: every count of confirmationsSeen is n.
func showsConfirmations(n int) func(map[string]any) bool {
	want := float64(n)
	return func(m map[string]any) bool {
		return m["invoice"] == want && m["public"] == want && m["payment"] == want && m["public_payment"] == want
	}
}

// The same on TRON, through the TRON fake node (no TRON node runs here):
// a USDT.TRON payment counts 1, 2, 3 with the blocks the fake mines.
func TestUSDTTronConfirmationsEveryBlock(t *testing.T) {
	node := tronfake.New(tronfake.Options{Now: time.Now})
	srv := httptest.NewServer(node)
	defer srv.Close()
	node.Mine(1)
	g := startGateway(t, []string{"PIC_DATA_DIR=" + t.TempDir(), "PIC_MNEMONIC=" + tronE2EMnemonic, "PIC_PRICES=" + tronE2EPrices,
		"PIC_TRON_API_URL=" + srv.URL, "PIC_TRON_USDT_CONTRACT=" + node.Token(), "PIC_TRON_START_BLOCK=1"})
	key := tronSignUp(t, g)
	id, addr, _ := tronInvoice(t, g, key, "25")
	if _, err := node.Pay(addr, "USDT", 25_000_000); err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 3; n++ {
		node.Mine(1)
		waitFor(t, g, fmt.Sprintf("%d confirmations", n), confirmationsSeen(g, key, id), showsConfirmations(n))
	}
}
