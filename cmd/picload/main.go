// Command picload is a load generator for a running gateway, over real HTTP.
// It signs merchants up (or uses -key), creates invoices with concurrent
// clients as fast as possible or at a fixed rate, optionally pays each one
// through the simulator and mines blocks so they become paid, runs its own
// webhook receiver on loopback (signatures verified, each delivery id
// counted), samples the projection lag from picd's metrics address
// (-metrics-url; picd serves no /metrics on its public port), and prints
// throughput, latency percentiles, projection lag, webhook latency,
// duplicate and missing deliveries as a table and as one line of JSON.
//
// A full run against a local quick-start gateway:
//
//	PIC_WEBHOOK_ALLOW_PRIVATE=true picd serve &
//	picload -n 10000 -pay -webhooks -data ./data
//
// The gateway must allow webhooks to loopback (PIC_WEBHOOK_ALLOW_PRIVATE=true)
// for -webhooks, and a key rate above the load (PIC_KEY_RATE_PER_MINUTE,
// default 60000 per minute per key) or the excess is refused with 429.
// With -reads N and -keys-file (picd generate --keys), picload instead times
// reading one invoice and the first page of each status, and pages the
// event feed, against a gateway that already holds a history.
//
// picload exits 1 when a request failed or a webhook is missing, duplicated
// or badly signed.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type config struct {
	url       string
	clients   int
	n         int
	duration  time.Duration
	rate      float64
	asset     string
	amount    string
	key       string
	merchants int

	pay        bool
	payClients int
	simToken   string
	dataDir    string
	mineEvery  time.Duration

	webhooks      bool
	webhookListen string
	webhookSecret string
	wait          time.Duration

	sampleEvery time.Duration
	metricsURL  string
	stdClient   bool
}

func main() {
	var c config
	flag.StringVar(&c.url, "url", "http://localhost:3000", "gateway base URL")
	flag.IntVar(&c.clients, "clients", 32, "concurrent clients creating invoices")
	flag.IntVar(&c.n, "n", 10000, "invoices to create (with -duration and no -n: no limit)")
	flag.DurationVar(&c.duration, "duration", 0, "stop creating invoices after this long (0: after -n)")
	flag.Float64Var(&c.rate, "rate", 0, "invoices per second to aim at (0: as fast as the clients go)")
	flag.StringVar(&c.asset, "asset", "USDT.ETH", "invoice asset")
	flag.StringVar(&c.amount, "amount", "49.99", "invoice amount")
	flag.StringVar(&c.key, "key", "", "secret key of an existing merchant (default: sign new merchants up)")
	flag.IntVar(&c.merchants, "merchants", 1, "merchants to sign up and spread the invoices over (ignored with -key)")
	flag.BoolVar(&c.pay, "pay", false, "pay every invoice through the simulator (POST /v1/sim/pay) and mine so they become paid")
	flag.IntVar(&c.payClients, "pay-clients", 8, "concurrent clients paying invoices")
	flag.StringVar(&c.simToken, "sim-token", "", "simulator operator token (default: PIC_SIM_TOKEN, else <data>/sim.token)")
	flag.StringVar(&c.dataDir, "data", "./data", "the gateway's data directory, where sim.token is")
	flag.DurationVar(&c.mineEvery, "mine-every", 500*time.Millisecond, "with -pay: mine one block this often (0: once, after the load)")
	flag.BoolVar(&c.webhooks, "webhooks", false, "receive the webhooks: run a receiver and set each merchant's webhook_url to it")
	flag.StringVar(&c.webhookListen, "webhook-listen", "127.0.0.1:0", "address of the webhook receiver")
	flag.StringVar(&c.webhookSecret, "webhook-secret", "", "webhook secret of the -key merchant (default: rotate it and use the new one)")
	flag.DurationVar(&c.wait, "wait", 60*time.Second, "after the load, how long to wait for payments to confirm and webhooks to arrive")
	flag.DurationVar(&c.sampleEvery, "sample-every", 250*time.Millisecond, "how often to sample the projection lag")
	flag.StringVar(&c.metricsURL, "metrics-url", "http://127.0.0.1:9464/metrics", "the gateway's Prometheus metrics (its PIC_METRICS_LISTEN); unreachable: the lag is read from /readyz")
	flag.BoolVar(&c.stdClient, "std-client", false, "create invoices with net/http's client instead of the lighter hand-written one")
	reads := flag.Int("reads", 0, "instead of creating invoices: time this many reads of each kind (one invoice, first page per status) and page the event feed, as the merchants of -keys-file")
	keysFile := flag.String("keys-file", "keys.json", "with -reads: the merchants' keys, as picd generate --keys writes them")
	flag.Parse()
	if *reads > 0 {
		os.Exit(mainReads(c, *reads, *keysFile))
	}
	nSet := false
	flag.Visit(func(f *flag.Flag) { nSet = nSet || f.Name == "n" })
	if c.duration > 0 && !nSet {
		c.n = math.MaxInt
	}
	if c.clients < 1 || c.payClients < 1 || c.merchants < 1 || c.n < 1 || c.rate < 0 {
		fmt.Fprintln(os.Stderr, "picload: -clients, -pay-clients, -merchants and -n must be positive, -rate not negative")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := run(ctx, c)
	if rep != nil {
		rep.printTable(os.Stdout)
		out, _ := json.Marshal(rep)
		fmt.Println(string(out))
	}
	if err == nil && rep != nil {
		err = rep.problems()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "picload:", err)
		os.Exit(1)
	}
}

// mainReads runs -reads and returns the exit status.
func mainReads(c config, n int, keysFile string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := runReads(ctx, c, n, keysFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "picload:", err)
		return 1
	}
	rep.print(os.Stdout)
	out, _ := json.Marshal(rep)
	fmt.Println(string(out))
	if rep.Failures > 0 {
		return 1
	}
	return 0
}

// merchant is one account the load goes to.
type merchant struct {
	key, webhookSecret string
}

// gw talks to the gateway.
type gw struct {
	url        string
	metricsURL string
	client     *http.Client
}

// call sends a JSON request and decodes a JSON answer into out (when not nil).
func (g *gw) call(ctx context.Context, method, path, bearer string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, g.url+path, rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(raw[:min(len(raw), 300)]))
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// setupMerchants signs merchants up, or uses -key.
func setupMerchants(ctx context.Context, g *gw, c config) ([]merchant, error) {
	if c.key != "" {
		m := merchant{key: c.key, webhookSecret: c.webhookSecret}
		if c.webhooks && m.webhookSecret == "" {
			var rot struct {
				WebhookSecret string `json:"webhook_secret"`
			}
			if _, err := g.call(ctx, "POST", "/v1/account/webhook-secret/rotate", c.key, struct{}{}, &rot); err != nil {
				return nil, fmt.Errorf("rotate the webhook secret of -key (or give -webhook-secret): %w", err)
			}
			m.webhookSecret = rot.WebhookSecret
		}
		return []merchant{m}, nil
	}
	var out []merchant
	for i := 0; i < c.merchants; i++ {
		var m struct {
			SecretKey     string `json:"secret_key"`
			WebhookSecret string `json:"webhook_secret"`
		}
		if _, err := g.call(ctx, "POST", "/v1/merchants", "", map[string]string{"name": fmt.Sprintf("picload %d", i)}, &m); err != nil {
			return nil, fmt.Errorf("sign-up (raise PIC_SIGNUP_RATE_PER_MINUTE for many -merchants): %w", err)
		}
		out = append(out, merchant{key: m.SecretKey, webhookSecret: m.WebhookSecret})
	}
	return out, nil
}

// simToken is -sim-token, else PIC_SIM_TOKEN, else <data>/sim.token.
func simToken(c config) (string, error) {
	if c.simToken != "" {
		return c.simToken, nil
	}
	if t := os.Getenv("PIC_SIM_TOKEN"); t != "" {
		return t, nil
	}
	b, err := os.ReadFile(filepath.Join(c.dataDir, "sim.token"))
	if err != nil {
		return "", fmt.Errorf("-pay needs the simulator token: give -sim-token, set PIC_SIM_TOKEN or point -data at the gateway's data directory (%v)", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// toPay is an invoice waiting for its simulated payment.
type toPay struct {
	invoiceID, amount string
}

// run drives the load and returns the report. A setup error returns no report.
func run(ctx context.Context, c config) (*report, error) {
	conns := c.clients + c.payClients + 8
	g := &gw{url: strings.TrimRight(c.url, "/"), metricsURL: c.metricsURL, client: &http.Client{
		Transport: &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns},
		Timeout:   30 * time.Second,
	}}
	merchants, err := setupMerchants(ctx, g, c)
	if err != nil {
		return nil, err
	}
	var rc *receiver
	if c.webhooks {
		if rc, err = startReceiver(c.webhookListen); err != nil {
			return nil, fmt.Errorf("webhook receiver: %w", err)
		}
		defer rc.close()
		for _, m := range merchants {
			url := rc.addMerchant(m.webhookSecret)
			if _, err := g.call(ctx, "PATCH", "/v1/account", m.key, map[string]string{"webhook_url": url}, nil); err != nil {
				return nil, fmt.Errorf("set webhook_url: %w", err)
			}
		}
	}
	var token string
	if c.pay {
		if token, err = simToken(c); err != nil {
			return nil, err
		}
	}

	body := map[string]string{"asset": c.asset, "amount": c.amount}
	creators, err := newCreators(c, g.url, merchants, body)
	if err != nil {
		return nil, err
	}

	rep := &report{Clients: c.clients, RatePerS: c.rate, Merchants: len(merchants), StatusCodes: map[string]int{}}
	st := newState()

	sampleCtx, stopSampling := context.WithCancel(ctx)
	var samplerWG sync.WaitGroup
	samplerWG.Add(1)
	go func() { defer samplerWG.Done(); st.sampleLag(sampleCtx, g, c.sampleEvery) }()

	// Mining runs beside the load; its results say which invoices each block
	// confirmed. Stopping it lets a block in flight answer: a cancelled
	// request's block is still mined, and the invoices it confirmed would
	// never be listed again.
	stopMine := make(chan struct{})
	var minerWG sync.WaitGroup
	if c.pay && c.mineEvery > 0 {
		minerWG.Add(1)
		go func() {
			defer minerWG.Done()
			t := time.NewTicker(c.mineEvery)
			defer t.Stop()
			for {
				select {
				case <-stopMine:
					return
				case <-ctx.Done():
					return
				case <-t.C:
				}
				st.mine(ctx, g, token)
			}
		}()
	}

	payQ := make(chan toPay, 100_000)
	var payWG sync.WaitGroup
	if c.pay {
		for i := 0; i < c.payClients; i++ {
			payWG.Add(1)
			go func() {
				defer payWG.Done()
				for p := range payQ {
					st.pay(ctx, g, token, p)
				}
			}()
		}
	}

	// Tokens: one per invoice, at the rate asked (or as fast as taken).
	tokens := make(chan int)
	start := time.Now()
	go func() {
		defer close(tokens)
		var deadline <-chan time.Time
		if c.duration > 0 {
			t := time.NewTimer(c.duration)
			defer t.Stop()
			deadline = t.C
		}
		for i := 0; i < c.n; i++ {
			if c.rate > 0 {
				due := start.Add(time.Duration(float64(i) / c.rate * float64(time.Second)))
				if d := time.Until(due); d > 0 {
					select {
					case <-time.After(d):
					case <-deadline:
						return
					case <-ctx.Done():
						return
					}
				}
			}
			select {
			case tokens <- i:
			case <-deadline:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	var createWG sync.WaitGroup
	for _, cr := range creators {
		createWG.Add(1)
		go func() {
			defer createWG.Done()
			for i := range tokens {
				m := i % len(merchants)
				var inv invoiceRef
				t0 := time.Now()
				var code int
				var err error
				if cr != nil {
					code, err = cr.createInvoice(m, &inv, c.pay)
				} else {
					code, err = g.call(ctx, "POST", "/v1/invoices", merchants[m].key, body, &inv)
				}
				st.created(time.Since(t0), code, err)
				if err == nil && c.pay {
					payQ <- toPay{invoiceID: inv.ID, amount: inv.PayAmount}
				}
			}
		}()
	}
	createWG.Wait()
	rep.Seconds = time.Since(start).Seconds()
	close(payQ)
	payWG.Wait()
	payEnd := time.Since(start).Seconds()
	close(stopMine)
	minerWG.Wait()

	// Drain: mine until every payment is confirmed, then wait for webhooks.
	deadline := time.Now().Add(c.wait)
	if c.pay {
		for time.Now().Before(deadline) && ctx.Err() == nil && st.unconfirmed() > 0 {
			st.mine(ctx, g, token)
			if st.unconfirmed() > 0 {
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	if rc != nil && c.pay {
		for time.Now().Before(deadline) && ctx.Err() == nil && st.webhooksOutstanding(rc) > 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	stopSampling()
	samplerWG.Wait()
	st.fill(rep, payEnd)
	if rc != nil {
		wr, err := webhookReport(ctx, g, merchants, rc, st)
		if err != nil {
			return rep, err
		}
		rep.Webhooks = wr
	}
	if ctx.Err() != nil {
		return rep, errors.New("interrupted")
	}
	return rep, nil
}

// state is what the run observed, shared by its goroutines.
type state struct {
	mu         sync.Mutex
	createLat  []time.Duration
	createFail int
	codes      map[string]int
	payLat     []time.Duration
	payFail    int
	payStart   map[string]time.Time // invoice → when its payment was sent
	mineStart  map[string]time.Time // invoice → when the block that confirmed it was asked for
	mineErrors int
	lagSamples []float64 // seconds
	queueMax   float64
	lagSource  string
	lastErr    atomic.Value
}

func newState() *state {
	return &state{codes: map[string]int{}, payStart: map[string]time.Time{}, mineStart: map[string]time.Time{}}
}

func (s *state) created(d time.Duration, code int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if code == 0 {
		s.codes["transport_error"]++
	} else {
		s.codes[fmt.Sprint(code)]++
	}
	if err != nil {
		s.createFail++
		s.lastErr.Store(err.Error())
		return
	}
	s.createLat = append(s.createLat, d)
}

func (s *state) pay(ctx context.Context, g *gw, token string, p toPay) {
	t0 := time.Now()
	s.mu.Lock()
	s.payStart[p.invoiceID] = t0
	s.mu.Unlock()
	_, err := g.call(ctx, "POST", "/v1/sim/pay", token, map[string]string{"invoice_id": p.invoiceID, "amount": p.amount}, nil)
	d := time.Since(t0)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		delete(s.payStart, p.invoiceID)
		s.payFail++
		s.lastErr.Store(err.Error())
		return
	}
	s.payLat = append(s.payLat, d)
}

// mine asks for one block and notes the invoices it confirmed.
func (s *state) mine(ctx context.Context, g *gw, token string) {
	t0 := time.Now()
	var res struct {
		Confirmed []struct {
			InvoiceID string `json:"invoice_id"`
		} `json:"confirmed"`
	}
	if _, err := g.call(ctx, "POST", "/v1/sim/mine", token, map[string]int{"blocks": 1}, &res); err != nil {
		if ctx.Err() == nil {
			s.mu.Lock()
			s.mineErrors++
			s.mu.Unlock()
			s.lastErr.Store(err.Error())
		}
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range res.Confirmed {
		if _, ok := s.mineStart[c.InvoiceID]; !ok {
			s.mineStart[c.InvoiceID] = t0
		}
	}
}

// unconfirmed counts payments no block has confirmed yet.
func (s *state) unconfirmed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id := range s.payStart {
		if _, ok := s.mineStart[id]; !ok {
			n++
		}
	}
	return n
}

// webhooksOutstanding counts the confirming and paid webhooks of paid
// invoices that have not arrived.
func (s *state) webhooksOutstanding(rc *receiver) int {
	s.mu.Lock()
	ids := make([]string, 0, len(s.payStart))
	for id := range s.payStart {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	n := 0
	for _, id := range ids {
		for _, typ := range []string{"invoice.confirming", "invoice.paid"} {
			if _, ok := rc.arrivedAt(id, typ); !ok {
				n++
			}
		}
	}
	return n
}
