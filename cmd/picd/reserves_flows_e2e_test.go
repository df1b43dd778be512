package main

import (
	"math/big"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/acceptcryptohere/gateway/chain/eth/gethtest"
	"github.com/acceptcryptohere/gateway/chain/tron"
	"github.com/acceptcryptohere/gateway/chain/tron/tronfake"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/reserves"
)

// The whole money path of a chain, then both audits (#24): deposits, the
// sweeper's regular loop moving them to the hot wallet, a withdrawal and
// a refund of each asset. Every network cost the operator paid (top-ups'
// and sweeps' gas, token payouts' gas) is booked, so the hot wallet holds
// exactly the ledger's coins plus what the operator funded it with: the
// float is that funding to the unit.

// sweepEvery makes the sweeper run every second instead of every minute.
const sweepEvery = "PIC_SWEEP_INTERVAL=1s"

// assetsByCode indexes an audit report's assets.
func assetsByCode(rep reservesReport) map[string]reserves.Asset {
	out := map[string]reserves.Asset{}
	for _, a := range rep.Assets {
		out[a.Asset] = a
	}
	return out
}

// wantReconciled fails unless every asset of rep is OK with nothing in
// flight, chain = ledger + float, and float as given (per asset).
func wantReconciled(t *testing.T, code int, rep reservesReport, raw string, float map[string]string) {
	t.Helper()
	if code != 0 || !rep.OK || len(rep.InFlight) != 0 || len(rep.Problems) != 0 || len(rep.Assets) != len(float) {
		t.Fatalf("audit --chain: exit %d\n%s", code, raw)
	}
	for code, want := range float {
		a, ok := assetsByCode(rep)[code]
		if !ok || !a.OK || len(a.Differ) != 0 || a.Float.String() != want || !a.Chain.Equal(a.Ledger.Add(a.Float)) {
			t.Fatalf("%s: %+v, want a float of %s\n%s", code, a, want, raw)
		}
	}
}

// requestPayouts asks a withdrawal and a refund (of the given invoice) of
// asset, to payee, and returns their ids.
func requestPayouts(t *testing.T, g *gateway, key, asset, invoiceID, withdraw, refund, payee string) []string {
	t.Helper()
	status, w := g.do("POST", "/v1/withdrawals", key, map[string]any{"asset": asset, "amount": withdraw, "to_address": payee})
	if status/100 != 2 {
		t.Fatalf("%s withdrawal: %d %v", asset, status, w)
	}
	status, r := g.do("POST", "/v1/invoices/"+invoiceID+"/refunds", key, map[string]any{"amount": refund, "to_address": payee})
	if status/100 != 2 {
		t.Fatalf("%s refund: %d %v", asset, status, r)
	}
	return []string{w["id"].(string), r["id"].(string)}
}

// sweepsDone waits until the log says n sweeps ended (prefix: "eth" or
// "tron"), calling tick between looks (to mine).
func sweepsDone(t *testing.T, p *proc, prefix string, n int, tick func()) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for strings.Count(p.out.String(), prefix+": sweep done") < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d %s sweeps not done within 90 s:\n%s", n, prefix, tail(p.out.String(), 6000))
		}
		tick()
		time.Sleep(200 * time.Millisecond)
	}
}

// payoutsConfirmed waits until every payout is confirmed, calling tick
// between looks (to mine). The processor looks at a sent payout's depth
// every 30 s.
func payoutsConfirmed(t *testing.T, p *proc, key string, ids []string, tick func()) {
	t.Helper()
	deadline := time.Now().Add(150 * time.Second)
	for _, id := range ids {
		for {
			po := p.payout(key, id)()
			if po["status"] == "confirmed" {
				break
			}
			if po["status"] == "failed" || time.Now().After(deadline) {
				t.Fatalf("payout %s: %v\n%s", id, po, tail(p.out.String(), 6000))
			}
			tick()
			time.Sleep(300 * time.Millisecond)
		}
	}
}

// TestChainAuditAfterEveryFlowOnGeth: on a real geth, an ETH and a
// USDT.ETH invoice are paid and become final; the sweeper (every second)
// moves both to the hot wallet, the token after a gas top-up; a withdrawal
// and a refund of each are paid from the hot wallet. picd audit agrees
// with itself and picd audit --chain with the node to the wei: the
// deposit addresses hold what the sweeps left, the hot wallet the rest of
// the ledger plus exactly the 1 ETH the operator funded it with.
func TestChainAuditAfterEveryFlowOnGeth(t *testing.T) {
	node := gethtest.Start(t)
	token := node.DeployToken("USDT", 6)
	env := append(ethEnv(t, node, token, t.TempDir()), sweepEvery)
	g := startEthGateway(t, env)
	key := tronSignUp(t, g)
	ethID, ethAddr := ethInvoice(t, g, key, "ETH", "0.5")
	usdtID, usdtAddr := ethInvoice(t, g, key, "USDT.ETH", "25")
	node.Fund(ethAddr, ether("0.5"))
	node.TransferToken(token, usdtAddr, big.NewInt(25_000_000))
	node.Mine(11)
	waitFor(t, g, "ETH paid", g.invoiceStatus(key, ethID), hasStatus("paid"))
	waitFor(t, g, "USDT.ETH paid", g.invoiceStatus(key, usdtID), hasStatus("paid"))
	hot := ethHotWallet(t)
	node.Fund(hot, ether("1")) // the operator's gas money: the float
	mineToFinal(node)
	wantBalance(t, g, key, "ETH", "0.49875", "0")
	wantBalance(t, g, key, "USDT.ETH", "24.9375", "0")
	g.stop()

	// The sweeper's own loop, at start and every second (geth mines each
	// transaction as it comes).
	p := startProc(t, env)
	waitFor(t, p.gateway, "first Ethereum scan", func() map[string]any {
		status, _ := p.do("GET", "/readyz", "", nil)
		return map[string]any{"status": status}
	}, func(m map[string]any) bool { return m["status"] == 200 })
	sweepsDone(t, p, "eth", 2, func() {})
	if b := node.TokenBalance(token, hot); b.Int64() != 25_000_000 {
		t.Fatalf("hot wallet holds %s USDT units after the sweep, want 25000000", b)
	}
	if b := node.Balance(ethAddr); b.Cmp(ether("0.01")) >= 0 {
		t.Fatalf("ETH address still holds %s wei after its sweep", b)
	}

	payeeKey, _ := crypto.GenerateKey()
	payee := crypto.PubkeyToAddress(payeeKey.PublicKey).Hex()
	ids := append(requestPayouts(t, p.gateway, key, "ETH", ethID, "0.2", "0.1", payee),
		requestPayouts(t, p.gateway, key, "USDT.ETH", usdtID, "10", "2", payee)...)
	payoutsConfirmed(t, p, key, ids, func() { node.Mine(1) })
	if got := node.TokenBalance(token, crypto.PubkeyToAddress(payeeKey.PublicKey)); got.Int64() != 12_000_000 {
		t.Fatalf("payee holds %s USDT units, want 12000000 (token payouts' fee is 0 in the token)", got)
	}
	head := node.Head()
	waitScanned(t, p.gateway, env, head)
	p.stop()

	auditAgrees(t, env)
	code, rep, raw := runChainAudit(t, env)
	wantReconciled(t, code, rep, raw, map[string]string{"ETH": "1", "USDT.ETH": "0"})
	// The token's ledger side: the merchant's 12.9375 and the fee revenue.
	if u := assetsByCode(rep)["USDT.ETH"]; u.Ledger.String() != "13" {
		t.Fatalf("USDT.ETH ledger %s, want 13 (25 in, 12 paid out)\n%s", u.Ledger, raw)
	}
}

// TestChainAuditAfterEveryFlowOnTheTronFake: the same on the TRON fake
// node (the HTTP API's wire format): a TRX and a USDT.TRON invoice paid
// and solidified; the sweeper moves the TRX (less the bandwidth its
// transfer burns) and the USDT (after a TRX top-up for energy) to the hot
// wallet; a withdrawal and a refund of each are paid from it. Both audits
// agree to the sun; the hot wallet holds the ledger's coins plus the 100
// TRX the operator funded it with and what the payouts' fees left in it.
func TestChainAuditAfterEveryFlowOnTheTronFake(t *testing.T) {
	node := tronfake.New(tronfake.Options{Now: time.Now})
	srv := httptest.NewServer(node)
	defer srv.Close()
	node.Mine(1)
	env := []string{"PIC_DATA_DIR=" + t.TempDir(), "PIC_MNEMONIC=" + tronE2EMnemonic, "PIC_PRICES=" + tronE2EPrices,
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
	hot := tronHotWallet(t)
	if err := node.Fund(hot, 100_000_000, 0); err != nil { // the operator's TRX for energy: the float
		t.Fatal(err)
	}
	node.Mine(19)
	waitFor(t, p.gateway, "TRX paid", p.invoiceStatus(key, trxID), hasStatus("paid"))
	waitFor(t, p.gateway, "USDT.TRON paid", p.invoiceStatus(key, usdtID), hasStatus("paid"))

	mine := func() { node.Mine(1) }
	sweepsDone(t, p, "tron", 2, mine)
	if _, units, _ := node.Balances(hot); units.Int64() != 25_000_000 {
		t.Fatalf("hot wallet holds %s USDT units after the sweep, want 25000000", units)
	}

	payeeKey, _ := crypto.GenerateKey()
	payee := tron.EncodeAddress(tronfake.KeyAddress(payeeKey))
	ids := append(requestPayouts(t, p.gateway, key, "TRX", trxID, "20", "5", payee),
		requestPayouts(t, p.gateway, key, "USDT.TRON", usdtID, "10", "2", payee)...)
	payoutsConfirmed(t, p, key, ids, mine)
	// Every payout's sent amount arrived. A TRX payout's network fee is
	// what its transaction's info says it burned (the refund, signed
	// before the withdrawal activated the payee, was signed with the
	// activation's fee and burned less: the rest went back to the
	// merchant). A USDT.TRON payout's network fee is the TRX it burned,
	// converted into the token: the network took none of the token, so it
	// is the operator's revenue, and the TRX burned the operator's cost.
	var trxSent, usdtSent, usdtFees domain.Amount
	for _, id := range ids {
		po := p.payout(key, id)()
		sent, fee := domain.MustAmount(po["sent_amount"].(string)), domain.MustAmount(po["network_fee"].(string))
		if po["asset"] == "TRX" {
			trxSent = trxSent.Add(sent)
			info, _ := node.Receipt(po["txid"].(string))
			if burned := domain.FromBaseUnits(big.NewInt(info.Fee), 6); !fee.Equal(burned) {
				t.Fatalf("TRX %s %s: network_fee %s, its transaction burned %s TRX", po["kind"], id, fee, burned)
			}
		} else {
			usdtSent = usdtSent.Add(sent)
			usdtFees = usdtFees.Add(fee)
		}
	}
	if !usdtFees.IsPositive() {
		t.Fatalf("the USDT.TRON payouts charged no network fee: the test means to price the TRX they burn")
	}
	sun, units, _ := node.Balances(payee)
	if domain.FromBaseUnits(big.NewInt(sun), 6).String() != trxSent.String() || domain.FromBaseUnits(units, 6).String() != usdtSent.String() {
		t.Fatalf("payee holds %d sun and %s units; the payouts sent %s TRX and %s USDT.TRON", sun, units, trxSent, usdtSent)
	}
	head := node.Mine(1)
	waitScanned(t, p.gateway, env, uint64(head))
	p.stop()

	auditAgrees(t, env)
	code, rep, raw := runChainAudit(t, env)
	// Exact: the hot wallet holds the ledger's coins and the operator's
	// 100 TRX, not a sun more or less; no USDT beyond the ledger.
	wantReconciled(t, code, rep, raw, map[string]string{"TRX": "100", "USDT.TRON": "0"})
	// The token's ledger side: 25 in, less what the payouts sent; the
	// fees charged in the token stayed, as the operator's revenue.
	if u := assetsByCode(rep)["USDT.TRON"]; !u.Ledger.Equal(domain.MustAmount("25").Sub(usdtSent)) {
		t.Fatalf("USDT.TRON ledger %s, want 25 less the %s sent\n%s", u.Ledger, usdtSent, raw)
	}
	var audit struct {
		Ledger       map[string]map[string]string `json:"ledger"`
		NetworkCosts map[string]map[string]string `json:"network_costs"`
	}
	auditJSON(t, env, &audit)
	if got := audit.Ledger[domain.NetworkFeeRevenueAccount]["USDT.TRON"]; got != usdtFees.String() {
		t.Fatalf("%s holds %q USDT.TRON, want the token payouts' fees %s\nledger %v", domain.NetworkFeeRevenueAccount, got, usdtFees, audit.Ledger)
	}
	if got := audit.Ledger[domain.NetworkFeeAccount]["USDT.TRON"]; got != "" && got != "0" {
		t.Fatalf("network:fees holds %s USDT.TRON: the network took none of the token", got)
	}
	if got := audit.NetworkCosts[domain.CostTokenPayoutGas]["TRX"]; got == "" || got == "0" {
		t.Fatalf("no token_payout_gas in TRX: %v", audit.NetworkCosts)
	}
}
