package main

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/acceptcryptohere/gateway/chain/custody"
	"github.com/acceptcryptohere/gateway/chain/tron"
	"github.com/acceptcryptohere/gateway/chain/tron/tronfake"
	"github.com/acceptcryptohere/gateway/domain"
)

// TRON payouts signed by a separate picd signer, on the fake TRON node
// (no TRON node runs here; the fake verifies every signature): one within
// the limit, one held until approved, and a transaction to another
// address refused.
func TestSignerSignsTronPayouts(t *testing.T) {
	node := tronfake.New(tronfake.Options{Now: time.Now})
	srv := httptest.NewServer(node)
	defer srv.Close()
	node.Mine(1)
	dataDir, signerDir := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(signerDir, "mnemonic"), []byte(tronE2EMnemonic+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	signer := startSigner(t, signerDir, dataDir, "PIC_SIGNER_LIMITS=USDT.TRON=25/", "PIC_TRON_USDT_CONTRACT="+node.Token())
	env := []string{"PIC_DATA_DIR=" + dataDir, "PIC_MNEMONIC=", "PIC_MNEMONIC_FILE=", "PIC_SIGNER=unix://" + signer.socket, "PIC_PRICES=" + tronE2EPrices,
		"PIC_TRON_API_URL=" + srv.URL, "PIC_TRON_USDT_CONTRACT=" + node.Token(), "PIC_TRON_START_BLOCK=1"}
	g := startGateway(t, env)
	status, m := g.do("POST", "/v1/merchants", "", map[string]any{"name": "Tron signer shop"})
	if status/100 != 2 {
		t.Fatalf("sign-up: %d %v", status, m)
	}
	key, merchantID := m["secret_key"].(string), m["merchant_id"].(string)
	id, addr, _ := tronInvoice(t, g, key, "50")
	if _, err := node.Pay(addr, "USDT", 50_000_000); err != nil {
		t.Fatal(err)
	}
	node.Mine(19)
	waitFor(t, g, "paid", g.invoiceStatus(key, id), hasStatus("paid"))
	wantTronBalance(t, g, key, "49.875", "0")
	assertNoSeed(t, dataDir, env)

	hot := tronHotWallet(t)
	if err := node.Fund(hot, 200_000_000, 60_000_000); err != nil {
		t.Fatal(err)
	}
	payeeKey, _ := crypto.GenerateKey()
	payee := tron.EncodeAddress(tronfake.KeyAddress(payeeKey))
	withdraw := func() string {
		status, po := g.do("POST", "/v1/withdrawals", key, map[string]any{"asset": "USDT.TRON", "amount": "20", "to_address": payee})
		if status/100 != 2 {
			t.Fatalf("withdrawal: %d %v", status, po)
		}
		return po["id"].(string)
	}
	total := domain.Amount{}
	sent := func(id string) {
		po := waitWithin(t, g, 60*time.Second, id+" sent", g.payout(key, id), hasStatus("sent"))
		txid := po["txid"].(string)
		if _, ok := node.SignedBytes(txid); !ok || !node.VerifiedTx(txid) {
			t.Fatalf("the fake node did not verify payout transaction %s", txid)
		}
		total = total.Add(domain.MustAmount(po["sent_amount"].(string)))
		node.Mine(1)
	}
	first := withdraw()
	sent(first)
	if !strings.Contains(signer.logs.String(), `"msg":"payout signed","payout_id":"`+first+`"`) {
		t.Fatalf("the signer did not sign %s:\n%s", first, signer.logs)
	}

	second := withdraw() // 40 in the hour > 25: held
	var pending string
	for deadline := time.Now().Add(45 * time.Second); !strings.Contains(pending, second); time.Sleep(300 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s not held: %s\nsigner:\n%s", second, pending, signer.logs)
		}
		pending, _ = signer.cli(t, "pending")
	}
	// Another destination for the held payout: refused.
	hotBytes, _ := tron.DecodeAddress(hot)
	thiefKey, _ := crypto.GenerateKey()
	raw := tron.RawTx{RefBlockBytes: []byte{0, 1}, RefBlockHash: make([]byte, 8), Expiration: time.Now().Add(time.Hour).UnixMilli(),
		Contracts: []tron.Contract{{Type: tron.TransferContractType, TypeURL: "type.googleapis.com/protocol.TransferContract",
			Value: tron.TransferContract{Owner: hotBytes, To: tronfake.KeyAddress(thiefKey), Amount: 19_000_000}.Marshal()}}}
	client, _ := custody.Dial("unix://" + signer.socket)
	_, err := client.Sign(context.Background(), custody.Request{Chain: domain.ChainTron, Purpose: custody.PurposePayout, PayoutID: second,
		MerchantID: merchantID, Asset: "USDT.TRON", FromIndex: tron.DefaultHotWalletIndex, Unsigned: raw.Marshal()})
	if !errors.Is(err, custody.ErrRefused) || !strings.Contains(err.Error(), "goes to") {
		t.Fatalf("a transaction to another address: %v, want refused", err)
	}
	if out, err := signer.cli(t, "approve", second); err != nil || !strings.Contains(out, "approved payout "+second) {
		t.Fatalf("approve: %v %s", err, out)
	}
	sent(second)
	if _, got, _ := node.Balances(payee); domain.FromBaseUnits(got, 6).String() != total.String() {
		t.Fatalf("payee holds %s USDT units, the two payouts sent %s", got, total)
	}
	assertNoSeed(t, dataDir, env)
}
