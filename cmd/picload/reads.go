package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// readReport is what -reads measures against a gateway that already holds
// a history (picd generate writes one, and the -keys-file): the latency of
// reading one invoice and of the first page of a status's invoices, and
// how fast the event feed pages.
type readReport struct {
	Merchants     int                 `json:"merchants"`
	InvoiceMs     *latency            `json:"get_invoice_ms"`
	ListMs        map[string]*latency `json:"list_first_page_ms"` // by status
	Failures      int                 `json:"failures"`
	LastError     string              `json:"last_error,omitempty"`
	EventsPaged   int                 `json:"events_paged"`
	EventsPerS    float64             `json:"events_per_s"`
	EventPageMs   *latency            `json:"event_page_ms"`
	EventsSeconds float64             `json:"events_seconds"`
	// EventsPerSInRequests counts only the time inside the page requests
	// (sent to body read), not picload's own decoding of each page, which
	// on a shared machine takes about as long as the request.
	EventsPerSInRequests float64 `json:"events_per_s_in_requests"`
}

// readKeys loads the secret keys picd generate --keys wrote.
func readKeys(path string) ([]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ms []struct {
		SecretKey string `json:"secret_key"`
	}
	if err := json.Unmarshal(raw, &ms); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var keys []string
	for _, m := range ms {
		keys = append(keys, m.SecretKey)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no merchants", path)
	}
	return keys, nil
}

// reader sends GETs and keeps their latencies.
type reader struct {
	url    string
	client *http.Client
	mu     sync.Mutex
	fails  int
	last   string
}

func (r *reader) get(ctx context.Context, path, key string, out any) (time.Duration, bool) {
	return r.getAs(ctx, path, key, out, json.Unmarshal)
}

// getAs is get with the body decoded by decode.
func (r *reader) getAs(ctx context.Context, path, key string, out any, decode func([]byte, any) error) (time.Duration, bool) {
	req, _ := http.NewRequestWithContext(ctx, "GET", r.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	began := time.Now()
	resp, err := r.client.Do(req)
	if err == nil {
		var body []byte
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		took := time.Since(began)
		if err == nil && resp.StatusCode != 200 {
			err = fmt.Errorf("GET %s: %s: %.200s", path, resp.Status, body)
		}
		if err == nil && out != nil {
			err = decode(body, out)
		}
		if err == nil {
			return took, true
		}
	}
	r.mu.Lock()
	r.fails++
	r.last = err.Error()
	r.mu.Unlock()
	return 0, false
}

// runReads measures reads with c.clients concurrent clients, n requests of each kind.
func runReads(ctx context.Context, c config, n int, keysFile string) (*readReport, error) {
	keys, err := readKeys(keysFile)
	if err != nil {
		return nil, err
	}
	conns := c.clients + 2
	r := &reader{url: strings.TrimRight(c.url, "/"), client: &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns}}}
	rng := rand.New(rand.NewPCG(1, 2))
	// Invoice ids to read: the newest page of a few merchants each.
	type ref struct{ key, id string }
	var refs []ref
	for i := 0; i < min(len(keys), 50); i++ {
		var page struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		k := keys[rng.IntN(len(keys))]
		if _, ok := r.get(ctx, "/v1/invoices?limit=100", k, &page); !ok {
			return nil, fmt.Errorf("list invoices: %s", r.last)
		}
		for _, d := range page.Data {
			refs = append(refs, ref{k, d.ID})
		}
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("the merchants of %s have no invoices", keysFile)
	}
	rep := &readReport{Merchants: len(keys), ListMs: map[string]*latency{}}
	rep.InvoiceMs = dist(durations(r.many(ctx, c.clients, n, func(i int) (time.Duration, bool) {
		x := refs[(i*7919)%len(refs)]
		return r.get(ctx, "/v1/invoices/"+x.id, x.key, nil)
	})))
	for _, st := range []string{"paid", "expired", "new", "reverted"} {
		rep.ListMs[st] = dist(durations(r.many(ctx, c.clients, n, func(i int) (time.Duration, bool) {
			return r.get(ctx, "/v1/invoices?status="+st, keys[(i*7919)%len(keys)], nil)
		})))
	}
	// The feed: one client pages through merchants' whole feeds, 1000 a page.
	began := time.Now()
	var pages []time.Duration
	for i := 0; i < len(keys) && time.Since(began) < 30*time.Second; i++ {
		after := ""
		for {
			var page struct {
				Data      []jsontext.Value `json:"data"`
				HasMore   bool             `json:"has_more"`
				NextAfter string           `json:"next_after"`
			}
			// The JSON v2 decoder (still validating every byte): with
			// encoding/json this loop spent about 7 ms of a 1,000-event
			// page decoding it, on the two cores the server shares.
			took, ok := r.getAs(ctx, "/v1/events?limit=1000&after="+after, keys[i], &page, func(b []byte, v any) error { return jsonv2.Unmarshal(b, v) })
			if !ok {
				break
			}
			pages = append(pages, took)
			rep.EventsPaged += len(page.Data)
			if !page.HasMore {
				break
			}
			after = page.NextAfter
		}
	}
	rep.EventsSeconds = time.Since(began).Seconds()
	rep.EventsPerS = float64(rep.EventsPaged) / rep.EventsSeconds
	rep.EventPageMs = dist(durations(pages))
	var inRequests time.Duration
	for _, d := range pages {
		inRequests += d
	}
	if inRequests > 0 {
		rep.EventsPerSInRequests = float64(rep.EventsPaged) / inRequests.Seconds()
	}
	rep.Failures, rep.LastError = r.fails, r.last
	return rep, nil
}

// many runs n calls of f over clients goroutines and returns their durations.
func (r *reader) many(ctx context.Context, clients, n int, f func(i int) (time.Duration, bool)) []time.Duration {
	next := make(chan int)
	out := make([]time.Duration, 0, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if d, ok := f(i); ok {
					mu.Lock()
					out = append(out, d)
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	sort.Slice(out, func(a, b int) bool { return out[a] < out[b] })
	return out
}

func (rep *readReport) print(w io.Writer) {
	fmt.Fprintf(w, "reads over %d merchants (ms)     n      p50     p99    max\n", rep.Merchants)
	row := func(name string, l *latency) {
		if l == nil {
			fmt.Fprintf(w, "%-32s      0 (every request failed)\n", name)
			return
		}
		fmt.Fprintf(w, "%-32s %6d %8.2f %7.2f %7.1f\n", name, l.N, l.P50, l.P99, l.Max)
	}
	row("GET /v1/invoices/{id}", rep.InvoiceMs)
	for _, st := range []string{"paid", "expired", "new", "reverted"} {
		row("GET /v1/invoices?status="+st, rep.ListMs[st])
	}
	row("GET /v1/events?limit=1000 (page)", rep.EventPageMs)
	fmt.Fprintf(w, "event feed: %d events in %.1f s = %.0f events/s (one client); %.0f events/s within the requests\nfailures: %d %s\n",
		rep.EventsPaged, rep.EventsSeconds, rep.EventsPerS, rep.EventsPerSInRequests, rep.Failures, rep.LastError)
}
