package main

import (
	"database/sql"
	"math/big"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/acceptcryptohere/gateway/chain/eth/gethtest"
	"github.com/acceptcryptohere/gateway/chain/tron"
	"github.com/acceptcryptohere/gateway/chain/tron/tronfake"
	"github.com/acceptcryptohere/gateway/domain"
)

// refuseCosts makes the event store of dataDir refuse every NetworkCostPaid
// (a trigger aborts its insert, as a storage error would): the gateway's
// appends of network costs fail and everything else goes on.
func refuseCosts(t *testing.T, dataDir string, refuse bool) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "picd.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q := `DROP TRIGGER IF EXISTS refuse_network_costs`
	if refuse {
		q = `CREATE TRIGGER refuse_network_costs BEFORE INSERT ON events WHEN NEW.type = 'NetworkCostPaid'
			BEGIN SELECT RAISE(ABORT, 'network costs refused by the test'); END`
	}
	if _, err := db.Exec(q); err != nil {
		t.Fatal(err)
	}
}

// TestChainAuditFailsOnAMissingCost: on a real geth, an ETH and a USDT.ETH
// deposit are swept by the sweeper's loop while the event store refuses
// every network cost. The coins move; the gas the sweeps paid is not in
// the log. picd audit --chain exits 1 naming each sweep and its address,
// and the token's gas top-up (which the hot wallet paid). Once the log
// takes costs again, the sweeper books each of the three costs it kept
// due, once, and the audit reconciles to the wei.
func TestChainAuditFailsOnAMissingCost(t *testing.T) {
	node := gethtest.Start(t)
	token := node.DeployToken("USDT", 6)
	dir := t.TempDir()
	env := append(ethEnv(t, node, token, dir), sweepEvery)
	g := startEthGateway(t, env)
	key := tronSignUp(t, g)
	ethID, ethAddr := ethInvoice(t, g, key, "ETH", "0.5")
	usdtID, usdtAddr := ethInvoice(t, g, key, "USDT.ETH", "25")
	node.Fund(ethAddr, ether("0.5"))
	node.TransferToken(token, usdtAddr, big.NewInt(25_000_000))
	node.Mine(11)
	waitFor(t, g, "ETH paid", g.invoiceStatus(key, ethID), hasStatus("paid"))
	waitFor(t, g, "USDT.ETH paid", g.invoiceStatus(key, usdtID), hasStatus("paid"))
	node.Fund(ethHotWallet(t), ether("1"))
	mineToFinal(node)
	wantBalance(t, g, key, "ETH", "0.49875", "0")
	wantBalance(t, g, key, "USDT.ETH", "24.9375", "0")
	g.stop()

	refuseCosts(t, dir, true)
	p := startProc(t, env)
	sweepsDone(t, p, "eth", 2, func() {})
	waitScanned(t, p.gateway, env, node.Head())
	p.stop()
	if !strings.Contains(p.out.String(), "network costs refused by the test") {
		t.Fatalf("no cost append failed:\n%s", tail(p.out.String(), 6000))
	}

	code, rep, raw := runChainAudit(t, env)
	if code != exitProblems || rep.OK {
		t.Fatalf("audit --chain with the sweeps' costs missing: exit %d\n%s", code, raw)
	}
	for _, addr := range []string{ethAddr.Hex(), usdtAddr.Hex()} {
		named := false
		for _, pr := range rep.Problems {
			named = named || (strings.Contains(pr, strings.ToLower(addr)) && strings.Contains(pr, "sweep "))
		}
		if !named {
			t.Fatalf("no problem names the sweep of %s\n%s", addr, raw)
		}
	}
	if !strings.Contains(strings.Join(rep.Problems, "\n"), "topup 0x") {
		t.Fatalf("no problem names the gas top-up\n%s", raw)
	}

	refuseCosts(t, dir, false)
	p = startProc(t, env)
	waitFor(t, p.gateway, "the costs booked again", func() map[string]any {
		code, _, _ := runChainAudit(t, env)
		return map[string]any{"code": code}
	}, func(m map[string]any) bool { return m["code"] == 0 })
	p.stop()
	code, rep, raw = runChainAudit(t, env)
	wantReconciled(t, code, rep, raw, map[string]string{"ETH": "1", "USDT.ETH": "0"})
	if n, streams := costEvents(t, dir); n != 3 || streams != 3 {
		t.Fatalf("%d NetworkCostPaid in %d streams, want the 3 costs once each", n, streams)
	}
}

// costEvents counts the log's NetworkCostPaid events and their streams.
func costEvents(t *testing.T, dataDir string) (events, streams int) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "picd.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`SELECT COUNT(*), COUNT(DISTINCT stream) FROM events WHERE type = 'NetworkCostPaid'`).Scan(&events, &streams); err != nil {
		t.Fatal(err)
	}
	return events, streams
}

// TestTronPayoutCostsRefusedThenBooked: on the TRON fake, a TRX and a
// USDT.TRON payment are swept into the hot wallet; then, while the event
// store refuses every network cost, a USDT.TRON withdrawal and refund burn
// TRX for energy, and a TRX withdrawal signed on free bandwidth (fee 0)
// burns bandwidth once mined. All three confirm; their TRX is the
// operator's and not in the log: picd audit --chain exits 1 naming each
// transaction as due. Once the log takes costs again, the sweeper's pass
// books each once, and the audit reconciles to the sun: the hot wallet
// holds the ledger and exactly the operator's 100 TRX (#24).
func TestTronPayoutCostsRefusedThenBooked(t *testing.T) {
	node := tronfake.New(tronfake.Options{Now: time.Now})
	srv := httptest.NewServer(node)
	defer srv.Close()
	node.Mine(1)
	dir := t.TempDir()
	env := []string{"PIC_DATA_DIR=" + dir, "PIC_MNEMONIC=" + tronE2EMnemonic, "PIC_PRICES=" + tronE2EPrices,
		"PIC_TRON_API_URL=" + srv.URL, "PIC_TRON_USDT_CONTRACT=" + node.Token(), "PIC_TRON_START_BLOCK=1", sweepEvery}
	p := startProc(t, env)
	key := tronSignUp(t, p.gateway)
	invoice := func(asset, amount string) (string, string) {
		status, inv := p.do("POST", "/v1/invoices", key, map[string]any{"asset": asset, "amount": amount})
		if status/100 != 2 {
			t.Fatalf("create %s invoice: %d %v", asset, status, inv)
		}
		return inv["id"].(string), inv["pay_address"].(string)
	}
	trxID, trxAddr := invoice("TRX", "50")
	usdtID, usdtAddr := invoice("USDT.TRON", "25")
	if _, err := node.Pay(trxAddr, "TRX", 50_000_000); err != nil {
		t.Fatal(err)
	}
	if _, err := node.Pay(usdtAddr, "USDT", 25_000_000); err != nil {
		t.Fatal(err)
	}
	if err := node.Fund(tronHotWallet(t), 100_000_000, 0); err != nil {
		t.Fatal(err)
	}
	node.Mine(19)
	waitFor(t, p.gateway, "TRX paid", p.invoiceStatus(key, trxID), hasStatus("paid"))
	waitFor(t, p.gateway, "USDT.TRON paid", p.invoiceStatus(key, usdtID), hasStatus("paid"))
	mine := func() { node.Mine(1) }
	sweepsDone(t, p, "tron", 2, mine)

	refuseCosts(t, dir, true)
	payeeKey, _ := crypto.GenerateKey()
	payee := tron.EncodeAddress(tronfake.KeyAddress(payeeKey))
	if err := node.Fund(payee, 1, 0); err != nil { // activated: no account-creation fee
		t.Fatal(err)
	}
	ids := requestPayouts(t, p.gateway, key, "USDT.TRON", usdtID, "10", "2", payee)
	node.SetFreeNet(100_000)
	status, w := p.do("POST", "/v1/withdrawals", key, map[string]any{"asset": "TRX", "amount": "20", "to_address": payee})
	if status/100 != 2 {
		t.Fatalf("TRX withdrawal: %d %v", status, w)
	}
	trxPayout := waitWithin(t, p.gateway, 60*time.Second, "TRX payout signed on free bandwidth", p.payout(key, w["id"].(string)),
		func(m map[string]any) bool { return m["txid"] != nil })
	if trxPayout["network_fee"] != "0" {
		t.Fatalf("TRX payout signed on free bandwidth: %v", trxPayout)
	}
	node.SetFreeNet(0)
	ids = append(ids, w["id"].(string))
	payoutsConfirmed(t, p, key, ids, mine)
	txids := map[string]string{}
	for _, id := range ids {
		txids[id] = p.payout(key, id)()["txid"].(string)
	}
	head := node.Mine(1)
	waitScanned(t, p.gateway, env, uint64(head))
	p.stop()
	if !strings.Contains(p.out.String(), "network costs refused by the test") {
		t.Fatalf("no cost append failed:\n%s", tail(p.out.String(), 6000))
	}

	code, rep, raw := runChainAudit(t, env)
	if code != exitProblems || rep.OK || len(rep.Problems) != 3 {
		t.Fatalf("audit --chain with the payouts' costs missing: exit %d, want 3 problems\n%s", code, raw)
	}
	for id, txid := range txids {
		named := false
		for _, pr := range rep.Problems {
			named = named || (strings.Contains(pr, txid) && strings.Contains(pr, id) && strings.Contains(pr, "(due"))
		}
		if !named {
			t.Fatalf("no problem names payout %s (%s) as due\n%s", id, txid, raw)
		}
	}

	refuseCosts(t, dir, false)
	p = startProc(t, env)
	waitFor(t, p.gateway, "the costs booked again", func() map[string]any {
		code, _, _ := runChainAudit(t, env)
		return map[string]any{"code": code}
	}, func(m map[string]any) bool { return m["code"] == 0 })
	p.stop()
	code, rep, raw = runChainAudit(t, env)
	wantReconciled(t, code, rep, raw, map[string]string{"TRX": "100", "USDT.TRON": "0"})
	var audit struct {
		NetworkCosts map[string]map[string]string `json:"network_costs"`
	}
	auditJSON(t, env, &audit)
	info, _ := node.Receipt(trxPayout["txid"].(string))
	if got := audit.NetworkCosts[domain.CostPayoutBurnExcess]["TRX"]; got != domain.FromBaseUnits(big.NewInt(info.Fee), 6).String() || info.Fee <= 0 {
		t.Fatalf("payout_burn_excess %q TRX, the TRX payout burned %d sun beyond its fee of 0", got, info.Fee)
	}
	// Two sweeps (a TRX transfer; a top-up and a token transfer) and three
	// payouts: one cost each, once.
	if n, streams := costEvents(t, dir); n != 6 || streams != 6 {
		t.Fatalf("%d NetworkCostPaid in %d streams, want 6 costs once each", n, streams)
	}
}
