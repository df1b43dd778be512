//go:build linux

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// TestBitcoinWrongNetwork (#16 item 1): a gateway configured for mainnet
// against a simnet btcd. Before, it scanned simnet's blocks and issued bc1…
// addresses. Now the watcher refuses the node (its genesis is not
// mainnet's): nothing is scanned, /readyz says what was expected and what
// the node is, one error is logged, and no BTC invoice gets an address.
func TestBitcoinWrongNetwork(t *testing.T) {
	n := newBtcNode(t, btcdBinary(t))
	n.start(t)
	n.generate(t, 3)
	e := append([]string{"PIC_DATA_DIR=" + t.TempDir(), "PIC_BTC_NETWORK=mainnet", "PIC_BTC_RPC_HOST=" + n.rpcHost,
		"PIC_BTC_RPC_USER=test", "PIC_BTC_RPC_PASS=test"}, faultEnv()...)
	g := startProc(t, e)
	r := waitWithin(t, g.gateway, 30*time.Second, "readyz with the simnet node", func() map[string]any { return g.readyz("btc") },
		func(m map[string]any) bool { c, _ := m["check"].(string); return strings.Contains(c, "mismatch") })
	check := r["check"].(string)
	for _, want := range []string{"expected bitcoin mainnet (genesis 000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f", `the node says chain "simnet"`} {
		if !strings.Contains(check, want) {
			t.Fatalf("readyz check %q does not say %q", check, want)
		}
	}
	if r["http_status"] != 503 {
		t.Fatalf("readyz %v with the node of another network", r)
	}
	key := signUp(t, g.gateway, newHookReceiver(t))
	status, inv := g.do("POST", "/v1/invoices", key, map[string]any{"asset": "BTC", "amount": "0.001"})
	if status != 503 || inv["error"] != "service_unavailable" {
		t.Fatalf("BTC invoice on the wrong network: %d %v", status, inv)
	}
	// Several polls (5 s each): still one error, and no scan.
	n.generate(t, 2)
	time.Sleep(11 * time.Second)
	logs := g.out.String()
	if c := strings.Count(logs, "node identity mismatch: scanning stopped"); c != 1 {
		t.Fatalf("%d identity errors logged, want 1:\n%s", c, logs)
	}
	if strings.Contains(logs, "bitcoin watcher starts") || strings.Contains(logs, "btc: first scan") {
		t.Fatalf("the watcher scanned the simnet node:\n%s", logs)
	}
	if !strings.Contains(logs, `"msg":"bitcoin watcher: network","chain":"bitcoin","network":"mainnet"`) {
		t.Errorf("the network is not logged at start:\n%s", tail(logs, 3000))
	}
	// Other assets are not held back.
	if status, inv := g.do("POST", "/v1/invoices", key, map[string]any{"asset": "ETH", "amount": "0.1"}); status != 201 {
		t.Fatalf("ETH invoice (simulated): %d %v", status, inv)
	}
}

// TestBitcoinOverTLS (#16 item 7): btcd with TLS on (as it must be off
// loopback), its generated rpc.cert given as PIC_BTC_RPC_CERT. Before,
// picd had no such setting and spoke plain HTTP to it: nothing was seen.
func TestBitcoinOverTLS(t *testing.T) {
	n := newBtcNode(t, btcdBinary(t))
	n.tls = true
	n.start(t)
	n.generate(t, 110) // the first coinbase is mature after 100 blocks
	e := append([]string{"PIC_DATA_DIR=" + t.TempDir(), "PIC_BTC_NETWORK=simnet", "PIC_BTC_RPC_HOST=" + n.rpcHost,
		"PIC_BTC_RPC_USER=test", "PIC_BTC_RPC_PASS=test", "PIC_BTC_RPC_CERT=" + n.cert}, faultEnv()...)
	g := startProc(t, e)
	key := signUp(t, g.gateway, newHookReceiver(t))
	status, inv := g.do("POST", "/v1/invoices", key, map[string]any{"asset": "BTC", "amount": "0.001"})
	if status != 201 {
		t.Fatalf("create invoice: %d %v", status, inv)
	}
	waitLog(t, g, "bitcoin watcher starts", 20*time.Second)
	sats := decimal.RequireFromString(inv["pay_amount"].(string)).Shift(8).IntPart()
	n.pay(t, inv["pay_address"].(string), sats)
	n.generate(t, 2)
	waitWithin(t, g.gateway, 30*time.Second, "BTC paid over TLS", g.invoiceStatus(key, inv["id"].(string)), hasStatus("paid"))
}
