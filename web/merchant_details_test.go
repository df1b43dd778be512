package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

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

// fakeBranding serves fixed branding by merchant.
type fakeBranding map[string]readapi.Branding

func (f fakeBranding) Branding(_ context.Context, merchantID string) (readapi.Branding, error) {
	return f[merchantID], nil
}

// TestCheckoutBranding (issue #19): the checkout shows the shop's display
// name, logo and colour instead of the gateway's; the CSP admits images
// from the logo's origin only; the account's default_redirect_url is the
// return link when the invoice has none.
func TestCheckoutBranding(t *testing.T) {
	paid := testInvoice("inv_paid", domain.StatusPaid, "49.990001")
	own := testInvoice("inv_own", domain.StatusPaid, "49.990001")
	own.RedirectURL = "https://shop.example/order/7"
	plain := testInvoice("inv_plain", domain.StatusNew, "0")
	plain.MerchantID = "mer_plain"
	h := New(Config{Invoices: fakeInvoices{byID: map[string]readapi.Invoice{"inv_paid": paid, "inv_own": own, "inv_plain": plain}},
		Branding: fakeBranding{"mer_1": {DisplayName: `Café <Olé>`, LogoURL: "https://cdn.shop.example:8443/img/logo.png?v=2",
			BrandColor: "#1a2b3c", DefaultRedirectURL: "https://shop.example/done"}},
		Now: func() time.Time { return testNow }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})

	p := get(t, h, "GET", "/pay/inv_paid")
	for _, want := range []string{
		`<p class="brand">Café &lt;Olé&gt;</p>`,
		`<img class="logo" id="logo" src="https://cdn.shop.example:8443/img/logo.png?v=2" alt="" referrerpolicy="no-referrer">`,
		`data-brand-color="#1a2b3c"`,
		`<title>Paid · Café &lt;Olé&gt;</title>`,
		`id="return-link" href="https://shop.example/done"`,
	} {
		if !strings.Contains(p.body, want) {
			t.Errorf("branded checkout lacks %q", want)
		}
	}
	if strings.Contains(p.body, `<p class="brand">Accept Crypto HERE</p>`) {
		t.Errorf("branded checkout shows the gateway's name")
	}
	csp := p.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "img-src 'self' data: https://cdn.shop.example:8443;") {
		t.Errorf("CSP %q does not admit the logo's origin (only)", csp)
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "img-src 'self' data: https:;") {
		t.Errorf("CSP too wide: %q", csp)
	}
	// The invoice's own redirect_url wins over the account's default.
	if own := get(t, h, "GET", "/pay/inv_own"); !strings.Contains(own.body, `id="return-link" href="https://shop.example/order/7"`) {
		t.Errorf("the invoice's redirect_url is not the return link")
	}
	// Without branding: the gateway's name, no logo, the strict CSP.
	p = get(t, h, "GET", "/pay/inv_plain")
	if !strings.Contains(p.body, `<p class="brand">Accept Crypto HERE</p>`) || strings.Contains(p.body, `id="logo"`) || strings.Contains(p.body, `data-brand-color`) {
		t.Errorf("unbranded checkout: wrong header")
	}
	if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src 'self' data:;") {
		t.Errorf("unbranded CSP %q", csp)
	}
}
