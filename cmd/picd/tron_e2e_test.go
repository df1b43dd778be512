package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/acceptcryptohere/gateway/chain/hd"
	"github.com/acceptcryptohere/gateway/chain/tron"
	"github.com/acceptcryptohere/gateway/chain/tron/tronfake"
	"github.com/acceptcryptohere/gateway/domain"
)

// The quick start's USDT.TRON invoice, paid end to end over HTTP: once
// through the fake TRON node (picd's real TRON watcher and sender against
// chain/tron/tronfake, the assets' real confirmations) with a withdrawal
// whose signed TRC-20 transfer the fake node verifies byte for byte, and
// once through the simulator (picd with every chain simulated).

// tronE2EMnemonic is BIP-39's all-zero-entropy phrase: a test seed, so the
// test knows the hot wallet's address.
const tronE2EMnemonic = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"

// tronE2EPrices are static prices: no price source on the network.
const tronE2EPrices = `{"BTC":"60000","ETH":"3000","TRX":"0.25","USDT.ETH":"1","USDT.TRON":"1"}`

// waitFor polls fetch until ok says yes, for at most 30 s.
func waitFor(t *testing.T, g *gateway, what string, fetch func() map[string]any, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m := fetch()
		if ok(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: last %v\npicd logs:\n%s", what, m, g.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tronSignUp(t *testing.T, g *gateway) string {
	t.Helper()
	status, m := g.do("POST", "/v1/merchants", "", map[string]any{"name": "Tron shop"})
	if status/100 != 2 {
		t.Fatalf("sign-up: %d %v", status, m)
	}
	return m["secret_key"].(string)
}

func tronInvoice(t *testing.T, g *gateway, key, amount string) (id, addr string, required float64) {
	t.Helper()
	status, inv := g.do("POST", "/v1/invoices", key, map[string]any{"asset": "USDT.TRON", "amount": amount})
	if status/100 != 2 || !strings.HasPrefix(inv["pay_address"].(string), "T") {
		t.Fatalf("create invoice: %d %v", status, inv)
	}
	return inv["id"].(string), inv["pay_address"].(string), inv["required_confirmations"].(float64)
}

func (g *gateway) invoiceStatus(key, id string) func() map[string]any {
	return func() map[string]any {
		_, m := g.do("GET", "/v1/invoices/"+id, key, nil)
		return m
	}
}

func hasStatus(want string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["status"] == want }
}

// wantTronBalance waits (at most 30 s) until the merchant's USDT.TRON
// balance is available and pending as given. It waits because finality is
// recorded by its own event (money rule 4: DepositFinalized) after the
// confirmation that makes the invoice paid, even where the chain makes a
// payment final with its confirmation (TRON's solidified block).
func wantTronBalance(t *testing.T, g *gateway, key, available, pending string) {
	t.Helper()
	waitFor(t, g, "USDT.TRON balance "+available+" available, "+pending+" pending", func() map[string]any {
		_, bal := g.do("GET", "/v1/balance", key, nil)
		data, _ := bal["data"].([]any)
		for _, b := range data {
			if b := b.(map[string]any); b["asset"] == "USDT.TRON" {
				return b
			}
		}
		return bal
	}, func(b map[string]any) bool { return b["available"] == available && b["pending"] == pending })
}

func TestUSDTTronThroughTheFakeNode(t *testing.T) {
	node := tronfake.New(tronfake.Options{Now: time.Now})
	srv := httptest.NewServer(node)
	defer srv.Close()
	node.Mine(1)
	g := startGateway(t, []string{"PIC_DATA_DIR=" + t.TempDir(), "PIC_MNEMONIC=" + tronE2EMnemonic, "PIC_PRICES=" + tronE2EPrices,
		"PIC_TRON_API_URL=" + srv.URL, "PIC_TRON_USDT_CONTRACT=" + node.Token(),
		"PIC_TRON_START_BLOCK=1"}) // scan from block 1: nothing paid before the watcher's first scan is missed
	key := tronSignUp(t, g)

	id, addr, required := tronInvoice(t, g, key, "25")
	if required != 19 {
		t.Fatalf("USDT.TRON needs %v confirmations, want the asset's real 19 (TRON is not simulated here)", required)
	}
	txid, err := node.Pay(addr, "USDT", 25_000_000)
	if err != nil {
		t.Fatal(err)
	}
	node.Mine(1)
	inv := waitFor(t, g, "detected", g.invoiceStatus(key, id), hasStatus("confirming"))
	if inv["amount_received"] != "25" {
		t.Fatalf("invoice %v", inv)
	}
	node.Mine(18) // 19 deep, and solid (the fake solidifies at once)
	inv = waitFor(t, g, "paid", g.invoiceStatus(key, id), hasStatus("paid"))
	payments, _ := inv["payments"].([]any)
	if len(payments) != 1 || !strings.Contains(payments[0].(map[string]any)["txid"].(string), txid) {
		t.Fatalf("payments %v", inv["payments"])
	}
	// TRON's finality is the solidified block, and the fake node solidifies
	// at once: the confirmed deposit is final too, its net (less the 0.25 %
	// fee) available.
	wantTronBalance(t, g, key, "24.9375", "0")

	// A withdrawal: the hot wallet (m/44'/195'/0'/0/2^31−1 of the seed) is
	// funded on the fake with TRX for energy and with the USDT it pays
	// (the deposit's sweep runs once a minute: too slow for a test).
	hot := tronHotWallet(t)
	if err := node.Fund(hot, 100_000_000, 30_000_000); err != nil {
		t.Fatal(err)
	}
	payeeKey, _ := crypto.GenerateKey()
	payee := tron.EncodeAddress(tronfake.KeyAddress(payeeKey))
	status, po := g.do("POST", "/v1/withdrawals", key, map[string]any{"asset": "USDT.TRON", "amount": "20", "to_address": payee})
	if status/100 != 2 {
		t.Fatalf("withdrawal: %d %v", status, po)
	}
	po = waitFor(t, g, "payout sent", func() map[string]any {
		_, m := g.do("GET", "/v1/payouts/"+po["id"].(string), key, nil)
		return m
	}, hasStatus("sent"))
	sentTx, _ := po["txid"].(string)
	sent := domain.MustAmount(po["sent_amount"].(string))
	fee := domain.MustAmount(po["network_fee"].(string))
	if !fee.IsPositive() || !sent.Add(fee).Equal(domain.MustAmount("20")) {
		t.Fatalf("payout %v", po)
	}
	// The fake node accepted exactly this: a TRC-20 transfer(payee, sent)
	// on its token from the hot wallet, its txid sha256 of the raw data,
	// signed by the hot wallet's key (Accept re-encodes every byte and
	// recovers the signer; here the test reads the bytes back too).
	signed, ok := node.SignedBytes(sentTx)
	if !ok || !node.VerifiedTx(sentTx) {
		t.Fatalf("the fake node did not verify payout transaction %s", sentTx)
	}
	checkTRC20Transfer(t, signed, sentTx, hot, node.Token(), payee, sent)
	node.Mine(1)
	if _, got, _ := node.Balances(payee); domain.FromBaseUnits(got, 6).String() != sent.String() {
		t.Fatalf("payee holds %s USDT units, want %s", got, sent)
	}
	wantTronBalance(t, g, key, "4.9375", "0")
}

// tronHotWallet derives the TRON hot wallet's address as picd does.
func tronHotWallet(t *testing.T) string {
	t.Helper()
	params, _ := hd.NetworkParams("mainnet")
	w, err := hd.NewWallet(tronE2EMnemonic, "", params)
	if err != nil {
		t.Fatal(err)
	}
	a, err := w.Address(domain.ChainTron, tron.DefaultHotWalletIndex)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// checkTRC20Transfer decodes a signed transaction strictly and checks it
// is the payout: one TriggerSmartContract from owner on contract calling
// transfer(to, amount), txid = sha256(raw), the signature owner's.
func checkTRC20Transfer(t *testing.T, signed []byte, txid, owner, contract, to string, amount domain.Amount) {
	t.Helper()
	raw, sigs, err := tron.UnmarshalTransaction(signed)
	if err != nil || !bytes.Equal(tron.MarshalTransaction(raw, sigs), signed) || len(sigs) != 1 {
		t.Fatalf("signed transaction: %v", err)
	}
	if id := sha256.Sum256(raw); hex.EncodeToString(id[:]) != txid {
		t.Fatal("txid is not sha256 of the raw data")
	}
	r, err := tron.UnmarshalRawTx(raw)
	if err != nil || len(r.Contracts) != 1 || r.Contracts[0].Type != tron.TriggerSmartContractType {
		t.Fatalf("raw data: %+v %v", r, err)
	}
	c, err := tron.UnmarshalTrigger(r.Contracts[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	units, _ := amount.BaseUnits(6)
	wantData := append(crypto.Keccak256([]byte("transfer(address,uint256)"))[:4], make([]byte, 64)...)
	copy(wantData[4+12:4+32], mustTronAddr(t, to)[1:])
	units.FillBytes(wantData[4+32:])
	if tron.EncodeAddress(c.Owner) != owner || tron.EncodeAddress(c.Contract) != contract || !bytes.Equal(c.Data, wantData) ||
		c.CallValue != 0 || r.FeeLimit <= 0 {
		t.Fatalf("contract call %+v (fee limit %d)", c, r.FeeLimit)
	}
	id, _ := hex.DecodeString(txid)
	pub, err := crypto.SigToPub(id, sigs[0])
	if err != nil || tron.EncodeAddress(crypto.PubkeyToAddress(*pub).Bytes()) != owner {
		t.Fatalf("signed by another key: %v", err)
	}
}

func mustTronAddr(t *testing.T, s string) []byte {
	t.Helper()
	b, err := tron.DecodeAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUSDTTronThroughTheSimulator(t *testing.T) {
	dataDir := t.TempDir()
	g := startGateway(t, []string{"PIC_DATA_DIR=" + dataDir, "PIC_PRICES=" + tronE2EPrices})
	token, err := os.ReadFile(filepath.Join(dataDir, "sim.token"))
	if err != nil {
		t.Fatal(err)
	}
	op := strings.TrimSpace(string(token))
	key := tronSignUp(t, g)
	id, addr, required := tronInvoice(t, g, key, "25")
	if required != 1 { // the quick start: every chain simulated, one block
		t.Fatalf("required confirmations %v", required)
	}
	if status, m := g.do("POST", "/v1/sim/pay", op, map[string]any{"invoice_id": id, "amount": "25"}); status/100 != 2 {
		t.Fatalf("sim pay: %d %v", status, m)
	}
	waitFor(t, g, "detected", g.invoiceStatus(key, id), hasStatus("confirming"))
	if status, m := g.do("POST", "/v1/sim/mine", op, map[string]any{"blocks": 1}); status/100 != 2 {
		t.Fatalf("sim mine: %d %v", status, m)
	}
	inv := waitFor(t, g, "paid", g.invoiceStatus(key, id), hasStatus("paid"))
	if inv["pay_address"] != addr || inv["amount_received"] != "25" {
		t.Fatalf("invoice %v", inv)
	}
	// Paid is not yet spendable (money rule 4): the simulator makes a
	// payment final one block past its confirmations.
	wantTronBalance(t, g, key, "0", "24.9375")
	if status, m := g.do("POST", "/v1/sim/mine", op, map[string]any{"blocks": 1}); status/100 != 2 || len(m["final"].([]any)) != 1 {
		t.Fatalf("sim mine: %d %v", status, m)
	}
	wantTronBalance(t, g, key, "24.9375", "0")
}
