package httpapi

import (
	"net/http"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// TestFiatPricedInvoices (issue #19): price_amount + price_currency instead
// of amount. The asset amount is the price at the oracle's rate at
// creation, rounded up to the asset's smallest unit, checked to the unit
// on every priced asset with the harness's fixed prices (BTC 60000,
// ETH 3000, USDT 1 USD; EUR 1.08 USD); the rate is recorded.
func TestFiatPricedInvoices(t *testing.T) {
	b := setup(t)
	b.prices.USD["EUR"] = decimal.RequireFromString("1.08")
	m := b.signUp(t, "Shop")
	nowMs := b.clock.Now().UnixMilli()
	tests := []struct {
		asset, currency, price string
		wantAmount, wantRate   string
	}{
		{"BTC", "USD", "49.99", "0.00083317", "60000"},
		{"ETH", "USD", "49.99", "0.016663333333333334", "3000"},
		{"USDT.ETH", "USD", "49.99", "49.99", "1"},
		{"USDT.TRON", "USD", "49.99", "49.99", "1"},
		{"BTC", "USD", "0.01", "0.00000017", "60000"},
		{"BTC", "EUR", "49.99", "0.00089982", "55555.555555555555555556"},
		{"ETH", "EUR", "100", "0.036", "2777.777777777777777778"},
		{"USDT.ETH", "EUR", "10", "10.8", "0.925925925925925926"},
	}
	for _, tt := range tests {
		body := `{"asset":"` + tt.asset + `","price_amount":"` + tt.price + `","price_currency":"` + tt.currency + `"}`
		inv := b.createInvoice(t, m.secret, body)
		what := tt.price + " " + tt.currency + " in " + tt.asset
		if inv["amount"] != tt.wantAmount || inv["pay_amount"] != tt.wantAmount {
			t.Errorf("%s: amount %v pay_amount %v, want %s", what, inv["amount"], inv["pay_amount"], tt.wantAmount)
		}
		wantPrice := map[string]any{"currency": tt.currency, "amount": tt.price, "rate": tt.wantRate, "source": "static", "rate_at": float64(nowMs)}
		checkPrice := func(where string, inv map[string]any) {
			t.Helper()
			p, _ := inv["price"].(map[string]any)
			for k, v := range wantPrice {
				if p[k] != v {
					t.Errorf("%s %s: price.%s = %v, want %v", what, where, k, p[k], v)
				}
			}
		}
		checkPrice("created", inv)
		checkPrice("GET", b.do(t, req{method: "GET", path: "/v1/invoices/" + inv["id"].(string), key: m.secret}).json(t))
	}
	list := b.do(t, req{method: "GET", path: "/v1/invoices?limit=100", key: m.secret}).json(t)["data"].([]any)
	for _, item := range list {
		inv := item.(map[string]any)
		if p, _ := inv["price"].(map[string]any); p["rate_at"] != float64(nowMs) || p["source"] != "static" {
			t.Errorf("list: %s price %v", inv["id"], p)
		}
	}
	// The publishable key may price in fiat too.
	if inv := b.createInvoice(t, m.pub, `{"asset":"BTC","price_amount":"60000","price_currency":"USD"}`); inv["amount"] != "1" {
		t.Errorf("publishable: amount %v", inv["amount"])
	}

	bad := []struct {
		name, body string
		wantStatus int
		wantCode   string
	}{
		{"amount and price_amount", `{"asset":"BTC","amount":"0.01","price_amount":"10","price_currency":"USD"}`, 400, "validation_error"},
		{"amount and price_currency", `{"asset":"BTC","amount":"0.01","price_currency":"USD"}`, 400, "validation_error"},
		{"price_amount alone", `{"asset":"BTC","price_amount":"10"}`, 400, "validation_error"},
		{"price_currency alone", `{"asset":"BTC","price_currency":"USD"}`, 400, "validation_error"},
		{"unknown currency", `{"asset":"BTC","price_amount":"10","price_currency":"GBP"}`, 400, "validation_error"},
		{"lowercase currency", `{"asset":"BTC","price_amount":"10","price_currency":"usd"}`, 400, "validation_error"},
		{"an asset as currency", `{"asset":"BTC","price_amount":"10","price_currency":"ETH"}`, 400, "validation_error"},
		{"cents too precise", `{"asset":"BTC","price_amount":"10.001","price_currency":"USD"}`, 400, "invalid_amount"},
		{"price zero", `{"asset":"BTC","price_amount":"0","price_currency":"USD"}`, 400, "invalid_amount"},
		{"price negative", `{"asset":"BTC","price_amount":"-5","price_currency":"USD"}`, 400, "invalid_amount"},
		{"price number", `{"asset":"BTC","price_amount":10,"price_currency":"USD"}`, 400, "invalid_amount"},
		{"price null", `{"asset":"BTC","price_amount":null,"price_currency":"USD"}`, 400, "validation_error"},
		{"unsupported asset", `{"asset":"DOGE","price_amount":"10","price_currency":"USD"}`, 400, "unsupported_asset"},
		{"no price of the asset", `{"asset":"TRX","price_amount":"10","price_currency":"USD"}`, 503, "price_unavailable"},
		{"settle_as without a price", `{"asset":"BTC","price_amount":"0.01","price_currency":"USD","settle_as":"TRX"}`, 503, "price_unavailable"},
	}
	for _, tc := range bad {
		res := b.do(t, req{method: "POST", path: "/v1/invoices", key: m.secret, body: tc.body})
		if res.status != tc.wantStatus || res.code() != tc.wantCode {
			t.Errorf("%s: %d %s, want %d %s", tc.name, res.status, res.raw, tc.wantStatus, tc.wantCode)
		}
	}

	// A stale price is refused (503), never used; nothing is created.
	before := b.countInvoices(t, m.secret)
	b.prices.At, b.prices.MaxAge = b.clock.Now().Add(-time.Hour), 10*time.Minute
	res := b.do(t, req{method: "POST", path: "/v1/invoices", key: m.secret, body: `{"asset":"BTC","price_amount":"10","price_currency":"USD"}`})
	if res.status != http.StatusServiceUnavailable || res.code() != "price_unavailable" {
		t.Errorf("stale price: %d %s", res.status, res.raw)
	}
	// An invoice in the asset needs no price.
	if res := b.do(t, req{method: "POST", path: "/v1/invoices", key: m.secret, body: btcBody}); res.status != http.StatusCreated {
		t.Errorf("asset invoice with a stale oracle: %d %s", res.status, res.raw)
	}
	if n := b.countInvoices(t, m.secret); n != before+1 {
		t.Errorf("%d invoices, want %d", n, before+1)
	}
}
