package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
)

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func wantKeys(t *testing.T, what string, m map[string]any, want ...string) {
	t.Helper()
	sort.Strings(want)
	if got := keysOf(m); !reflect.DeepEqual(got, want) {
		t.Fatalf("%s keys\n got %v\nwant %v", what, got, want)
	}
}

// TestInvoiceShape checks the invoice document field by field, that a GET
// right after the POST sees it (read-your-writes), and what the public
// endpoint leaves out.
func TestInvoiceShape(t *testing.T) {
	b := setup(t)
	m := b.signUp(t, "Shop")
	created := b.createInvoice(t, m.secret, `{"asset":"USDT.ETH","amount":"49.99","order_id":"order-123"}`)
	wantKeys(t, "invoice", created, "id", "object", "asset", "status", "pay_address", "pay_amount", "amount", "fee", "fee_bps",
		"settle_asset", "settlement", "expires_at", "order_id", "amount_received", "amount_due", "payments", "created_at", "paid_at",
		"checkout_url", "confirmations", "required_confirmations", "created_by", "description", "metadata", "redirect_url", "price", "refunds")
	checks := map[string]any{
		"asset": "USDT.ETH", "status": "new", "pay_amount": "49.99", "amount": "49.99", "fee": "0.124975",
		"settle_asset": nil, "settlement": nil, "order_id": "order-123", "amount_received": "0", "amount_due": "49.99", "paid_at": nil,
		"description": nil, "redirect_url": nil, "price": nil,
		"confirmations": 0.0, "required_confirmations": 12.0, "fee_bps": 25.0, "created_by": "secret_key",
	}
	for k, want := range checks {
		if created[k] != want {
			t.Errorf("%s = %#v, want %#v", k, created[k], want)
		}
	}
	id := created["id"].(string)
	if !strings.HasPrefix(id, "inv_") || created["checkout_url"] != "https://pay.example/pay/"+id {
		t.Errorf("id %q checkout_url %q", id, created["checkout_url"])
	}
	if r, ok := created["refunds"].([]any); !ok || len(r) != 0 {
		t.Errorf("refunds = %#v, want []", created["refunds"])
	}
	if p, ok := created["payments"].([]any); !ok || len(p) != 0 {
		t.Errorf("payments = %#v, want []", created["payments"])
	}
	if created["expires_at"].(float64)-created["created_at"].(float64) != 3600*1000 {
		t.Errorf("default expiry: %v - %v", created["expires_at"], created["created_at"])
	}

	got := b.do(t, req{method: "GET", path: "/v1/invoices/" + id, key: m.pub})
	if got.status != http.StatusOK {
		t.Fatalf("GET right after POST: %d %s", got.status, got.raw)
	}
	if !reflect.DeepEqual(got.json(t), created) {
		t.Errorf("GET differs from POST\n got %s", got.raw)
	}

	pub := b.do(t, req{method: "GET", path: "/v1/public/invoices/" + id}).json(t)
	wantKeys(t, "public invoice", pub, "id", "asset", "status", "pay_address", "pay_amount", "amount_received", "amount_due",
		"expires_at", "confirmations", "required_confirmations", "payments")
	if pub["amount_due"] != "49.99" {
		t.Errorf("public amount_due = %#v, want \"49.99\"", pub["amount_due"])
	}

	conv := b.createInvoice(t, m.pub, `{"asset":"BTC","amount":"0.01","settle_as":"USDT.ETH","expires_in":600}`)
	if conv["settle_asset"] != "USDT.ETH" || conv["fee"] != "0.00005" || conv["fee_bps"] != 50.0 || conv["settlement"] != nil {
		t.Errorf("conversion tier: %v %v %v, settlement %v before any payment", conv["settle_asset"], conv["fee"], conv["fee_bps"],
			conv["settlement"])
	}
	if conv["expires_at"].(float64)-conv["created_at"].(float64) != 600*1000 {
		t.Errorf("expires_in ignored")
	}

	// Partly paid: the public invoice asks for the rest, as the private one.
	res, err := b.deps.Commands.ObserveDeposit.Handle(context.Background(), commands.ObserveDeposit{InvoiceID: id,
		Deposit: domain.ObservedDeposit{DepositID: "dep-part", TxID: "tx-part", Amount: domain.MustAmount("10")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.runner.WaitFor(context.Background(), res.Position); err != nil {
		t.Fatal(err)
	}
	pub = b.do(t, req{method: "GET", path: "/v1/public/invoices/" + id}).json(t)
	priv := b.do(t, req{method: "GET", path: "/v1/invoices/" + id, key: m.secret}).json(t)
	if pub["amount_due"] != "39.99" || priv["amount_due"] != "39.99" || pub["status"] != "partially_paid" {
		t.Errorf("partly paid: public amount_due %v, private %v, status %v", pub["amount_due"], priv["amount_due"], pub["status"])
	}
	// The checkout links each transaction to an explorer (issue #20).
	pays, _ := pub["payments"].([]any)
	if len(pays) != 1 {
		t.Fatalf("public payments %#v, want one", pub["payments"])
	}
	if p := pays[0].(map[string]any); p["txid"] != "tx-part" || p["amount"] != "10" || p["status"] != "pending" {
		t.Errorf("public payment %#v", p)
	}
	wantKeys(t, "public payment", pays[0].(map[string]any), "txid", "amount", "confirmations", "status")
}

func TestListInvoicesPaginates(t *testing.T) {
	b := setup(t)
	m := b.signUp(t, "Shop")
	seen := map[string]bool{}
	for i := 0; i < 5; i++ {
		b.clock.Advance(1e6) // ids sort by creation time
		b.createInvoice(t, m.secret, btcBody)
	}
	after := ""
	for pages := 0; pages < 10; pages++ {
		path := "/v1/invoices?limit=2"
		if after != "" {
			path += "&starting_after=" + after
		}
		page := b.do(t, req{method: "GET", path: path, key: m.secret}).json(t)
		data := page["data"].([]any)
		for _, d := range data {
			id := d.(map[string]any)["id"].(string)
			if seen[id] {
				t.Fatalf("%s twice", id)
			}
			seen[id] = true
			after = id
		}
		if page["has_more"] == false {
			break
		}
	}
	if len(seen) != 5 {
		t.Fatalf("paged through %d invoices, want 5", len(seen))
	}
}

func TestAccountBalanceAssetsPayoutShapes(t *testing.T) {
	b := setup(t)
	m := b.signUp(t, "Shop")
	acc := b.do(t, req{method: "GET", path: "/v1/account", key: m.secret}).json(t)
	wantKeys(t, "account", acc, "merchant_id", "name", "publishable_key", "webhook_url", "consolidate_to", "payout_settings",
		"balances", "total_usd", "assets", "display_name", "logo_url", "brand_color", "default_redirect_url")
	if acc["merchant_id"] != m.id || acc["publishable_key"] != m.pub || acc["webhook_url"] != "https://shop.example/ipn" ||
		acc["consolidate_to"] != nil || acc["total_usd"] != nil {
		t.Errorf("account = %s", mustJSON(acc))
	}
	if strings.Contains(mustJSON(acc), m.secret) || strings.Contains(mustJSON(acc), m.whsec) {
		t.Fatal("the account shows a secret")
	}
	balances := acc["balances"].([]any)
	if len(balances) != len(b.deps.Assets.List()) {
		t.Errorf("balances %v", balances)
	}
	wantKeys(t, "balance", balances[0].(map[string]any), "asset", "available", "pending", "usd_value")

	patched := b.do(t, req{method: "PATCH", path: "/v1/account", key: m.secret, body: `{"webhook_url":null,"consolidate_to":"USDT.TRON"}`}).json(t)
	if patched["webhook_url"] != nil || patched["consolidate_to"] != "USDT.TRON" {
		t.Errorf("patched = %s", mustJSON(patched))
	}
	kept := b.do(t, req{method: "PATCH", path: "/v1/account", key: m.secret, body: `{}`}).json(t)
	if kept["consolidate_to"] != "USDT.TRON" {
		t.Errorf("an empty patch changed settings: %s", mustJSON(kept))
	}

	one := b.do(t, req{method: "GET", path: "/v1/balance?asset=BTC", key: m.secret}).json(t)
	if one["asset"] != "BTC" || one["available"] != "0" || one["pending"] != "0" || one["usd_value"] != nil {
		t.Errorf("balance = %s", mustJSON(one))
	}
	all := b.do(t, req{method: "GET", path: "/v1/balance", key: m.secret}).json(t)
	wantKeys(t, "balance list", all, "data")

	var assets []map[string]any
	if err := json.Unmarshal(b.do(t, req{method: "GET", path: "/v1/assets", key: m.pub}).raw, &assets); err != nil {
		t.Fatal(err)
	}
	if len(assets) == 0 || assets[0]["asset"] != "BTC" || assets[0]["contract"] != nil || assets[0]["decimals"] != 8.0 {
		t.Errorf("assets = %v", assets)
	}
	wantKeys(t, "asset", assets[0], "asset", "name", "chain", "decimals", "confirmations", "finality", "contract")

	put := b.do(t, req{method: "PUT", path: "/v1/payout-settings", key: m.secret,
		body: `{"asset":"BTC","payout_address":"bc1qexample","mode":"instant","instant_min_amount":"0.00100"}`}).json(t)
	if put["asset"] != "BTC" || put["payout_address"] != "bc1qexample" || put["mode"] != "instant" || put["instant_min_amount"] != "0.001" {
		t.Errorf("put = %s", mustJSON(put))
	}
	list := b.do(t, req{method: "GET", path: "/v1/payout-settings", key: m.secret}).json(t)
	data := list["data"].([]any)
	if len(data) != 1 || !reflect.DeepEqual(data[0], put) {
		t.Errorf("GET after PUT = %s", mustJSON(list))
	}
}

// TestPayoutSettingsRoundTrip: what GET /v1/payout-settings shows can be
// sent back to PUT as it is, payout_address null included (null means no
// address, as leaving it out does, and clears one that was set).
func TestPayoutSettingsRoundTrip(t *testing.T) {
	b := setup(t)
	m := b.signUp(t, "Shop")
	put := func(body string) map[string]any {
		t.Helper()
		res := b.do(t, req{method: "PUT", path: "/v1/payout-settings", key: m.secret, body: body})
		if res.status != http.StatusOK {
			t.Fatalf("PUT %s: %d %s", body, res.status, res.raw)
		}
		return res.json(t)
	}
	list := func() []any {
		t.Helper()
		return b.do(t, req{method: "GET", path: "/v1/payout-settings", key: m.secret}).json(t)["data"].([]any)
	}
	put(`{"asset":"USDT.TRON","mode":"manual"}`)
	put(`{"asset":"BTC","payout_address":"bc1qexample","mode":"instant","instant_min_amount":"0.001"}`)
	before := list()
	if len(before) != 2 {
		t.Fatalf("settings %s", mustJSON(before))
	}
	nulls := 0
	for _, s := range before {
		if s.(map[string]any)["payout_address"] == nil {
			nulls++
		}
		if got := put(mustJSON(s)); !reflect.DeepEqual(got, s) {
			t.Errorf("PUT of a GET result answered %s, want %s", mustJSON(got), mustJSON(s))
		}
	}
	if nulls != 1 {
		t.Fatalf("want one setting without an address: %s", mustJSON(before))
	}
	if after := list(); !reflect.DeepEqual(after, before) {
		t.Errorf("sending GET's settings back changed them\n got %s\nwant %s", mustJSON(after), mustJSON(before))
	}

	cleared := put(`{"asset":"BTC","payout_address":null,"mode":"manual","instant_min_amount":"0.001"}`)
	if _, ok := cleared["payout_address"]; !ok || cleared["payout_address"] != nil || cleared["mode"] != "manual" {
		t.Errorf("null did not clear the address: %s", mustJSON(cleared))
	}
	for _, s := range list() {
		if s := s.(map[string]any); s["asset"] == "BTC" && !reflect.DeepEqual(s, cleared) {
			t.Errorf("GET after clearing: %s", mustJSON(s))
		}
	}
	// Instant payouts still need an address, null or not.
	res := b.do(t, req{method: "PUT", path: "/v1/payout-settings", key: m.secret, body: `{"asset":"BTC","payout_address":null,"mode":"instant"}`})
	if res.status != http.StatusBadRequest || res.code() != "validation_error" {
		t.Errorf("instant without an address: %d %s", res.status, res.raw)
	}
}

func TestRotateKeysInvalidatesOldKeys(t *testing.T) {
	b := setup(t)
	m := b.signUp(t, "Shop")
	// Both keys answered once, so the rotation has cached entries to drop.
	for _, k := range []string{m.secret, m.pub} {
		if got := b.do(t, req{method: "GET", path: "/v1/assets", key: k}); got.status != http.StatusOK {
			t.Fatalf("key before rotation: %d", got.status)
		}
	}
	if n := b.reader.Keys.Len(); n != 2 {
		t.Fatalf("%d keys cached before the rotation, want 2", n)
	}
	res := b.do(t, req{method: "POST", path: "/v1/account/keys/rotate", key: m.secret})
	if res.status != http.StatusOK {
		t.Fatalf("%d %s", res.status, res.raw)
	}
	keys := res.json(t)
	wantKeys(t, "rotated", keys, "secret_key", "publishable_key")
	for _, old := range []string{m.secret, m.pub} {
		if got := b.do(t, req{method: "GET", path: "/v1/assets", key: old}); got.status != http.StatusUnauthorized {
			t.Errorf("old key still works: %d", got.status)
		}
	}
	if got := b.do(t, req{method: "GET", path: "/v1/account", key: keys["secret_key"].(string)}); got.status != http.StatusOK ||
		got.json(t)["publishable_key"] != keys["publishable_key"] {
		t.Errorf("new key: %d %s", got.status, got.raw)
	}
	if got := b.do(t, req{method: "GET", path: "/v1/assets", key: keys["publishable_key"].(string)}); got.status != http.StatusOK {
		t.Errorf("new publishable key: %d", got.status)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
