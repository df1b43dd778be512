package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/shopspring/decimal"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/webhooks"
)

// fuzzRoute is one mutating endpoint as the fuzz target calls it: with the
// credential it needs, on a merchant of its own, so that what one route
// does (a key rotation, a webhook_url) never changes another route's
// answers.
type fuzzRoute struct {
	method, pattern string
	auth            string // "secret" or "publishable"
	path            string // pattern with its parameters filled in
	merchant        *fuzzMerchant
}

type fuzzMerchant struct {
	id, secret, pub string
}

// fuzzServer is the real stack behind the fuzz target, called in process.
type fuzzServer struct {
	h      http.Handler
	routes []fuzzRoute
	mu     sync.Mutex
	log    bytes.Buffer // the handler's log of the current input
}

func (fs *fuzzServer) Write(p []byte) (int, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.log.Write(p)
}

func (fs *fuzzServer) serve(method, path, key string, header map[string]string, body []byte) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if key != "" {
		r.Header.Set("Authorization", "Bearer "+key)
	}
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	fs.h.ServeHTTP(w, r)
	return w
}

// newFuzzServer signs a merchant up for every mutating route of the
// router (walked, so a route added later is fuzzed too), and prices every
// asset: no 503 is a correct answer then.
func newFuzzServer(f *testing.F) *fuzzServer {
	b := setup(f, func(c *Config) {
		c.SignupRatePerMinute, c.PublicRatePerMinute, c.KeyRatePerMinute = 1<<30, 1<<30, 1<<30
	})
	b.prices.USD["TRX"] = decimal.RequireFromString("0.1")
	b.prices.USD["EUR"] = decimal.RequireFromString("1.08") // USD per EUR: invoices priced in EUR
	fs := &fuzzServer{}
	deps := b.deps
	deps.Prices = b.prices
	deps.Logger = slog.New(slog.NewTextHandler(fs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	fs.h = New(b.cfg, deps)

	var routes []fuzzRoute
	// Every route gets the secret key (public ones ignore it), and the
	// invoice creation the publishable key too.
	err := chi.Walk(fs.h.(chi.Routes), func(method, pattern string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if method == http.MethodGet || method == http.MethodHead {
			return nil
		}
		routes = append(routes, fuzzRoute{method: method, pattern: pattern, auth: "secret"})
		if method == http.MethodPost && pattern == "/v1/invoices" {
			routes = append(routes, fuzzRoute{method: method, pattern: pattern, auth: "publishable"})
		}
		return nil
	})
	if err != nil {
		f.Fatal(err)
	}
	sort.Slice(routes, func(i, j int) bool {
		return routes[i].pattern+routes[i].method+routes[i].auth < routes[j].pattern+routes[j].method+routes[j].auth
	})
	for i := range routes {
		rt := &routes[i]
		rt.merchant = fs.signUp(f)
		rt.path = fillParams(f, b, fs, rt.pattern, rt.merchant)
	}
	if len(routes) < 10 {
		f.Fatalf("only %d mutating routes walked", len(routes))
	}
	fs.routes = routes
	return fs
}

// signUp registers a merchant with a webhook_url that is never dialled
// (the webhook worker does not run; /v1/webhooks/test's merchant is
// refused before it dials, see fillParams).
func (fs *fuzzServer) signUp(f *testing.F) *fuzzMerchant {
	w := fs.serve("POST", "/v1/merchants", "", nil, []byte(`{"name":"Fuzz shop","webhook_url":"https://shop.example/ipn"}`))
	var m struct {
		MerchantID     string `json:"merchant_id"`
		SecretKey      string `json:"secret_key"`
		PublishableKey string `json:"publishable_key"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &m); w.Code != http.StatusCreated || err != nil || m.SecretKey == "" {
		f.Fatalf("sign-up: %d %s", w.Code, w.Body)
	}
	return &fuzzMerchant{id: m.MerchantID, secret: m.SecretKey, pub: m.PublishableKey}
}

// fillParams puts one of the merchant's own objects in each path
// parameter, so that the body is decoded rather than the id refused: an
// invoice for invoices, a webhook delivery for deliveries; any other
// parameter gets an id that does not exist (404 is a fine answer). The
// merchant of /v1/webhooks/test loses its webhook_url, so the test event
// is refused (400) after its body is decoded, instead of dialled.
func fillParams(f *testing.F, b *bundle, fs *fuzzServer, pattern string, m *fuzzMerchant) string {
	ctx := context.Background()
	newInvoice := func() string {
		w := fs.serve("POST", "/v1/invoices", m.secret, nil, []byte(btcBody))
		var inv struct{ ID string }
		if json.Unmarshal(w.Body.Bytes(), &inv); w.Code != http.StatusCreated || inv.ID == "" {
			f.Fatalf("invoice for %s: %d %s", pattern, w.Code, w.Body)
		}
		return inv.ID
	}
	if pattern == "/v1/webhooks/test" {
		if w := fs.serve("PATCH", "/v1/account", m.secret, nil, []byte(`{"webhook_url":null}`)); w.Code != http.StatusOK {
			f.Fatalf("webhook_url: %d %s", w.Code, w.Body)
		}
	}
	segs := strings.Split(pattern, "/")
	for i, seg := range segs {
		if !strings.HasPrefix(seg, "{") {
			continue
		}
		switch {
		case i > 0 && segs[i-1] == "invoices":
			segs[i] = newInvoice()
		case i > 0 && segs[i-1] == "deliveries":
			// A payment changes the invoice's status: one delivery.
			inv := newInvoice()
			_, err := b.deps.Commands.ObserveDeposit.Handle(ctx, commands.ObserveDeposit{
				CommandID: "cmd_fuzz_" + inv, InvoiceID: inv,
				Deposit: domain.ObservedDeposit{DepositID: "dep_" + inv, TxID: "tx_" + inv, Amount: domain.MustAmount("0.001")},
			})
			if err != nil {
				f.Fatal(err)
			}
			if err := b.subscriber.CatchUp(ctx); err != nil {
				f.Fatal(err)
			}
			page, _, err := b.webhooks.ListDeliveries(ctx, m.id, webhooks.DeliveryFilter{Limit: 10})
			if err != nil || len(page) != 1 {
				f.Fatalf("deliveries of %s: %v %v", m.id, page, err)
			}
			segs[i] = page[0].ID
		default:
			segs[i] = "x_00000000000000000000000000"
		}
	}
	return strings.Join(segs, "/")
}

// fuzzSeeds are realistic bodies of every endpoint, and the shapes that
// break strict decoders. {secret} stands for the route's merchant's secret
// key (POST /v1/sessions).
var fuzzSeeds = []string{
	`{"name":"My store","webhook_url":"https://my-store.example/ipn"}`,
	`{"name":"My store"}`,
	`{"asset":"USDT.ETH","amount":"49.99","order_id":"order-123"}`,
	`{"asset":"BTC","amount":"0.01","settle_as":"USDT.TRON","expires_in":600}`,
	`{"asset":"TRX","amount":"5","settle_as":"BTC"}`,
	`{"price_amount":"19.90","price_currency":"EUR","asset":"ETH","description":"Blue mug","metadata":{"sku":"mug-1"},"redirect_url":"https://shop.example/thanks"}`,
	`{"webhook_url":"https://a.example/hook","consolidate_to":"BTC"}`,
	`{"webhook_url":null,"consolidate_to":null}`,
	`{"display_name":"Shop","logo_url":"https://shop.example/logo.png","brand_color":"#112233","default_redirect_url":"https://shop.example/"}`,
	`{"asset":"BTC","payout_address":"bc1qexample","mode":"instant","instant_min_amount":"0.001"}`,
	`{"asset":"USDT.TRON","mode":"manual","payout_address":null}`,
	`{"asset":"USDT.ETH","amount":"1","to_address":"0x1111111111111111111111111111111111111111"}`,
	`{"asset":"BTC","consolidate_to":"USDT.ETH","to_address":"0x1111111111111111111111111111111111111111"}`,
	`{"to":"USDT.ETH"}`,
	`{"amount":"0.001","to_address":"bc1qcustomer"}`,
	`{"secret_key":"{secret}"}`,
	`{}`,
	``,
	`null`,
	`[]`,
	`"x"`,
	`{"asset":"BTC","amount":"0.01"} {}`,
	`{"asset":"BTC","asset":"ETH","amount":"0.01"}`,
	`{"asset":"BTC","ASSET":"ETH","amount":"0.01"}`,
	`{"asset":"BTC","\u0061sset":"ETH","amount":"0.01"}`,
	`{"asset":"BTC","amount":"0.01","order_id":{"a":1,"a":2}}`,
	`{"asset":null,"amount":null,"order_id":null,"settle_as":null,"expires_in":null,"to":null,"mode":null}`,
	`{"asset":"BTC","amount":"0.01","plan":"gold","force":true}`,
	`{"asset":"BTC","amount":0.01}`,
	`{"asset":"BTC","amount":"1e3"}`,
	`{"asset":"BTC","amount":"99999999999999999999999999999999999999999999999999.99999999"}`,
	`{"asset":"BTC","amount":123456789012345678901234567890123456789}`,
	`{"asset":"BTC","amount":"0.01","expires_in":1e999999}`,
	`{"asset":"BTC","amount":"0.01","expires_in":-9223372036854775809}`,
	`{"asset":"BTC","amount":"0.01","expires_in":9223372036854775807}`,
	`{"asset":"BTC","amount":"0.01","expires_in":60.5}`,
	"{\"asset\":\"BTC\",\"amount\":\"0.01\",\"order_id\":\"\xff\xfe\"}",
	"{\"\xff\":1}",
	"{\"name\":\"\xc3\x28\",\"webhook_url\":\"https://\xe2\x82.example/\"}",
	"{\"asset\":\"BTC\",\"amount\":\"0.01\",\"order_id\":\"a\u202eb\"}",
	"{\"asset\":\"BTC\",\"amount\":\"0.01\",\"order_id\":\"a\\u0000b\"}",
	`{"asset":"BTC","amount":"0.01","order_id":"\ud800"}`,
	`{"asset":"BTC","amount":"0.01","order_id":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`,
	`{"a":` + strings.Repeat(`{"a":`, 5000) + `1` + strings.Repeat("}", 5001),
	`{"metadata":{` + strings.Repeat(`"k":"v",`, 30) + `"k":"v"}}`,
	`{"asset":"BTC","amount":"0.01",`,
	`{"asset":"BTC","amount":"0.01"`,
	"\xef\xbb\xbf{\"asset\":\"BTC\",\"amount\":\"0.01\"}",
}

// fuzzAnswerWithin bounds one answer: every wait of the handler is bounded
// (an idempotent duplicate waits 10 s at most), so a longer one is a hang.
const fuzzAnswerWithin = 30 * time.Second

// FuzzMutatingJSON sends arbitrary bodies (and Idempotency-Keys) to every
// mutating endpoint: the answer is never a panic and never a 5xx, a 4xx is
// exactly {"error","message"}, and a 2xx is JSON.
//
//	go test ./httpapi -run '^$' -fuzz FuzzMutatingJSON -fuzztime 60s
func FuzzMutatingJSON(f *testing.F) {
	fs := newFuzzServer(f)
	for i := range fs.routes {
		for _, s := range fuzzSeeds {
			f.Add(uint8(i), []byte(s), "")
		}
		f.Add(uint8(i), []byte(`{}`), "retry-1")
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte, idemKey string) {
		rt := fs.routes[int(route)%len(fs.routes)]
		m := rt.merchant
		fs.mu.Lock()
		key := m.secret
		if rt.auth == "publishable" {
			key = m.pub
		}
		fs.log.Reset()
		fs.mu.Unlock()
		body = bytes.ReplaceAll(body, []byte("{secret}"), []byte(m.secret))
		var header map[string]string
		if idemKey != "" {
			header = map[string]string{"Idempotency-Key": idemKey}
		}
		var w *httptest.ResponseRecorder
		done := make(chan struct{})
		go func() { defer close(done); w = fs.serve(rt.method, rt.path, key, header, body) }()
		select {
		case <-done:
		case <-time.After(fuzzAnswerWithin):
			stacks := make([]byte, 1<<20)
			stacks = stacks[:runtime.Stack(stacks, true)]
			t.Fatalf("%s %s (%s key) body %q: no answer in %s\n%s", rt.method, rt.path, rt.auth, body, fuzzAnswerWithin, stacks)
		}
		fs.mu.Lock()
		logged := fs.log.String()
		fs.mu.Unlock()
		res := w.Body.Bytes()
		what := fmt.Sprintf("%s %s (%s key) body %q: %d %s\nlog: %s", rt.method, rt.path, rt.auth, body, w.Code, res, logged)
		switch {
		case w.Code >= 500 || w.Code < 200 || (w.Code >= 300 && w.Code < 400):
			t.Fatalf("status: %s", what)
		case w.Code >= 400:
			var e map[string]any
			if err := json.Unmarshal(res, &e); err != nil || len(e) != 2 {
				t.Fatalf("not the {error, message} shape: %s", what)
			}
			code, _ := e["error"].(string)
			msg, _ := e["message"].(string)
			if code == "" || msg == "" {
				t.Fatalf("not the {error, message} shape: %s", what)
			}
		case w.Code != http.StatusNoContent && !json.Valid(res):
			t.Fatalf("a success that is not JSON: %s", what)
		}
		if !utf8.Valid(res) {
			t.Fatalf("an answer that is not UTF-8: %s", what)
		}
		if !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") && w.Code != http.StatusNoContent {
			t.Fatalf("Content-Type %q: %s", w.Header().Get("Content-Type"), what)
		}
		// A key rotation answers the route's merchant's new keys (a replay
		// answers keys that may be rotated since).
		if w.Code == http.StatusOK && strings.HasSuffix(rt.pattern, "/keys/rotate") && w.Header().Get("Idempotent-Replayed") == "" {
			var k struct {
				SecretKey      string `json:"secret_key"`
				PublishableKey string `json:"publishable_key"`
			}
			if err := json.Unmarshal(res, &k); err != nil || k.SecretKey == "" {
				t.Fatalf("rotation answer: %s", what)
			}
			fs.mu.Lock()
			m.secret, m.pub = k.SecretKey, k.PublishableKey
			fs.mu.Unlock()
		}
	})
}
