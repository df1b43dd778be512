package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/chain/tron/tronfake"
)

// A self-hosted java-tron node serves /wallet/* on its full-node port
// (8090) and /walletsolidity/* on its solidity port (8091); the full-node
// port answers 404 to /walletsolidity/*. The fake started that way, picd
// pointed at the full-node port only says so (a log naming the solidity
// endpoint and PIC_TRON_SOLIDITY_URL, /readyz failing) instead of seeing
// deposits it never confirms; pointed at both, deposits confirm.
func TestTronSolidityPortSplit(t *testing.T) {
	node := tronfake.New(tronfake.Options{Now: time.Now})
	full := httptest.NewServer(node.FullNodeHandler())
	defer full.Close()
	solid := httptest.NewServer(node.SolidityHandler())
	defer solid.Close()
	node.Mine(1)
	env := func(extra ...string) []string {
		return append([]string{"PIC_DATA_DIR=" + t.TempDir(), "PIC_MNEMONIC=" + tronE2EMnemonic, "PIC_PRICES=" + tronE2EPrices,
			"PIC_TRON_API_URL=" + full.URL, "PIC_TRON_USDT_CONTRACT=" + node.Token(), "PIC_TRON_START_BLOCK=1"}, extra...)
	}

	t.Run("full-node port only", func(t *testing.T) {
		g := startGateway(t, env())
		ready := waitFor(t, g, "not ready", func() map[string]any {
			_, m := g.do("GET", "/readyz", "", nil)
			return m
		}, func(m map[string]any) bool {
			checks, _ := m["checks"].(map[string]any)
			return m["ready"] == false && checks["chain_tron"] != nil && checks["chain_tron"] != "ok"
		})
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(g.logs.String(), "PIC_TRON_SOLIDITY_URL") && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if logs := g.logs.String(); !strings.Contains(logs, full.URL+"/walletsolidity/getnowblock") || !strings.Contains(logs, "HTTP 404") ||
			!strings.Contains(logs, "PIC_TRON_SOLIDITY_URL") {
			t.Fatalf("readyz %v; no clear error in the logs:\n%s", ready, logs)
		}
	})

	t.Run("both ports", func(t *testing.T) {
		metrics := freeAddr(t)
		g := startGateway(t, env("PIC_TRON_SOLIDITY_URL="+solid.URL, "PIC_METRICS_LISTEN="+metrics))
		key := tronSignUp(t, g)
		id, addr, _ := tronInvoice(t, g, key, "25")
		if _, err := node.Pay(addr, "USDT", 25_000_000); err != nil {
			t.Fatal(err)
		}
		node.Mine(19)
		waitFor(t, g, "paid", g.invoiceStatus(key, id), hasStatus("paid"))
		waitFor(t, g, "ready", func() map[string]any {
			_, m := g.do("GET", "/readyz", "", nil)
			return m
		}, func(m map[string]any) bool { return m["ready"] == true })
		// The requests against TronGrid's quota are counted in /metrics.
		resp, err := http.Get("http://" + metrics + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, name := range []string{"picd_tron_requests_total ", "picd_tron_requests_today ", "picd_tron_throttled_total 0"} {
			if !strings.Contains(string(body), name) {
				t.Errorf("/metrics lacks %q", name)
			}
		}
		if strings.Contains(string(body), "picd_tron_requests_total 0\n") {
			t.Error("no TRON request counted")
		}
	})
}
