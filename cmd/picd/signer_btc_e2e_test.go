//go:build linux

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/shopspring/decimal"
)

// A Bitcoin payout on btcd, signed by a separate picd signer for a
// gateway that holds no seed; the second payout passes the hourly limit
// and is paid after picd signer approve.
func TestSignerSignsBitcoinPayouts(t *testing.T) {
	n := newBtcNode(t, btcdBinary(t))
	n.start(t)
	n.generate(t, 310) // SegWit is active on simnet from block 300
	dataDir, signerDir := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(signerDir, "mnemonic"), []byte(tronE2EMnemonic+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	signer := startSigner(t, signerDir, dataDir, "PIC_SIGNER_LIMITS=BTC=0.15/", "PIC_BTC_NETWORK=simnet")
	env := []string{"PIC_DATA_DIR=" + dataDir, "PIC_MNEMONIC=", "PIC_MNEMONIC_FILE=", "PIC_SIGNER=unix://" + signer.socket, "PIC_PRICES=" + tronE2EPrices,
		"PIC_BTC_NETWORK=simnet", "PIC_BTC_RPC_HOST=" + n.rpcHost, "PIC_BTC_RPC_USER=test", "PIC_BTC_RPC_PASS=test"}
	g := startGateway(t, env)
	key := tronSignUp(t, g)
	status, inv := g.do("POST", "/v1/invoices", key, map[string]any{"asset": "BTC", "amount": "0.5"})
	if status != 201 {
		t.Fatalf("create invoice: %d %v", status, inv)
	}
	sats := decimal.RequireFromString(inv["pay_amount"].(string)).Shift(8).IntPart()
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(g.logs.String(), "bitcoin watcher starts"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no bitcoin scan:\n%s", g.logs)
		}
	}
	n.pay(t, inv["pay_address"].(string), sats)
	n.generate(t, 7) // final at 6
	wantBalance(t, g, key, "BTC", "0.49875", "0")
	assertNoSeed(t, dataDir, env)

	payeeKey, _ := btcec.NewPrivateKey()
	payee, _ := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(payeeKey.PubKey().SerializeCompressed()), &chaincfg.SimNetParams)
	payeeScript, _ := txscript.PayToAddrScript(payee)
	pay := func(amount string) map[string]any {
		status, po := g.do("POST", "/v1/withdrawals", key, map[string]any{"asset": "BTC", "amount": amount, "to_address": payee.EncodeAddress()})
		if status/100 != 2 {
			t.Fatalf("BTC withdrawal: %d %v", status, po)
		}
		return po
	}
	confirmed := func(id string) {
		po := waitWithin(t, g, 60*time.Second, id+" sent", g.payout(key, id), hasStatus("sent"))
		n.generate(t, 2)
		po = waitWithin(t, g, 75*time.Second, id+" confirmed", g.payout(key, id), hasStatus("confirmed"))
		hash, err := chainhash.NewHashFromStr(po["txid"].(string))
		if err != nil {
			t.Fatalf("payout %v", po)
		}
		tx, err := n.client.GetRawTransaction(hash)
		if err != nil {
			t.Fatal(err)
		}
		want := decimal.RequireFromString(po["sent_amount"].(string)).Shift(8).IntPart()
		for _, out := range tx.MsgTx().TxOut {
			if string(out.PkScript) == string(payeeScript) && out.Value == want {
				return
			}
		}
		t.Fatalf("transaction %s pays the payee no %d sat", hash, want)
	}
	first := pay("0.1")["id"].(string)
	confirmed(first)
	if !strings.Contains(signer.logs.String(), `"msg":"payout signed","payout_id":"`+first+`"`) {
		t.Fatalf("the signer did not sign %s:\n%s", first, signer.logs)
	}
	second := pay("0.1")["id"].(string) // 0.2 in the hour > 0.15: held
	var pending string
	for deadline := time.Now().Add(45 * time.Second); !strings.Contains(pending, second); time.Sleep(300 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s not held: %s\nsigner:\n%s", second, pending, signer.logs)
		}
		pending, _ = signer.cli(t, "pending")
	}
	if out, err := signer.cli(t, "approve", second); err != nil || !strings.Contains(out, "approved payout "+second) {
		t.Fatalf("approve: %v %s", err, out)
	}
	confirmed(second)
	assertNoSeed(t, dataDir, env)
}
