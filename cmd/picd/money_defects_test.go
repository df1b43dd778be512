package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// The defects of issue #15, each reproduced through the public API of a
// running picd (simulated chains, static prices), so that the same file
// ran against the build before the money rules and failed there.

const defectPrices = `{"BTC":"60000","ETH":"3000","USDT.ETH":"1","USDT.TRON":"1","TRX":"0.25"}`

func moneyGateway(t *testing.T, confirmations int, extra ...string) (*gateway, []string) {
	env := append(faultEnv(), "PIC_DATA_DIR="+t.TempDir(), "PIC_PRICES="+defectPrices, fmt.Sprint("PIC_SIM_CONFIRMATIONS=", confirmations))
	env = append(env, extra...)
	return startGateway(t, env), env
}

func (g *gateway) sim(t *testing.T, path string, body map[string]any) map[string]any {
	t.Helper()
	status, out := g.do("POST", "/v1/sim/"+path, faultSimToken, body)
	if status != 200 {
		t.Fatalf("sim %s: %d %v", path, status, out)
	}
	return out
}

func (g *gateway) invoice(t *testing.T, key string, body map[string]any) string {
	t.Helper()
	status, inv := g.do("POST", "/v1/invoices", key, body)
	if status != 201 {
		t.Fatalf("create invoice: %d %v", status, inv)
	}
	return inv["id"].(string)
}

// eventually polls f until it returns "" or the deadline passes.
func eventually(t *testing.T, what string, f func() string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		if last = f(); last == "" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: %s", what, last)
}

func (g *gateway) balance(t *testing.T, key, asset string) (available, pending decimal.Decimal) {
	t.Helper()
	status, b := g.do("GET", "/v1/balance?asset="+asset, key, nil)
	if status != 200 {
		t.Fatalf("balance: %d %v", status, b)
	}
	return decimal.RequireFromString(b["available"].(string)), decimal.RequireFromString(b["pending"].(string))
}

func (g *gateway) invoiceField(t *testing.T, key, id, field string) string {
	t.Helper()
	_, inv := g.do("GET", "/v1/invoices/"+id, key, nil)
	return fmt.Sprint(inv[field])
}

// consolidate_to charged 25 bps on the payment, then 50 on the conversion.
func TestDefectConsolidateToPaysHalfAPercentOnce(t *testing.T) {
	g, _ := moneyGateway(t, 1)
	key := signUp(t, g, newHookReceiver(t))
	if status, acc := g.do("PATCH", "/v1/account", key, map[string]any{"consolidate_to": "USDT.TRON"}); status != 200 {
		t.Fatalf("consolidate_to: %d %v", status, acc)
	}
	id := g.invoice(t, key, map[string]any{"asset": "BTC", "amount": "0.01"})
	g.sim(t, "pay", map[string]any{"invoice_id": id, "amount": "0.01"})
	g.sim(t, "mine", map[string]any{"blocks": 3})
	// 0.01 BTC less 0.5 % is 0.00995 BTC, at 60,000 USDT.TRON each.
	want := decimal.RequireFromString("597")
	eventually(t, "USDT.TRON credited", func() string {
		if a, _ := g.balance(t, key, "USDT.TRON"); !a.Equal(want) {
			return fmt.Sprintf("available %s, want %s", a, want)
		}
		return ""
	})
	if bps, fee := g.invoiceField(t, key, id, "fee_bps"), g.invoiceField(t, key, id, "fee"); bps != "50" || fee != "0.00005" {
		t.Fatalf("invoice fee_bps %s fee %s, want 50 and 0.00005", bps, fee)
	}
}

// Fees were rounded per payment, and an overpaid invoice showed the fee of amount.
func TestDefectFeeIsTheInvoices(t *testing.T) {
	g, _ := moneyGateway(t, 1)
	key := signUp(t, g, newHookReceiver(t))
	split := g.invoice(t, key, map[string]any{"asset": "USDT.TRON", "amount": "40.0004"})
	g.sim(t, "pay", map[string]any{"invoice_id": split, "amount": "20.0002"})
	g.sim(t, "pay", map[string]any{"invoice_id": split, "amount": "20.0002"})
	over := g.invoice(t, key, map[string]any{"asset": "USDT.ETH", "amount": "49.99"})
	g.sim(t, "pay", map[string]any{"invoice_id": over, "amount": "50"})
	g.sim(t, "mine", map[string]any{"blocks": 3})
	eventually(t, "fees", func() string {
		if f := g.invoiceField(t, key, split, "fee"); f != "0.100001" {
			return "split invoice fee " + f + ", want 0.100001 (not 2 × 0.050001)"
		}
		if f := g.invoiceField(t, key, over, "fee"); f != "0.125" {
			return "overpaid invoice fee " + f + ", want 0.125 (the fee of what was received)"
		}
		a, p := g.balance(t, key, "USDT.TRON")
		if got := a.Add(p); !got.Equal(decimal.RequireFromString("39.900399")) {
			return fmt.Sprintf("USDT.TRON credited %s, want 39.900399", got)
		}
		return ""
	})
}

// A reorganisation after paid left the invoice paid with nothing received,
// and a pending payment reorganised away returned its invoice to new
// without a webhook.
func TestDefectReorgMovesStatusBackAndSaysSo(t *testing.T) {
	g, _ := moneyGateway(t, 2)
	rc := newHookReceiver(t)
	key := signUp(t, g, rc)
	paid := g.invoice(t, key, map[string]any{"asset": "BTC", "amount": "0.01"})
	g.sim(t, "pay", map[string]any{"invoice_id": paid, "amount": "0.01"})
	g.sim(t, "mine", map[string]any{"blocks": 2})
	eventually(t, "paid", func() string {
		if s := g.invoiceField(t, key, paid, "status"); s != "paid" {
			return "status " + s
		}
		return ""
	})
	g.sim(t, "reorg", map[string]any{"depth": 2, "reinclude": false})
	pending := g.invoice(t, key, map[string]any{"asset": "ETH", "amount": "0.5"})
	g.sim(t, "pay", map[string]any{"invoice_id": pending, "amount": "0.5"})
	g.sim(t, "mine", map[string]any{"blocks": 1})
	g.sim(t, "reorg", map[string]any{"depth": 1, "reinclude": false})
	eventually(t, "statuses and webhooks", func() string {
		if s := g.invoiceField(t, key, paid, "status"); s != "reverted" {
			return "the paid invoice whose payment is gone is " + s + ", want reverted"
		}
		if s := g.invoiceField(t, key, pending, "status"); s != "new" {
			return "the invoice whose pending payment is gone is " + s + ", want new"
		}
		_, order, _ := rc.snapshot()
		if got := strings.Join(order[paid], ","); got != "invoice.confirming,invoice.paid,invoice.reverted" {
			return "webhooks of the paid invoice: " + got
		}
		if got := strings.Join(order[pending], ","); got != "invoice.confirming,invoice.new" {
			return "webhooks of the pending invoice: " + got
		}
		return ""
	})
}

// A reorganisation after an instant payout drove available negative and
// picd audit failed on it; the next payment's payout was skipped silently.
func TestDefectReversalAfterPayoutIsADebt(t *testing.T) {
	g, env := moneyGateway(t, 1)
	key := signUp(t, g, newHookReceiver(t))
	if status, s := g.do("PUT", "/v1/payout-settings", key, map[string]any{"asset": "USDT.TRON",
		"payout_address": "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t", "mode": "instant", "instant_min_amount": "0"}); status != 200 {
		t.Fatalf("payout settings: %d %v", status, s)
	}
	first := g.invoice(t, key, map[string]any{"asset": "USDT.TRON", "amount": "100"})
	g.sim(t, "pay", map[string]any{"invoice_id": first, "amount": "100"})
	g.sim(t, "mine", map[string]any{"blocks": 2})
	eventually(t, "instant payout", func() string {
		if a, _ := g.balance(t, key, "USDT.TRON"); !a.IsZero() {
			return "available " + a.String() + " before the payout"
		}
		_, list := g.do("GET", "/v1/payouts", key, nil)
		if data, _ := list["data"].([]any); len(data) != 1 {
			return fmt.Sprintf("payouts %v", list)
		}
		return ""
	})
	g.sim(t, "reorg", map[string]any{"depth": 2, "reinclude": false})
	second := g.invoice(t, key, map[string]any{"asset": "USDT.TRON", "amount": "50"})
	g.sim(t, "pay", map[string]any{"invoice_id": second, "amount": "50"})
	g.sim(t, "mine", map[string]any{"blocks": 2})
	eventually(t, "debt", func() string {
		if a, p := g.balance(t, key, "USDT.TRON"); !a.Equal(decimal.RequireFromString("-49.875")) || !p.IsZero() {
			return fmt.Sprintf("available %s pending %s, want -49.875 (the debt of 99.75 less 49.875)", a, p)
		}
		_, events := g.do("GET", "/v1/events?limit=100", key, nil)
		if !strings.Contains(fmt.Sprint(events), "BalanceNegative") {
			return "no BalanceNegative in the event feed"
		}
		return ""
	})
	_, list := g.do("GET", "/v1/payouts", key, nil)
	if data, _ := list["data"].([]any); len(data) != 1 {
		t.Fatalf("a payout was requested out of a debt: %v", list)
	}
	status, refused := g.do("POST", "/v1/withdrawals", key, map[string]any{"asset": "USDT.TRON", "amount": "1",
		"to_address": "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"})
	if msg, _ := refused["message"].(string); status != 409 || !strings.Contains(msg, "-49.875") || !strings.Contains(msg, "debt") {
		t.Fatalf("a withdrawal during a debt: %d %v, want 409 naming the debt", status, refused)
	}
	g.stop()
	out := auditAgrees(t, env)
	if !strings.Contains(out, "OPEN DEBTS") || !strings.Contains(out, "-49.875") {
		t.Fatalf("picd audit does not list the debt:\n%s", out)
	}
}

// A settle_as invoice that cannot be priced was created with 201.
func TestDefectUnpricedConversionIs503(t *testing.T) {
	g, _ := moneyGateway(t, 1, `PIC_PRICES={"BTC":"60000"}`)
	key := signUp(t, g, newHookReceiver(t))
	status, body := g.do("POST", "/v1/invoices", key, map[string]any{"asset": "BTC", "amount": "0.01", "settle_as": "USDT.TRON"})
	if status != 503 || body["error"] != "price_unavailable" {
		t.Fatalf("settle_as with no price: %d %v, want 503 price_unavailable", status, body)
	}
}
