package main

import (
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
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

// rotationMnemonic is the seed rotated to (BIP-39's "legal winner" vector).
const rotationMnemonic = "legal winner thank year wave sausage worth useful legal winner thank yellow"

// seedIndex is the index among the first 1000 of words' Ethereum
// addresses that is addr, or -1.
func seedIndex(t *testing.T, words string, addr common.Address) int64 {
	t.Helper()
	params, _ := hd.NetworkParams("mainnet")
	w, err := hd.NewWallet(words, "", params)
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < 1000; i++ {
		if a, _ := w.Address(domain.ChainEthereum, i); strings.EqualFold(a, addr.Hex()) {
			return i
		}
	}
	return -1
}

// TestSeedRotationOnGeth (#18): on a real geth, the operator rotates the
// embedded signer's seed (picd seed rotate, importing the words) while an
// invoice of the old seed is still open and the old hot wallet holds ETH
// and tokens. After the restart: a new invoice gets an address of the new
// seed; the late payment to the old seed's address is credited; every
// deposit address of either seed is swept into the new hot wallet, and so
// is all the old hot wallet held (tokens, then its ETH); withdrawals are
// paid from the new hot wallet; both audits agree, audit --chain to the wei.
func TestSeedRotationOnGeth(t *testing.T) {
	node := gethtest.Start(t)
	token := node.DeployToken("USDT", 6)
	dataDir := t.TempDir()
	env := ethEnv(t, node, token, dataDir)
	g := startEthGateway(t, env)
	key := tronSignUp(t, g)

	paidID, paidAddr := ethInvoice(t, g, key, "ETH", "0.5")
	lateID, lateAddr := ethInvoice(t, g, key, "USDT.ETH", "25")
	node.Fund(paidAddr, ether("0.5"))
	node.Mine(11)
	waitFor(t, g, "ETH paid before the rotation", g.invoiceStatus(key, paidID), hasStatus("paid"))
	oldHot := ethHotWallet(t)
	node.Fund(oldHot, ether("1"))
	node.TransferToken(token, oldHot, big.NewInt(30_000_000))
	g.stop()

	words := filepath.Join(t.TempDir(), "new-seed")
	if err := os.WriteFile(words, []byte(rotationMnemonic+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(picdBin, "seed", "rotate", words)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	params, _ := hd.NetworkParams("mainnet")
	fresh, werr := hd.NewWallet(rotationMnemonic, "", params)
	if werr != nil {
		t.Fatal(werr)
	}
	newHotHex, _ := fresh.Address(domain.ChainEthereum, eth.DefaultHotWalletIndex)
	newHot := common.HexToAddress(newHotHex)
	if err != nil || !strings.Contains(string(out), "seed generation 1 is in "+filepath.Join(dataDir, "mnemonic.1")) ||
		!strings.Contains(string(out), newHot.Hex()) || strings.Contains(string(out), "legal") {
		t.Fatalf("picd seed rotate: %v\n%s", err, out)
	}

	g = startEthGateway(t, env)
	if !strings.Contains(g.logs.String(), newHot.Hex()) {
		t.Fatalf("the hot wallet is not the new seed's %s:\n%s", newHot.Hex(), g.logs)
	}
	newID, newAddr := ethInvoice(t, g, key, "ETH", "0.2")
	if seedIndex(t, rotationMnemonic, newAddr) < 0 || seedIndex(t, tronE2EMnemonic, newAddr) >= 0 {
		t.Fatalf("the invoice after the rotation pays %s: not an address of the new seed", newAddr.Hex())
	}
	if seedIndex(t, tronE2EMnemonic, lateAddr) < 0 {
		t.Fatalf("%s is not the old seed's", lateAddr.Hex())
	}
	node.TransferToken(token, lateAddr, big.NewInt(25_000_000))
	node.Fund(newAddr, ether("0.2"))
	node.Mine(11)
	waitFor(t, g, "USDT.ETH paid to the old seed's address after the rotation", g.invoiceStatus(key, lateID), hasStatus("paid"))
	waitFor(t, g, "ETH paid to the new seed's address", g.invoiceStatus(key, newID), hasStatus("paid"))
	mineToFinal(node)
	wantBalance(t, g, key, "ETH", "0.69825", "0")
	wantBalance(t, g, key, "USDT.ETH", "24.9375", "0")
	g.stop()

	// The sweep runs at start and then every minute: restart to run it.
	dust := ether("0.001")
	swept := func() bool {
		return node.TokenBalance(token, lateAddr).Sign() == 0 && node.TokenBalance(token, oldHot).Sign() == 0 &&
			node.Balance(paidAddr).Cmp(dust) < 0 && node.Balance(newAddr).Cmp(dust) < 0 && node.Balance(oldHot).Cmp(dust) < 0
	}
	var p *proc
	for i := 0; i < 8 && !swept(); i++ {
		p = startProc(t, env)
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) && !swept() {
			node.Mine(1)
			time.Sleep(500 * time.Millisecond)
		}
		p.stop()
	}
	if !swept() {
		t.Fatalf("not swept: tokens %s on the old seed's deposit address, %s on the old hot wallet; ETH %s, %s on the deposit addresses, %s on the old hot wallet\n%s",
			node.TokenBalance(token, lateAddr), node.TokenBalance(token, oldHot), node.Balance(paidAddr), node.Balance(newAddr), node.Balance(oldHot), p.out)
	}
	if h := node.TokenBalance(token, newHot); h.Int64() != 55_000_000 {
		t.Fatalf("the new hot wallet holds %s token units, want the deposit's 25 and the old hot wallet's 30", h)
	}
	// 0.5 + 0.2 swept and about 1 moved, less gas and the token sweep's top-up.
	if h := node.Balance(newHot); h.Cmp(ether("1.6")) < 0 {
		t.Fatalf("the new hot wallet holds %s wei", h)
	}

	// Withdrawals after the rotation are paid from the new hot wallet.
	g = startEthGateway(t, env)
	payeeKey, _ := crypto.GenerateKey()
	payee := crypto.PubkeyToAddress(payeeKey.PublicKey)
	for _, w := range []struct{ asset, amount string }{{"USDT.ETH", "20"}, {"ETH", "0.3"}} {
		status, po := g.do("POST", "/v1/withdrawals", key, map[string]any{"asset": w.asset, "amount": w.amount, "to_address": payee.Hex()})
		if status/100 != 2 {
			t.Fatalf("%s withdrawal: %d %v", w.asset, status, po)
		}
		po = waitFor(t, g, w.asset+" payout sent", g.payout(key, po["id"].(string)), hasStatus("sent"))
		node.Mine(12)
		waitWithin(t, g, 75*time.Second, w.asset+" payout confirmed", g.payout(key, po["id"].(string)), hasStatus("confirmed"))
	}
	if h, p := node.TokenBalance(token, newHot), node.TokenBalance(token, payee); h.Int64() != 35_000_000 || p.Int64() != 20_000_000 {
		t.Fatalf("after the token payout: %s units in the new hot wallet, %s with the payee", h, p)
	}
	if node.Balance(payee).Sign() == 0 {
		t.Fatal("the ETH payout paid nothing")
	}
	// The deposit addresses' second ETH sweeps (what the token sweep's gas
	// top-up left) may still be on their way on a loaded machine: CI twice
	// stopped the gateway with them sent and not yet booked. Mine until the
	// chain audit finds nothing in flight, as an operator would wait before
	// auditing; the audit below still must agree to the wei. A mined sweep
	// is booked by the sweeper's next pass (PIC_SWEEP_INTERVAL, a minute),
	// so the wait covers two passes: CI once ran out of a one-minute wait.
	for deadline := time.Now().Add(150 * time.Second); ; {
		_, rep, _ := runChainAudit(t, env)
		if len(rep.InFlight) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Logf("still in flight after %s: %v", 150*time.Second, rep.InFlight)
			break
		}
		node.Mine(12)
		time.Sleep(500 * time.Millisecond)
	}
	g.stop()

	auditAgrees(t, env)
	code, rep, raw := runChainAudit(t, env)
	if code != 0 || !rep.OK {
		t.Fatalf("audit --chain after the rotation: exit %d\n%s", code, raw)
	}
	for _, a := range rep.Assets {
		if a.Asset == "USDT.ETH" && a.Float.String() != "30" {
			t.Fatalf("USDT.ETH: the old hot wallet's 30 moved are not the operator's float: %+v\n%s", a, raw)
		}
	}
}
