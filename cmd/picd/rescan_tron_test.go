package main

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/chain/tron/tronfake"
)

// #16 item 5 on TRON (the fake node: no TRON node runs here): a USDT.TRON
// payment below PIC_TRON_START_BLOCK is found by picd chain rescan while
// picd serves; the invoice becomes paid once, its webhook arrives.
func TestRescanFindsAUSDTTronPaymentBelowTheStartBlock(t *testing.T) {
	node := tronfake.New(tronfake.Options{Now: time.Now})
	srv := httptest.NewServer(node)
	defer srv.Close()
	node.Mine(1)
	metricsAddr := "127.0.0.1:32104"
	env := append([]string{"PIC_DATA_DIR=" + t.TempDir(), "PIC_MNEMONIC=" + tronE2EMnemonic, "PIC_PRICES=" + tronE2EPrices,
		"PIC_TRON_API_URL=" + srv.URL, "PIC_TRON_USDT_CONTRACT=" + node.Token(), "PIC_TRON_START_BLOCK=10"}, faultEnv()...)
	rc := newHookReceiver(t)
	g := startGateway(t, append(env, "PIC_METRICS_LISTEN="+metricsAddr))
	key := signUp(t, g, rc)
	id, addr, _ := tronInvoice(t, g, key, "25")
	if _, err := node.Pay(addr, "USDT", 25_000_000); err != nil {
		t.Fatal(err)
	}
	node.Mine(1) // the payment's block is below 10, where the watcher starts
	node.Mine(30)
	waitMetric(t, g, metricsAddr, `picd_chain_scan_height{chain="tron"}`, func(v float64) bool { return v >= 30 })
	if inv := g.invoiceStatus(key, id)(); inv["status"] != "new" {
		t.Fatalf("before the rescan: %v", inv)
	}

	out := picdChain(t, env, true, "rescan", "USDT.TRON", "--from", "1")
	if !strings.Contains(out, "1 found, 1 new (1 credited now, 0 unmatched), 0 already known") {
		t.Fatalf("rescan USDT.TRON:\n%s", out)
	}
	inv := waitFor(t, g, "paid after the rescan", g.invoiceStatus(key, id), hasStatus("paid"))
	if inv["amount_received"] != "25" {
		t.Fatalf("invoice %v", inv)
	}
	waitHook(t, g, rc, id)
	if out := picdChain(t, env, true, "rescan", "USDT.TRON", "--from", "1"); !strings.Contains(out, "1 found, 0 new (0 credited now, 0 unmatched), 1 already known") {
		t.Fatalf("second rescan:\n%s", out)
	}
	wantTronBalance(t, g, key, "24.9375", "0")
}
