// Command picload is a load generator for a running gateway: it signs a
// merchant up, creates invoices over real HTTP with concurrent clients, and
// prints throughput and latency percentiles as a table and as JSON.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

type result struct {
	Requests     int     `json:"requests"`
	Failures     int64   `json:"failures"`
	Clients      int     `json:"clients"`
	Seconds      float64 `json:"seconds"`
	InvoicesPerS float64 `json:"invoices_per_s"`
	P50Ms        float64 `json:"p50_ms"`
	P99Ms        float64 `json:"p99_ms"`
	P999Ms       float64 `json:"p999_ms"`
	MaxMs        float64 `json:"max_ms"`
}

func main() {
	url := flag.String("url", "http://localhost:3000", "gateway base URL")
	clients := flag.Int("clients", 32, "concurrent clients")
	n := flag.Int("n", 10000, "invoices to create")
	asset := flag.String("asset", "USDT.ETH", "invoice asset")
	amount := flag.String("amount", "49.99", "invoice amount")
	key := flag.String("key", "", "secret key (default: sign a new merchant up)")
	flag.Parse()
	if err := run(*url, *clients, *n, *asset, *amount, *key); err != nil {
		fmt.Fprintln(os.Stderr, "picload:", err)
		os.Exit(1)
	}
}

func run(url string, clients, n int, asset, amount, key string) error {
	if key == "" {
		resp, err := http.Post(url+"/v1/merchants", "application/json", bytes.NewReader([]byte(`{"name":"picload"}`)))
		if err != nil {
			return err
		}
		var m struct {
			SecretKey string `json:"secret_key"`
		}
		err = json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if err != nil || m.SecretKey == "" {
			return fmt.Errorf("sign-up failed: %s %v", resp.Status, err)
		}
		key = m.SecretKey
	}
	body, _ := json.Marshal(map[string]string{"asset": asset, "amount": amount})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}, Timeout: 30 * time.Second}
	lat := make([]time.Duration, n)
	var next, failures atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				req, _ := http.NewRequest("POST", url+"/v1/invoices", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+key)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					failures.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat[i] = time.Since(t0)
				if resp.StatusCode != http.StatusCreated {
					failures.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	r := result{Requests: n, Failures: failures.Load(), Clients: clients, Seconds: elapsed.Seconds(),
		InvoicesPerS: float64(n) / elapsed.Seconds(), P50Ms: ms(lat[n/2]), P99Ms: ms(lat[n*99/100]), P999Ms: ms(lat[n*999/1000]), MaxMs: ms(lat[n-1])}
	fmt.Printf("%-10s %-8s %-8s %-12s %-8s %-8s %-8s %-8s\n", "requests", "failed", "clients", "invoices/s", "p50 ms", "p99 ms", "p999 ms", "max ms")
	fmt.Printf("%-10d %-8d %-8d %-12.0f %-8.2f %-8.2f %-8.2f %-8.2f\n", r.Requests, r.Failures, r.Clients, r.InvoicesPerS, r.P50Ms, r.P99Ms, r.P999Ms, r.MaxMs)
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
	if r.Failures > 0 {
		return fmt.Errorf("%d requests failed", r.Failures)
	}
	return nil
}
