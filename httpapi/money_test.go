package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

// setupMoney is setup with the price oracle wired into the HTTP layer.
func setupMoney(t *testing.T) *bundle {
	t.Helper()
	b := setup(t)
	b.deps.Prices = b.prices
	b.srv = httptest.NewServer(recordAnswers(New(b.cfg, b.deps)))
	t.Cleanup(b.srv.Close)
	return b
}

// credit pays an invoice of amount and takes it through money rule 4, as
// the chain would: confirmed (the invoice is paid, its fee charged, the net
// still pending), then one block deeper final (the net moves to
// available). It checks the balance at both steps.
func (b *bundle) credit(t *testing.T, key, asset, amount string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	wait := func(pos eventstore.Position) {
		t.Helper()
		if err := b.runner.WaitFor(ctx, pos); err != nil {
			t.Fatal(err)
		}
	}
	before := b.balanceOf(t, key, asset)
	inv := b.createInvoice(t, key, `{"asset":"`+asset+`","amount":"`+amount+`"}`)["id"].(string)
	b.payDeposit(t, inv, amount)
	dep := fmt.Sprintf("dep%d", b.n)
	const confirmations = 100
	res, err := b.deps.Commands.ConfirmDeposit.Handle(ctx, commands.ConfirmDeposit{InvoiceID: inv, DepositID: dep, Confirmations: confirmations})
	if err != nil {
		t.Fatal(err)
	}
	wait(res.Position)
	paid := b.do(t, req{method: "GET", path: "/v1/invoices/" + inv, key: key}).json(t)
	if paid["status"] != string(domain.StatusPaid) {
		t.Fatalf("confirmed invoice: %v", paid)
	}
	net := domain.MustAmount(amount).Sub(domain.MustAmount(paid["fee"].(string)))
	if got := b.balanceOf(t, key, asset); !got.available.Equal(before.available) || !got.pending.Equal(before.pending.Add(net)) {
		t.Fatalf("paid, not final: %s available %s pending %s, want %s and %s", asset, got.available, got.pending,
			before.available, before.pending.Add(net))
	}
	res, err = b.deps.Commands.FinalizeDeposit.Handle(ctx, commands.FinalizeDeposit{InvoiceID: inv, DepositID: dep, Depth: confirmations + 1})
	if err != nil {
		t.Fatal(err)
	}
	wait(res.Position)
	if got := b.balanceOf(t, key, asset); !got.available.Equal(before.available.Add(net)) || !got.pending.Equal(before.pending) {
		t.Fatalf("final: %s available %s pending %s, want %s and %s", asset, got.available, got.pending,
			before.available.Add(net), before.pending)
	}
}

// balance is one asset's balance as GET /v1/balance shows it.
type balance struct{ available, pending domain.Amount }

func (b *bundle) balanceOf(t *testing.T, key, asset string) balance {
	t.Helper()
	res := b.do(t, req{method: "GET", path: "/v1/balance?asset=" + asset, key: key})
	if res.status != http.StatusOK {
		t.Fatalf("balance: %d %s", res.status, res.raw)
	}
	j := res.json(t)
	return balance{available: domain.MustAmount(j["available"].(string)), pending: domain.MustAmount(j["pending"].(string))}
}

// TestMoneyEndpoints runs quotes, withdrawals, payouts and consolidation
// through the table: key types, isolation and input errors.
func TestMoneyEndpoints(t *testing.T) {
	b := setupMoney(t)
	a, other := b.signUp(t, "Shop A"), b.signUp(t, "Shop B")
	b.credit(t, a.secret, "USDT.ETH", "100")
	b.credit(t, other.secret, "BTC", "0.01")
	first := b.do(t, req{method: "POST", path: "/v1/withdrawals", key: a.secret,
		body: `{"asset":"USDT.ETH","amount":"10","to_address":"0x1111111111111111111111111111111111111111"}`})
	if first.status != http.StatusCreated {
		t.Fatalf("withdrawal: %d %s", first.status, first.raw)
	}
	poA := first.json(t)["id"].(string)
	keys := map[string]string{secretA: a.secret, pubA: a.pub, secretB: other.secret, pubB: other.pub}
	const addr = `"to_address":"0x2222222222222222222222222222222222222222"`
	tests := []struct {
		name         string
		method, path string
		key          string
		body         string
		wantStatus   int
		wantCode     string
	}{
		{"quote secret", "GET", "/v1/quote?from=BTC&to=USDT.ETH&amount=0.01", secretA, "", 200, ""},
		{"quote publishable", "GET", "/v1/quote?from=BTC&to=USDT.ETH&amount=0.01", pubA, "", 200, ""},
		{"quote no key", "GET", "/v1/quote?from=BTC&to=USDT.ETH&amount=0.01", noKey, "", 401, "unauthorized"},
		{"quote unsupported", "GET", "/v1/quote?from=DOGE&to=BTC&amount=1", secretA, "", 400, "unsupported_asset"},
		{"quote no to", "GET", "/v1/quote?from=BTC&amount=1", secretA, "", 400, "unsupported_asset"},
		{"quote same", "GET", "/v1/quote?from=BTC&to=BTC&amount=1", secretA, "", 400, "validation_error"},
		{"quote no amount", "GET", "/v1/quote?from=BTC&to=ETH", secretA, "", 400, "invalid_amount"},
		{"quote zero", "GET", "/v1/quote?from=BTC&to=ETH&amount=0", secretA, "", 400, "invalid_amount"},
		{"quote exponent", "GET", "/v1/quote?from=BTC&to=ETH&amount=1e3", secretA, "", 400, "invalid_amount"},
		{"quote too precise", "GET", "/v1/quote?from=BTC&to=ETH&amount=0.000000001", secretA, "", 400, "invalid_amount"},
		{"quote no price", "GET", "/v1/quote?from=TRX&to=BTC&amount=1", secretA, "", 503, "price_unavailable"},

		{"withdraw publishable", "POST", "/v1/withdrawals", pubA, `{"asset":"USDT.ETH"}`, 403, "forbidden"},
		{"withdraw no key", "POST", "/v1/withdrawals", noKey, `{"asset":"USDT.ETH"}`, 401, "unauthorized"},
		{"withdraw no asset", "POST", "/v1/withdrawals", secretA, `{"amount":"1"}`, 400, "validation_error"},
		{"withdraw unsupported", "POST", "/v1/withdrawals", secretA, `{"asset":"DOGE"}`, 400, "unsupported_asset"},
		{"withdraw amount number", "POST", "/v1/withdrawals", secretA, `{"asset":"USDT.ETH","amount":1}`, 400, "invalid_amount"},
		{"withdraw amount empty", "POST", "/v1/withdrawals", secretA, `{"asset":"USDT.ETH","amount":""}`, 400, "invalid_amount"},
		{"withdraw amount negative", "POST", "/v1/withdrawals", secretA, `{"asset":"USDT.ETH","amount":"-1",` + addr + `}`, 400, "invalid_amount"},
		{"withdraw too precise", "POST", "/v1/withdrawals", secretA, `{"asset":"USDT.ETH","amount":"0.0000001",` + addr + `}`, 400, "invalid_amount"},
		{"withdraw unknown field", "POST", "/v1/withdrawals", secretA, `{"asset":"USDT.ETH","currency":"USD"}`, 400, "validation_error"},
		{"withdraw no address anywhere", "POST", "/v1/withdrawals", secretA, `{"asset":"USDT.ETH","amount":"1"}`, 400, "validation_error"},
		{"withdraw address with spaces", "POST", "/v1/withdrawals", secretA, `{"asset":"USDT.ETH","amount":"1","to_address":"0x 1"}`, 400, "validation_error"},
		{"withdraw more than available", "POST", "/v1/withdrawals", secretA, `{"asset":"USDT.ETH","amount":"90",` + addr + `}`, 409, "insufficient_funds"},
		{"withdraw nothing there", "POST", "/v1/withdrawals", secretA, `{"asset":"ETH",` + addr + `}`, 409, "insufficient_funds"},
		{"withdraw other merchant's coin", "POST", "/v1/withdrawals", secretA, `{"asset":"BTC","amount":"0.001","to_address":"bc1qxyz"}`, 409, "insufficient_funds"},
		{"withdraw bad consolidate_to", "POST", "/v1/withdrawals", secretA, `{"asset":"USDT.ETH","consolidate_to":"DOGE"}`, 400, "unsupported_asset"},
		{"withdraw consolidate_to same asset", "POST", "/v1/withdrawals", secretA, `{"asset":"USDT.ETH","amount":"1","consolidate_to":"USDT.ETH",` + addr + `}`, 400, "validation_error"},
		{"withdraw consolidate_to empty", "POST", "/v1/withdrawals", secretA, `{"asset":"USDT.ETH","amount":"1","consolidate_to":"",` + addr + `}`, 400, "validation_error"},
		{"withdraw amount null", "POST", "/v1/withdrawals", secretA, `{"asset":"USDT.ETH","amount":null,` + addr + `}`, 400, "validation_error"},
		{"withdraw consolidate_to null", "POST", "/v1/withdrawals", secretA, `{"asset":"USDT.ETH","amount":"1","consolidate_to":null,` + addr + `}`, 400, "validation_error"},
		{"withdraw to_address null", "POST", "/v1/withdrawals", secretA, `{"asset":"USDT.ETH","amount":"1","to_address":null}`, 400, "validation_error"},
		{"withdraw duplicate key", "POST", "/v1/withdrawals", secretA, `{"asset":"BTC","asset":"USDT.ETH","amount":"1",` + addr + `}`, 400, "invalid_json"},
		{"withdraw duplicate amount", "POST", "/v1/withdrawals", secretA, `{"asset":"USDT.ETH","amount":"1","amount":"2",` + addr + `}`, 400, "invalid_json"},
		{"withdraw converted without an address", "POST", "/v1/withdrawals", secretB, `{"asset":"BTC","amount":"0.001","consolidate_to":"USDT.ETH"}`, 400, "validation_error"},
		{"withdraw converted", "POST", "/v1/withdrawals", secretB, `{"asset":"BTC","amount":"0.001","consolidate_to":"USDT.ETH",` + addr + `}`, 201, ""},
		{"withdraw part", "POST", "/v1/withdrawals", secretA, `{"asset":"USDT.ETH","amount":"5",` + addr + `}`, 201, ""},
		{"withdraw text/plain", "POST", "/v1/withdrawals", secretA, `{"asset":"USDT.ETH"}`, 415, "unsupported_media_type"},

		{"payouts", "GET", "/v1/payouts", secretA, "", 200, ""},
		{"payouts filtered", "GET", "/v1/payouts?status=requested&limit=5", secretA, "", 200, ""},
		{"payouts publishable", "GET", "/v1/payouts", pubA, "", 403, "forbidden"},
		{"payouts bad limit", "GET", "/v1/payouts?limit=0", secretA, "", 400, "validation_error"},
		{"payouts bad status", "GET", "/v1/payouts?status=signed", secretA, "", 400, "validation_error"},
		{"payouts cursor of other merchant", "GET", "/v1/payouts?starting_after=" + poA, secretB, "", 404, "not_found"},
		{"payout", "GET", "/v1/payouts/" + poA, secretA, "", 200, ""},
		{"payout of other merchant", "GET", "/v1/payouts/" + poA, secretB, "", 404, "not_found"},
		{"payout missing", "GET", "/v1/payouts/po_00000000000000000000000000", secretA, "", 404, "not_found"},
		{"payout publishable", "GET", "/v1/payouts/" + poA, pubA, "", 403, "forbidden"},

		{"consolidate publishable", "POST", "/v1/consolidate", pubA, `{"to":"BTC"}`, 403, "forbidden"},
		{"consolidate no to", "POST", "/v1/consolidate", secretA, `{}`, 400, "validation_error"},
		{"consolidate bad to", "POST", "/v1/consolidate", secretA, `{"to":"DOGE"}`, 400, "unsupported_asset"},
		{"consolidate to null", "POST", "/v1/consolidate", secretA, `{"to":null}`, 400, "validation_error"},
		{"consolidate duplicate key", "POST", "/v1/consolidate", secretA, `{"to":"BTC","to":"ETH"}`, 400, "invalid_json"},
		{"consolidate", "POST", "/v1/consolidate", secretB, `{"to":"ETH"}`, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rq := req{method: tc.method, path: tc.path, key: keys[tc.key], body: tc.body}
			if tc.key == noKey {
				rq.key = ""
			}
			if strings.HasSuffix(tc.name, "text/plain") {
				rq.header = map[string]string{"Content-Type": "text/plain"}
			}
			res := b.do(t, rq)
			if res.status != tc.wantStatus || (tc.wantCode != "" && res.code() != tc.wantCode) {
				t.Fatalf("%s %s: %d %s, want %d %s", tc.method, tc.path, res.status, res.raw, tc.wantStatus, tc.wantCode)
			}
		})
	}
}

// TestWithdrawalFlow: quotes, account values, the whole balance withdrawn
// once (a second time is 409), idempotent replay, the payout's document,
// and a stale price answered with 503.
func TestWithdrawalFlow(t *testing.T) {
	b := setupMoney(t)
	m := b.signUp(t, "Shop")
	b.credit(t, m.secret, "BTC", "0.02")

	q := b.do(t, req{method: "GET", path: "/v1/quote?from=BTC&to=USDT.ETH&amount=0.01", key: m.pub})
	if q.status != 200 {
		t.Fatalf("quote: %d %s", q.status, q.raw)
	}
	wantKeys(t, "quote", q.json(t), "from", "to", "from_amount", "to_amount", "rate", "fee", "fee_bps", "source", "quoted_at")
	// 0.01 × 60000 = 600, fee 50 bps = 3.
	if j := q.json(t); j["to_amount"] != "597" || j["fee"] != "3" || j["fee_bps"] != 50.0 || j["source"] != "price-oracle" || j["rate"] != "60000" {
		t.Fatalf("quote %s", q.raw)
	}

	acc := b.do(t, req{method: "GET", path: "/v1/account", key: m.secret}).json(t)
	// 0.02 − 0.00005 fee = 0.01995 BTC × 60000 = 1197.00.
	if acc["total_usd"] != "1197.00" {
		t.Fatalf("total_usd %v", acc["total_usd"])
	}
	one := b.do(t, req{method: "GET", path: "/v1/balance?asset=BTC", key: m.secret}).json(t)
	if one["usd_value"] != "1197.00" || one["available"] != "0.01995" {
		t.Fatalf("balance %v", one)
	}
	// No price for a coin the merchant holds: its value and the total are null.
	b.credit(t, m.secret, "TRX", "5")
	acc = b.do(t, req{method: "GET", path: "/v1/account", key: m.secret}).json(t)
	if acc["total_usd"] != nil {
		t.Fatalf("total_usd without a TRX price: %v", acc["total_usd"])
	}

	put := b.do(t, req{method: "PUT", path: "/v1/payout-settings", key: m.secret, body: `{"asset":"BTC","payout_address":"bc1qconfigured","mode":"manual"}`})
	if put.status != 200 {
		t.Fatalf("settings: %d %s", put.status, put.raw)
	}
	hdr := map[string]string{"Idempotency-Key": "withdraw-all-1"}
	w := b.do(t, req{method: "POST", path: "/v1/withdrawals", key: m.secret, body: `{"asset":"BTC"}`, header: hdr})
	if w.status != http.StatusCreated {
		t.Fatalf("withdraw all: %d %s", w.status, w.raw)
	}
	po := w.json(t)
	wantKeys(t, "payout", po, "id", "object", "asset", "kind", "status", "amount", "network_fee", "sent_amount", "net_of_network_fee",
		"to_address", "txid", "source_invoice_id", "failure_reason", "created_at", "sent_at", "confirmed_at", "failed_at")
	if po["amount"] != "0.01995" || po["to_address"] != "bc1qconfigured" || po["status"] != "requested" || po["kind"] != "withdrawal" ||
		po["net_of_network_fee"] != false || po["txid"] != nil {
		t.Fatalf("payout %s", w.raw)
	}
	replay := b.do(t, req{method: "POST", path: "/v1/withdrawals", key: m.secret, body: `{"asset":"BTC"}`, header: hdr})
	if replay.status != http.StatusCreated || replay.json(t)["id"] != po["id"] || replay.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %s", replay.status, replay.raw)
	}
	again := b.do(t, req{method: "POST", path: "/v1/withdrawals", key: m.secret, body: `{"asset":"BTC"}`})
	if again.status != http.StatusConflict || again.code() != "insufficient_funds" {
		t.Fatalf("second withdrawal of the whole balance: %d %s", again.status, again.raw)
	}
	got := b.do(t, req{method: "GET", path: "/v1/payouts/" + po["id"].(string), key: m.secret})
	if got.status != 200 || got.json(t)["amount"] != "0.01995" {
		t.Fatalf("GET payout: %d %s", got.status, got.raw)
	}
	list := b.do(t, req{method: "GET", path: "/v1/payouts", key: m.secret}).json(t)
	if data := list["data"].([]any); len(data) != 1 || list["has_more"] != false {
		t.Fatalf("list %v", list)
	}
	bal := b.do(t, req{method: "GET", path: "/v1/balance?asset=BTC", key: m.secret}).json(t)
	if bal["available"] != "0" {
		t.Fatalf("reserved funds still available: %v", bal)
	}

	// A stale price is a 503, never a guess.
	b.prices.At, b.prices.MaxAge = b.clock.Now().Add(-time.Hour), time.Minute
	stale := b.do(t, req{method: "GET", path: "/v1/quote?from=BTC&to=USDT.ETH&amount=0.01", key: m.secret})
	if stale.status != http.StatusServiceUnavailable || stale.code() != "price_unavailable" {
		t.Fatalf("stale quote: %d %s", stale.status, stale.raw)
	}
	b.credit(t, m.secret, "BTC", "0.01")
	conv := b.do(t, req{method: "POST", path: "/v1/consolidate", key: m.secret, body: `{"to":"USDT.ETH"}`})
	if conv.status != http.StatusServiceUnavailable || conv.code() != "price_unavailable" {
		t.Fatalf("stale consolidation: %d %s", conv.status, conv.raw)
	}
	if acc := b.do(t, req{method: "GET", path: "/v1/account", key: m.secret}).json(t); acc["total_usd"] != nil {
		t.Fatalf("total_usd on stale prices: %v", acc["total_usd"])
	}
	_ = domain.ErrPriceUnavailable
}

// TestConvertedInvoiceNeedsAPrice is money rule 3 at creation: an invoice
// whose payments will be converted (its settle_as, or else the account's
// consolidate_to) is 503 price_unavailable without a fresh price of the
// pair, and nothing is created; an invoice that will not be converted
// needs no price.
func TestConvertedInvoiceNeedsAPrice(t *testing.T) {
	b := setup(t) // the commands have prices, none for TRX
	m := b.signUp(t, "Shop")
	refused := func(key, body string) {
		t.Helper()
		res := b.do(t, req{method: "POST", path: "/v1/invoices", key: key, body: body})
		if res.status != http.StatusServiceUnavailable || res.code() != "price_unavailable" {
			t.Fatalf("%s: %d %s, want 503 price_unavailable", body, res.status, res.raw)
		}
	}
	tier := func(inv map[string]any, settleAsset any, bps float64) {
		t.Helper()
		if inv["settle_asset"] != settleAsset || inv["fee_bps"] != bps || inv["settlement"] != nil {
			t.Fatalf("invoice %s: settle_asset %v fee_bps %v settlement %v, want %v %v null", inv["id"], inv["settle_asset"],
				inv["fee_bps"], inv["settlement"], settleAsset, bps)
		}
	}

	refused(m.secret, `{"asset":"BTC","amount":"0.01","settle_as":"TRX"}`)
	refused(m.pub, `{"asset":"TRX","amount":"5","settle_as":"BTC"}`)
	patch := b.do(t, req{method: "PATCH", path: "/v1/account", key: m.secret, body: `{"consolidate_to":"TRX"}`})
	if patch.status != http.StatusOK {
		t.Fatalf("consolidate_to: %d %s", patch.status, patch.raw)
	}
	refused(m.secret, btcBody)
	refused(m.pub, `{"asset":"USDT.ETH","amount":"10"}`)
	if n := b.countInvoices(t, m.secret); n != 0 {
		t.Fatalf("refused requests created %d invoices", n)
	}

	// Paid in the account's coin: nothing to convert, no price needed.
	tier(b.createInvoice(t, m.secret, `{"asset":"TRX","amount":"5"}`), nil, 25)
	// settle_as, priced, wins over consolidate_to.
	tier(b.createInvoice(t, m.pub, `{"asset":"BTC","amount":"0.01","settle_as":"USDT.ETH"}`), "USDT.ETH", 50)
	// Once TRX has a price, the account's invoices convert (50 bps).
	b.prices.USD["TRX"] = decimal.RequireFromString("0.25")
	tier(b.createInvoice(t, m.secret, btcBody), nil, 50)

	// A stale price is no price.
	b.prices.At, b.prices.MaxAge = b.clock.Now().Add(-time.Hour), time.Minute
	refused(m.secret, btcBody)
	refused(m.secret, `{"asset":"ETH","amount":"1","settle_as":"USDT.ETH"}`)
	tier(b.createInvoice(t, m.secret, `{"asset":"TRX","amount":"5"}`), nil, 25)
	if n := b.countInvoices(t, m.secret); n != 4 {
		t.Fatalf("%d invoices, want the 4 created", n)
	}
}
