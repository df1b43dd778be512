package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/acceptcryptohere/gateway/chain/eth/gethtest"
	"github.com/acceptcryptohere/gateway/chain/hd"
	"github.com/acceptcryptohere/gateway/domain"
)

// runChainAudit runs "picd audit --chain --json" as the operator would,
// with the gateway's environment, and returns its exit status and report.
func runChainAudit(t *testing.T, env []string) (int, reservesReport, string) {
	t.Helper()
	cmd := exec.Command(picdBin, "audit", "--chain", "--json", "--no-progress")
	cmd.Env = append(os.Environ(), append([]string{"PIC_SIMULATOR=true"}, env...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	code := 0
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatal(err)
		}
		code = ee.ExitCode()
	}
	var rep reservesReport
	if code != exitUnreachable {
		if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
			t.Fatalf("audit --chain: exit %d, %v\n%s\n%s", code, err, stdout.String(), stderr.String())
		}
	}
	return code, rep, stdout.String() + stderr.String()
}

// TestChainAuditOnGeth: a gateway on a real geth takes an ETH and a
// USDT.ETH payment; picd audit --chain agrees with the node to the wei.
// Then coins move behind the gateway's back: ETH sent to the USDT
// invoice's address (a deposit no invoice takes), and ETH moved out of
// the ETH invoice's address with its own key. The audit names each
// address with its exact difference and exits 1; with the node gone it
// exits 3.
func TestChainAuditOnGeth(t *testing.T) {
	node := gethtest.Start(t)
	token := node.DeployToken("USDT", 6)
	env := ethEnv(t, node, token, t.TempDir())
	g := startEthGateway(t, env)
	key := tronSignUp(t, g)
	ethID, ethAddr := ethInvoice(t, g, key, "ETH", "0.5")
	usdtID, usdtAddr := ethInvoice(t, g, key, "USDT.ETH", "25")
	node.Fund(ethAddr, ether("0.5"))
	node.TransferToken(token, usdtAddr, big.NewInt(25_000_000))
	node.Mine(11)
	waitFor(t, g, "ETH paid", g.invoiceStatus(key, ethID), hasStatus("paid"))
	waitFor(t, g, "USDT.ETH paid", g.invoiceStatus(key, usdtID), hasStatus("paid"))
	// The operator's gas money in the hot wallet: no event records it.
	hot := ethHotWallet(t)
	funded := node.Fund(hot, ether("1"))
	waitScanned(t, g, env, funded.BlockNumber.Uint64())
	g.stop()

	code, rep, raw := runChainAudit(t, env)
	if code != 0 || !rep.OK || len(rep.Assets) != 2 {
		t.Fatalf("audit --chain after payments: exit %d\n%s", code, raw)
	}
	byAsset := func(rep reservesReport) map[string]assetView {
		out := map[string]assetView{}
		for _, a := range rep.Assets {
			out[a.Asset] = assetView{ledger: a.Ledger.String(), chain: a.Chain.String(), float: a.Float.String(), ok: a.OK, differ: len(a.Differ)}
		}
		return out
	}
	got := byAsset(rep)
	if e := got["ETH"]; e.ledger != "0.5" || e.chain != "1.5" || e.float != "1" || !e.ok {
		t.Fatalf("ETH: %+v\n%s", e, raw)
	}
	if u := got["USDT.ETH"]; u.ledger != "25" || u.chain != "25" || u.float != "0" || !u.ok {
		t.Fatalf("USDT.ETH: %+v\n%s", u, raw)
	}
	if c := rep.Chains[0]; c.Addresses != 3 || c.Height != uint64(c.Scanned) {
		t.Fatalf("chain pinned %+v, want 3 addresses at the watcher's checkpoint", c)
	}

	// Behind the gateway's back: 0.01 ETH to the USDT invoice's address,
	// and 0.1 ETH out of the ETH invoice's address, signed with its key.
	node.Fund(usdtAddr, ether("0.01"))
	stranger := common.HexToAddress("0x000000000000000000000000000000000000dEaD")
	rc := sendFrom(t, node, ethAddr, stranger, ether("0.1"))
	gas := new(big.Int).Mul(new(big.Int).SetUint64(rc.GasUsed), rc.EffectiveGasPrice)
	// The watcher scans past them (the extra ETH is an unmatched deposit).
	g = startEthGateway(t, env)
	waitScanned(t, g, env, rc.BlockNumber.Uint64())
	g.stop()

	code, rep, raw = runChainAudit(t, env)
	if code != exitProblems || rep.OK {
		t.Fatalf("audit --chain after the moves: exit %d\n%s", code, raw)
	}
	eth := rep.Assets[0]
	if eth.Asset != "ETH" || len(eth.Differ) != 2 {
		t.Fatalf("ETH: want 2 addresses that differ\n%s", raw)
	}
	out := new(big.Int).Add(ether("0.1"), gas)
	wantOut := domain.FromBaseUnits(new(big.Int).Neg(out), 18)
	for _, d := range eth.Differ {
		switch strings.ToLower(d.Address) {
		case strings.ToLower(ethAddr.Hex()):
			if !d.Diff.Equal(wantOut) || !d.Ledger.Equal(domain.MustAmount("0.5")) {
				t.Fatalf("moved-out address: %+v, want difference %s", d, wantOut)
			}
		case strings.ToLower(usdtAddr.Hex()):
			if !d.Diff.Equal(domain.MustAmount("0.01")) || !strings.Contains(d.Note, "unmatched deposit") {
				t.Fatalf("extra-coin address: %+v, want +0.01 noted as unmatched", d)
			}
		default:
			t.Fatalf("unexpected address differs: %+v", d)
		}
	}
	if u := byAsset(rep)["USDT.ETH"]; !u.ok {
		t.Fatalf("USDT.ETH moved nothing: %+v", u)
	}

	// The node gone: the audit could not look.
	node.Stop()
	if code, _, raw := runChainAudit(t, env); code != exitUnreachable {
		t.Fatalf("audit --chain without its node: exit %d, want 3\n%s", code, raw)
	}
}

type assetView struct {
	ledger, chain, float string
	ok                   bool
	differ               int
}

// waitScanned waits until the watcher's checkpoint, as the audit reads
// it, reaches height.
func waitScanned(t *testing.T, g *gateway, env []string, height uint64) {
	t.Helper()
	waitFor(t, g, fmt.Sprintf("watcher scanned to %d", height), func() map[string]any {
		_, rep, _ := runChainAudit(t, env)
		if len(rep.Chains) == 0 {
			return map[string]any{"scanned": int64(-1)}
		}
		return map[string]any{"scanned": rep.Chains[0].Scanned}
	}, func(m map[string]any) bool { return m["scanned"].(int64) >= int64(height) })
}

// sendFrom moves wei out of one of the gateway's addresses with the key
// the gateway derives for it (as whoever holds the seed could).
func sendFrom(t *testing.T, node *gethtest.Node, from, to common.Address, wei *big.Int) *types.Receipt {
	t.Helper()
	params, _ := hd.NetworkParams("mainnet")
	w, err := hd.NewWallet(tronE2EMnemonic, "", params)
	if err != nil {
		t.Fatal(err)
	}
	var idx int64 = -1
	for i := int64(0); i < 1000 && idx < 0; i++ {
		if a, _ := w.Address(domain.ChainEthereum, i); strings.EqualFold(a, from.Hex()) {
			idx = i
		}
	}
	if idx < 0 {
		t.Fatalf("%s is none of the first 1000 addresses", from.Hex())
	}
	k, err := w.PrivateKey(domain.ChainEthereum, idx)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	nonce, err := node.Client.PendingNonceAt(ctx, from)
	if err != nil {
		t.Fatal(err)
	}
	tip, fee := big.NewInt(1_000_000_000), big.NewInt(20_000_000_000)
	tx := types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: nonce, GasTipCap: tip, GasFeeCap: fee, Gas: 21000, To: &to, Value: wei})
	signed, err := types.SignTx(tx, types.LatestSignerForChainID(big.NewInt(1337)), k.ToECDSA())
	if err != nil {
		t.Fatal(err)
	}
	if crypto.PubkeyToAddress(k.ToECDSA().PublicKey) != from {
		t.Fatal("derived key does not sign for", from.Hex())
	}
	if err := node.Client.SendTransaction(ctx, signed); err != nil {
		t.Fatal(err)
	}
	rc := node.Receipt(signed.Hash())
	if rc.Status != types.ReceiptStatusSuccessful {
		t.Fatal("move out failed")
	}
	return rc
}

// TestChainAuditOnSimulator: on the simulator (no node), payments and a
// withdrawal reconcile with the simulated chain's own state, and the
// ledger's holdings are what the chain holds, to the satoshi.
func TestChainAuditOnSimulator(t *testing.T) {
	const token = "reserves-sim-token"
	env := []string{"PIC_DATA_DIR=" + t.TempDir(), "PIC_SIM_TOKEN=" + token, "PIC_MNEMONIC=" + tronE2EMnemonic}
	g := startGateway(t, env)
	key := tronSignUp(t, g)
	for _, amount := range []string{"0.01", "0.02"} {
		status, inv := g.do("POST", "/v1/invoices", key, map[string]any{"asset": "BTC", "amount": amount})
		if status/100 != 2 {
			t.Fatalf("invoice: %d %v", status, inv)
		}
		if status, m := g.do("POST", "/v1/sim/pay", token, map[string]any{"invoice_id": inv["id"], "amount": amount}); status != 200 {
			t.Fatalf("sim pay: %d %v", status, m)
		}
	}
	mine := func() { g.do("POST", "/v1/sim/mine", token, map[string]int{"blocks": 1}) }
	waitFor(t, g, "BTC available", func() map[string]any {
		mine()
		_, bal := g.do("GET", "/v1/balance", key, nil)
		for _, b := range bal["data"].([]any) {
			if b := b.(map[string]any); b["asset"] == "BTC" {
				return b
			}
		}
		return bal
	}, func(b map[string]any) bool { return b["available"] == "0.029925" })
	status, po := g.do("POST", "/v1/withdrawals", key, map[string]any{"asset": "BTC", "amount": "0.015",
		"to_address": "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"})
	if status/100 != 2 {
		t.Fatalf("withdrawal: %d %v", status, po)
	}
	id := po["id"].(string)
	waitFor(t, g, "withdrawal sent", g.payout(key, id), hasStatus("sent"))
	// Sent and not confirmed: the coins left the chain, the ledger still
	// reserves them. The audit says so, and lists the payout in flight.
	code, rep, raw := runChainAudit(t, env)
	if code != exitProblems || len(rep.InFlight) != 1 || !strings.Contains(rep.InFlight[0], id) {
		t.Fatalf("audit --chain with a payout in flight: exit %d\n%s", code, raw)
	}
	waitWithin(t, g, 90*time.Second, "withdrawal confirmed", func() map[string]any { mine(); return g.payout(key, id)() }, hasStatus("confirmed"))
	g.stop()

	code, rep, raw = runChainAudit(t, env)
	if code != 0 || !rep.OK {
		t.Fatalf("audit --chain on the simulator: exit %d\n%s", code, raw)
	}
	// The table an operator reads, on the quick start's data directory as
	// it is (no PIC_SIMULATOR: serve implied it, and so does the audit).
	cmd := exec.Command(picdBin, "audit", "--chain", "--no-progress")
	cmd.Env = append(os.Environ(), env...)
	text, err := cmd.Output()
	if err != nil || !regexp.MustCompile(`(?m)^BTC +0\.015 +0\.015 +0 +0 +2 +OK$`).Match(text) ||
		!strings.Contains(string(text), "RESULT: OK, the chain holds what the ledger says") {
		t.Fatalf("audit --chain as a table: %v\n%s", err, text)
	}
	for _, a := range rep.Assets {
		if a.Asset != "BTC" {
			continue
		}
		// 0.03 in, 0.015 out (network fee included): 0.015 held.
		if !a.Ledger.Equal(domain.MustAmount("0.015")) || !a.Chain.Equal(a.Ledger) || a.Addresses != 2 {
			t.Fatalf("BTC: %+v\n%s", a, raw)
		}
		return
	}
	t.Fatalf("no BTC in the report\n%s", raw)
}
