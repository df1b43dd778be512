package web

import (
	"net/http"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/readapi"
)

// TestCheckoutDescriptionAndReturnLink (issue #19): the checkout shows the
// invoice's description; once paid, a "Return to store" link to its
// redirect_url (escaped as text and attribute, never trusted markup).
func TestCheckoutDescriptionAndReturnLink(t *testing.T) {
	withDetails := func(inv readapi.Invoice) readapi.Invoice {
		inv.Description = `2 × coffee <b>"large"</b>`
		inv.RedirectURL = "https://shop.example/thanks?o=1&x=\"y\""
		return inv
	}
	f := fakeInvoices{byID: map[string]readapi.Invoice{
		"inv_new":   withDetails(testInvoice("inv_new", domain.StatusNew, "0")),
		"inv_paid":  withDetails(testInvoice("inv_paid", domain.StatusPaid, "49.990001")),
		"inv_plain": testInvoice("inv_plain", domain.StatusPaid, "49.990001"),
	}}
	h := newTestSite(f)
	desc := `<p class="description" id="description">2 × coffee &lt;b&gt;&#34;large&#34;&lt;/b&gt;</p>`
	link := `<a class="button" id="return-link" href="https://shop.example/thanks?o=1&amp;x=%22y%22">Return to store</a>`

	paid := get(t, h, "GET", "/pay/inv_paid")
	if paid.status != http.StatusOK {
		t.Fatalf("paid: %d", paid.status)
	}
	checkScreen(t, "inv_paid", paid.body, "paid")
	for _, want := range []string{desc, link} {
		if !strings.Contains(paid.body, want) {
			t.Errorf("paid checkout lacks %q", want)
		}
	}
	// The link sits in the paid screen, which checkout.js reveals when the
	// invoice turns paid without a reload.
	start := strings.Index(paid.body, `<section id="screen-paid"`)
	end := start + strings.Index(paid.body[start:], `</section>`)
	if i := strings.Index(paid.body, `id="return-link"`); i < start || i > end {
		t.Errorf("the return link is not inside the paid screen")
	}

	newPage := get(t, h, "GET", "/pay/inv_new")
	checkScreen(t, "inv_new", newPage.body, "pay")
	if !strings.Contains(newPage.body, desc) {
		t.Errorf("new checkout lacks the description")
	}

	plain := get(t, h, "GET", "/pay/inv_plain")
	for _, bad := range []string{`id="description"`, `id="return-link"`} {
		if strings.Contains(plain.body, bad) {
			t.Errorf("an invoice without details has %q", bad)
		}
	}
}

// TestCheckoutFiatPrice: an invoice priced in fiat shows its price beside
// the crypto amount; one created in its asset shows none.
func TestCheckoutFiatPrice(t *testing.T) {
	priced := testInvoice("inv_priced", domain.StatusNew, "0")
	priced.Price = &domain.InvoicePrice{Currency: "USD", Amount: domain.MustAmount("49.9"), Rate: decimal.RequireFromString("1"), Source: "static", RateAt: testNow}
	h := newTestSite(fakeInvoices{byID: map[string]readapi.Invoice{"inv_priced": priced, "inv_plain": testInvoice("inv_plain", domain.StatusNew, "0")}})
	p := get(t, h, "GET", "/pay/inv_priced")
	want := `<p class="fiat-price" id="fiat-price">49.90 USD</p>`
	if !strings.Contains(p.body, want) {
		t.Errorf("priced checkout lacks %q", want)
	}
	// Beside the big amount, inside the pay screen.
	if i, j := strings.Index(p.body, `id="pay-amount-big"`), strings.Index(p.body, want); j < i || j-i > 200 {
		t.Errorf("the fiat price is not beside the amount")
	}
	if plain := get(t, h, "GET", "/pay/inv_plain"); strings.Contains(plain.body, `fiat-price`) {
		t.Errorf("an invoice in its asset shows a fiat price")
	}
}
