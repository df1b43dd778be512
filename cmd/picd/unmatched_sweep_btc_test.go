//go:build linux

package main

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/shopspring/decimal"

	"github.com/acceptcryptohere/gateway/reserves"
)

// TestBitcoinUnmatchedDepositDecidedSweepJoinsTheWallet (#16): on a real
// btcd (simnet), a payment to an invoice's address that the ledger did not
// take (the invoice was missing from the read model when its block was
// scanned, as while a projection lags) is kept unmatched and decided
// "sweep". Before it is final nothing happens; once final, the wallet takes
// the output in as spendable (no transaction: the address's key spends it
// like any deposit), the deposit is "swept" naming the outpoint, a restart
// does not take it twice, a payout spends it, and both audits agree before
// and after, the output counted as operator float.
func TestBitcoinUnmatchedDepositDecidedSweepJoinsTheWallet(t *testing.T) {
	n := newBtcNode(t, btcdBinary(t))
	n.start(t)
	n.generate(t, 310) // SegWit is active on simnet from block 300
	dataDir := t.TempDir()
	env := []string{"PIC_DATA_DIR=" + dataDir, "PIC_MNEMONIC=" + tronE2EMnemonic, "PIC_PRICES=" + tronE2EPrices,
		"PIC_BTC_NETWORK=simnet", "PIC_BTC_RPC_HOST=" + n.rpcHost, "PIC_BTC_RPC_USER=test", "PIC_BTC_RPC_PASS=test"}
	p := startProc(t, env)
	key := tronSignUp(t, p.gateway)
	status, inv := p.do("POST", "/v1/invoices", key, map[string]any{"asset": "BTC", "amount": "0.001"})
	if status != 201 {
		t.Fatalf("create invoice: %d %v", status, inv)
	}
	id, address := inv["id"].(string), inv["pay_address"].(string)
	waitLog(t, p, "bitcoin watcher starts", 30*time.Second)
	n.pay(t, address, decimal.RequireFromString(inv["pay_amount"].(string)).Shift(8).IntPart())
	n.generate(t, 7) // final at 6
	wantBalance(t, p.gateway, key, "BTC", "0.0009975", "0")

	// The unmatched payment: 0.005 BTC to the same address while the
	// invoice's read-model row is away.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "picd.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	restore := hideInvoiceRow(t, db, id)
	txid := n.pay(t, address, 500_000)
	n.generate(t, 1)
	var u unmatchedRow
	waitFor(t, p.gateway, "the BTC payment kept unmatched", func() map[string]any {
		u = unmatchedList(t, env)["BTC"]
		return map[string]any{"txid": u.TxID}
	}, func(m map[string]any) bool { return m["txid"] == txid })
	restore()
	outpoint := fmt.Sprintf("%s:%d", txid, u.OutputIndex)
	if u.Address != address || u.Amount != "0.005" || u.Status != "open" {
		t.Fatalf("unmatched %+v", u)
	}
	if out := picdChain(t, env, true, "unmatched", "sweep", fmt.Sprint(u.ID), "--note", "operator's"); !strings.Contains(out, "marked to sweep") {
		t.Fatalf("sweep %d:\n%s", u.ID, out)
	}

	// One block deep, not final (6): the wallet does not take it in.
	p.stop()
	p = startProc(t, env)
	waitLog(t, p, "bitcoin unmatched deposit decided sweep waits for finality", 30*time.Second)
	if got := unmatchedList(t, env, "--all")["BTC"]; got.Status != "sweep" || walletHas(t, db, outpoint) != "" {
		t.Fatalf("taken in before final: %+v, wallet %q\n%s", got, walletHas(t, db, outpoint), p.out)
	}
	p.stop()
	n.generate(t, 5)

	// Final: taken in at start (then every minute).
	p = startProc(t, env)
	waitFor(t, p.gateway, "the BTC deposit swept", func() map[string]any {
		return map[string]any{"status": unmatchedList(t, env, "--all")["BTC"].Status}
	}, hasStatus("swept"))
	got := unmatchedList(t, env, "--all")["BTC"]
	if !strings.HasPrefix(got.Note, "operator's; swept to the hot wallet as output "+outpoint) || got.InvoiceID != "" {
		t.Fatalf("swept %+v", got)
	}
	if w := walletHas(t, db, outpoint); w != "unmatched available 500000" {
		t.Fatalf("wallet output %s: %q", outpoint, w)
	}
	if inv := p.invoiceStatus(key, id)(); inv["amount_received"] != "0.001" {
		t.Fatalf("the operator's output was credited: %v", inv)
	}
	p.stop()
	btcAudits(t, env, "0.001", "0.005")

	// A restart takes nothing in twice; a payout spends the output
	// (largest first: 0.005 before the merchant's 0.001).
	p = startProc(t, env)
	payeeKey, _ := btcec.NewPrivateKey()
	payee, _ := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(payeeKey.PubKey().SerializeCompressed()), &chaincfg.SimNetParams)
	status, po := p.do("POST", "/v1/withdrawals", key, map[string]any{"asset": "BTC", "amount": "0.0009", "to_address": payee.EncodeAddress()})
	if status/100 != 2 {
		t.Fatalf("BTC withdrawal: %d %v", status, po)
	}
	po = waitWithin(t, p.gateway, 60*time.Second, "payout sent", p.payout(key, po["id"].(string)), hasStatus("sent"))
	h, err := chainhash.NewHashFromStr(po["txid"].(string))
	if err != nil {
		t.Fatalf("payout %v", po)
	}
	tx, err := n.client.GetRawTransaction(h)
	if err != nil {
		t.Fatal(err)
	}
	if ins := tx.MsgTx().TxIn; len(ins) != 1 || ins[0].PreviousOutPoint.String() != outpoint {
		t.Fatalf("payout %s spends %v, want %s", h, ins, outpoint)
	}
	n.generate(t, 2)
	waitWithin(t, p.gateway, 75*time.Second, "payout confirmed", p.payout(key, po["id"].(string)), hasStatus("confirmed"))
	p.stop()
	var rows int
	if err := db.QueryRow(`SELECT count(*) FROM chain_btc_utxos WHERE source = 'unmatched'`).Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("%d unmatched outputs in the wallet (%v), want 1", rows, err)
	}
	btcAudits(t, env, "0.0001", "0.005")
}

// hideInvoiceRow takes an invoice's row out of the invoices read model;
// restore puts it back as it was.
func hideInvoiceRow(t *testing.T, db *sql.DB, id string) (restore func()) {
	t.Helper()
	rows, err := db.Query(`SELECT * FROM invoices WHERE invoice_id = ?`, id)
	if err != nil {
		t.Fatal(err)
	}
	cols, _ := rows.Columns()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if !rows.Next() {
		t.Fatalf("no invoices row %s", id)
	}
	if err := rows.Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if _, err := db.Exec(`DELETE FROM invoices WHERE invoice_id = ?`, id); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		q := `INSERT INTO invoices (` + strings.Join(cols, ", ") + `) VALUES (?` + strings.Repeat(", ?", len(cols)-1) + `)`
		if _, err := db.Exec(q, vals...); err != nil {
			t.Fatal(err)
		}
	}
}

// walletHas is "source state amount_sat" of a wallet output; "" when the
// wallet does not have it.
func walletHas(t *testing.T, db *sql.DB, outpoint string) string {
	t.Helper()
	var source, state string
	var sat int64
	err := db.QueryRow(`SELECT source, state, amount_sat FROM chain_btc_utxos WHERE outpoint = ?`, outpoint).Scan(&source, &state, &sat)
	if err == sql.ErrNoRows {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s %s %d", source, state, sat)
}

// btcAudits runs picd audit and picd audit --chain: both agree, the
// ledger holds ledger BTC and the operator's float is float.
func btcAudits(t *testing.T, env []string, ledger, float string) {
	t.Helper()
	auditAgrees(t, env)
	code, rep, raw := runChainAudit(t, env)
	var a reserves.Asset
	for _, x := range rep.Assets {
		if x.Asset == "BTC" {
			a = x
		}
	}
	if code != 0 || !rep.OK || a.Ledger.String() != ledger || a.Float.String() != float || !a.Chain.Equal(a.Ledger.Add(a.Float)) {
		t.Fatalf("audit --chain: exit %d, BTC %+v; want ledger %s, float %s\n%s", code, a, ledger, float, raw)
	}
}
