package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/commands"
)

// paidInvoice creates an invoice of amount, pays it and takes it to
// finality, and returns its id.
func (b *bundle) paidInvoice(t *testing.T, key, asset, amount string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	inv := b.createInvoice(t, key, `{"asset":"`+asset+`","amount":"`+amount+`"}`)["id"].(string)
	b.payDeposit(t, inv, amount)
	dep := fmt.Sprintf("dep%d", b.n)
	if _, err := b.deps.Commands.ConfirmDeposit.Handle(ctx, commands.ConfirmDeposit{InvoiceID: inv, DepositID: dep, Confirmations: 100}); err != nil {
		t.Fatal(err)
	}
	res, err := b.deps.Commands.FinalizeDeposit.Handle(ctx, commands.FinalizeDeposit{InvoiceID: inv, DepositID: dep, Depth: 101})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.runner.WaitFor(ctx, res.Position); err != nil {
		t.Fatal(err)
	}
	return inv
}

func TestRefundEndpoints(t *testing.T) {
	b := setupMoney(t)
	a, other := b.signUp(t, "Shop A"), b.signUp(t, "Shop B")
	inv := b.paidInvoice(t, a.secret, "USDT.ETH", "100") // net 99.75
	b.paidInvoice(t, a.secret, "USDT.ETH", "10")
	path := "/v1/invoices/" + inv + "/refunds"
	const to = `"to_address":"0x2222222222222222222222222222222222222222"`
	for _, c := range []struct {
		name       string
		key        string
		body       string
		wantStatus int
		wantCode   string
	}{
		{"publishable key", a.pub, `{"amount":"1",` + to + `}`, http.StatusForbidden, "forbidden"},
		{"another merchant's invoice", other.secret, `{"amount":"1",` + to + `}`, http.StatusNotFound, "not_found"},
		{"no address", a.secret, `{"amount":"1"}`, http.StatusBadRequest, "validation_error"},
		{"invalid address", a.secret, `{"amount":"1","to_address":"not an address"}`, http.StatusBadRequest, "validation_error"},
		{"amount as a number", a.secret, `{"amount":1,` + to + `}`, http.StatusBadRequest, ""},
		{"too many decimals", a.secret, `{"amount":"1.0000001",` + to + `}`, http.StatusBadRequest, "invalid_amount"},
		{"over what the invoice received", a.secret, `{"amount":"99.76",` + to + `}`, http.StatusConflict, "invalid_state"},
		{"partial", a.secret, `{"amount":"40",` + to + `}`, http.StatusCreated, ""},
		{"the rest by default", a.secret, `{` + to + `}`, http.StatusCreated, ""},
		{"nothing left", a.secret, `{` + to + `}`, http.StatusConflict, "invalid_state"},
	} {
		res := b.do(t, req{method: "POST", path: path, key: c.key, body: c.body})
		if res.status != c.wantStatus || (c.wantCode != "" && res.code() != c.wantCode) {
			t.Errorf("%s: %d %s, want %d %s", c.name, res.status, res.raw, c.wantStatus, c.wantCode)
		}
	}
	list := b.do(t, req{method: "GET", path: path, key: a.secret})
	if list.status != http.StatusOK {
		t.Fatalf("list: %d %s", list.status, list.raw)
	}
	data := list.json(t)["data"].([]any)
	if len(data) != 2 {
		t.Fatalf("refunds: %s", list.raw)
	}
	// Both were requested in the same millisecond of the test clock: their
	// order is the ids' random part.
	x, y := data[0].(map[string]any)["amount"], data[1].(map[string]any)["amount"]
	if !(x == "59.75" && y == "40") && !(x == "40" && y == "59.75") {
		t.Fatalf("refund amounts: %s", list.raw)
	}
	for _, r := range data {
		r := r.(map[string]any)
		if r["kind"] != "refund" || r["invoice_id"] != inv || r["net_of_network_fee"] != true || r["asset"] != "USDT.ETH" {
			t.Fatalf("refund %v", r)
		}
	}
	// The payout list shows them too.
	all := b.do(t, req{method: "GET", path: "/v1/payouts", key: a.secret}).json(t)["data"].([]any)
	if len(all) != 2 || all[0].(map[string]any)["kind"] != "refund" {
		t.Fatalf("payouts: %v", all)
	}
	if res := b.do(t, req{method: "GET", path: path, key: other.secret}); res.status != http.StatusNotFound {
		t.Fatalf("another merchant's refunds: %d", res.status)
	}
	if res := b.do(t, req{method: "GET", path: "/v1/invoices/inv_nope/refunds", key: a.secret}); res.status != http.StatusNotFound {
		t.Fatalf("unknown invoice: %d", res.status)
	}
}

func TestRefundIdempotency(t *testing.T) {
	b := setupMoney(t)
	a := b.signUp(t, "Shop")
	inv := b.paidInvoice(t, a.secret, "USDT.ETH", "100")
	path := "/v1/invoices/" + inv + "/refunds"
	body := `{"amount":"10","to_address":"0x2222222222222222222222222222222222222222"}`
	hdr := map[string]string{"Idempotency-Key": "refund-1"}
	first := b.do(t, req{method: "POST", path: path, key: a.secret, body: body, header: hdr})
	again := b.do(t, req{method: "POST", path: path, key: a.secret, body: body, header: hdr})
	if first.status != http.StatusCreated || again.status != http.StatusCreated || first.json(t)["id"] != again.json(t)["id"] {
		t.Fatalf("a retried refund: %d %s / %d %s", first.status, first.raw, again.status, again.raw)
	}
	other := b.do(t, req{method: "POST", path: path, key: a.secret, body: `{"amount":"11","to_address":"0x2222222222222222222222222222222222222222"}`, header: hdr})
	if other.status != http.StatusConflict {
		t.Fatalf("the same key with another body: %d %s", other.status, other.raw)
	}
	list := b.do(t, req{method: "GET", path: path, key: a.secret}).json(t)["data"].([]any)
	if len(list) != 1 {
		t.Fatalf("one refund expected: %v", list)
	}
}

// TestInvoiceListsItsRefunds: the invoice's refunds field (API.md,
// additions of 2026-12-03) in GET and the list, [] when none; a webhook's
// data is the invoice as its event stream stands and leaves the key out.
func TestInvoiceListsItsRefunds(t *testing.T) {
	b := setupMoney(t)
	m := b.signUp(t, "Shop")
	rc := newHookReceiver(t)
	if res := b.do(t, req{method: "PATCH", path: "/v1/account", key: m.secret, body: `{"webhook_url":"` + rc.srv.URL + `/ipn"}`}); res.status != http.StatusOK {
		t.Fatalf("set webhook_url: %d %s", res.status, res.raw)
	}
	inv := b.paidInvoice(t, m.secret, "USDT.ETH", "100")
	plain := b.paidInvoice(t, m.secret, "USDT.ETH", "10")
	res := b.do(t, req{method: "POST", path: "/v1/invoices/" + inv + "/refunds", key: m.secret,
		body: `{"amount":"40","to_address":"0x2222222222222222222222222222222222222222"}`})
	if res.status != http.StatusCreated {
		t.Fatalf("refund: %d %s", res.status, res.raw)
	}
	refund := res.json(t)
	want := []any{map[string]any{"id": refund["id"], "amount": "40", "status": "requested", "network_fee": nil, "txid": nil,
		"created_at": refund["created_at"]}}
	got := b.do(t, req{method: "GET", path: "/v1/invoices/" + inv, key: m.secret}).json(t)
	if !reflect.DeepEqual(got["refunds"], want) {
		t.Errorf("GET refunds = %#v\nwant %#v", got["refunds"], want)
	}
	if got := b.do(t, req{method: "GET", path: "/v1/invoices/" + plain, key: m.secret}).json(t); !reflect.DeepEqual(got["refunds"], []any{}) {
		t.Errorf("GET of an invoice without refunds: refunds = %#v, want []", got["refunds"])
	}
	list := b.do(t, req{method: "GET", path: "/v1/invoices", key: m.secret}).json(t)["data"].([]any)
	if len(list) != 2 {
		t.Fatalf("list: %v", list)
	}
	for _, item := range list {
		item := item.(map[string]any)
		wantHere := []any{}
		if item["id"] == inv {
			wantHere = want
		}
		if !reflect.DeepEqual(item["refunds"], wantHere) {
			t.Errorf("list %s: refunds = %#v, want %#v", item["id"], item["refunds"], wantHere)
		}
	}

	b.syncWebhooks(t)
	b.passAll(t)
	hooks := rc.requests()
	if len(hooks) == 0 {
		t.Fatal("no webhook")
	}
	for _, h := range hooks {
		var body struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
		if err := json.Unmarshal(h.body, &body); err != nil {
			t.Fatal(err)
		}
		if _, ok := body.Data["refunds"]; ok || body.Data["id"] == nil {
			t.Errorf("webhook %s: data %v: want the invoice without refunds", body.Type, body.Data)
		}
	}
}
