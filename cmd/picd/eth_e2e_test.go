package main

import (
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/acceptcryptohere/gateway/chain/eth"
	"github.com/acceptcryptohere/gateway/chain/eth/gethtest"
	"github.com/acceptcryptohere/gateway/chain/hd"
	"github.com/acceptcryptohere/gateway/domain"
)

// Ethereum end to end: picd's real watcher and sender against a real geth
// in --dev mode (chain id 1337) with OpenZeppelin's ERC-20 as USDT.ETH.

func ethEnv(t *testing.T, node *gethtest.Node, token common.Address, dataDir string) []string {
	return []string{"PIC_DATA_DIR=" + dataDir, "PIC_MNEMONIC=" + tronE2EMnemonic, "PIC_PRICES=" + tronE2EPrices,
		"PIC_ETH_RPC_URL=" + node.URL, "PIC_ETH_USDT_CONTRACT=" + token.Hex()}
}

// startEthGateway starts picd and waits until the Ethereum watcher has
// scanned once (/readyz), so nothing paid afterwards is before its start.
func startEthGateway(t *testing.T, env []string) *gateway {
	t.Helper()
	g := startGateway(t, env)
	waitFor(t, g, "first Ethereum scan", func() map[string]any {
		status, m := g.do("GET", "/readyz", "", nil)
		if m == nil {
			m = map[string]any{}
		}
		m["http_status"] = status
		return m
	}, func(m map[string]any) bool { return m["http_status"] == 200 })
	return g
}

// getRaw is a GET's body (with the API key, if any), which must answer 200.
func (g *gateway) getRaw(path, key string) string {
	g.t.Helper()
	req, _ := http.NewRequest("GET", g.url+path, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		g.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

// assetsListed is GET /v1/assets by code.
func (g *gateway) assetsListed(key string) map[string]map[string]any {
	g.t.Helper()
	var list []map[string]any
	if err := json.Unmarshal([]byte(g.getRaw("/v1/assets", key)), &list); err != nil {
		g.t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, a := range list {
		out[a["asset"].(string)] = a
	}
	return out
}

func ethInvoice(t *testing.T, g *gateway, key, asset, amount string) (id string, addr common.Address) {
	t.Helper()
	status, inv := g.do("POST", "/v1/invoices", key, map[string]any{"asset": asset, "amount": amount})
	if status/100 != 2 {
		t.Fatalf("create %s invoice: %d %v", asset, status, inv)
	}
	if inv["required_confirmations"] != float64(12) {
		t.Fatalf("%s needs %v confirmations, want the asset's real 12", asset, inv["required_confirmations"])
	}
	return inv["id"].(string), common.HexToAddress(inv["pay_address"].(string))
}

// wantBalance waits until the merchant's balance of asset is as given.
func wantBalance(t *testing.T, g *gateway, key, asset, available, pending string) {
	t.Helper()
	waitFor(t, g, asset+" balance "+available+" available, "+pending+" pending", func() map[string]any {
		_, bal := g.do("GET", "/v1/balance", key, nil)
		data, _ := bal["data"].([]any)
		for _, b := range data {
			if b := b.(map[string]any); b["asset"] == asset {
				return b
			}
		}
		return bal
	}, func(b map[string]any) bool { return b["available"] == available && b["pending"] == pending })
}

func ether(s string) *big.Int {
	u, err := domain.MustAmount(s).BaseUnits(18)
	if err != nil {
		panic(err)
	}
	return u
}

// mineToFinal mines until geth's finalized block (every 32nd in --dev
// mode) covers the head.
func mineToFinal(n *gethtest.Node) { n.MineTo((n.Head() + 31) / 32 * 32) }

func TestEthereumThroughGeth(t *testing.T) {
	node := gethtest.Start(t)
	token := node.DeployToken("USDT", 6)
	env := ethEnv(t, node, token, t.TempDir())
	g := startEthGateway(t, env)
	key := tronSignUp(t, g)

	// The configured node and contract, not mainnet's (#16 item 4).
	if c := g.assetsListed(key)["USDT.ETH"]["contract"]; !strings.EqualFold(c.(string), token.Hex()) {
		t.Fatalf("GET /v1/assets: USDT.ETH contract %v, want the configured %s", c, token.Hex())
	}
	ethID, ethAddr := ethInvoice(t, g, key, "ETH", "0.5")
	if page, want := g.getRaw("/pay/"+ethID, ""), "ethereum:"+g.invoiceField(t, key, ethID, "pay_address")+"@1337?value=500000000000000000"; !strings.Contains(page, want) {
		t.Fatalf("checkout page: no %q in its wallet link", want)
	}
	usdtID, usdtAddr := ethInvoice(t, g, key, "USDT.ETH", "25")
	if page, want := g.getRaw("/pay/"+usdtID, ""), "ethereum:"+token.Hex()+"@1337/transfer?address="+usdtAddr.Hex()+"&amp;uint256=25000000"; !strings.Contains(page, want) {
		t.Fatalf("checkout page: no %q in its wallet link", want)
	}

	// An ETH payment and an ERC-20 payment, each paid at 12 confirmations.
	node.Fund(ethAddr, ether("0.5"))
	inv := waitFor(t, g, "ETH detected", g.invoiceStatus(key, ethID), hasStatus("confirming"))
	if inv["amount_received"] != "0.5" {
		t.Fatalf("ETH invoice %v", inv)
	}
	node.TransferToken(token, usdtAddr, big.NewInt(25_000_000))
	inv = waitFor(t, g, "USDT.ETH detected", g.invoiceStatus(key, usdtID), hasStatus("confirming"))
	if inv["amount_received"] != "25" {
		t.Fatalf("USDT.ETH invoice %v", inv)
	}
	node.Mine(11)
	waitFor(t, g, "ETH paid", g.invoiceStatus(key, ethID), hasStatus("paid"))
	waitFor(t, g, "USDT.ETH paid", g.invoiceStatus(key, usdtID), hasStatus("paid"))

	// A payment while picd is down is found after the restart.
	lateID, lateAddr := ethInvoice(t, g, key, "ETH", "0.25")
	g.stop()
	node.Fund(lateAddr, ether("0.25"))
	node.Mine(12)
	g = startEthGateway(t, env)
	inv = waitFor(t, g, "ETH paid while picd was down", g.invoiceStatus(key, lateID), hasStatus("paid"))
	if inv["amount_received"] != "0.25" {
		t.Fatalf("late ETH invoice %v", inv)
	}

	// Final at geth's finalized block: the nets, less the 0.25 % fee, are available.
	mineToFinal(node)
	wantBalance(t, g, key, "ETH", "0.748125", "0")
	wantBalance(t, g, key, "USDT.ETH", "24.9375", "0")

	// A withdrawal of each, paid from the hot wallet (funded directly: the
	// deposits' sweep runs once a minute).
	hot := ethHotWallet(t)
	node.Fund(hot, ether("1"))
	node.TransferToken(token, hot, big.NewInt(30_000_000))
	payeeKey, _ := crypto.GenerateKey()
	payee := crypto.PubkeyToAddress(payeeKey.PublicKey)
	for _, w := range []struct{ asset, amount string }{{"ETH", "0.3"}, {"USDT.ETH", "20"}} {
		status, po := g.do("POST", "/v1/withdrawals", key, map[string]any{"asset": w.asset, "amount": w.amount, "to_address": payee.Hex()})
		if status/100 != 2 {
			t.Fatalf("%s withdrawal: %d %v", w.asset, status, po)
		}
		po = waitFor(t, g, w.asset+" payout sent", g.payout(key, po["id"].(string)), hasStatus("sent"))
		node.Mine(12)
		// The payout processor checks a sent payout's depth every 30 s.
		po = waitWithin(t, g, 75*time.Second, w.asset+" payout confirmed", g.payout(key, po["id"].(string)), hasStatus("confirmed"))
		sent := domain.MustAmount(po["sent_amount"].(string))
		got, decimals := node.TokenBalance(token, payee), int32(6)
		if w.asset == "ETH" {
			got, decimals = node.Balance(payee), 18
		}
		if want, _ := sent.BaseUnits(decimals); got.Cmp(want) != 0 {
			t.Fatalf("%s: payee holds %s base units, the payout sent %s (%v)", w.asset, got, sent, po)
		}
	}
}

// waitWithin is waitFor with another bound.
func waitWithin(t *testing.T, g *gateway, within time.Duration, what string, fetch func() map[string]any, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		m := fetch()
		if ok(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: last %v\npicd logs:\n%s", what, m, g.logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (g *gateway) payout(key, id string) func() map[string]any {
	return func() map[string]any {
		_, m := g.do("GET", "/v1/payouts/"+id, key, nil)
		return m
	}
}

// ethHotWallet derives the Ethereum hot wallet's address as picd does.
func ethHotWallet(t *testing.T) common.Address {
	t.Helper()
	params, _ := hd.NetworkParams("mainnet")
	w, err := hd.NewWallet(tronE2EMnemonic, "", params)
	if err != nil {
		t.Fatal(err)
	}
	a, err := w.Address(domain.ChainEthereum, eth.DefaultHotWalletIndex)
	if err != nil {
		t.Fatal(err)
	}
	return common.HexToAddress(a)
}

// #16 item 2: a contract with other decimals than the asset's is refused at
// start. Before, an 18-decimal token configured as USDT.ETH credited
// 0.00000000004999 tokens (49,990,000 base units) as 49.99 USDT.ETH.
func TestWrongDecimalsTokenIsRefused(t *testing.T) {
	node := gethtest.Start(t)
	token := node.DeployToken("USDT", 18)
	g := startEthGateway(t, ethEnv(t, node, token, t.TempDir()))
	key := tronSignUp(t, g)

	assets := g.assetsListed(key)
	if _, ok := assets["USDT.ETH"]; ok {
		// What it did: take the invoice and credit the wrong scale.
		id, addr := ethInvoice(t, g, key, "USDT.ETH", "49.99")
		node.TransferToken(token, addr, big.NewInt(49_990_000))
		node.Mine(12)
		inv := waitFor(t, g, "invoice", g.invoiceStatus(key, id), func(m map[string]any) bool { return m["amount_received"] != "0" })
		t.Fatalf("USDT.ETH started on an 18-decimal contract: invoice %s %s received %v", inv["status"], id, inv["amount_received"])
	}
	if _, ok := assets["ETH"]; !ok {
		t.Fatal("ETH is not served: only the token should be refused")
	}
	if status, m := g.do("POST", "/v1/invoices", key, map[string]any{"asset": "USDT.ETH", "amount": "49.99"}); status/100 == 2 {
		t.Fatalf("USDT.ETH invoice created: %v", m)
	}
	for _, want := range []string{"USDT.ETH", token.Hex(), "18 decimals", "has 6"} {
		if !strings.Contains(g.logs.String(), want) {
			t.Fatalf("picd's log does not say %q:\n%s", want, g.logs)
		}
	}
	// ETH still works on the same node.
	id, addr := ethInvoice(t, g, key, "ETH", "0.1")
	node.Fund(addr, ether("0.1"))
	node.Mine(11)
	waitFor(t, g, "ETH paid", g.invoiceStatus(key, id), hasStatus("paid"))
}
