package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/readapi"
	"github.com/acceptcryptohere/gateway/webhooks"
)

// fakeInvoices serves fixed invoices; err, when set, is every answer.
type fakeInvoices struct {
	byID map[string]readapi.Invoice
	err  error
}

func (f fakeInvoices) InvoiceByID(_ context.Context, merchantID, id string) (readapi.Invoice, error) {
	if merchantID != "" {
		return readapi.Invoice{}, errors.New("the checkout must read without a merchant")
	}
	if f.err != nil {
		return readapi.Invoice{}, f.err
	}
	inv, ok := f.byID[id]
	if !ok {
		return readapi.Invoice{}, fmt.Errorf("invoice %s: %w", id, domain.ErrNotFound)
	}
	return inv, nil
}

var testNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func testInvoice(id string, status domain.Status, received string, payments ...readapi.Payment) readapi.Invoice {
	return readapi.Invoice{
		ID: id, MerchantID: "mer_1", Asset: "USDT.ETH", Status: status,
		Amount: domain.MustAmount("49.99"), PayAmount: domain.MustAmount("49.990001"),
		PayAddress: "0x5c1e0f0ab9e5a1d2c3b4a5968778695a4b3c2d1e", AmountReceived: domain.MustAmount(received),
		RequiredConfirmations: 12, Payments: payments,
		CreatedAt: testNow, ExpiresAt: testNow.Add(time.Hour),
	}
}

type page struct {
	status int
	header http.Header
	body   string
}

func get(t *testing.T, h http.Handler, method, target string, header ...string) page {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Result().Body)
	return page{status: rec.Code, header: rec.Result().Header, body: string(body)}
}

func newTestSite(f fakeInvoices) http.Handler {
	return New(Config{Invoices: f, Now: func() time.Time { return testNow }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

func TestCheckoutScreens(t *testing.T) {
	f := fakeInvoices{byID: map[string]readapi.Invoice{
		"inv_new":      testInvoice("inv_new", domain.StatusNew, "0"),
		"inv_partial":  testInvoice("inv_partial", domain.StatusPartiallyPaid, "20", readapi.Payment{TxID: "tx1", Amount: domain.MustAmount("20")}),
		"inv_confirm":  testInvoice("inv_confirm", domain.StatusConfirming, "49.990001", readapi.Payment{TxID: "tx1", Amount: domain.MustAmount("49.990001"), Confirmations: 3}),
		"inv_paid":     testInvoice("inv_paid", domain.StatusPaid, "49.990001"),
		"inv_expired":  testInvoice("inv_expired", domain.StatusExpired, "0"),
		"inv_expired2": testInvoice("inv_expired2", domain.StatusExpired, "1.5"),
		"inv_reverted": testInvoice("inv_reverted", domain.StatusReverted, "0", readapi.Payment{TxID: "tx1", Amount: domain.MustAmount("49.990001"), Status: readapi.PaymentReverted}),
	}}
	h := newTestSite(f)
	tests := []struct {
		id      string
		screen  string   // the one visible screen
		want    []string // text the page must contain
		notWant []string
	}{
		{"inv_new", "pay", []string{
			`Awaiting payment`, `<code id="pay-amount">49.990001</code>`, `0x5c1e0f0ab9e5a1d2c3b4a5968778695a4b3c2d1e`,
			`Ethereum (ERC-20)`, `0xdAC17F958D2ee523a2206206994597C13D831ec7`, `<svg`, `data-expires-at="` + fmt.Sprint(testNow.Add(time.Hour).UnixMilli()) + `"`,
			`href="ethereum:0xdAC17F958D2ee523a2206206994597C13D831ec7@1/transfer?address=0x5c1e0f0ab9e5a1d2c3b4a5968778695a4b3c2d1e&amp;uint256=49990001"`,
		}, []string{`<div id="partial" class="notice warn">`}},
		{"inv_partial", "pay", []string{`Partially paid`, `<div id="partial" class="notice warn">`, `<span id="missing">29.990001</span>`,
			`<span id="pay-amount-big">29.990001</span>`, `<code id="pay-amount">29.990001</code>`, `data-send-amount="29.990001"`,
			`href="ethereum:0xdAC17F958D2ee523a2206206994597C13D831ec7@1/transfer?address=0x5c1e0f0ab9e5a1d2c3b4a5968778695a4b3c2d1e&amp;uint256=29990001"`,
		}, []string{`49.990001</span>`, `uint256=49990001`}},
		{"inv_confirm", "confirming", []string{`Payment received`, `<p id="confirm-count" aria-live="polite">3 of 12 confirmations</p>`}, nil},
		{"inv_paid", "paid", []string{`Payment complete`}, nil},
		{"inv_expired", "expired", []string{`This invoice has expired`, `<p id="expired-received" class="notice" hidden>`}, nil},
		{"inv_expired2", "expired", []string{`We received 1.5 USDT.ETH for this invoice`}, []string{`<p id="expired-received" class="notice" hidden>`}},
		{"inv_reverted", "reverted", []string{`>Payment reversed</span>`, `Payment reversed by the network`}, []string{`>status.reverted<`}},
	}
	for _, tt := range tests {
		p := get(t, h, "GET", "/pay/"+tt.id)
		if p.status != http.StatusOK {
			t.Fatalf("%s: status %d", tt.id, p.status)
		}
		checkScreen(t, tt.id, p.body, tt.screen)
		for _, w := range tt.want {
			if !strings.Contains(p.body, w) {
				t.Errorf("%s: page lacks %q", tt.id, w)
			}
		}
		for _, w := range tt.notWant {
			if strings.Contains(p.body, w) {
				t.Errorf("%s: page has %q", tt.id, w)
			}
		}
	}
}

// checkoutScreens are the checkout page's screens, one visible at a time.
var checkoutScreens = []string{"pay", "confirming", "paid", "expired", "reverted"}

// checkScreen checks that the page has every screen and shows only screen.
func checkScreen(t *testing.T, id, body, screen string) {
	t.Helper()
	for _, s := range checkoutScreens {
		open := `<section id="screen-` + s + `" class="screen` + map[bool]string{true: `"`, false: ` center"`}[s == "pay"]
		visible := strings.Contains(body, open+">")
		hidden := strings.Contains(body, open+" hidden>")
		if !visible && !hidden {
			t.Errorf("%s: screen %s not found", id, s)
			continue
		}
		if visible != (s == screen) {
			t.Errorf("%s: screen %s visible=%v", id, s, visible)
		}
	}
}

// TestCheckoutReverted: a paid invoice whose payment a reorganisation took
// away (money rule 5) says so, and asks for no payment: the badge is words,
// not the key "status.reverted", and the pay screen with its QR code and
// "Send exactly" is hidden. Made as a customer meets it, through the whole
// stack and the chain simulator.
func TestCheckoutReverted(t *testing.T) {
	s := newStack(t)
	m := s.signUp(t, "Reorg Shop")
	inv := s.createInvoice(t, m.SecretKey, map[string]any{"asset": "USDT.ETH", "amount": "100"})
	s.simPay(t, inv.ID, inv.PayAmount)
	s.simMine(t, 12) // USDT.ETH needs twelve confirmations
	s.waitStatus(t, inv.ID, domain.StatusPaid)
	s.simReorg(t, 12, false) // gone, as after a double spend
	s.waitStatus(t, inv.ID, domain.StatusReverted)

	res, err := http.Get(s.srv.URL + "/pay/" + inv.ID)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	body := string(raw)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	checkScreen(t, inv.ID, body, "reverted")
	for _, want := range []string{
		`data-status="reverted"`,
		`<span class="badge" id="status-badge" role="status" data-status="reverted">Payment reversed</span>`,
		`<h1>Payment reversed by the network</h1>`,
		`removed from the blockchain`,
		`this page updates by itself`,
		`Contact the merchant`,
		`<title>Payment reversed · Accept Crypto HERE</title>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the reverted checkout lacks %q", want)
		}
	}
	// The key as text: the translation is missing. (The catalog for the
	// script has the key, with its text.)
	for _, bad := range []string{`>status.reverted<`, `<title>Pay `, `<title>status.`} {
		if strings.Contains(body, bad) {
			t.Errorf("the reverted checkout has %q", bad)
		}
	}
}

func TestCheckoutHeaders(t *testing.T) {
	h := newTestSite(fakeInvoices{byID: map[string]readapi.Invoice{"inv_a": testInvoice("inv_a", domain.StatusNew, "0")}})
	p := get(t, h, "GET", "/pay/inv_a")
	csp := p.header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "connect-src 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP allows inline code: %q", csp)
	}
	for k, want := range map[string]string{
		"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store", "X-Frame-Options": "DENY",
		"Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
	} {
		if got := p.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	// No inline script or style: every <script> has a src or is a JSON
	// data block, and no element has a style attribute or an on* handler.
	for _, m := range regexp.MustCompile(`<script[^>]*>`).FindAllString(p.body, -1) {
		if !strings.Contains(m, `src="/pay/static/`) && !strings.Contains(m, `type="application/json"`) {
			t.Errorf("inline script: %s", m)
		}
	}
	if regexp.MustCompile(`\sstyle=|\son[a-z]+=|<style`).MatchString(p.body) {
		t.Error("the page has an inline style or event handler")
	}
}

func TestNotFoundPages(t *testing.T) {
	h := newTestSite(fakeInvoices{byID: map[string]readapi.Invoice{}})
	for _, target := range []string{
		"/pay/inv_01jfz3k8m2x4v7q9c0b5n6t8w1r3", // well-formed, unknown
		"/pay/inv_",
		"/pay/not-an-invoice",
		"/pay/inv_%3Cscript%3E",
		"/pay/inv_" + strings.Repeat("a", 100),
		"/pay/",
		"/pay/inv_a/extra",
		"/pay/static/nope.js",
		"/dashboard/nope",
	} {
		p := get(t, h, "GET", target)
		if p.status != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", target, p.status)
		}
		if target == "/pay/static/nope.js" {
			continue // a missing static file is plain text
		}
		if ct := p.header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("%s: Content-Type %q", target, ct)
		}
		if !strings.Contains(p.body, "Page not found") || strings.Contains(p.body, "<script>") {
			t.Errorf("%s: not the HTML 404 page:\n%s", target, p.body)
		}
		if p.header.Get("Content-Security-Policy") == "" {
			t.Errorf("%s: no CSP on the 404 page", target)
		}
	}
	if p := get(t, h, "POST", "/dashboard"); p.status != http.StatusMethodNotAllowed {
		t.Errorf("POST /dashboard: %d, want 405", p.status)
	}
}

func TestCheckoutStoreDown(t *testing.T) {
	h := newTestSite(fakeInvoices{err: errors.New("database is locked: secret internals")})
	p := get(t, h, "GET", "/pay/inv_a")
	if p.status != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", p.status)
	}
	if strings.Contains(p.body, "secret internals") {
		t.Error("the error page shows the internal error")
	}
	if p.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
}

func TestStaticFiles(t *testing.T) {
	h := newTestSite(fakeInvoices{})
	for _, tc := range []struct{ path, ctype string }{
		{"/pay/static/checkout.js", "text/javascript; charset=utf-8"},
		{"/pay/static/common.js", "text/javascript; charset=utf-8"},
		{"/pay/static/base.css", "text/css; charset=utf-8"},
		{"/dashboard/static/dashboard.js", "text/javascript; charset=utf-8"},
	} {
		p := get(t, h, "GET", tc.path)
		if p.status != http.StatusOK || p.header.Get("Content-Type") != tc.ctype {
			t.Errorf("%s: %d %q", tc.path, p.status, p.header.Get("Content-Type"))
		}
		if p.header.Get("Cache-Control") != "no-cache" || p.header.Get("ETag") == "" {
			t.Errorf("%s: unversioned file cached as %q", tc.path, p.header.Get("Cache-Control"))
		}
		v := get(t, h, "GET", tc.path+"?v="+assetVersion)
		if !strings.Contains(v.header.Get("Cache-Control"), "immutable") {
			t.Errorf("%s: versioned file not cached for good", tc.path)
		}
		if nm := get(t, h, "GET", tc.path, "If-None-Match", p.header.Get("ETag")); nm.status != http.StatusNotModified {
			t.Errorf("%s: revalidation %d, want 304", tc.path, nm.status)
		}
	}
}

func TestDashboardShell(t *testing.T) {
	h := newTestSite(fakeInvoices{})
	for _, target := range []string{"/dashboard", "/dashboard/"} {
		p := get(t, h, "GET", target)
		if p.status != http.StatusOK {
			t.Fatalf("%s: %d", target, p.status)
		}
		for _, want := range []string{`id="signin-form"`, `src="/dashboard/static/dashboard.js?v=` + assetVersion, `id="i18n"`} {
			if !strings.Contains(p.body, want) {
				t.Errorf("%s lacks %q", target, want)
			}
		}
	}
}

func TestLanguage(t *testing.T) {
	for _, tc := range []struct{ header, query, want string }{
		{"", "", "en"},
		{"de-DE,de;q=0.9", "", "de"},
		{"fr;q=0.5, en;q=0.8", "", "en"},
		{"fr-CH, fr;q=0.9, es;q=0.8, en;q=0.7", "", "es"},
		{"en-GB", "", "en"},
		{"pt-BR", "", "pt-BR"},
		{"pt-PT,pt;q=0.9", "", "pt-BR"}, // the nearest Portuguese we have
		{"tr-TR", "", "tr"},
		{"ru", "", "ru"},
		{"ru;q=0.2, de;q=0.3", "", "de"},
		{"", "lang=EN", "en"},
		{"de", "lang=pt-br", "pt-BR"},
		{"de", "lang=xx", "de"}, // an unknown switch value: the browser's choice
	} {
		req := httptest.NewRequest("GET", "/pay/x?"+tc.query, nil)
		req.Header.Set("Accept-Language", tc.header)
		if got := negotiate(req).lang; got != tc.want {
			t.Errorf("Accept-Language %q ?%s: %s, want %s", tc.header, tc.query, got, tc.want)
		}
	}
	for _, tc := range []struct {
		in   string
		want float64
	}{{"1", 1}, {"0.5", 0.5}, {"0.125", 0.125}, {"0", 0}, {"x", 0}, {"0.5x", 0}, {"2", 0}} {
		if got := parseQ(tc.in); got != tc.want {
			t.Errorf("parseQ(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestStringsInOnePlace: every string key the templates and scripts use is
// in en.json, and every other language has every key of en.json.
func TestStringsInOnePlace(t *testing.T) {
	en := catalogs[defaultLang].strings
	used := map[string]bool{}
	uses := []*regexp.Regexp{
		regexp.MustCompile(`\bt .T "([a-z0-9_.]+)"`),
		regexp.MustCompile(`\btf .T "([a-z0-9_.]+)"`),
		regexp.MustCompile(`\bt\('([a-z0-9_.]+)'`),
		regexp.MustCompile(`c\.text\("([a-z0-9_.]+)"\)`),
	}
	for _, dir := range []string{"templates", "static"} {
		entries, err := fs.ReadDir(files, dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			data, _ := fs.ReadFile(files, dir+"/"+e.Name())
			for _, re := range uses {
				for _, m := range re.FindAllStringSubmatch(string(data), -1) {
					if !strings.HasSuffix(m[1], ".") && !strings.HasSuffix(m[1], "_") { // a prefix of keys built at run time
						used[m[1]] = true
					}
				}
			}
		}
	}
	for _, s := range []string{"new", "partially_paid", "confirming", "paid", "expired", "reverted"} {
		used["status."+s] = true
	}
	for _, c := range []domain.Chain{domain.ChainBitcoin, domain.ChainEthereum, domain.ChainTron} {
		used["network."+string(c)] = true
	}
	// The keys the dashboard builds from API values.
	for _, k := range []domain.PayoutKind{domain.PayoutKindInstant, domain.PayoutKindWithdrawal, domain.PayoutKindRefund} {
		used["payouts.kind_"+string(k)] = true
	}
	for _, st := range []string{webhooks.StatusPending, webhooks.StatusDelivered, webhooks.StatusFailed, webhooks.StatusGone, webhooks.StatusNoEndpoint} {
		used["deliveries.status_"+st] = true
	}
	for _, st := range []domain.PayoutStatus{domain.PayoutRequestedStatus, domain.PayoutSignedStatus, domain.PayoutSentStatus,
		domain.PayoutConfirmedStatus, domain.PayoutFailedStatus, domain.PayoutCanceledStatus} {
		used["payouts.status_"+string(st)] = true
	}
	for _, st := range []string{readapi.PaymentPending, readapi.PaymentConfirmed, readapi.PaymentReverted} {
		used["payment.status_"+st] = true
	}
	for _, st := range []string{"waiting_for_price", "converted", "unconverted"} {
		used["settlement."+st] = true
	}
	if len(used) < 50 {
		t.Fatalf("found only %d string uses: the scan is broken", len(used))
	}
	for k := range used {
		if _, ok := en[k]; !ok {
			t.Errorf("string %q is used but not in i18n/en.json", k)
		}
	}
	for lang, c := range catalogs {
		for k := range en {
			if _, ok := c.strings[k]; !ok {
				t.Errorf("i18n/%s.json lacks %q", lang, k)
			}
		}
		for k := range c.strings {
			if _, ok := en[k]; !ok {
				t.Errorf("i18n/%s.json has %q, which en.json does not", lang, k)
			}
		}
	}
}

// TestTranslations: the languages the issue asks for are there, each
// names itself, and every translation keeps the placeholders of English
// (a lost {amount} would show the customer no amount).
func TestTranslations(t *testing.T) {
	for _, lang := range []string{"en", "es", "de", "pt-BR", "tr", "ru"} {
		c, ok := catalogs[strings.ToLower(lang)]
		if !ok || c.lang != lang {
			t.Errorf("no catalog for %s", lang)
			continue
		}
		if c.strings["language.name"] == "" || (lang != "en" && c.strings["language.name"] == "English") {
			t.Errorf("%s: language.name %q", lang, c.strings["language.name"])
		}
	}
	placeholder := regexp.MustCompile(`\{[a-z_]+\}`)
	for _, c := range catalogs {
		for k, en := range catalogs[defaultLang].strings {
			want := placeholder.FindAllString(en, -1)
			got := placeholder.FindAllString(c.strings[k], -1)
			sort.Strings(want)
			sort.Strings(got)
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("%s %s: placeholders %v, English has %v", c.lang, k, got, want)
			}
		}
	}
}

// TestLanguageSwitch: every page lists every language, in its own name,
// the current one marked, and is rendered in the one asked for.
func TestLanguageSwitch(t *testing.T) {
	f := fakeInvoices{byID: map[string]readapi.Invoice{"inv_new": testInvoice("inv_new", domain.StatusNew, "0")}}
	h := newTestSite(f)
	for _, target := range []string{"/pay/inv_new?lang=de", "/dashboard?lang=de", "/pay/inv_missing?lang=de"} {
		p := get(t, h, "GET", target)
		if !strings.Contains(p.body, `<html lang="de">`) {
			t.Errorf("%s: not in German", target)
		}
		for _, want := range []string{`href="?lang=es"`, `>Español</a>`, `>Português (Brasil)</a>`, `>Türkçe</a>`, `>Русский</a>`, `>English</a>`,
			`data-lang="de" aria-current="true">Deutsch</a>`} {
			if !strings.Contains(p.body, want) {
				t.Errorf("%s: the language switch lacks %s", target, want)
			}
		}
	}
	p := get(t, h, "GET", "/pay/inv_new", "Accept-Language", "ru-RU,ru;q=0.9")
	if !strings.Contains(p.body, "Отправьте ровно") {
		t.Error("the checkout for a Russian browser is not in Russian")
	}
}
