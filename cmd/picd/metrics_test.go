package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// TestRouteLabelsOutsideTheAPI: pages served outside the API's router are
// labelled by the pattern that routed them, not "unmatched".
func TestRouteLabelsOutsideTheAPI(t *testing.T) {
	o := newObservability(slog.New(slog.NewTextHandler(io.Discard, nil)))
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})
	mux := http.NewServeMux()
	mux.Handle("/pay/", o.wrap(ok))
	mux.Handle("/dashboard", o.wrap(ok))
	mux.Handle("/v1/sim/", o.wrap(ok))
	mux.Handle("/", o.wrap(http.NotFoundHandler()))
	for _, path := range []string{"/pay/inv_1", "/pay/inv_2", "/dashboard", "/v1/sim/mine", "/nowhere"} {
		mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil))
	}
	for route, want := range map[string]float64{"/pay/*": 2, "/dashboard": 1, "/v1/sim/*": 1} {
		if got := counterValue(t, o, route, "200"); got != want {
			t.Errorf("route %s: %v requests, want %v", route, got, want)
		}
	}
	if got := counterValue(t, o, "unmatched", "404"); got != 1 {
		t.Errorf("unmatched: %v, want 1", got)
	}
}

func counterValue(t *testing.T, o *observability, route, code string) float64 {
	var m dto.Metric
	if err := o.requests.WithLabelValues(route, "GET", code).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestUnknownPriceKeyRefused(t *testing.T) {
	t.Setenv("PIC_DATA_DIR", t.TempDir())
	if _, err := serveConfig([]string{"--prices", `{"BTC":"60000","USDT":"1"}`}); err == nil || exitCode(err) != exitUsage || !strings.Contains(err.Error(), `unknown key "USDT"`) || !strings.Contains(err.Error(), "USDT.ETH") {
		t.Fatalf("PIC_PRICES with USDT: %v", err)
	}
	if _, err := serveConfig([]string{"--prices", `{"BTC":"60000","USDT.ETH":"1","TRX":"0.25","EUR":"1.08"}`}); err != nil {
		t.Fatalf("known keys: %v", err)
	}
}

// TestMetricsPassPromtool scrapes a running picd's /metrics after some
// traffic, checks the series an operator pages on, and has Prometheus's
// promtool lint the exposition (Debian's prometheus package; scripts/test
// installs it when apt is there).
func TestMetricsPassPromtool(t *testing.T) {
	metricsAddr := freeAddr(t)
	g := startGateway(t, []string{"PIC_DATA_DIR=" + t.TempDir(), "PIC_METRICS_LISTEN=" + metricsAddr})
	_, m := g.do("POST", "/v1/merchants", "", map[string]any{"name": "Shop"})
	_, inv := g.do("POST", "/v1/invoices", m["secret_key"].(string), map[string]any{"asset": "BTC", "amount": "0.01"})
	for _, path := range []string{"/pay/" + inv["id"].(string), "/dashboard"} {
		resp, err := http.Get(g.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	wants := []string{
		`picd_invoices{status="new"} 1`,
		`picd_invoice_transitions_total{status="new"} 1`,
		`route="/pay/*"`,
		`route="/dashboard"`,
		"# TYPE picd_webhook_deliveries_failed gauge",
		`picd_webhook_attempts_total{outcome="delivered"} 0`,
	}
	lacking := func(raw string) (missing []string) {
		for _, want := range wants {
			if !strings.Contains(raw, want) {
				missing = append(missing, want)
			}
		}
		return missing
	}
	// A request is counted once its handler returns, which may be just
	// after the client has read the answer (and after the next request
	// was counted): scrape until every series is in.
	var raw []byte
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		raw = []byte(scrape(t, metricsAddr))
		if len(lacking(string(raw))) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, want := range lacking(string(raw)) {
		t.Errorf("metrics lack %s", want)
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", raw)
	}
	if strings.Contains(string(raw), "picd_webhook_failed_total") {
		t.Errorf("a gauge still named like a counter: picd_webhook_failed_total")
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (apt-get install prometheus; scripts/test does): exposition not linted")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(raw)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestMonitoringExamples: the Grafana dashboard is JSON, the alert rules
// pass promtool, and every picd_ series they name is one the code defines.
func TestMonitoringExamples(t *testing.T) {
	dash, err := os.ReadFile("../../docs/monitoring/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(dash) {
		t.Fatal("docs/monitoring/grafana-dashboard.json is not JSON")
	}
	rules, err := os.ReadFile("../../docs/monitoring/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var code strings.Builder
	for _, dir := range []string{".", "../../follow", "../../chain", "../../chain/tron"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if !strings.HasSuffix(f, "_test.go") {
				b, _ := os.ReadFile(f)
				code.Write(b)
			}
		}
	}
	names := regexp.MustCompile(`picd_[a-z_]+`)
	for _, name := range names.FindAllString(string(dash)+string(rules), -1) {
		base := strings.TrimSuffix(name, "_bucket")
		if !strings.Contains(code.String(), `"`+base+`"`) {
			t.Errorf("%s is named in docs/monitoring but defined nowhere", name)
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed: alert rules not checked")
	}
	if out, err := exec.Command(promtool, "check", "rules", "../../docs/monitoring/alerts.yml").CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}
