package main

import (
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopspring/decimal"

	"github.com/acceptcryptohere/gateway/chain/oracle"
	"github.com/acceptcryptohere/gateway/chain/tron/tronfake"
	"github.com/acceptcryptohere/gateway/domain"
)

// TestChainHeadAndLagMetrics: picd serving a TRON node (the fake one: no
// TRON node runs here) shows the node's head as its watcher read it and
// the scan lag beside the scanned height, consistent within one scrape,
// following the chain as it grows; the static prices' ages are about 0 and a
// price never given (EUR) is +Inf; the exposition passes promtool.
func TestChainHeadAndLagMetrics(t *testing.T) {
	node := tronfake.New(tronfake.Options{Now: time.Now})
	srv := httptest.NewServer(node)
	defer srv.Close()
	node.Mine(12)
	metricsAddr := "127.0.0.1:3641"
	g := startGateway(t, append([]string{"PIC_DATA_DIR=" + t.TempDir(), "PIC_MNEMONIC=" + tronE2EMnemonic, "PIC_PRICES=" + tronE2EPrices,
		"PIC_TRON_API_URL=" + srv.URL, "PIC_TRON_USDT_CONTRACT=" + node.Token(), "PIC_TRON_START_BLOCK=1",
		"PIC_METRICS_LISTEN=" + metricsAddr}, faultEnv()...))
	first := waitMetric(t, g, metricsAddr, `picd_chain_head_height{chain="tron"}`, func(v float64) bool { return v >= 12 })
	node.Mine(25)
	waitMetric(t, g, metricsAddr, `picd_chain_head_height{chain="tron"}`, func(v float64) bool { return v >= first+25 })

	raw := scrape(t, metricsAddr)
	head, scanned, lag := sample(t, raw, `picd_chain_head_height{chain="tron"}`), sample(t, raw, `picd_chain_scan_height{chain="tron"}`),
		sample(t, raw, `picd_chain_scan_lag_blocks{chain="tron"}`)
	if lag != max(head-scanned, 0) || scanned < 0 {
		t.Errorf("head %v, scanned %v, lag %v: lag is not head minus scanned", head, scanned, lag)
	}
	waitMetric(t, g, metricsAddr, `picd_chain_scan_lag_blocks{chain="tron"}`, func(v float64) bool { return v == 0 })
	if v := sample(t, raw, `picd_price_age_seconds{base="BTC",quote="USD"}`); v < 0 || v > 1 {
		t.Errorf("static BTC price age %v, want about 0 (static prices are as of each call)", v)
	}
	if v := sample(t, raw, `picd_price_age_seconds{base="EUR",quote="USD"}`); !math.IsInf(v, 1) {
		t.Errorf("EUR price (not configured) age %v, want +Inf", v)
	}
	for _, want := range []string{"picd_settlements_failing 0", "picd_settlement_oldest_wait_seconds 0"} {
		if !strings.Contains(raw, want+"\n") {
			t.Errorf("metrics lack %s", want)
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (scripts/test installs it): exposition not linted")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(raw)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return string(raw)
}

// sample is the value of one sample line of an exposition.
func sample(t *testing.T, raw, name string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(raw)
	if m == nil {
		t.Fatalf("no sample %s in:\n%s", name, raw)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestPriceAges: a pair's age is its quote's age while the oracle gives
// one, then keeps growing from the last good price once the oracle refuses
// it (stale), and is +Inf for a pair it never priced.
func TestPriceAges(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	prices := oracle.Static{USD: map[string]decimal.Decimal{"BTC": decimal.NewFromInt(60000), "ETH": decimal.NewFromInt(3000)},
		At: now.Add(-30 * time.Second), MaxAge: 10 * time.Minute, Now: clock}
	ages := newPriceAges(prices, domain.DefaultAssets(), clock)
	reg := prometheus.NewRegistry()
	reg.MustRegister(ages)
	read := func() map[string]float64 {
		t.Helper()
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, f := range families {
			for _, m := range f.GetMetric() {
				var pair []string
				for _, l := range m.GetLabel() {
					pair = append(pair, l.GetValue())
				}
				out[strings.Join(pair, "/")] = m.GetGauge().GetValue()
			}
		}
		return out
	}
	got := read()
	if got["BTC/USD"] != 30 || got["ETH/USD"] != 30 || !math.IsInf(got["TRX/USD"], 1) || !math.IsInf(got["EUR/USD"], 1) {
		t.Fatalf("fresh: %v", got)
	}
	now = now.Add(20 * time.Minute) // past MaxAge: the oracle refuses both
	if _, err := prices.Price(context.Background(), "BTC", "USD"); err == nil {
		t.Fatal("the static price did not go stale")
	}
	if got := read(); got["BTC/USD"] != 20*60+30 {
		t.Fatalf("stale: BTC/USD %v, want %v", got["BTC/USD"], 20*60+30)
	}
}
