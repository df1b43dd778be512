package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/acceptcryptohere/gateway/chain/hd"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/reserves"
)

// TestChainAuditOnBtcd: a gateway on a real btcd (simnet) takes a BTC
// payment; picd audit --chain finds its output on the node, to the
// satoshi. Then the output is spent with the deposit address's own key
// behind the gateway's back: the audit names the address and the whole
// output as the difference, and exits 1.
func TestChainAuditOnBtcd(t *testing.T) {
	n := newBtcNode(t, btcdBinary(t))
	n.start(t)
	n.generate(t, 110) // the first coinbase is mature after 100 blocks
	env := []string{"PIC_DATA_DIR=" + t.TempDir(), "PIC_BTC_NETWORK=simnet", "PIC_BTC_RPC_HOST=" + n.rpcHost,
		"PIC_BTC_RPC_USER=test", "PIC_BTC_RPC_PASS=test", "PIC_MNEMONIC=" + tronE2EMnemonic}
	g := startGateway(t, env)
	key := tronSignUp(t, g)
	status, inv := g.do("POST", "/v1/invoices", key, map[string]any{"asset": "BTC", "amount": "0.001"})
	if status != 201 {
		t.Fatalf("create invoice: %d %v", status, inv)
	}
	id, address := inv["id"].(string), inv["pay_address"].(string)
	txid := n.pay(t, address, 100_000)
	n.generate(t, 2)
	waitFor(t, g, "BTC paid", g.invoiceStatus(key, id), hasStatus("paid"))
	g.stop()

	code, rep, raw := runChainAudit(t, env)
	btcOf := func(rep reservesReport) reserves.Asset {
		for _, a := range rep.Assets {
			if a.Asset == "BTC" {
				return a
			}
		}
		t.Fatalf("no BTC in the report\n%s", raw)
		return reserves.Asset{}
	}
	if a := btcOf(rep); code != 0 || !rep.OK || !a.Ledger.Equal(domain.MustAmount("0.001")) || !a.Chain.Equal(a.Ledger) {
		t.Fatalf("audit --chain after the payment: exit %d\n%s", code, raw)
	}

	n.generate(t, 400) // simnet activates segwit (a witness spend) at 300 blocks and more
	spendBehindTheBack(t, n, address, txid, 100_000)
	n.generate(t, 1)
	code, rep, raw = runChainAudit(t, env)
	a := btcOf(rep)
	if code != exitProblems || len(a.Differ) != 1 {
		t.Fatalf("audit --chain after the output was spent: exit %d\n%s", code, raw)
	}
	if d := a.Differ[0]; d.Address != address || d.Diff.String() != "-0.001" || !strings.Contains(d.Note, txid+":0") {
		t.Fatalf("differs: %+v, want %s at -0.001 naming %s:0", d, address, txid)
	}
}

// spendBehindTheBack sends output txid:0 of one of the gateway's
// addresses to the node's own key, signed with the key the gateway's seed
// derives for it (as whoever holds the seed could).
func spendBehindTheBack(t *testing.T, n *btcNode, address, txid string, sats int64) {
	t.Helper()
	w, err := hd.NewWallet(tronE2EMnemonic, "", n.params)
	if err != nil {
		t.Fatal(err)
	}
	var idx int64 = -1
	for i := int64(0); i < 1000 && idx < 0; i++ {
		if a, _ := w.Address(domain.ChainBitcoin, i); a == address {
			idx = i
		}
	}
	if idx < 0 {
		t.Fatalf("%s is none of the first 1000 addresses", address)
	}
	k, err := w.PrivateKey(domain.ChainBitcoin, idx)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := btcutil.DecodeAddress(address, n.params)
	if err != nil {
		t.Fatal(err)
	}
	pkScript, err := txscript.PayToAddrScript(addr)
	if err != nil {
		t.Fatal(err)
	}
	h, err := chainhash.NewHashFromStr(txid)
	if err != nil {
		t.Fatal(err)
	}
	tx := wire.NewMsgTx(wire.TxVersion)
	tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: *h, Index: 0}, nil, nil))
	tx.AddTxOut(wire.NewTxOut(sats-1_000, n.script))
	fetcher := txscript.NewCannedPrevOutputFetcher(pkScript, sats)
	wit, err := txscript.WitnessSignature(tx, txscript.NewTxSigHashes(tx, fetcher), 0, sats, pkScript, txscript.SigHashAll, k, true)
	if err != nil {
		t.Fatal(err)
	}
	tx.TxIn[0].Witness = wit
	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	param, _ := json.Marshal(hex.EncodeToString(buf.Bytes()))
	if _, err := n.client.RawRequest("sendrawtransaction", []json.RawMessage{param}); err != nil {
		t.Fatalf("sendrawtransaction: %v", err)
	}
}

// TestChainAuditAfterEveryFlowOnBtcd: on a real btcd (simnet), two BTC
// invoices are paid and become final, then a withdrawal (its fee deducted)
// and a refund of one invoice (its fee on top) are paid from the wallet's
// outputs and confirmed. picd audit agrees with itself, and picd audit
// --chain finds on the node exactly the ledger's BTC, to the satoshi, with
// no float: every fee a Bitcoin payout paid is the merchant's, fixed when
// signed, and Bitcoin has no sweeps (#24).
func TestChainAuditAfterEveryFlowOnBtcd(t *testing.T) {
	n := newBtcNode(t, btcdBinary(t))
	n.start(t)
	n.generate(t, 310) // SegWit is active on simnet from block 300
	env := []string{"PIC_DATA_DIR=" + t.TempDir(), "PIC_MNEMONIC=" + tronE2EMnemonic, "PIC_PRICES=" + tronE2EPrices,
		"PIC_BTC_NETWORK=simnet", "PIC_BTC_RPC_HOST=" + n.rpcHost, "PIC_BTC_RPC_USER=test", "PIC_BTC_RPC_PASS=test"}
	p := startProc(t, env)
	key := tronSignUp(t, p.gateway)
	// Two payments: two outputs, one for each payout to spend (a payout
	// spends confirmed outputs only, not the other's change).
	var id string
	waitLog(t, p, "bitcoin watcher starts", 30*time.Second)
	for _, amount := range []string{"0.002", "0.001"} {
		status, inv := p.do("POST", "/v1/invoices", key, map[string]any{"asset": "BTC", "amount": amount})
		if status != 201 {
			t.Fatalf("create invoice: %d %v", status, inv)
		}
		if id == "" {
			id = inv["id"].(string)
		}
		n.pay(t, inv["pay_address"].(string), domain.MustAmount(amount).Decimal().Shift(8).IntPart())
	}
	n.generate(t, 7) // final at 6
	wantBalance(t, p.gateway, key, "BTC", "0.0029925", "0")

	payeeKey, _ := btcec.NewPrivateKey()
	payee, _ := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(payeeKey.PubKey().SerializeCompressed()), &chaincfg.SimNetParams)
	ids := requestPayouts(t, p.gateway, key, "BTC", id, "0.0008", "0.0005", payee.EncodeAddress())
	for _, po := range ids {
		waitWithin(t, p.gateway, 60*time.Second, "payout sent", p.payout(key, po), hasStatus("sent"))
	}
	n.generate(t, 2)
	var sent, fees domain.Amount
	for _, po := range ids {
		got := waitWithin(t, p.gateway, 75*time.Second, "payout confirmed", p.payout(key, po), hasStatus("confirmed"))
		sent = sent.Add(domain.MustAmount(got["sent_amount"].(string)))
		fees = fees.Add(domain.MustAmount(got["network_fee"].(string)))
	}
	if !fees.IsPositive() {
		t.Fatalf("the payouts paid no fee")
	}
	p.stop()

	// 0.003 in; out: the withdrawal's 0.0008 (its fee in it), the refund's
	// 0.0005 and its fee on top.
	auditAgrees(t, env)
	code, rep, raw := runChainAudit(t, env)
	var a reserves.Asset
	for _, x := range rep.Assets {
		if x.Asset == "BTC" {
			a = x
		}
	}
	want := domain.MustAmount("0.003").Sub(sent).Sub(fees)
	if code != 0 || !rep.OK || len(rep.InFlight) != 0 || len(a.Differ) != 0 || a.Ledger.String() != want.String() ||
		!a.Float.IsZero() || !a.Chain.Equal(a.Ledger) {
		t.Fatalf("audit --chain: exit %d, BTC %+v; want the ledger %s on chain exactly, no float\n%s", code, a, want, raw)
	}
}
