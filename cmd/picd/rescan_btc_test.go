//go:build linux

package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
)

// #16 item 5 on a real btcd (simnet): a payment mined while picd was down,
// below the start height it was given, is never seen by the watcher (not
// in the mempool while picd ran, not in the blocks it scans); picd chain
// rescan BTC credits it once while picd serves, the invoice becomes paid,
// its webhook arrives, its money becomes available at finality, and the
// audit agrees.
func TestRescanFindsABitcoinPaymentBelowTheStartHeight(t *testing.T) {
	n := newBtcNode(t, btcdBinary(t))
	n.start(t)
	n.generate(t, 110) // the first coinbase is mature after 100 blocks
	const startHeight = 120
	metricsAddr := "127.0.0.1:32103"
	env := append([]string{"PIC_DATA_DIR=" + t.TempDir(), "PIC_BTC_NETWORK=simnet", "PIC_BTC_RPC_HOST=" + n.rpcHost,
		"PIC_BTC_RPC_USER=test", "PIC_BTC_RPC_PASS=test", fmt.Sprintf("PIC_BTC_START_HEIGHT=%d", startHeight)}, faultEnv()...)
	rc := newHookReceiver(t)
	g := startProc(t, append(env, "PIC_METRICS_LISTEN="+metricsAddr))
	key := signUp(t, g.gateway, rc)
	status, inv := g.do("POST", "/v1/invoices", key, map[string]any{"asset": "BTC", "amount": "0.001"})
	if status != 201 {
		t.Fatalf("create invoice: %d %v", status, inv)
	}
	id, address, amount := inv["id"].(string), inv["pay_address"].(string), inv["pay_amount"].(string)
	g.stop()

	txid := n.pay(t, address, decimal.RequireFromString(amount).Shift(8).IntPart())
	n.generate(t, 15) // the payment is in block 111, the head 125
	g = startProc(t, append(env, "PIC_METRICS_LISTEN="+metricsAddr))
	waitMetric(t, g.gateway, metricsAddr, `picd_chain_scan_height{chain="btc"}`, func(v float64) bool { return v >= 125 })
	if got := g.invoiceStatus(key, id)(); got["status"] != "new" || got["amount_received"] != "0" {
		t.Fatalf("before the rescan: %v", got)
	}

	out := picdChain(t, env, true, "rescan", "BTC", "--from", "100")
	if !strings.Contains(out, "rescanned BTC blocks 100-125") || !strings.Contains(out, "1 found, 1 new (1 credited now, 0 unmatched), 0 already known") {
		t.Fatalf("rescan BTC:\n%s", out)
	}
	got := waitFor(t, g.gateway, "BTC paid after the rescan", g.invoiceStatus(key, id), hasStatus("paid"))
	if got["amount_received"] != amount {
		t.Fatalf("invoice %v, paid %s in %s", got, amount, txid)
	}
	waitHook(t, g.gateway, rc, id)
	if out := picdChain(t, env, true, "rescan", "BTC", "--from", "100", "--to", "125"); !strings.Contains(out, "1 found, 0 new (0 credited now, 0 unmatched), 1 already known") {
		t.Fatalf("second rescan:\n%s", out)
	}
	wantBalance(t, g.gateway, key, "BTC", "0.0009975", "0")
	g.stop()
	auditAgrees(t, env)
}
