package web

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/readapi"
)

// TestCheckoutOverpaid: a confirming or paid invoice that received more
// than pay_amount tells the customer how much more, and that the merchant
// was credited with it; one paid exactly says nothing of the kind.
func TestCheckoutOverpaid(t *testing.T) {
	f := fakeInvoices{byID: map[string]readapi.Invoice{
		"inv_over":  testInvoice("inv_over", domain.StatusPaid, "50.5"),
		"inv_exact": testInvoice("inv_exact", domain.StatusPaid, "49.990001"),
		"inv_conf":  testInvoice("inv_conf", domain.StatusConfirming, "60"),
	}}
	h := newTestSite(f)
	if p := get(t, h, "GET", "/pay/inv_over"); !strings.Contains(p.body, `<p id="overpaid" class="notice warn">You sent 0.509999 USDT.ETH more than the invoice asked for.`) {
		t.Errorf("the overpaid invoice's page does not say how much more:\n%s", p.body)
	}
	if p := get(t, h, "GET", "/pay/inv_conf?lang=de"); !strings.Contains(p.body, `Du hast 10.009999 USDT.ETH mehr gesendet`) {
		t.Error("the overpaid confirming invoice's page does not say how much more, in German")
	}
	if p := get(t, h, "GET", "/pay/inv_exact"); !strings.Contains(p.body, `<p id="overpaid" class="notice warn" hidden></p>`) {
		t.Error("an invoice paid exactly shows an overpayment")
	}
}

// lateAndOverpaidFlow (money that reaches an address is never lost): a
// customer who sends more than asked is told, live, that the rest went to
// the merchant; one whose payment arrives after the invoice expired sees
// it on the expired page, which keeps watching for an hour.
func lateAndOverpaidFlow(t *testing.T, b *browser, s *stack) {
	m := s.signUp(t, "Late Test Shop")
	over := s.createInvoice(t, m.SecretKey, map[string]any{"asset": "BTC", "amount": "0.01"})
	b.viewport(480, 900, false)
	b.do("open checkout", chromedp.Navigate(s.srv.URL+"/pay/"+over.ID), chromedp.WaitVisible(chromedp.CSS("#screen-pay")))
	b.waitJS("live status", `!document.getElementById('live').hidden`)
	if b.eval(`String(document.getElementById('overpaid').hidden)`) != "true" {
		t.Error("a new invoice shows an overpayment")
	}
	s.simPay(t, over.ID, "0.0125")
	b.waitJS("confirming, overpaid", `document.getElementById('checkout').dataset.status === 'confirming' && !document.getElementById('overpaid').hidden`)
	s.simMine(t, 2)
	b.waitJS("paid, overpaid", `document.getElementById('checkout').dataset.status === 'paid' && !document.getElementById('overpaid').hidden`)
	if got := b.text("#overpaid"); !strings.HasPrefix(got, "You sent 0.0025 BTC more than the invoice asked for.") {
		t.Errorf("overpaid notice %q", got)
	}
	b.shot("checkout-paid-overpaid")

	late := s.createInvoice(t, m.SecretKey, map[string]any{"asset": "BTC", "amount": "0.02", "expires_in": 60})
	s.expire(t, late.ID, 2*time.Minute)
	b.do("open expired checkout", chromedp.Navigate(s.srv.URL+"/pay/"+late.ID), chromedp.WaitVisible(chromedp.CSS("#screen-expired")))
	b.waitJS("still watching", `!document.getElementById('live').hidden`)
	if b.eval(`String(document.getElementById('expired-received').hidden)`) != "true" {
		t.Error("an expired invoice without a payment says it received one")
	}
	b.eval(`window.__sameLoad = 'yes'; ''`)
	s.simPay(t, late.ID, "0.02")
	b.waitJS("the late payment", `!document.getElementById('expired-received').hidden`)
	if got := b.text("#expired-received"); !strings.HasPrefix(got, "We received 0.02 BTC for this invoice.") {
		t.Errorf("late payment notice %q", got)
	}
	if got := b.text("#status-badge"); got != "Expired" {
		t.Errorf("badge %q, want Expired (a late payment does not pay an expired invoice)", got)
	}
	if b.eval(`window.__sameLoad || 'reloaded'`) != "yes" {
		t.Error("the page reloaded; it must show the late payment in place")
	}
	b.shot("checkout-expired-late")
}
