package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/chain/eth/gethtest"
)

// #16 item 5 and 8b: missed payments are found by picd chain rescan, and
// payments no invoice takes are kept for an operator's decision, on a
// real geth in --dev mode.

// picdChain runs `picd chain args...` on env; it fails the test unless
// the command succeeds (ok) or fails (!ok), and returns its output: what
// it printed when it succeeded, its error (and logs) when it failed.
func picdChain(t *testing.T, env []string, ok bool, args ...string) string {
	t.Helper()
	cmd := exec.Command(picdBin, append([]string{"chain"}, args...)...)
	cmd.Env = append(os.Environ(), append([]string{"PIC_METRICS_LISTEN=", "PIC_SIMULATOR=true"}, env...)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if (err == nil) != ok {
		t.Fatalf("picd chain %s: %v (want ok=%v)\n%s\n%s", strings.Join(args, " "), err, ok, stdout.String(), stderr.String())
	}
	if ok {
		return stdout.String()
	}
	return stderr.String()
}

// metric reads one sample from picd's /metrics at addr; -2 when absent.
func metric(t *testing.T, addr, sample string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindStringSubmatch(string(body))
	if m == nil {
		return -2
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// waitMetric waits until the sample satisfies ok.
func waitMetric(t *testing.T, g *gateway, addr, sample string, ok func(float64) bool) float64 {
	t.Helper()
	var v float64
	waitFor(t, g, sample, func() map[string]any {
		v = metric(t, addr, sample)
		return map[string]any{sample: v}
	}, func(map[string]any) bool { return ok(v) })
	return v
}

// paidHook reports whether the receiver got invoice.paid for the invoice.
func paidHook(rc *hookReceiver, invoiceID string) bool {
	_, order, _ := rc.snapshot()
	return slices.Contains(order[invoiceID], "invoice.paid")
}

// waitHook waits for the invoice's invoice.paid webhook.
func waitHook(t *testing.T, g *gateway, rc *hookReceiver, invoiceID string) {
	t.Helper()
	waitFor(t, g, "invoice.paid webhook of "+invoiceID, func() map[string]any {
		_, order, _ := rc.snapshot()
		return map[string]any{"webhooks": order[invoiceID]}
	}, func(map[string]any) bool { return paidHook(rc, invoiceID) })
}

// A payment below the configured start block is never seen by the watcher;
// picd chain rescan, run while picd serves, credits it once (ETH and the
// ERC-20), the invoices become paid and their webhooks arrive; a second
// rescan credits nothing again, and the audit agrees.
func TestRescanFindsPaymentsBelowTheStartBlock(t *testing.T) {
	node := gethtest.Start(t)
	token := node.DeployToken("USDT", 6)
	start := node.Head() + 8
	metricsAddr := "127.0.0.1:32101"
	env := append(ethEnv(t, node, token, t.TempDir()), "PIC_ETH_START_BLOCK="+strconv.FormatUint(start, 10),
		"PIC_WEBHOOK_ALLOW_PRIVATE=true")
	rc := newHookReceiver(t)
	g := startGateway(t, append(env, "PIC_METRICS_LISTEN="+metricsAddr))
	key := signUp(t, g, rc)
	ethID, ethAddr := ethInvoice(t, g, key, "ETH", "0.5")
	usdtID, usdtAddr := ethInvoice(t, g, key, "USDT.ETH", "25")

	// Paid below the start block: the watcher, misconfigured, never looks there.
	from := node.Head() + 1
	node.Fund(ethAddr, ether("0.5"))
	node.TransferToken(token, usdtAddr, big.NewInt(25_000_000))
	if h := node.Head(); h >= start {
		t.Fatalf("payments reached block %d, not below the start block %d", h, start)
	}
	node.Mine(16)
	head := node.Head()
	waitMetric(t, g, metricsAddr, `picd_chain_scan_height{chain="eth"}`, func(v float64) bool { return v >= float64(head) })
	for _, id := range []string{ethID, usdtID} {
		if inv := g.invoiceStatus(key, id)(); inv["status"] != "new" || inv["amount_received"] != "0" {
			t.Fatalf("before the rescan: invoice %v", inv)
		}
	}

	out := picdChain(t, env, true, "rescan", "ETH", "--from", fmt.Sprint(from))
	if !strings.Contains(out, "1 found, 1 new (1 credited now, 0 unmatched), 0 already known") || !strings.Contains(out, "rescanning ETH blocks") {
		t.Fatalf("rescan ETH:\n%s", out)
	}
	inv := waitFor(t, g, "ETH paid after the rescan", g.invoiceStatus(key, ethID), hasStatus("paid"))
	if inv["amount_received"] != "0.5" {
		t.Fatalf("ETH invoice %v", inv)
	}
	if g.invoiceStatus(key, usdtID)()["status"] != "new" {
		t.Fatal("a rescan of ETH credited the USDT.ETH payment")
	}
	out = picdChain(t, env, true, "rescan", "USDT.ETH", "--from", fmt.Sprint(from), "--to", fmt.Sprint(head))
	if !strings.Contains(out, "1 found, 1 new (1 credited now, 0 unmatched), 0 already known") {
		t.Fatalf("rescan USDT.ETH:\n%s", out)
	}
	inv = waitFor(t, g, "USDT.ETH paid after the rescan", g.invoiceStatus(key, usdtID), hasStatus("paid"))
	if inv["amount_received"] != "25" {
		t.Fatalf("USDT.ETH invoice %v", inv)
	}
	waitHook(t, g, rc, ethID)
	waitHook(t, g, rc, usdtID)

	// Again: known by deposit id, credited nothing.
	for _, a := range []string{"ETH", "USDT.ETH"} {
		if out := picdChain(t, env, true, "rescan", a, "--from", fmt.Sprint(from)); !strings.Contains(out, "1 found, 0 new (0 credited now, 0 unmatched), 1 already known") {
			t.Fatalf("second rescan of %s:\n%s", a, out)
		}
	}
	// Above what the watcher scanned is its own: nothing to rescan there.
	if out := picdChain(t, env, false, "rescan", "ETH", "--from", fmt.Sprint(node.Head()+100)); !strings.Contains(out, "nothing to rescan") {
		t.Fatalf("rescan above the checkpoint:\n%s", out)
	}
	mineToFinal(node)
	wantBalance(t, g, key, "ETH", "0.49875", "0")
	wantBalance(t, g, key, "USDT.ETH", "24.9375", "0")
	g.stop()
	auditAgrees(t, env)
}

type unmatchedRow struct {
	ID          int64  `json:"id"`
	Chain       string `json:"chain"`
	TxID        string `json:"txid"`
	OutputIndex int64  `json:"output_index"`
	Address     string `json:"address"`
	Asset       string `json:"asset"`
	Amount      string `json:"amount"`
	BlockHeight int64  `json:"block_height"`
	Status      string `json:"status"`
	InvoiceID   string `json:"invoice_id"`
	Note        string `json:"note"`
}

func unmatchedList(t *testing.T, env []string, args ...string) map[string]unmatchedRow {
	t.Helper()
	var rows []unmatchedRow
	out := picdChain(t, env, true, append([]string{"unmatched", "--json"}, args...)...)
	if err := json.Unmarshal([]byte(out[strings.Index(out, "["):]), &rows); err != nil {
		t.Fatalf("picd chain unmatched --json: %v\n%s", err, out)
	}
	byAsset := map[string]unmatchedRow{}
	for _, r := range rows {
		byAsset[r.Asset] = r
	}
	return byAsset
}

// Payments in the wrong asset to our addresses (USDT.ETH to an ETH
// invoice's address, ETH to a USDT.ETH invoice's) are kept, listed and
// counted in metrics; the operator credits one to an invoice of its asset
// (which becomes paid, webhook and all) and ignores the other with a reason.
func TestUnmatchedDepositsAreKeptAndDecided(t *testing.T) {
	node := gethtest.Start(t)
	token := node.DeployToken("USDT", 6)
	metricsAddr := "127.0.0.1:32102"
	env := append(ethEnv(t, node, token, t.TempDir()), "PIC_WEBHOOK_ALLOW_PRIVATE=true")
	rc := newHookReceiver(t)
	g := startEthGateway(t, append(env, "PIC_METRICS_LISTEN="+metricsAddr))
	key := signUp(t, g, rc)
	ethID, ethAddr := ethInvoice(t, g, key, "ETH", "0.5")
	usdtID, usdtAddr := ethInvoice(t, g, key, "USDT.ETH", "25")

	tokenTx := node.TransferToken(token, ethAddr, big.NewInt(7_000_000))
	ethTx := node.Fund(usdtAddr, ether("0.1"))
	waitMetric(t, g, metricsAddr, `picd_chain_unmatched_deposits{asset="USDT.ETH"}`, func(v float64) bool { return v == 1 })
	waitMetric(t, g, metricsAddr, `picd_chain_unmatched_deposits{asset="ETH"}`, func(v float64) bool { return v == 1 })
	list := unmatchedList(t, env)
	u, e := list["USDT.ETH"], list["ETH"]
	if len(list) != 2 || u.Chain != "eth" || u.TxID != tokenTx.TxHash.Hex() || u.OutputIndex != int64(tokenTx.Logs[0].Index) ||
		!strings.EqualFold(u.Address, ethAddr.Hex()) || u.Amount != "7" || u.BlockHeight != tokenTx.BlockNumber.Int64() || u.Status != "open" {
		t.Fatalf("unmatched USDT.ETH: %+v (tx %s in block %d)", u, tokenTx.TxHash.Hex(), tokenTx.BlockNumber)
	}
	if e.TxID != ethTx.TxHash.Hex() || e.OutputIndex != -1 || !strings.EqualFold(e.Address, usdtAddr.Hex()) || e.Amount != "0.1" || e.Status != "open" {
		t.Fatalf("unmatched ETH: %+v (tx %s)", e, ethTx.TxHash.Hex())
	}
	if out := picdChain(t, env, true, "unmatched"); !strings.Contains(out, u.TxID) || !strings.Contains(out, "USDT.ETH") {
		t.Fatalf("picd chain unmatched:\n%s", out)
	}
	for _, id := range []string{ethID, usdtID} {
		if inv := g.invoiceStatus(key, id)(); inv["amount_received"] != "0" {
			t.Fatalf("a wrong-asset payment was credited: %v", inv)
		}
	}

	// Credited only to an invoice of its own asset, and then once.
	if out := picdChain(t, env, false, "unmatched", "credit", fmt.Sprint(u.ID), "--invoice", ethID); !strings.Contains(out, "is for ETH") {
		t.Fatalf("credit to an ETH invoice:\n%s", out)
	}
	creditID, _ := ethInvoice(t, g, key, "USDT.ETH", "7")
	if out := picdChain(t, env, true, "unmatched", "credit", fmt.Sprint(u.ID), "--invoice", creditID); !strings.Contains(out, "credited to invoice "+creditID) {
		t.Fatalf("credit:\n%s", out)
	}
	if out := picdChain(t, env, false, "unmatched", "credit", fmt.Sprint(u.ID), "--invoice", usdtID); !strings.Contains(out, "already decided") {
		t.Fatalf("second credit to another invoice:\n%s", out)
	}
	node.Mine(12)
	inv := waitFor(t, g, "credited invoice paid", g.invoiceStatus(key, creditID), hasStatus("paid"))
	if inv["amount_received"] != "7" {
		t.Fatalf("credited invoice %v", inv)
	}
	waitHook(t, g, rc, creditID)

	// Ignored only with a reason, which is kept.
	if out := picdChain(t, env, false, "unmatched", "ignore", fmt.Sprint(e.ID)); !strings.Contains(out, "--reason") {
		t.Fatalf("ignore without a reason:\n%s", out)
	}
	picdChain(t, env, true, "unmatched", "ignore", fmt.Sprint(e.ID), "--reason", "sent back to the customer by hand")
	waitMetric(t, g, metricsAddr, `picd_chain_unmatched_deposits{asset="USDT.ETH"}`, func(v float64) bool { return v == 0 })
	if v := metric(t, metricsAddr, `picd_chain_unmatched_deposits{asset="ETH"}`); v != 0 {
		t.Fatalf("ETH unmatched after the decision: %v", v)
	}
	if open := unmatchedList(t, env); len(open) != 0 {
		t.Fatalf("still open: %+v", open)
	}
	all := unmatchedList(t, env, "--all")
	if all["USDT.ETH"].Status != "credited" || all["USDT.ETH"].InvoiceID != creditID ||
		all["ETH"].Status != "ignored" || all["ETH"].Note != "sent back to the customer by hand" {
		t.Fatalf("decisions: %+v", all)
	}
	mineToFinal(node)
	wantBalance(t, g, key, "USDT.ETH", "6.9825", "0")

	// The credited tokens are swept from the address they were paid to
	// (with its key, not the crediting invoice's) into the hot wallet. The
	// sweep runs at start, then every minute: a restart after its gas
	// top-up is mined sends the transfer at once. The top-up, ETH to an
	// ETH invoice's address, is ours, not a payment of that invoice.
	hot := ethHotWallet(t)
	node.Fund(hot, ether("1"))
	g.stop()
	p := startProc(t, env)
	waitLog(t, p, "eth: sweep gas top-up", 30*time.Second)
	node.Mine(1)
	waitLog(t, p, "not a payment", 30*time.Second)
	p.stop()
	p = startProc(t, env)
	g = p.gateway
	waitFor(t, g, "credited tokens swept", func() map[string]any {
		node.Mine(1)
		return map[string]any{"on the paid address": node.TokenBalance(token, ethAddr).String(), "hot wallet": node.TokenBalance(token, hot).String()}
	}, func(m map[string]any) bool { return m["on the paid address"] == "0" && m["hot wallet"] == "7000000" })
	if strings.Contains(p.out.String(), "is not our address") {
		t.Fatalf("sweep of the credited deposit:\n%s", p.out)
	}
	if inv := g.invoiceStatus(key, ethID)(); inv["amount_received"] != "0" {
		t.Fatalf("the sweep's gas top-up was credited to the ETH invoice on that address: %v", inv)
	}
	g.stop()
	auditAgrees(t, env)
}
