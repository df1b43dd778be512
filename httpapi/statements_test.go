package httpapi

import (
	"testing"
	"time"
)

// GET /v1/statements: a merchant's own accounts only, opening to closing
// by kind, with the log's hash at the end; bad periods are 400 in the
// {error, message} shape; a publishable key is refused.
func TestStatements(t *testing.T) {
	b := setup(t)
	m := b.signUp(t, "Shop")
	other := b.signUp(t, "Other")
	inv := b.createInvoice(t, m.secret, `{"asset":"USDT.ETH","amount":"25"}`)
	b.payDeposit(t, inv["id"].(string), "25")
	b.createInvoice(t, other.secret, `{"asset":"USDT.ETH","amount":"7"}`)

	// The store records real time.
	day := time.Now().UTC()
	from, to := day.AddDate(0, 0, -1).Format("2006-01-02"), day.AddDate(0, 0, 2).Format("2006-01-02")
	r := b.do(t, req{method: "GET", path: "/v1/statements?from=" + from + "&to=" + to, key: m.secret})
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	st := r.json(t)
	accounts := st["accounts"].([]any)
	if st["object"] != "statement" || len(accounts) != 1 || st["log_end"] == nil {
		t.Fatalf("statement %s", r.raw)
	}
	a := accounts[0].(map[string]any)
	mv := a["movements"].([]any)[0].(map[string]any)
	if a["owner"] != m.id || a["account"] != "merchant:"+m.id+":pending" || a["opening"] != "0" || a["closing"] != "25" ||
		mv["kind"] != "deposits" || mv["amount"] != "25" || mv["count"] != float64(1) {
		t.Fatalf("statement %s", r.raw)
	}
	// Before the payment: nothing moved.
	r = b.do(t, req{method: "GET", path: "/v1/statements?from=2026-01-01&to=2026-02-01", key: m.secret})
	if r.status != 200 || len(r.json(t)["accounts"].([]any)) != 0 {
		t.Fatalf("an empty period: %d %s", r.status, r.raw)
	}
	for _, bad := range []string{"?from=" + from, "?from=" + to + "&to=" + from, "?from=yesterday&to=" + to, "?from=2024-01-01&to=2026-01-01"} {
		r := b.do(t, req{method: "GET", path: "/v1/statements" + bad, key: m.secret})
		if r.status != 400 || r.code() != "validation_error" || r.json(t)["message"] == "" {
			t.Fatalf("%s: %d %s", bad, r.status, r.raw)
		}
	}
	if r := b.do(t, req{method: "GET", path: "/v1/statements?from=" + from + "&to=" + to, key: m.pub}); r.status != 403 {
		t.Fatalf("publishable key: %d %s", r.status, r.raw)
	}
}
