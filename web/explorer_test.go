package web

import (
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/readapi"
)

func TestExplorerURL(t *testing.T) {
	for _, ok := range []string{"https://mempool.space/tx/{txid}", "https://tronscan.org/#/transaction/{txid}", "http://127.0.0.1:8080/tx?id={txid}"} {
		if err := CheckExplorerURL(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "https://mempool.space/tx/", "https://x/{txid}/{txid}", "javascript:alert({txid})", "/tx/{txid}", "https://user@x/{txid}"} {
		if err := CheckExplorerURL(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	e := Explorers{domain.ChainBitcoin: "https://mempool.space/tx/{txid}"}
	if got := e.TxURL(domain.ChainBitcoin, "ab01"); got != "https://mempool.space/tx/ab01" {
		t.Errorf("bitcoin link %q", got)
	}
	if got := e.TxURL(domain.ChainEthereum, "0xab01"); got != "" {
		t.Errorf("a chain without an explorer got %q", got)
	}
	if got := e.TxURL(domain.ChainBitcoin, `"><script>`); got != "" {
		t.Errorf("a txid that is not hex got %q", got)
	}
}

// TestCheckoutTransactions: the confirming and paid screens list the
// invoice's transactions with their confirmations, linked to the chain's
// explorer when one is configured.
func TestCheckoutTransactions(t *testing.T) {
	txid := strings.Repeat("ab", 32)
	inv := testInvoice("inv_conf", domain.StatusConfirming, "49.990001",
		readapi.Payment{TxID: "0x" + txid, Amount: domain.MustAmount("49.990001"), Confirmations: 3, Status: readapi.PaymentPending})
	f := fakeInvoices{byID: map[string]readapi.Invoice{"inv_conf": inv, "inv_new": testInvoice("inv_new", domain.StatusNew, "0")}}
	h := New(Config{Invoices: f, Now: func() time.Time { return testNow }, Logger: quietLog(), Explorers: Explorers{domain.ChainEthereum: "https://etherscan.io/tx/{txid}"}})
	p := get(t, h, "GET", "/pay/inv_conf")
	for _, want := range []string{
		`href="https://etherscan.io/tx/0x` + txid + `"`,
		`<code>0xabababab…abababab</code>`,
		`3 / 12 confirmations`,
		`data-explorer-tx="https://etherscan.io/tx/{txid}"`,
	} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the confirming page lacks %q", want)
		}
	}
	if p := get(t, h, "GET", "/pay/inv_new"); !strings.Contains(p.body, `id="txs" class="txs" hidden`) {
		t.Error("a new invoice shows a transaction list")
	}
	// Without an explorer: the txid, no link.
	p = get(t, newTestSite(f), "GET", "/pay/inv_conf")
	if strings.Contains(p.body, "etherscan") || !strings.Contains(p.body, `<code class="tx" title="0x`+txid+`">`) {
		t.Error("without an explorer the txid must be shown without a link")
	}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestDashboardExplorers: the dashboard's page names the explorer of each
// chain that has one, for its transaction links; none without.
func TestDashboardExplorers(t *testing.T) {
	script := regexp.MustCompile(`<script type="application/json" id="explorers">([^<]*)</script>`)
	for _, tc := range []struct {
		explorers Explorers
		want      map[string]string
	}{
		{Explorers{domain.ChainBitcoin: "https://mempool.space/tx/{txid}", domain.ChainTron: ""}, map[string]string{"bitcoin": "https://mempool.space/tx/{txid}"}},
		{nil, map[string]string{}},
	} {
		h := New(Config{Invoices: fakeInvoices{}, Now: func() time.Time { return testNow }, Logger: quietLog(), Explorers: tc.explorers})
		p := get(t, h, "GET", "/dashboard")
		m := script.FindStringSubmatch(p.body)
		if m == nil {
			t.Fatalf("no explorers in the dashboard page")
		}
		var got map[string]string
		if err := json.Unmarshal([]byte(m[1]), &got); err != nil || !maps.Equal(got, tc.want) {
			t.Errorf("explorers %s (%v), want %v", m[1], err, tc.want)
		}
	}
}
