package main

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/chain/tron/tronfake"
	"github.com/acceptcryptohere/gateway/reserves"
)

// TestChainAuditOnTheTronFake: a gateway on the TRON fake node (the real
// HTTP API's wire format) takes a USDT.TRON payment; picd audit --chain
// agrees, the TRX the operator put in the hot wallet shown as its float.
// TRX sent to the invoice's address behind the gateway's back is named
// with its exact amount, exit 1.
func TestChainAuditOnTheTronFake(t *testing.T) {
	node := tronfake.New(tronfake.Options{Now: time.Now})
	srv := httptest.NewServer(node)
	defer srv.Close()
	node.Mine(1)
	env := []string{"PIC_DATA_DIR=" + t.TempDir(), "PIC_MNEMONIC=" + tronE2EMnemonic, "PIC_PRICES=" + tronE2EPrices,
		"PIC_TRON_API_URL=" + srv.URL, "PIC_TRON_USDT_CONTRACT=" + node.Token(), "PIC_TRON_START_BLOCK=1"}
	g := startGateway(t, env)
	key := tronSignUp(t, g)
	id, addr, _ := tronInvoice(t, g, key, "25")
	if _, err := node.Pay(addr, "USDT", 25_000_000); err != nil {
		t.Fatal(err)
	}
	node.Mine(19)
	waitFor(t, g, "paid", g.invoiceStatus(key, id), hasStatus("paid"))
	if err := node.Fund(tronHotWallet(t), 100_000_000, 0); err != nil {
		t.Fatal(err)
	}
	g.stop()

	byAsset := func(rep reservesReport) map[string]reserves.Asset {
		out := map[string]reserves.Asset{}
		for _, a := range rep.Assets {
			out[a.Asset] = a
		}
		return out
	}
	code, rep, raw := runChainAudit(t, env)
	got := byAsset(rep)
	if code != 0 || !rep.OK || got["USDT.TRON"].Ledger.String() != "25" || got["USDT.TRON"].Chain.String() != "25" ||
		got["TRX"].Float.String() != "100" || !got["TRX"].Ledger.IsZero() {
		t.Fatalf("audit --chain after the payment: exit %d\n%s", code, raw)
	}

	if _, err := node.Pay(addr, "TRX", 5_000_000); err != nil {
		t.Fatal(err)
	}
	node.Mine(1)
	code, rep, raw = runChainAudit(t, env)
	trx := byAsset(rep)["TRX"]
	if code != exitProblems || len(trx.Differ) != 1 || trx.Differ[0].Address != addr || trx.Differ[0].Diff.String() != "5" {
		t.Fatalf("audit --chain after TRX sent behind the back: exit %d\n%s", code, raw)
	}
}
