package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPicload runs the load tool against a real picd: invoices created at
// a fixed rate, paid through the simulator, blocks mined, webhooks
// received. The report must show every invoice created, paid and announced
// once, and a projection lag sampled from the metrics address.
func TestPicload(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "picload")
	if out, err := exec.Command("go", "build", "-o", bin, "../picload").CombinedOutput(); err != nil {
		t.Fatalf("build picload: %v\n%s", err, out)
	}
	dataDir := t.TempDir()
	metricsAddr := freeAddr(t)
	g := startProc(t, []string{"PIC_DATA_DIR=" + dataDir, "PIC_WEBHOOK_ALLOW_PRIVATE=true", "PIC_KEY_RATE_PER_MINUTE=100000000", "PIC_METRICS_LISTEN=" + metricsAddr})
	cmd := exec.Command(bin, "-url", g.url, "-metrics-url", "http://"+metricsAddr+"/metrics", "-n", "300", "-rate", "300", "-clients", "8", "-merchants", "2",
		"-pay", "-webhooks", "-data", dataDir, "-mine-every", "200ms", "-sample-every", "100ms", "-wait", "20s")
	cmd.Env = os.Environ()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("picload: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var rep struct {
		Created      int     `json:"created"`
		Failures     int     `json:"failures"`
		InvoicesPerS float64 `json:"invoices_per_s"`
		P999Ms       float64 `json:"p999_ms"`
		Payments     int     `json:"payments"`
		Confirmed    int     `json:"confirmed"`
		LagSamples   int     `json:"lag_samples"`
		LagSource    string  `json:"lag_source"`
		Webhooks     struct {
			Received          int `json:"received"`
			DuplicateIDs      int `json:"duplicate_ids"`
			InLog             int `json:"in_log"`
			MissingFromLog    int `json:"missing_from_log"`
			MissingForPayment int `json:"missing_for_payment"`
			BadSignatures     int `json:"bad_signatures"`
			PayToPaidMs       *struct {
				N int `json:"n"`
			} `json:"pay_to_paid_ms"`
		} `json:"webhooks"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
		t.Fatalf("the last line is not the JSON report: %v\n%s", err, out)
	}
	w := rep.Webhooks
	if rep.Created != 300 || rep.Failures != 0 || rep.Payments != 300 || rep.Confirmed != 300 || rep.P999Ms <= 0 ||
		w.Received != 600 || w.InLog != 600 || w.DuplicateIDs+w.MissingFromLog+w.MissingForPayment+w.BadSignatures != 0 ||
		w.PayToPaidMs == nil || w.PayToPaidMs.N != 300 || rep.LagSamples == 0 || rep.LagSource != "metrics" {
		t.Fatalf("unexpected report:\n%s", out)
	}
	if !strings.Contains(string(out), "webhook pay→invoice.paid ms") {
		t.Errorf("no table before the JSON:\n%s", out)
	}
	t.Logf("%.0f invoices/s at -rate 300\n%s", rep.InvoicesPerS, out)
}
