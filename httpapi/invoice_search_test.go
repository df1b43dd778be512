package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
)

// TestInvoiceSearch: GET /v1/invoices finds an invoice by its id, order
// id, pay address or a payment's txid, and filters by asset, settlement
// and creation period; bad parameters are 400s naming them (issue #20).
func TestInvoiceSearch(t *testing.T) {
	b := setup(t)
	m := b.signUp(t, "Search Shop")
	other := b.signUp(t, "Other Shop")
	first := b.createInvoice(t, m.secret, `{"asset":"BTC","amount":"0.01","order_id":"order-77"}`)
	b.clock.Advance(time.Hour)
	second := b.createInvoice(t, m.secret, `{"asset":"ETH","amount":"0.5","order_id":"order-78"}`)
	b.clock.Advance(time.Hour)
	third := b.createInvoice(t, m.secret, `{"asset":"ETH","amount":"0.7"}`)
	theirs := b.createInvoice(t, other.secret, `{"asset":"BTC","amount":"0.01","order_id":"order-77"}`)
	res, err := b.deps.Commands.ObserveDeposit.Handle(context.Background(), commands.ObserveDeposit{CommandID: "search-dep", InvoiceID: second["id"].(string),
		Deposit: domain.ObservedDeposit{DepositID: "dep-search", TxID: "0xfeedbeef", Amount: domain.MustAmount("0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.runner.WaitFor(context.Background(), res.Position); err != nil {
		t.Fatal(err)
	}
	ids := func(query string) []string {
		t.Helper()
		r := b.do(t, req{method: "GET", path: "/v1/invoices?" + query, key: m.secret})
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", query, r.status, r.raw)
		}
		var out []string
		for _, inv := range r.json(t)["data"].([]any) {
			out = append(out, inv.(map[string]any)["id"].(string))
		}
		sort.Strings(out)
		return out
	}
	id := func(inv map[string]any) string { return inv["id"].(string) }
	created := func(inv map[string]any) int64 { return int64(inv["created_at"].(float64)) }
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"q=order-77", []string{id(first)}}, // not the other shop's
		{"q=" + id(third), []string{id(third)}},
		{"q=" + url.QueryEscape(second["pay_address"].(string)), []string{id(second)}},
		{"q=0xfeedbeef", []string{id(second)}},
		{"q=%20order-78%20", []string{id(second)}},
		{"q=" + id(theirs), nil},
		{"q=order-7", nil}, // exact, not a prefix
		{"asset=ETH", []string{id(second), id(third)}},
		{"asset=ETH&status=partially_paid", []string{id(second)}},
		{"created_gte=" + strconv.FormatInt(created(second), 10), []string{id(second), id(third)}},
		{"created_lt=" + strconv.FormatInt(created(second), 10), []string{id(first)}},
		{"created_gte=" + strconv.FormatInt(created(first), 10) + "&created_lt=" + strconv.FormatInt(created(third), 10), []string{id(first), id(second)}},
		{"settlement=waiting_for_price", nil},
	} {
		want := append([]string(nil), tc.want...)
		sort.Strings(want)
		if got := ids(tc.query); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: %v, want %v", tc.query, got, want)
		}
	}
	for _, bad := range []struct{ query, code, mention string }{
		{"asset=DOGE", "unsupported_asset", "DOGE"},
		{"created_gte=yesterday", "validation_error", "created_gte"},
		{"created_lt=-5", "validation_error", "created_lt"},
		{"created_gte=2000&created_lt=1000", "validation_error", "created_lt"},
		{"settlement=maybe", "validation_error", "settlement"},
		{"q=" + strings.Repeat("x", 201), "validation_error", "q must"},
		{"q=%20%20", "validation_error", "q must"},
	} {
		r := b.do(t, req{method: "GET", path: "/v1/invoices?" + bad.query, key: m.secret})
		if r.status != http.StatusBadRequest || r.code() != bad.code || !strings.Contains(string(r.raw), bad.mention) {
			t.Errorf("%s: %d %s, want 400 %s mentioning %s", bad.query, r.status, r.raw, bad.code, bad.mention)
		}
	}
}
