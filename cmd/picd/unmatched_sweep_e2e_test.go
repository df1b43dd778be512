package main

import (
	"context"
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/acceptcryptohere/gateway/chain/eth/gethtest"
)

// TestUnmatchedDepositsDecidedSweepAreSwept (#16): on a real geth, tokens
// sent to an ETH invoice's address and ETH sent to a USDT.ETH invoice's
// address are decided "sweep" by the operator. Once final, the sweeper
// moves them with the address's key to the hot wallet: all 7 tokens (after
// a gas top-up), and the ETH less its transfer's gas. They end "swept"
// with the transfer's txid, no invoice is credited, and both audits agree.
func TestUnmatchedDepositsDecidedSweepAreSwept(t *testing.T) {
	node := gethtest.Start(t)
	token := node.DeployToken("USDT", 6)
	env := ethEnv(t, node, token, t.TempDir())
	g := startEthGateway(t, env)
	key := tronSignUp(t, g)
	ethID, ethAddr := ethInvoice(t, g, key, "ETH", "0.5")
	usdtID, usdtAddr := ethInvoice(t, g, key, "USDT.ETH", "25")
	node.TransferToken(token, ethAddr, big.NewInt(7_000_000))
	node.Fund(usdtAddr, ether("0.1"))
	var list map[string]unmatchedRow
	waitFor(t, g, "both unmatched", func() map[string]any {
		list = unmatchedList(t, env)
		return map[string]any{"n": len(list)}
	}, func(m map[string]any) bool { return m["n"] == 2 })
	for _, u := range list {
		if out := picdChain(t, env, true, "unmatched", "sweep", fmt.Sprint(u.ID), "--note", "operator's"); !strings.Contains(out, "marked to sweep") {
			t.Fatalf("sweep %d:\n%s", u.ID, out)
		}
	}
	hot := ethHotWallet(t)
	node.Fund(hot, ether("1"))
	// Not final yet: nothing moves.
	g.stop()
	p := startProc(t, env)
	waitLog(t, p, "Ethereum hot wallet", 30*time.Second)
	time.Sleep(2 * time.Second)
	if b := node.TokenBalance(token, ethAddr); b.Int64() != 7_000_000 || strings.Contains(p.out.String(), "sweep gas top-up") {
		t.Fatalf("swept before final: %s left\n%s", b, p.out)
	}
	p.stop()
	mineToFinal(node)

	// The sweep runs at start and then every minute: restart to run it.
	swept := func() bool {
		all := unmatchedList(t, env, "--all")
		return all["USDT.ETH"].Status == "swept" && all["ETH"].Status == "swept"
	}
	for i := 0; i < 6 && !swept(); i++ {
		p = startProc(t, env)
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) && !swept() {
			node.Mine(1)
			time.Sleep(500 * time.Millisecond)
		}
		p.stop()
	}
	all := unmatchedList(t, env, "--all")
	if !swept() {
		t.Fatalf("not swept: %+v\n%s", all, p.out)
	}
	if b, h := node.TokenBalance(token, ethAddr), node.TokenBalance(token, hot); b.Sign() != 0 || h.Int64() != 7_000_000 {
		t.Fatalf("tokens: %s on the address, %s in the hot wallet", b, h)
	}
	txRe := regexp.MustCompile(`0x[0-9a-fA-F]{64}`)
	for _, a := range []string{"USDT.ETH", "ETH"} {
		if u := all[a]; !strings.HasPrefix(u.Note, "operator's; swept to the hot wallet in 0x") || u.InvoiceID != "" {
			t.Fatalf("%s: %+v", a, u)
		}
	}
	// ETH: the transfer to the hot wallet carries the balance less its gas
	// at the fee cap; what the cap left unspent stays on the address.
	txid := common.HexToHash(txRe.FindString(all["ETH"].Note))
	tx, _, err := node.Client.TransactionByHash(context.Background(), txid)
	if err != nil {
		t.Fatal(err)
	}
	rc := node.Receipt(txid)
	fee := new(big.Int).Mul(new(big.Int).SetUint64(rc.GasUsed), rc.EffectiveGasPrice)
	capFee := new(big.Int).Mul(new(big.Int).SetUint64(tx.Gas()), tx.GasFeeCap())
	left := node.Balance(usdtAddr)
	if *tx.To() != hot || rc.Status != 1 || new(big.Int).Sub(ether("0.1"), capFee).Cmp(tx.Value()) != 0 ||
		new(big.Int).Add(new(big.Int).Add(tx.Value(), fee), left).Cmp(ether("0.1")) != 0 {
		t.Fatalf("ETH sweep %s: to %s value %s fee %s, %s left", txid.Hex(), tx.To().Hex(), tx.Value(), fee, left)
	}
	g = startEthGateway(t, env)
	for _, id := range []string{ethID, usdtID} {
		if inv := g.invoiceStatus(key, id)(); inv["amount_received"] != "0" {
			t.Fatalf("an operator's sweep was credited: %v", inv)
		}
	}
	g.stop()
	auditAgrees(t, env)
	code, rep, raw := runChainAudit(t, env)
	if code != 0 || !rep.OK {
		t.Fatalf("audit --chain: exit %d\n%s", code, raw)
	}
	for _, a := range rep.Assets {
		if a.Asset == "USDT.ETH" && a.Float.String() != "7" {
			t.Fatalf("the swept tokens are not the operator's float: %+v\n%s", a, raw)
		}
	}
}
