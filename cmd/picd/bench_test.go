package main

import (
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkCreateInvoiceHTTP measures POST /v1/invoices against a real picd
// process over loopback HTTP with 32 concurrent clients, on each store. It
// reports invoices/s and the p50/p99 latency of the requests.
func BenchmarkCreateInvoiceHTTP(b *testing.B) {
	for _, mode := range []string{"sqlite", "postgres"} {
		b.Run(mode, func(b *testing.B) {
			env := benchEnv(b, mode)
			g := startGateway(b, env)
			_, m := g.do("POST", "/v1/merchants", "", map[string]any{"name": "Bench"})
			key := m["secret_key"].(string)
			const clients = 32
			tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
			client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			lat := make([]time.Duration, b.N)
			var next atomic.Int64
			var failures atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for c := 0; c < clients; c++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						req, _ := http.NewRequest("POST", g.url+"/v1/invoices", strings.NewReader(`{"asset":"USDT.ETH","amount":"49.99"}`))
						req.Header.Set("Content-Type", "application/json")
						req.Header.Set("Authorization", "Bearer "+key)
						start := time.Now()
						resp, err := client.Do(req)
						if err != nil {
							failures.Add(1)
							continue
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						lat[i] = time.Since(start)
						if resp.StatusCode != 201 {
							failures.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			if f := failures.Load(); f > 0 {
				b.Fatalf("%d of %d requests failed", f, b.N)
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "invoices/s")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
			g.stop()
		})
	}
}

func benchEnv(b *testing.B, mode string) []string {
	env := []string{"PIC_DATA_DIR=" + b.TempDir(), "PIC_KEY_RATE_PER_MINUTE=100000000"}
	if mode == "postgres" {
		env = append(env, postgresEnv(b)...)
	}
	return env
}
