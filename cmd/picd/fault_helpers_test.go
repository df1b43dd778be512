package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/webhooks"
)

// Helpers of the fault tests: a picd whose logs can be read while it runs,
// a webhook receiver that can go down, a load of invoices paid through the
// simulator, and the checks every fault test ends with.

const faultSimToken = "fault-test-sim-token"

// faultEnv is what every fault test gives picd besides its store.
func faultEnv() []string {
	return []string{"PIC_WEBHOOK_ALLOW_PRIVATE=true", "PIC_SIM_TOKEN=" + faultSimToken, "PIC_KEY_RATE_PER_MINUTE=100000000"}
}

// syncBuffer is a log buffer written by the child's output copier and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a picd serve whose logs may be read while it runs.
type proc struct {
	*gateway
	out *syncBuffer
}

// startProc is startGateway with readable logs.
func startProc(t testing.TB, env []string) *proc {
	t.Helper()
	addr := freeAddr(t)
	p := &proc{gateway: &gateway{t: t, url: "http://" + addr, env: env, logs: &bytes.Buffer{}}, out: &syncBuffer{}}
	p.cmd = exec.Command(picdBin, "serve")
	// Metrics off unless a test asks (env wins), as in startGateway.
	p.cmd.Env = append(os.Environ(), append(append([]string{"PIC_METRICS_LISTEN=", "PIC_SIMULATOR=true"}, env...), "PIC_LISTEN="+addr, "PIC_SIGNUP_RATE_PER_MINUTE=1000")...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.kill() })
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(p.url + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("picd did not start:\n%s", p.out)
	return nil
}

// signUp registers a merchant whose webhooks go to rc.
func signUp(t testing.TB, g *gateway, rc *hookReceiver) (key string) {
	t.Helper()
	status, m := g.do("POST", "/v1/merchants", "", map[string]any{"name": "Shop"})
	if status != 201 {
		t.Fatalf("sign-up: %d %v", status, m)
	}
	rc.setSecret(m["webhook_secret"].(string))
	key = m["secret_key"].(string)
	if status, acc := g.do("PATCH", "/v1/account", key, map[string]any{"webhook_url": rc.url()}); status != 200 {
		t.Fatalf("set webhook_url: %d %v", status, acc)
	}
	return key
}

// auditAgrees runs picd audit on env and fails the test unless it agrees.
func auditAgrees(t testing.TB, env []string) string {
	t.Helper()
	cmd := exec.Command(picdBin, "audit")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "the log and the read models agree") {
		t.Fatalf("picd audit: %v\n%s", err, out)
	}
	return string(out)
}

// auditJSON runs picd audit --json (exit 0 wanted) and decodes its report
// into v.
func auditJSON(t testing.TB, env []string, v any) {
	t.Helper()
	cmd := exec.Command(picdBin, "audit", "--json")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("picd audit --json: %v\n%s", err, out)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("picd audit --json: %v\n%s", err, out)
	}
}

// hookReceiver is a webhook endpoint on a fixed loopback address that can
// be taken down (connections refused) and brought back on the same address.
type hookReceiver struct {
	t    testing.TB
	addr string

	mu     sync.Mutex
	srv    *http.Server
	secret string
	got    map[string]*hookArrival // by delivery id
	order  map[string][]string     // invoice → event types in order of first arrival
	badSig int
}

type hookArrival struct {
	count     int
	first     time.Time
	last      time.Time
	eventType string
	invoiceID string
}

func newHookReceiver(t testing.TB) *hookReceiver {
	r := &hookReceiver{t: t, addr: freeAddr(t), got: map[string]*hookArrival{}, order: map[string][]string{}}
	r.up()
	t.Cleanup(r.down)
	return r
}

func (r *hookReceiver) url() string { return "http://" + r.addr + "/hook" }

func (r *hookReceiver) setSecret(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secret = s
}

// up listens again on the receiver's address.
func (r *hookReceiver) up() {
	r.t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the port may linger for a moment after down
		if ln, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("receiver up: %v", err)
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// down stops listening: later attempts are refused. Requests already being
// handled finish first (a request cut after it was counted would be
// retried, and look like a duplicate the gateway did not cause).
func (r *hookReceiver) down() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = srv.Close()
	}
}

func (r *hookReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	raw, err := io.ReadAll(req.Body)
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil || webhooks.Verify(raw, req.Header.Get(webhooks.HeaderSignature), r.secret) != nil {
		r.badSig++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var body struct {
		Type string `json:"type"`
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	_ = json.Unmarshal(raw, &body)
	id := req.Header.Get(webhooks.HeaderDelivery)
	a := r.got[id]
	if a == nil {
		a = &hookArrival{first: now, eventType: body.Type, invoiceID: body.Data.ID}
		r.got[id] = a
		r.order[body.Data.ID] = append(r.order[body.Data.ID], body.Type)
	}
	a.count++
	a.last = now
	w.WriteHeader(http.StatusOK)
}

func (r *hookReceiver) snapshot() (map[string]hookArrival, map[string][]string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	got := make(map[string]hookArrival, len(r.got))
	for id, a := range r.got {
		got[id] = *a
	}
	order := make(map[string][]string, len(r.order))
	for inv, types := range r.order {
		order[inv] = append([]string(nil), types...)
	}
	return got, order, r.badSig
}

// load creates invoices with concurrent clients, pays each through the
// simulator and mines a block every 200 ms, against whatever URL urlFn gives.
type load struct {
	urlFn  func() string
	key    string
	client *http.Client
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	acked    []string // invoices created (2xx)
	ackTimes []time.Time
	paid     []string // payments the simulator acknowledged
	codes    map[int]int
}

func startLoad(urlFn func() string, key string, workers int) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{urlFn: urlFn, key: key, cancel: cancel, codes: map[int]int{},
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers + 2}}}
	for w := 0; w < workers; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for ctx.Err() == nil {
				var inv struct {
					ID        string `json:"id"`
					PayAmount string `json:"pay_amount"`
				}
				code := l.post(ctx, "/v1/invoices", key, map[string]string{"asset": "BTC", "amount": "0.001"}, &inv)
				l.mu.Lock()
				l.codes[code]++
				if code/100 == 2 {
					l.acked, l.ackTimes = append(l.acked, inv.ID), append(l.ackTimes, time.Now())
				}
				l.mu.Unlock()
				if code/100 != 2 {
					sleepCtx(ctx, 20*time.Millisecond) // the server is down or failing: do not spin
					continue
				}
				if l.post(ctx, "/v1/sim/pay", faultSimToken, map[string]string{"invoice_id": inv.ID, "amount": inv.PayAmount}, nil) == 200 {
					l.mu.Lock()
					l.paid = append(l.paid, inv.ID)
					l.mu.Unlock()
				}
			}
		}()
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for ctx.Err() == nil {
			sleepCtx(ctx, 200*time.Millisecond)
			l.post(ctx, "/v1/sim/mine", faultSimToken, map[string]int{"blocks": 1}, nil)
		}
	}()
	return l
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// post sends JSON and returns the status (0 when no answer came).
func (l *load) post(ctx context.Context, path, bearer string, body, out any) int {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, "POST", l.urlFn()+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := l.client.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode/100 == 2 {
		_ = json.Unmarshal(raw, out)
	}
	return resp.StatusCode
}

func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
}

func (l *load) results() (acked, paid []string, codes map[int]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	codes = map[int]int{}
	for k, v := range l.codes {
		codes[k] = v
	}
	return append([]string(nil), l.acked...), append([]string(nil), l.paid...), codes
}

// ackedSince counts invoices acknowledged after t.
func (l *load) ackedSince(t time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, at := range l.ackTimes {
		if at.After(t) {
			n++
		}
	}
	return n
}

// getJSON is a GET that reports transport errors instead of failing the test.
func getJSON(url, key string, out any) (int, error) {
	req, _ := http.NewRequest("GET", url, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, err
		}
	}
	return resp.StatusCode, nil
}

type loggedDelivery struct {
	ID        string `json:"id"`
	EventType string `json:"event_type"`
	InvoiceID string `json:"invoice_id"`
	Status    string `json:"status"`
	Attempts  []struct {
		At         int64   `json:"at"`
		StatusCode *int    `json:"status_code"`
		Error      *string `json:"error"`
	} `json:"attempts"`
}

// deliveryLog reads the merchant's whole delivery log.
func deliveryLog(url, key string) ([]loggedDelivery, error) {
	var all []loggedDelivery
	after := ""
	for page := 0; page < 1000; page++ {
		var p struct {
			Data    []loggedDelivery `json:"data"`
			HasMore bool             `json:"has_more"`
		}
		path := url + "/v1/webhooks/deliveries?limit=100"
		if after != "" {
			path += "&starting_after=" + after
		}
		if status, err := getJSON(path, key, &p); err != nil || status != 200 {
			return nil, fmt.Errorf("delivery log: %d %v", status, err)
		}
		all = append(all, p.Data...)
		if !p.HasMore || len(p.Data) == 0 {
			break
		}
		after = p.Data[len(p.Data)-1].ID
	}
	return all, nil
}

// statusEventDeliveryIDs reads the merchant's event feed and returns the
// delivery id each invoice status event must have (webhooks.DeliveryID of
// its event id), with the event's webhook type.
func statusEventDeliveryIDs(url, key string) (map[string]string, error) {
	types := map[string]string{"InvoicePartiallyPaid": "invoice.partially_paid", "InvoiceConfirming": "invoice.confirming",
		"InvoicePaid": "invoice.paid", "InvoiceExpired": "invoice.expired"}
	want := map[string]string{}
	after := "0"
	for page := 0; page < 1000; page++ {
		var p struct {
			Data []struct {
				EventID string `json:"event_id"`
				Type    string `json:"type"`
			} `json:"data"`
			HasMore   bool   `json:"has_more"`
			NextAfter string `json:"next_after"`
		}
		if status, err := getJSON(url+"/v1/events?limit=1000&after="+after, key, &p); err != nil || status != 200 {
			return nil, fmt.Errorf("event feed: %d %v", status, err)
		}
		for _, e := range p.Data {
			if typ, ok := types[e.Type]; ok {
				want[webhooks.DeliveryID(e.EventID)] = typ
			}
		}
		if !p.HasMore {
			break
		}
		after = p.NextAfter
	}
	return want, nil
}

// settled is what the end-of-test checks found.
type settled struct {
	acked, paid   int
	statusEvents  int // invoice status events in the log = deliveries expected
	deliveries    int // deliveries in the delivery log
	received      int // distinct ids the receiver got
	arrivals      int // requests the receiver got
	duplicates    []string
	retried       int // deliveries that needed more than one attempt
	settleSeconds float64
}

func (s settled) String() string {
	return fmt.Sprintf("%d invoices acknowledged, %d paid; %d status events → %d deliveries in the log, %d ids received in %d requests, %d ids twice, %d retried; settled in %.1f s",
		s.acked, s.paid, s.statusEvents, s.deliveries, s.received, s.arrivals, len(s.duplicates), s.retried, s.settleSeconds)
}

// settle ends every fault test: it mines until every acknowledged payment
// made its invoice paid, waits until every invoice status event has a
// delivery that the receiver got, and checks:
//   - every acknowledged invoice exists, every acknowledged payment is paid;
//   - the delivery log has exactly one delivery per status event (ids
//     derived from the event ids), all delivered;
//   - the receiver got every logged id, nothing else, all signatures good,
//     and per invoice the confirming webhook before the paid one.
//
// Ids the receiver got twice are returned for the caller to judge: the
// worker sends at least once, so a crash between a send and its record
// resends the same id.
func settle(t *testing.T, url, key string, l *load, rc *hookReceiver, timeout time.Duration) settled {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	acked, paid, _ := l.results()
	s := settled{acked: len(acked), paid: len(paid)}
	for _, id := range acked {
		for {
			status, err := getJSON(url+"/v1/invoices/"+id, key, nil)
			if status == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("acknowledged invoice %s is missing: %d %v", id, status, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	mine := &load{urlFn: func() string { return url }, client: &http.Client{Timeout: 10 * time.Second}, codes: map[int]int{}}
	pending := append([]string(nil), paid...)
	for len(pending) > 0 {
		mine.post(context.Background(), "/v1/sim/mine", faultSimToken, map[string]int{"blocks": 1}, nil)
		var still []string
		for _, id := range pending {
			var inv struct {
				Status string `json:"status"`
			}
			if status, _ := getJSON(url+"/v1/invoices/"+id, key, &inv); status != 200 || inv.Status != "paid" {
				still = append(still, id)
			}
		}
		pending = still
		if len(pending) > 0 && time.Now().After(deadline) {
			t.Fatalf("%d acknowledged payments did not make their invoices paid, e.g. %s", len(pending), pending[0])
		}
	}
	var want map[string]string
	var logged []loggedDelivery
	for {
		var err error
		want, err = statusEventDeliveryIDs(url, key)
		if err == nil {
			logged, err = deliveryLog(url, key)
		}
		got, _, _ := rc.snapshot()
		done := err == nil && len(logged) == len(want)
		for _, d := range logged {
			if _, ok := got[d.ID]; d.Status != "delivered" || !ok {
				done = false
			}
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhooks did not settle in %s: %d status events, %d deliveries logged, %d ids received (err %v)", timeout, len(want), len(logged), len(got), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.settleSeconds = time.Since(start).Seconds()
	got, order, badSig := rc.snapshot()
	s.statusEvents, s.deliveries, s.received = len(want), len(logged), len(got)
	if badSig > 0 {
		t.Errorf("%d deliveries failed signature verification", badSig)
	}
	inLog := map[string]bool{}
	for _, d := range logged {
		if inLog[d.ID] {
			t.Errorf("delivery %s is twice in the log", d.ID)
		}
		inLog[d.ID] = true
		if typ, ok := want[d.ID]; !ok || typ != d.EventType {
			t.Errorf("delivery %s (%s) does not match a status event of the log", d.ID, d.EventType)
		}
		if len(d.Attempts) > 1 {
			s.retried++
		}
	}
	for id, a := range got {
		s.arrivals += a.count
		if !inLog[id] {
			t.Errorf("the receiver got %s, which is not in the delivery log", id)
		}
		if a.count > 1 {
			s.duplicates = append(s.duplicates, id)
		}
	}
	sort.Strings(s.duplicates)
	paidSet := map[string]bool{}
	for _, id := range paid {
		paidSet[id] = true
	}
	for inv, types := range order {
		iConf, iPaid := -1, -1
		for i, typ := range types {
			switch typ {
			case webhooks.EventInvoiceConfirming:
				iConf = i
			case webhooks.EventInvoicePaid:
				iPaid = i
			}
		}
		if iPaid >= 0 && iConf > iPaid {
			t.Errorf("invoice %s: paid arrived before confirming: %v", inv, types)
		}
		if iPaid >= 0 {
			delete(paidSet, inv)
		}
	}
	for inv := range paidSet {
		// Every paid invoice has at least its paid webhook.
		t.Errorf("paid invoice %s: no webhook arrived", inv)
	}
	return s
}
