package web

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/acceptcryptohere/gateway/readapi"
)

// waitSettlement waits until the invoice's conversion (money rule 3) is
// at status: the settlement process and the projections run behind the
// commands.
func (s *stack) waitSettlement(t *testing.T, id, status string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		inv, err := s.reader.InvoiceByID(context.Background(), "", id)
		if err == nil && inv.Settlement.Status == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("invoice %s: settlement %q (%v), want %q", id, inv.Settlement.Status, err, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBrowserPriceWait (money rule 3, issue #20): a payment to be converted whose
// price is gone when it becomes final waits on its own, while a payment
// of the same merchant that is not converted settles as usual. Every
// dashboard page says in a banner what waits, in which coin, and into
// which; once the price is back the payment converts and the banner goes.
// Its own stack: the settlement process and a price that can be taken
// away would change what TestBrowser's merchants see.
func TestBrowserPriceWait(t *testing.T) {
	b := newBrowser(t)
	s := newStack(t, withSettlement(), withPrice("USDT.ETH", "1"))
	m := s.signUp(t, "Price Wait Shop")
	// Created while the price is there (without one it would be a 503).
	conv := s.createInvoice(t, m.SecretKey, map[string]any{"asset": "BTC", "amount": "0.05", "settle_as": "USDT.ETH", "order_id": "order-convert"})
	plain := s.createInvoice(t, m.SecretKey, map[string]any{"asset": "BTC", "amount": "0.01", "order_id": "order-plain"})
	s.prices.set("BTC", "") // the oracle's source is down
	s.simPay(t, conv.ID, conv.PayAmount)
	s.simPay(t, plain.ID, plain.PayAmount)
	s.simMine(t, 3) // two confirmations, and final one block later
	s.waitSettlement(t, conv.ID, readapi.SettlementWaiting)
	// Both nets are in BTC: 0.05 less 50 bps (the conversion tier) is
	// 0.04975, waiting; 0.01 less 25 bps is 0.009975, settled as usual.
	s.waitBalance(t, m.SecretKey, "BTC", "0.059725", "0")

	b.viewport(1280, 900, false)
	b.do("open dashboard", chromedp.Navigate(s.srv.URL+"/dashboard"), chromedp.WaitVisible(chromedp.CSS("#signin-form")))
	b.eval(`document.getElementById('secret-key').value = ''; ''`)
	b.do("sign in", chromedp.SendKeys(chromedp.CSS("#secret-key"), m.SecretKey), chromedp.Click(chromedp.CSS("#signin-submit")))
	b.waitJS("waiting banner", `!!document.getElementById('banner-waiting') && !!document.getElementById('balances')`)
	if got := b.text("#banner-waiting"); !strings.Contains(got, "(1): 0.04975 BTC into USDT.ETH.") {
		t.Errorf("waiting banner %q, want the one payment's 0.04975 BTC into USDT.ETH", got)
	}
	if got := b.text(`#balances tr[data-asset="BTC"] td:nth-child(2)`); got != "0.059725" {
		t.Errorf("BTC available %q, want 0.059725 (the waiting payment stays in BTC)", got)
	}
	b.shot("dashboard-price-wait")

	// "Show them" lists the waiting invoice alone.
	b.do("show the waiting payments", chromedp.Click(chromedp.CSS("#banner-waiting a")))
	b.waitJS("waiting invoices", `location.hash.includes('settlement=waiting_for_price') && !!document.getElementById('settlement-filter') &&
		document.querySelectorAll('#invoices tbody tr').length === 1`)
	if got := b.eval(`document.querySelector('#invoices tbody tr').dataset.id`); got != conv.ID {
		t.Errorf("the waiting filter lists %s, want %s", got, conv.ID)
	}
	if !b.has("#banner-waiting") {
		t.Error("the banner is not on the invoices page")
	}
	b.shot("dashboard-invoices-price-wait")

	// The price is back: the next retry (5 s after the wait began, on the
	// stack's clock) converts at 60000: 0.04975 × 60000 = 2985 USDT.ETH.
	s.prices.set("BTC", "60000")
	s.clock.Advance(10 * time.Second)
	s.waitSettlement(t, conv.ID, readapi.SettlementConverted)
	s.waitBalance(t, m.SecretKey, "USDT.ETH", "2985", "0")
	s.waitBalance(t, m.SecretKey, "BTC", "0.009975", "0")
	b.do("balances", chromedp.Click(chromedp.CSS(`#nav a[data-view="balances"]`)))
	b.waitJS("balances again", `document.getElementById('view').dataset.view === 'balances' && !!document.getElementById('balances')`)
	if b.has("#banner-waiting") {
		t.Errorf("the waiting banner stays after the conversion: %q", b.text("#banner-waiting"))
	}
	if got := b.text(`#balances tr[data-asset="USDT.ETH"] td:nth-child(2)`); got != "2985" {
		t.Errorf("USDT.ETH available %q, want 2985", got)
	}
	if p := b.consoleProblems(); len(p) > 0 {
		t.Errorf("the pages reported errors (CSP violations, exceptions):\n%s", strings.Join(p, "\n"))
	}
}

// has says whether the page has an element matching sel.
func (b *browser) has(sel string) bool {
	b.t.Helper()
	return b.eval(`String(!!document.querySelector(`+jsString(sel)+`))`) == "true"
}
