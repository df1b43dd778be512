package web

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/acceptcryptohere/gateway/domain"
)

// The browser tests drive Debian's Chromium through the DevTools protocol
// (chromedp): no Node.js, no downloaded browser, and the test command stays
// `go test ./...`. PIC_SKIP_BROWSER=1 skips them; without it, a missing
// Chromium fails them with a message that says what to install.
// PIC_CHROMIUM names another Chromium or Chrome binary.

// screenshotDir is where the test writes the screenshots the README links to.
const screenshotDir = "testdata/screenshots"

func chromiumPath() string {
	if p := os.Getenv("PIC_CHROMIUM"); p != "" {
		if p, err := exec.LookPath(p); err == nil {
			return p
		}
		return ""
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browser is one headless Chromium tab and what its console reported.
type browser struct {
	ctx context.Context
	t   *testing.T

	mu       sync.Mutex
	problems []string // console errors and exceptions other than HTTP error statuses

	// The viewport the flow set (shot restores it).
	width, height int64
	dark          bool
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	if os.Getenv("PIC_SKIP_BROWSER") == "1" {
		t.Skip("PIC_SKIP_BROWSER=1: browser tests skipped")
	}
	path := chromiumPath()
	if path == "" {
		t.Fatal("browser test: Chromium not found (looked for $PIC_CHROMIUM, /usr/bin/chromium, chromium, chromium-browser, google-chrome). " +
			"Install it with `apt-get install -y chromium`, or set PIC_SKIP_BROWSER=1 to skip the browser tests.")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		// Without these, Chromium calls home and the closed network refuses it.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{ctx: ctx, t: t, width: 1280, height: 900}
	if err := chromedp.Do(ctx); err != nil { // starts the browser without a deadline
		t.Fatalf("browser test: starting %s: %v", path, err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if (m.Type == chromedp.ConsoleError || m.IsException()) && m.Source != "network" {
				b.mu.Lock()
				b.problems = append(b.problems, fmt.Sprintf("%s %s:%d %s", m.Type, m.URL, m.Line+1, m.Text))
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// do runs actions with a deadline; a failure saves a screenshot to look at.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail(what, err)
	}
}

func (b *browser) fail(what string, err error) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	if png, serr := chromedp.Run(ctx, chromedp.FullScreenshot(100)); serr == nil {
		_ = os.WriteFile(filepath.Join(b.t.TempDir(), "failure.png"), png, 0o644)
		_ = os.MkdirAll(screenshotDir, 0o755)
		_ = os.WriteFile(filepath.Join(screenshotDir, "FAILED-"+sanitize(what)+".png"), png, 0o644)
	}
	body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
	b.t.Fatalf("browser: %s: %v\npage text:\n%s\nconsole problems: %v", what, err, body, b.consoleProblems())
}

// waitJS waits until the expression is true in the page.
func (b *browser) waitJS(what, expr string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		b.fail(what+" (waiting for "+expr+")", err)
	}
}

func (b *browser) eval(expr string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		b.fail("evaluate "+expr, err)
	}
	return v
}

// evalAsync evaluates an expression that returns a promise of a string.
func (b *browser) evalAsync(expr string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.fail("evaluate "+expr, err)
	}
	return v
}

// grantClipboard lets the page write and read the clipboard without a prompt.
func (b *browser) grantClipboard(origin string) {
	b.t.Helper()
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		_, err := chromedp.CallBrowser(b.ctx, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
			Permission: &cdpbrowser.PermissionDescriptor{Name: name, AllowWithoutSanitization: true},
			Setting:    cdpbrowser.PermissionSettingGranted, Origin: origin,
		})
		if err != nil {
			b.t.Fatalf("grant %s: %v", name, err)
		}
	}
}

func (b *browser) text(sel string) string {
	return strings.TrimSpace(b.eval(`(document.querySelector(` + jsString(sel) + `) || {}).textContent || ''`))
}

// shot saves full-page screenshots of the page as it is, at 390 and 1280
// px wide, light and dark (testdata/screenshots/<name>-<width>-<scheme>.png),
// and has axe-core check each: any violation fails the test. The viewport
// the flow set is restored after.
func (b *browser) shot(name string) {
	b.t.Helper()
	w, h, dark := b.width, b.height, b.dark
	for _, width := range []int64{390, 1280} {
		for _, d := range []bool{false, true} {
			b.viewport(width, 900, d)
			variant := fmt.Sprintf("%s-%d-%s", name, width, map[bool]string{false: "light", true: "dark"}[d])
			b.screenshot(variant)
			b.axeCheck(variant)
			if !d { // the layout is the same in dark
				b.layoutCheck(variant)
			}
		}
	}
	b.viewport(w, h, dark)
}

// layoutAt runs layoutCheck and axe-core at 390 and 1280 px, without
// screenshots.
func (b *browser) layoutAt(what string) {
	b.t.Helper()
	w, h, dark := b.width, b.height, b.dark
	for _, width := range []int64{390, 1280} {
		b.viewport(width, 900, false)
		b.layoutCheck(fmt.Sprintf("%s at %d px", what, width))
		b.axeCheck(fmt.Sprintf("%s at %d px", what, width))
	}
	b.viewport(w, h, dark)
}

// layoutCheck fails the test on what a screenshot of the page would show
// wrong at its width (issue #20): no <h1>, a table header without text,
// the page or a table scrolling sideways, something cut off at the
// screen's edge, a status badge off-screen, or the link of the page the
// dashboard shows scrolled out of its navigation.
func (b *browser) layoutCheck(what string) {
	b.t.Helper()
	// After a viewport change the page's resize handlers run before the
	// next frame: wait for two, as a person would see it.
	b.evalAsync(`new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(() => done(''))))`)
	got := b.eval(`JSON.stringify((() => {
		const out = [];
		const name = (e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className && typeof e.className === 'string' ? '.' + e.className.trim().split(/\s+/).join('.') : '') +
			' "' + (e.textContent || '').trim().slice(0, 30) + '"';
		const shown = (e) => e.checkVisibility({ visibilityProperty: true });
		const vw = document.documentElement.clientWidth;
		if (![...document.querySelectorAll('h1')].some(shown)) out.push('no visible <h1>');
		for (const th of document.querySelectorAll('th, [role=columnheader]')) {
			if (!th.textContent.trim() && !th.getAttribute('aria-label')) out.push('an empty table header: ' + name(th.closest('table') || th));
		}
		if (document.documentElement.scrollWidth > vw) out.push('the page scrolls sideways: ' + document.documentElement.scrollWidth + ' px wide in ' + vw);
		for (const w of document.querySelectorAll('.table-wrap')) {
			if (shown(w) && w.scrollWidth > w.clientWidth + 1) out.push('a table scrolls sideways: ' + w.scrollWidth + ' px in ' + w.clientWidth + ': ' + name(w.parentElement));
		}
		// Whatever is outside a sideways scroller (the dashboard's
		// navigation, a table's wrapper) lies within the screen.
		for (const e of document.body.querySelectorAll('*')) {
			if (e.closest('nav, .table-wrap') || !shown(e)) continue;
			const r = e.getBoundingClientRect();
			if (r.width && (r.left < -0.5 || r.right > vw + 0.5)) { out.push('cut off at the edge: ' + name(e) + ' ' + Math.round(r.left) + '..' + Math.round(r.right)); break; }
		}
		// A placeholder longer than its empty field is cut.
		const pen = document.createElement('canvas').getContext('2d');
		for (const i of document.querySelectorAll('input[placeholder]')) {
			if (!shown(i) || i.value) continue;
			const cs = getComputedStyle(i);
			pen.font = cs.font;
			const room = i.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
			if (pen.measureText(i.placeholder).width > room + 1) out.push('a placeholder is cut: ' + name(i) + ' "' + i.placeholder + '" in ' + Math.round(room) + ' px');
		}
		for (const e of document.querySelectorAll('.badge[data-status], #status-badge')) {
			if (!shown(e)) continue;
			const r = e.getBoundingClientRect();
			if (r.left < 0 || r.right > vw) out.push('a status off-screen: ' + name(e));
		}
		const nav = document.getElementById('nav');
		const active = nav && shown(nav) && nav.querySelector('a.active');
		if (active) {
			const n = nav.getBoundingClientRect(), r = active.getBoundingClientRect();
			if (r.left < n.left - 0.5 || r.right > n.right + 0.5) out.push('the current page\'s link is scrolled out of the navigation: ' + name(active));
		}
		return out;
	})())`)
	if got != "[]" {
		b.t.Errorf("layout of %s: %s", what, got)
	}
}

// axeCheck runs axe-core (from npm, web/testdata/axe) in the page and
// fails the test on any violation, naming the rule and the elements.
func (b *browser) axeCheck(what string) {
	b.t.Helper()
	if b.eval(`typeof axe`) == "undefined" {
		b.eval(axeSource(b.t) + `; ''`)
	}
	got := b.evalAsync(`axe.run(document, { resultTypes: ['violations'] }).then((r) => JSON.stringify(r.violations.map((v) =>
		v.id + ' (' + v.impact + '): ' + v.help + ' at ' + v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | '))))`)
	if got != "[]" {
		b.t.Errorf("axe-core on %s: %s", what, got)
	}
}

var axeOnce struct {
	sync.Once
	src string
	err error
}

// axeSource is axe-core's script, installed by `npm ci` in
// web/testdata/axe (scripts/test does it).
func axeSource(t *testing.T) string {
	t.Helper()
	axeOnce.Do(func() {
		data, err := os.ReadFile(filepath.Join("testdata", "axe", "node_modules", "axe-core", "axe.min.js"))
		axeOnce.src, axeOnce.err = string(data), err
	})
	if axeOnce.err != nil {
		t.Fatalf("axe-core is not installed (%v): run `npm ci` in web/testdata/axe, or scripts/test, which does", axeOnce.err)
	}
	return axeOnce.src
}

// screenshot saves a full-page screenshot as testdata/screenshots/<name>.png.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.fail("screenshot "+name, err)
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// checkQR reads the QR code as the browser draws it.
func (b *browser) checkQR(want string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS("#qr svg")))
	if err != nil {
		b.fail("QR screenshot", err)
	}
	if got, err := decodePNG(png); err != nil || got != want {
		b.t.Errorf("the QR code on the page decodes to %q (%v), want %q", got, err, want)
	}
}

func (b *browser) viewport(width, height int64, dark bool) {
	b.t.Helper()
	b.width, b.height, b.dark = width, height, dark
	scheme := "light"
	if dark {
		scheme = "dark"
	}
	b.do("viewport",
		chromedp.EmulateViewport(width, height),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
			})
			return err
		}))
}

func (b *browser) consoleProblems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}

func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func sanitize(s string) string {
	out := []rune{}
	for _, c := range s {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' {
			out = append(out, c)
		} else {
			out = append(out, '-')
		}
		if len(out) > 40 {
			break
		}
	}
	return string(out)
}

// TestBrowser runs the checkout and the dashboard in headless Chromium
// against the whole gateway in process, paying through the simulator.
func TestBrowser(t *testing.T) {
	b := newBrowser(t)
	s := newStack(t)
	m := s.signUp(t, "Browser Test Shop")
	started := time.Now()

	checkoutFlow(t, b, s, m)
	dashboardFlow(t, b, s, m)
	revertedFlow(t, b, s)
	brandedFlow(t, b, s)
	lateAndOverpaidFlow(t, b, s)
	debtFlow(t, b, s)

	if p := b.consoleProblems(); len(p) > 0 {
		t.Errorf("the pages reported errors (CSP violations, exceptions):\n%s", strings.Join(p, "\n"))
	}
	// Every action the flows took in the dashboard, and the checkout's
	// polling, went through the public API.
	checkBrowserCalls(t, s.browserCalls.all(), []string{
		"POST /v1/sessions", "DELETE /v1/sessions", "GET /v1/account", "PATCH /v1/account", "POST /v1/account/keys/rotate",
		"POST /v1/account/webhook-secret/rotate", "PUT /v1/payout-settings", "GET /v1/invoices", "GET /v1/invoices/{id}", "POST /v1/invoices",
		"POST /v1/invoices/{id}/refunds", "POST /v1/withdrawals", "GET /v1/payouts", "POST /v1/payouts/{id}/cancel",
		"GET /v1/webhooks/deliveries", "POST /v1/webhooks/deliveries/{id}/retry", "POST /v1/webhooks/test",
		"GET /v1/exports/invoices.csv", "GET /v1/exports/payouts.csv", "GET /v1/exports/ledger.csv", "GET /v1/public/invoices/{id}",
	})
	t.Logf("browser flows took %v", time.Since(started).Round(time.Millisecond))
}

func checkoutFlow(t *testing.T, b *browser, s *stack, m merchantKeys) {
	// new → partially_paid → confirming → paid, live in one page load.
	inv := s.createInvoice(t, m.SecretKey, map[string]any{"asset": "BTC", "amount": "0.01", "order_id": "order-1001"})
	b.viewport(480, 900, false)
	b.do("open checkout", chromedp.Navigate(s.srv.URL+"/pay/"+inv.ID), chromedp.WaitVisible(chromedp.CSS("#screen-pay")))
	b.waitJS("live status", `!document.getElementById('live').hidden`)
	b.waitJS("countdown", `/^(\d+:)?\d+:\d\d$/.test(document.getElementById('countdown').textContent)`)
	if got := b.text("#pay-amount"); got != inv.PayAmount {
		t.Fatalf("pay amount %q, want %q", got, inv.PayAmount)
	}
	if got := b.text("#pay-address"); got != inv.PayAddress {
		t.Fatalf("pay address %q, want %q", got, inv.PayAddress)
	}
	// The QR code as the browser draws it decodes to the exact BIP-21 URI.
	wantURI := "bitcoin:" + inv.PayAddress + "?amount=" + inv.PayAmount
	b.checkQR(wantURI)
	if href := b.eval(`document.getElementById('wallet-link').getAttribute('href')`); href != wantURI {
		t.Errorf("wallet link %q, want %q", href, wantURI)
	}
	// The copy buttons put the exact amount and address on the clipboard.
	b.grantClipboard(s.srv.URL)
	for id, want := range map[string]string{"pay-amount": inv.PayAmount, "pay-address": inv.PayAddress} {
		b.do("copy "+id, chromedp.Click(chromedp.CSS(`button[data-copy="`+id+`"]`)))
		b.waitJS("copy feedback", `document.querySelector('button[data-copy="`+id+`"]').classList.contains('done')`)
		if got := b.evalAsync(`navigator.clipboard.readText()`); got != want {
			t.Errorf("copy %s: clipboard has %q, want %q", id, got, want)
		}
	}
	b.eval(`window.__sameLoad = 'yes'; ''`) // gone if the page reloads
	b.waitJS("copy feedback reset", `!document.querySelector('button[data-copy="pay-amount"]').classList.contains('done')`)
	b.shot("checkout-new")

	s.simPay(t, inv.ID, "0.004")
	b.waitJS("partially_paid screen", `document.getElementById('checkout').dataset.status === 'partially_paid' && !document.getElementById('partial').hidden`)
	if got := b.text("#missing"); got != "0.006" {
		t.Errorf("missing amount %q, want 0.006", got)
	}
	if got := b.text("#status-badge"); got != "Partially paid" {
		t.Errorf("badge %q", got)
	}
	// Issue #15: what the customer follows now asks for the rest only,
	// redrawn in place (the QR code too) from the poll.
	dueURI := "bitcoin:" + inv.PayAddress + "?amount=0.006"
	b.waitJS("QR code of the amount due", `document.getElementById('wallet-link').getAttribute('href') === `+jsString(dueURI)+
		` && !document.getElementById('qr').classList.contains('stale')`)
	for _, id := range []string{"#pay-amount-big", "#pay-amount"} {
		if got := b.text(id); got != "0.006" {
			t.Errorf("%s %q, want the amount due 0.006", id, got)
		}
	}
	b.checkQR(dueURI)
	b.do("copy the amount due", chromedp.Click(chromedp.CSS(`button[data-copy="pay-amount"]`)))
	b.waitJS("copy feedback", `document.querySelector('button[data-copy="pay-amount"]').classList.contains('done')`)
	if got := b.evalAsync(`navigator.clipboard.readText()`); got != "0.006" {
		t.Errorf("copy amount: clipboard has %q, want 0.006", got)
	}
	b.waitJS("copy feedback reset", `!document.querySelector('button[data-copy="pay-amount"]').classList.contains('done')`)
	b.shot("checkout-partially_paid")

	// A fresh load of the partially paid invoice shows the same.
	b.do("reload partially paid", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#screen-pay")))
	if got := b.text("#pay-amount-big"); got != "0.006" {
		t.Errorf("after a reload the big amount is %q, want 0.006", got)
	}
	b.checkQR(dueURI)
	b.eval(`window.__sameLoad = 'yes'; ''`)

	s.simPay(t, inv.ID, "0.006")
	b.waitJS("confirming screen", `!document.getElementById('screen-confirming').hidden && document.getElementById('screen-pay').hidden`)
	if got := b.text("#screen-confirming .js-received"); got != "0.01" {
		t.Errorf("received on the confirming screen %q, want 0.01", got)
	}
	// Both transactions are listed, each linked to the configured explorer.
	b.waitJS("two transactions", `document.querySelectorAll('#tx-list li').length === 2`)
	links := b.eval(`[...document.querySelectorAll('#tx-list a.tx')].map(a => a.getAttribute('href') === 'https://explorer.invalid/tx/' + a.closest('li').dataset.txid).join(',')`)
	if links != "true,true" {
		t.Errorf("explorer links: %q, want two links to the explorer's transaction pages", links)
	}
	if got := b.text("#confirm-count"); got != "0 of 2 confirmations" {
		t.Errorf("confirmations %q, want 0 of 2", got)
	}
	b.shot("checkout-confirming")

	// Progress by block: one block, 1 of 2, on the same page.
	s.simMine(t, 1)
	b.waitJS("one confirmation", `document.getElementById('confirm-count').textContent === '1 of 2 confirmations' && document.getElementById('confirm-progress').value === 1`)
	if got := b.eval(`[...document.querySelectorAll('#tx-list .tx-conf')].map(e => e.textContent).join(',')`); got != "1 / 2 confirmations,1 / 2 confirmations" {
		t.Errorf("per-transaction confirmations %q", got)
	}
	b.shot("checkout-confirming-1-of-2")

	s.simMine(t, 1) // BTC needs two confirmations
	b.waitJS("paid screen", `!document.getElementById('screen-paid').hidden && document.getElementById('screen-confirming').hidden`)
	if b.eval(`window.__sameLoad || 'reloaded'`) != "yes" {
		t.Error("the page reloaded; it must change screens in place")
	}
	b.waitJS("polling stops at a terminal status", `document.getElementById('live').hidden`)
	if got := b.eval(`String(document.querySelectorAll('#tx-list a.tx').length)`); got != "2" {
		t.Errorf("the paid screen links %s transactions, want 2", got)
	}
	b.shot("checkout-paid")
	// Paid is not yet spendable (money rule 4): the net stays in pending
	// until the simulator's finality, one block past the confirmations;
	// the dashboard below shows it available.
	s.waitBalance(t, m.SecretKey, "BTC", "0", "0.009975")
	s.simMine(t, 1)
	s.waitBalance(t, m.SecretKey, "BTC", "0.009975", "0")

	// expired, with a payment that came too late to complete it.
	exp := s.createInvoice(t, m.SecretKey, map[string]any{"asset": "USDT.ETH", "amount": "49.99", "expires_in": 60})
	b.do("open second checkout", chromedp.Navigate(s.srv.URL+"/pay/"+exp.ID), chromedp.WaitVisible(chromedp.CSS("#screen-pay")))
	if got := b.text("#network"); got != "Ethereum (ERC-20)" {
		t.Errorf("network %q", got)
	}
	b.shot("checkout-new-usdt-erc20")
	s.simPay(t, exp.ID, "10")
	b.waitJS("partial before expiry", `document.getElementById('checkout').dataset.status === 'partially_paid'`)
	b.waitJS("the transaction is listed", `document.querySelectorAll('#tx-list li').length === 1`)
	if got := b.eval(`String(document.querySelectorAll('#tx-list a').length)`); got != "0" {
		t.Errorf("a chain without an explorer got %s links", got)
	}
	s.expire(t, exp.ID, 2*time.Minute)
	b.waitJS("expired screen", `!document.getElementById('screen-expired').hidden && !document.getElementById('expired-received').hidden`)
	if got := b.text("#expired-received"); !strings.Contains(got, "10 USDT.ETH") {
		t.Errorf("expired screen: %q", got)
	}
	b.shot("checkout-expired")

	// Dark mode on a phone-sized screen.
	dark := s.createInvoice(t, m.SecretKey, map[string]any{"asset": "USDT.TRON", "amount": "25"})
	b.viewport(390, 844, true)
	b.do("open dark checkout", chromedp.Navigate(s.srv.URL+"/pay/"+dark.ID), chromedp.WaitVisible(chromedp.CSS("#screen-pay")))
	if bg := b.eval(`getComputedStyle(document.body).backgroundColor`); bg == "rgb(244, 245, 247)" {
		t.Errorf("dark mode not applied: body background %s", bg)
	}
	b.shot("checkout-new-dark-mobile")

	// An unknown invoice: the HTML 404 page.
	b.viewport(480, 900, false)
	b.do("open unknown invoice", chromedp.Navigate(s.srv.URL+"/pay/inv_00000000000000000000000000"), chromedp.WaitVisible(chromedp.CSS("#error")))
	if got := b.text("#error h1"); got != "Page not found" {
		t.Errorf("404 page heading %q", got)
	}
	b.shot("checkout-404")
}

func dashboardFlow(t *testing.T, b *browser, s *stack, m merchantKeys) {
	// Enough invoices for two pages of 20; the newest was created with the
	// publishable key (issue #17, finding 3), with an order id the shop uses.
	var byPub invoiceJSON
	for i := range 21 {
		key := m.SecretKey
		if i == 20 {
			key = m.PublishableKey
		}
		byPub = s.createInvoice(t, key, map[string]any{"asset": "ETH", "amount": fmt.Sprintf("0.%03d", i+1), "order_id": fmt.Sprintf("bulk-%d", i)})
	}
	b.viewport(1280, 900, false)
	b.do("open dashboard", chromedp.Navigate(s.srv.URL+"/dashboard"), chromedp.WaitVisible(chromedp.CSS("#signin-form")))
	b.shot("dashboard-signin")

	// A wrong key is refused; the right one signs in.
	b.do("wrong key", chromedp.SendKeys(chromedp.CSS("#secret-key"), "pic_live_wrong"), chromedp.Click(chromedp.CSS("#signin-submit")))
	b.waitJS("sign-in error", `!document.getElementById('signin-error').hidden`)
	b.eval(`document.getElementById('secret-key').value = ''; ''`)
	b.do("sign in", chromedp.SendKeys(chromedp.CSS("#secret-key"), m.SecretKey),
		chromedp.Click(chromedp.CSS("#signin-submit")))
	b.waitJS("balances", `!!document.querySelector('#balances tr[data-asset="BTC"]') && !!document.querySelector('#chart')`)
	// 0.01 BTC paid at 0.25 %: 0.000025 fee.
	if got := b.text(`#balances tr[data-asset="BTC"] td:nth-child(2)`); got != "0.009975" {
		t.Errorf("BTC available %q, want 0.009975", got)
	}
	if got := b.text(`#balances tr[data-asset="BTC"] td:nth-child(3)`); got != "0" {
		t.Errorf("BTC pending %q, want 0 (the payment is final)", got)
	}
	if got := b.text(`#balances tr[data-asset="BTC"] td:nth-child(4)`); got != "—" {
		t.Errorf("BTC usd_value %q, want —", got)
	}
	b.waitJS("chart bars", `document.querySelectorAll('#chart figure[data-asset="BTC"] rect.bar').length === 14`)
	if got := b.text(`#chart figure[data-asset="USDT.ETH"] h3`); !strings.Contains(got, "10") {
		t.Errorf("USDT.ETH chart title %q", got)
	}
	b.shot("dashboard-balances")

	// Invoices: the list, the filter, the pages.
	b.do("invoices", chromedp.Click(chromedp.CSS(`#nav a[data-view="invoices"]`)))
	b.waitJS("invoice list", `document.querySelectorAll('#invoices tbody tr').length === 20 && !!document.getElementById('next-page')`)
	// What the publishable key created carries a badge; nothing else does.
	if got := b.eval(`[...document.querySelectorAll('#invoices tbody tr')].filter(tr => tr.querySelector('.badge[data-created-by="publishable_key"]')).map(tr => tr.dataset.id).join(',')`); got != byPub.ID {
		t.Errorf("rows with the publishable key's badge: %q, want %q", got, byPub.ID)
	}
	if got := b.text(`#invoices tbody tr[data-id="` + byPub.ID + `"] .badge[data-created-by]`); got != "Publishable key" {
		t.Errorf("badge text %q", got)
	}
	b.shot("dashboard-invoices")
	b.do("next page", chromedp.Click(chromedp.CSS("#next-page")))
	b.waitJS("second page", `!!document.getElementById('prev-page') && document.querySelectorAll('#invoices tbody tr').length === 4`)
	b.do("previous page", chromedp.Click(chromedp.CSS("#prev-page")))
	b.waitJS("first page again", `!document.getElementById('prev-page') && document.querySelectorAll('#invoices tbody tr').length === 20`)
	b.eval(`const f = document.getElementById('status-filter'); f.value = 'paid'; f.dispatchEvent(new Event('change')); ''`)
	b.waitJS("filtered list", `location.hash.includes('status=paid') && document.querySelectorAll('#invoices tbody tr').length === 1`)
	b.shot("dashboard-invoices-paid")

	// Search (issue #20): an order id, a pay address, exactly; a period.
	b.do("clear the filters", chromedp.Click(chromedp.CSS("#search-clear")))
	b.waitJS("all invoices again", `location.hash === '#/invoices' && document.querySelectorAll('#invoices tbody tr').length === 20`)
	b.eval(`document.getElementById('search-q').value = 'bulk-3'; document.getElementById('invoice-search').requestSubmit(); ''`)
	b.waitJS("found by order id", `location.hash.includes('q=bulk-3') && document.querySelectorAll('#invoices tbody tr').length === 1`)
	b.shot("dashboard-invoices-search")
	b.eval(`document.getElementById('search-q').value = ` + jsString(byPub.PayAddress) + `; document.getElementById('invoice-search').requestSubmit(); ''`)
	b.waitJS("found by address", `document.querySelectorAll('#invoices tbody tr').length === 1 && document.querySelector('#invoices tbody tr').dataset.id === `+jsString(byPub.ID))
	// The txid of a payment finds its invoice; an invoice id, the invoice.
	paid := s.paidInvoice(t, m.SecretKey)
	b.eval(`document.getElementById('search-q').value = ` + jsString(paid.Payments[1].TxID) + `; document.getElementById('invoice-search').requestSubmit(); ''`)
	b.waitJS("found by txid", `document.querySelectorAll('#invoices tbody tr').length === 1 && document.querySelector('#invoices tbody tr').dataset.id === `+jsString(paid.ID))
	b.eval(`document.getElementById('search-q').value = ` + jsString(byPub.ID) + `; document.getElementById('invoice-search').requestSubmit(); ''`)
	b.waitJS("found by invoice id", `document.querySelectorAll('#invoices tbody tr').length === 1 && document.querySelector('#invoices tbody tr').dataset.id === `+jsString(byPub.ID))
	tomorrow := s.clock.Now().UTC().AddDate(0, 0, 1).Format("2006-01-02")
	today := s.clock.Now().UTC().Format("2006-01-02")
	b.do("a period with no invoice", chromedp.Navigate(s.srv.URL+"/dashboard#/invoices?asset=ETH&from="+tomorrow))
	b.waitJS("nothing in the period", `!!document.getElementById('invoices-empty') && document.getElementById('asset-filter').value === 'ETH'`)
	b.do("today's ETH invoices", chromedp.Navigate(s.srv.URL+"/dashboard#/invoices?asset=ETH&from="+today+"&to="+today))
	b.waitJS("today's ETH invoices", `document.querySelectorAll('#invoices tbody tr').length === 20 && !!document.getElementById('next-page')`)
	if got := b.eval(`String([...document.querySelectorAll('#invoices tbody tr td:nth-child(3)')].every(td => td.textContent.endsWith(' ETH')))`); got != "true" {
		t.Error("the asset filter lists other coins")
	}
	b.do("next page keeps the filters", chromedp.Click(chromedp.CSS("#next-page")))
	b.waitJS("second page of the filter", `location.hash.includes('asset=ETH') && location.hash.includes('after=') && document.querySelectorAll('#invoices tbody tr').length === 1`)
	b.do("back to the paid invoice", chromedp.Navigate(s.srv.URL+"/dashboard#/invoices?status=paid"))
	b.waitJS("paid list", `document.getElementById('status-filter')?.value === 'paid' && document.querySelectorAll('#invoices tbody tr').length === 1`)

	// Invoice detail with its payments; the delivery log may not exist on this server.
	b.do("invoice detail", chromedp.Click(chromedp.CSS(`#invoices tbody tr a`)))
	b.waitJS("detail", `!!document.getElementById('invoice-detail') && document.querySelectorAll('#payments tbody tr').length === 2 && !!document.querySelector('#deliveries p, #deliveries table')`)
	// partially_paid, confirming, paid: three deliveries, each acknowledged.
	b.waitJS("deliveries", `document.querySelectorAll('#deliveries tbody tr').length === 3`)
	if got := b.eval(`[...document.querySelectorAll('#deliveries tbody tr td:nth-child(2)')].map(td => td.textContent).join(',')`); got != "Delivered,Delivered,Delivered" {
		t.Errorf("delivery statuses %q", got)
	}
	// Its transactions link to the explorer the operator named for Bitcoin.
	if got := b.eval(`[...document.querySelectorAll('#payments tbody tr')].map(tr => tr.querySelector('a.tx')?.getAttribute('href') === 'https://explorer.invalid/tx/' + tr.querySelector('a.tx code').title).join(',')`); got != "true,true" {
		t.Errorf("the payments' explorer links: %q, want two", got)
	}
	b.shot("dashboard-invoice-detail")
	paidID := b.eval(`document.getElementById('invoice-detail').querySelector('h1').textContent.split(' ').pop()`)

	// Refund part of it (POST /v1/invoices/{id}/refunds): listed at once.
	b.do("refund", chromedp.SendKeys(chromedp.CSS("#refund-amount"), "0.002"),
		chromedp.SendKeys(chromedp.CSS("#refund-to"), "bc1qcustomerrefundaddress0000000000000000"), chromedp.Click(chromedp.CSS("#refund-submit")))
	b.waitJS("refund listed", `document.querySelectorAll('#refunds tbody tr').length === 1`)
	if got := b.text(`#refunds tbody tr td:nth-child(2)`); got != "0.002 BTC" {
		t.Errorf("refund amount %q", got)
	}
	b.shot("dashboard-invoice-refund")
	var refunds struct {
		Data []struct {
			Amount    string `json:"amount"`
			ToAddress string `json:"to_address"`
			Kind      string `json:"kind"`
		} `json:"data"`
	}
	if st := s.call(t, "GET", "/v1/invoices/"+paidID+"/refunds", m.SecretKey, nil, &refunds); st != http.StatusOK || len(refunds.Data) != 1 ||
		refunds.Data[0].Amount != "0.002" || refunds.Data[0].Kind != "refund" {
		t.Errorf("the refund in the API: %d %+v", st, refunds.Data)
	}
	if b.eval(`String(!!document.getElementById('created-by-notice'))`) != "false" {
		t.Error("the secret key's invoice shows the publishable key's notice")
	}
	if got := b.text("#invoice-created-by"); got != "Secret key" {
		t.Errorf("created with %q, want Secret key", got)
	}
	// The publishable key's invoice says so, with a warning, on its page.
	b.do("publishable key's invoice", chromedp.Navigate(s.srv.URL+"/dashboard#/invoices/"+byPub.ID))
	b.waitJS("publishable detail", `(document.getElementById('invoice-detail') || {}).dataset?.createdBy === 'publishable_key'`)
	if got := b.text("#created-by-notice"); !strings.Contains(got, "publishable key") || !strings.Contains(got, "bulk-20") {
		t.Errorf("notice %q", got)
	}
	if got := b.text("#invoice-created-by"); got != "Publishable key" {
		t.Errorf("created with %q, want Publishable key", got)
	}
	b.shot("dashboard-invoice-publishable")

	// New invoice form.
	b.do("new invoice", chromedp.Click(chromedp.CSS(`#nav a[data-view="new"]`)), chromedp.WaitVisible(chromedp.CSS("#new-invoice-form")))
	b.eval(`document.getElementById('new-asset').value = 'USDT.TRON'; ''`)
	b.do("fill", chromedp.SendKeys(chromedp.CSS("#new-amount"), "12.345678"), chromedp.SendKeys(chromedp.CSS("#new-order"), "from-the-dashboard"),
		chromedp.Click(chromedp.CSS("#new-submit")))
	b.waitJS("created", `!!document.querySelector('#new-result .notice')`)
	newID := b.eval(`document.querySelector('#new-result .notice').dataset.id`)
	var created invoiceJSON
	if st := s.call(t, "GET", "/v1/invoices/"+newID, m.SecretKey, nil, &created); st != http.StatusOK || created.PayAmount != "12.345678" || created.Asset != "USDT.TRON" {
		t.Errorf("the dashboard's invoice: %d %+v", st, created)
	}
	b.shot("dashboard-new-invoice")
	// Priced in a fiat currency, with a description for the customer.
	b.eval(`document.getElementById('new-asset').value = 'BTC'; document.getElementById('new-asset').dispatchEvent(new Event('change')); document.getElementById('new-currency').value = 'USD'; ''`)
	b.do("fill a USD price", chromedp.SendKeys(chromedp.CSS("#new-amount"), "30"), chromedp.SendKeys(chromedp.CSS("#new-description"), "Blue mug, large"),
		chromedp.Click(chromedp.CSS("#new-submit")))
	b.waitJS("created in USD", `!!document.querySelector('#new-result .notice') && document.querySelector('#new-result .notice').dataset.id !== `+jsString(newID))
	var priced struct {
		PayAmount   string `json:"pay_amount"`
		Description string `json:"description"`
		Price       *struct {
			Amount   string `json:"amount"`
			Currency string `json:"currency"`
		} `json:"price"`
	}
	pricedID := b.eval(`document.querySelector('#new-result .notice').dataset.id`)
	if st := s.call(t, "GET", "/v1/invoices/"+pricedID, m.SecretKey, nil, &priced); st != http.StatusOK || priced.PayAmount != "0.0005" ||
		priced.Description != "Blue mug, large" || priced.Price == nil || priced.Price.Amount != "30" || priced.Price.Currency != "USD" {
		t.Errorf("the dashboard's USD invoice: %d %+v %+v", st, priced, priced.Price)
	}

	// Payouts: the refund above, then a withdrawal (POST /v1/withdrawals)
	// cancelled while still requested (POST /v1/payouts/{id}/cancel): no
	// payout processor runs in this stack, so both stay requested.
	b.do("payouts", chromedp.Click(chromedp.CSS(`#nav a[data-view="payouts"]`)))
	b.waitJS("payouts", `document.querySelectorAll('#payouts tbody tr').length === 1 && !!document.getElementById('withdraw-form')`)
	b.eval(`document.getElementById('withdraw-asset').value = 'BTC'; ''`)
	b.do("withdraw", chromedp.SendKeys(chromedp.CSS("#withdraw-amount"), "0.001"),
		chromedp.SendKeys(chromedp.CSS("#withdraw-to"), "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"), chromedp.Click(chromedp.CSS("#withdraw-submit")))
	b.waitJS("withdrawal listed", `document.querySelectorAll('#payouts tbody tr').length === 2 && !!document.querySelector('#payouts tbody tr[data-status="requested"] button[data-cancel]')`)
	withdrawal := b.eval(`document.querySelector('#payouts tbody tr[data-kind="withdrawal"]').dataset.id`)
	if got := b.text(`#payouts tbody tr[data-id="` + withdrawal + `"] .payout-kind`); got != "Withdrawal" {
		t.Errorf("payout kind %q, want Withdrawal", got)
	}
	// The address is shortened to its head and tail, whole in its title,
	// and its button copies it whole.
	to := `#payouts tbody tr[data-id="` + withdrawal + `"] td:nth-child(4)`
	if got, title := b.text(to+" code"), b.eval(`document.querySelector('`+to+` code').title`); got != "bc1qar0srr…zzwf5mdq" || title != "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq" {
		t.Errorf("the payout's address shows %q (title %q), want it shortened", got, title)
	}
	b.do("copy the payout's address", chromedp.Click(chromedp.CSS(to+" button.copy")))
	b.waitJS("copied", `document.querySelector('`+to+` button.copy').classList.contains('done')`)
	if got := b.evalAsync(`navigator.clipboard.readText()`); got != "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq" {
		t.Errorf("the copy button of the payout's address copied %q", got)
	}
	if got := b.text(`#payouts tbody tr[data-id="` + withdrawal + `"] .payout-status`); got != "Requested" {
		t.Errorf("payout status %q, want Requested", got)
	}
	b.waitJS("copy feedback reset", `!document.querySelector('`+to+` button.copy').classList.contains('done')`)
	// No payout here has a transaction yet (no payout processor runs): one
	// that has, its txid shortened as the address is, still fits at 1280 px
	// (the table at its narrowest, its Transaction column as wide as To).
	if got := b.eval(`(() => {
		const table = document.querySelector('#payouts table'), wrap = table.parentElement;
		table.style.width = 'min-content';
		const narrowest = table.offsetWidth, tx = table.querySelector('tbody td:nth-child(5)').offsetWidth, to = table.querySelector('tbody td:nth-child(4)').offsetWidth;
		table.style.width = '';
		return narrowest - tx + to + ' px in ' + wrap.clientWidth + ': ' + (narrowest - tx + to <= wrap.clientWidth);
	})()`); !strings.HasSuffix(got, "true") {
		t.Errorf("a payout with a transaction would not fit the table at 1280 px: %s", got)
	}
	s.waitBalance(t, m.SecretKey, "BTC", "0.006975", "0") // 0.009975 - 0.002 refund - 0.001
	b.shot("dashboard-payouts")
	b.do("cancel the withdrawal", chromedp.Click(chromedp.CSS(`#payouts tbody tr[data-id="`+withdrawal+`"] button[data-cancel]`)))
	b.waitJS("withdrawal canceled", `document.querySelector('#payouts tbody tr[data-id="`+withdrawal+`"]')?.dataset.status === 'canceled'`)
	s.waitBalance(t, m.SecretKey, "BTC", "0.007975", "0")

	// Exports: the links download the period's CSV with the session cookie.
	b.do("exports", chromedp.Click(chromedp.CSS(`#nav a[data-view="exports"]`)))
	b.waitJS("exports", `!!document.getElementById('export-ledger')`)
	today = s.clock.Now().UTC().Format("2006-01-02")
	b.eval(`for (const id of ['export-from', 'export-to']) { const i = document.getElementById(id); i.value = '` + today + `'; i.dispatchEvent(new Event('input')); } ''`)
	if href := b.eval(`document.getElementById('export-invoices').getAttribute('href')`); !strings.Contains(href, "/v1/exports/invoices.csv?created_gte=") || !strings.Contains(href, "&created_lt=") {
		t.Errorf("export link %q", href)
	}
	csv := b.evalAsync(`fetch(document.getElementById('export-invoices').href, { credentials: 'same-origin' }).then(r => r.text())`)
	if lines := strings.Split(strings.TrimSpace(csv), "\n"); len(lines) != 1+21+3+2 || !strings.HasPrefix(lines[0], "id,created_at,status") {
		t.Errorf("invoices export: %d lines, want a header and 27 invoices:\n%s", len(lines), csv)
	}
	pays := b.evalAsync(`fetch(document.getElementById('export-payouts').href, { credentials: 'same-origin' }).then(r => r.text())`)
	if lines := strings.Split(strings.TrimSpace(pays), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "id,created_at,kind,status,asset,amount") ||
		!strings.Contains(pays, ",refund,requested,BTC,0.002,") || !strings.Contains(pays, ",withdrawal,canceled,BTC,0.001,") {
		t.Errorf("payouts export: want a header, the refund requested and the withdrawal canceled:\n%s", pays)
	}
	ledger := b.evalAsync(`fetch(document.getElementById('export-ledger').href, { credentials: 'same-origin' }).then(r => r.text())`)
	if !strings.Contains(ledger, ",DepositConfirmed,") || !strings.Contains(ledger, ",reserved,BTC,") {
		t.Errorf("ledger export lacks the deposits or the refund's reservation:\n%s", ledger)
	}
	b.shot("dashboard-exports")

	// The account's webhook log, its filter and the test button.
	b.do("webhooks", chromedp.Click(chromedp.CSS(`#nav a[data-view="webhooks"]`)))
	b.waitJS("webhook log", `document.querySelectorAll('#webhooks tbody tr').length >= 4`)
	b.do("send test webhook", chromedp.Click(chromedp.CSS("#webhook-test")))
	b.waitJS("test delivered", `document.querySelector('#webhook-test-result .notice')?.dataset.delivered === 'true'`)
	b.shot("dashboard-webhooks")
	b.eval(`{ const f = document.getElementById('delivery-status'); f.value = 'failed'; f.dispatchEvent(new Event('change')); } ''`)
	b.waitJS("no failed deliveries", `location.hash.includes('status=failed') && !!document.getElementById('deliveries-empty')`)

	// The endpoint fails: the test says so, and a real delivery waits
	// with its failed attempt, until "Retry now" sends it again.
	s.webhookDown.Store(true)
	b.do("send test webhook to a failing endpoint", chromedp.Click(chromedp.CSS("#webhook-test")))
	b.waitJS("test failed", `document.querySelector('#webhook-test-result .notice')?.dataset.delivered === 'false'`)
	if got := b.text("#webhook-test-result"); !strings.Contains(got, "HTTP 503") {
		t.Errorf("failed test webhook: %q, want the endpoint's HTTP 503", got)
	}
	late := s.createInvoice(t, m.SecretKey, map[string]any{"asset": "USDT.TRON", "amount": "5"})
	s.simPay(t, late.ID, "1")
	failing := s.waitDelivery(t, m.SecretKey, late.ID, func(d deliveryJSON) bool { return d.Status == "pending" && len(d.Attempts) > 0 })
	b.do("pending deliveries", chromedp.Navigate(s.srv.URL+"/dashboard#/webhooks?status=pending"))
	row := `#webhooks tbody tr[data-id="` + failing.ID + `"]`
	b.waitJS("the failing delivery", `!!document.querySelector('`+row+` button[data-retry]')`)
	if got := b.text(row + " td:nth-child(5)"); got != "HTTP 503" {
		t.Errorf("the delivery's last response %q, want HTTP 503", got)
	}
	if got := b.text(row + " td:nth-child(3)"); got != "Pending" {
		t.Errorf("the delivery's status %q, want Pending", got)
	}
	b.shot("dashboard-webhooks-failing")
	s.webhookDown.Store(false)
	b.do("retry the delivery", chromedp.Click(chromedp.CSS(row+" button[data-retry]")))
	b.waitJS("retry scheduled", `document.querySelector('`+row+`').textContent.includes('Retry scheduled')`)
	s.waitDelivery(t, m.SecretKey, late.ID, func(d deliveryJSON) bool { return d.ID == failing.ID && d.Status == "delivered" })
	b.do("delivered deliveries", chromedp.Navigate(s.srv.URL+"/dashboard#/webhooks?status=delivered"))
	b.waitJS("the delivery delivered", `document.querySelector('`+row+`')?.dataset.status === 'delivered'`)

	// Settings: rotate the keys; the old secret key stops working.
	b.do("settings", chromedp.Click(chromedp.CSS(`#nav a[data-view="settings"]`)), chromedp.WaitVisible(chromedp.CSS("#settings-keys")))
	if got := b.text("#publishable-key"); got != m.PublishableKey {
		t.Errorf("publishable key %q, want %q", got, m.PublishableKey)
	}
	b.shot("dashboard-settings")
	b.do("rotate keys", chromedp.Click(chromedp.CSS("#rotate-keys")), chromedp.WaitVisible(chromedp.CSS("#rotate-keys-confirm")),
		chromedp.Click(chromedp.CSS("#rotate-keys-confirm")))
	b.waitJS("new secret", `!!document.getElementById('new-secret-key')`)
	newSecret := b.text("#new-secret-key")
	if !strings.HasPrefix(newSecret, "pic_live_") || newSecret == m.SecretKey {
		t.Fatalf("new secret key %q", newSecret)
	}
	if st := s.call(t, "GET", "/v1/account", m.SecretKey, nil, nil); st != http.StatusUnauthorized {
		t.Errorf("old secret key after rotation: %d, want 401", st)
	}
	if st := s.call(t, "GET", "/v1/account", m.PublishableKey, nil, nil); st != http.StatusUnauthorized && st != http.StatusForbidden {
		t.Errorf("old publishable key after rotation: %d", st)
	}
	var acc struct {
		PublishableKey string `json:"publishable_key"`
	}
	if st := s.call(t, "GET", "/v1/account", newSecret, nil, &acc); st != http.StatusOK {
		t.Fatalf("new secret key: %d", st)
	}
	if got := b.text("#publishable-key"); got != acc.PublishableKey {
		t.Errorf("publishable key on the page %q, want the new %q", got, acc.PublishableKey)
	}
	b.shot("dashboard-settings-rotated")

	// The session survived the rotation (the API renewed the cookie).
	b.eval(`document.getElementById('webhook-url').value = ''; ''`)
	b.do("webhook url", chromedp.SendKeys(chromedp.CSS("#webhook-url"), "https://shop.example/ipn"),
		chromedp.Click(chromedp.CSS("#webhook-form button[type=submit]")))
	b.waitJS("webhook saved", `document.getElementById('webhook-url-status').textContent === 'Saved'`)
	b.do("rotate webhook secret", chromedp.Click(chromedp.CSS("#rotate-webhook")), chromedp.WaitVisible(chromedp.CSS("#rotate-webhook-confirm")),
		chromedp.Click(chromedp.CSS("#rotate-webhook-confirm")))
	b.waitJS("new webhook secret", `(document.getElementById('new-webhook-secret') || {}).textContent?.startsWith('whsec_')`)

	// Payout settings for BTC.
	b.do("payout settings", chromedp.SendKeys(chromedp.CSS("#payout-address-BTC"), "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"))
	b.eval(`document.getElementById('payout-mode-BTC').value = 'instant'; const m = document.getElementById('payout-min-BTC'); m.value = '0.001'; ''`)
	b.do("save payout settings", chromedp.Click(chromedp.CSS("#payout-save-BTC")))
	b.waitJS("payout saved", `document.getElementById('payout-status-BTC').textContent === 'Saved'`)
	b.shot("dashboard-settings-payouts")
	var settings struct {
		Data []struct {
			Asset            string  `json:"asset"`
			PayoutAddress    *string `json:"payout_address"`
			Mode             string  `json:"mode"`
			InstantMinAmount string  `json:"instant_min_amount"`
		} `json:"data"`
	}
	if st := s.call(t, "GET", "/v1/payout-settings", newSecret, nil, &settings); st != http.StatusOK {
		t.Fatalf("payout settings: %d", st)
	}
	found := false
	for _, p := range settings.Data {
		if p.Asset == "BTC" {
			found = p.PayoutAddress != nil && *p.PayoutAddress == "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq" && p.Mode == "instant" && p.InstantMinAmount == "0.001"
		}
	}
	if !found {
		t.Errorf("BTC payout settings not saved: %+v", settings.Data)
	}
	var account struct {
		WebhookURL *string `json:"webhook_url"`
	}
	if s.call(t, "GET", "/v1/account", newSecret, nil, &account); account.WebhookURL == nil || *account.WebhookURL != "https://shop.example/ipn" {
		t.Errorf("webhook URL not saved: %v", account.WebhookURL)
	}

	// The longer words of other languages fit too, and axe-core finds
	// nothing: every dashboard page and two checkouts, at 390 and 1280 px.
	dash := func(view, ready string) string { return view + "\x00" + ready }
	pages := []string{
		dash("balances", `!!document.getElementById('balances')`),
		dash("invoices", `document.querySelectorAll('#invoices tbody tr').length > 0`),
		dash("invoices/"+paidID, `!!document.getElementById('invoice-detail') && !!document.querySelector('#deliveries table')`),
		dash("new", `!!document.getElementById('new-invoice-form')`),
		dash("payouts", `document.querySelectorAll('#payouts tbody tr').length > 0`),
		dash("exports", `!!document.getElementById('export-ledger')`),
		dash("webhooks", `document.querySelectorAll('#webhooks tbody tr').length > 0`),
		dash("settings", `!!document.getElementById('settings-payouts')`),
	}
	for _, lang := range []string{"de", "ru", "pt-BR"} {
		for _, p := range pages {
			view, ready, _ := strings.Cut(p, "\x00")
			b.do("dashboard in "+lang, chromedp.Navigate(s.srv.URL+"/dashboard?lang="+lang+"#/"+view))
			b.waitJS(view+" in "+lang, `document.documentElement.lang === '`+lang+`' && document.getElementById('view').dataset.view === '`+strings.Split(view, "/")[0]+`' && `+ready)
			b.layoutAt(lang + " dashboard " + view)
		}
		for _, id := range []string{paidID, byPub.ID} {
			b.do("checkout in "+lang, chromedp.Navigate(s.srv.URL+"/pay/"+id+"?lang="+lang), chromedp.WaitVisible(chromedp.CSS("#checkout")))
			b.layoutAt(lang + " checkout " + id)
		}
	}
	b.do("dashboard in English", chromedp.Navigate(s.srv.URL+"/dashboard?lang=en#/settings"))
	b.waitJS("settings in English", `document.documentElement.lang === 'en' && !!document.getElementById('settings-payouts')`)

	// Sign out: the cookie is gone, a reload asks to sign in again.
	b.do("sign out", chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#signin-form")))
	b.do("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#signin-form")))
	if st := b.evalAsync(`fetch('/v1/account', {credentials: 'same-origin'}).then(r => String(r.status))`); st != "401" {
		t.Errorf("after sign-out GET /v1/account answers %s, want 401", st)
	}
}

// revertedFlow: chain reorganisations after payment (money rule 5), for a
// merchant of its own so that the flows above keep their numbers. One
// invoice's payment is gone for good; the other's is mined again, and its
// checkout, open on the reverted screen, turns paid without a reload.
func revertedFlow(t *testing.T, b *browser, s *stack) {
	m := s.signUp(t, "Reorg Test Shop")
	// BTC needs two confirmations; older transfers are deeper than the
	// two-block reorganisations below, which leave them alone.
	gone := s.createInvoice(t, m.SecretKey, map[string]any{"asset": "BTC", "amount": "0.02", "order_id": "order-gone"})
	s.simPay(t, gone.ID, gone.PayAmount)
	s.simMine(t, 2)
	s.waitStatus(t, gone.ID, domain.StatusPaid)
	s.simReorg(t, 2, false)
	s.waitStatus(t, gone.ID, domain.StatusReverted)

	back := s.createInvoice(t, m.SecretKey, map[string]any{"asset": "BTC", "amount": "0.03", "order_id": "order-back"})
	s.simPay(t, back.ID, back.PayAmount)
	s.simMine(t, 2)
	s.waitStatus(t, back.ID, domain.StatusPaid)
	s.simReorg(t, 2, true) // back in the mempool, not confirmed: still reverted
	s.waitStatus(t, back.ID, domain.StatusReverted)

	b.viewport(480, 900, false)
	b.do("open reverted checkout", chromedp.Navigate(s.srv.URL+"/pay/"+back.ID), chromedp.WaitVisible(chromedp.CSS("#screen-reverted")))
	for _, sel := range []string{"#screen-pay", "#qr", "#pay-amount-big", "#wallet-link", "#screen-paid", "#screen-confirming", "#screen-expired"} {
		if b.eval(`String(!!(document.querySelector(`+jsString(sel)+`) || {}).checkVisibility?.())`) != "false" {
			t.Errorf("the reverted checkout shows %s", sel)
		}
	}
	if got := b.text("#status-badge"); got != "Payment reversed" {
		t.Errorf("badge %q, want Payment reversed", got)
	}
	if got := b.text("#screen-reverted h1"); got != "Payment reversed by the network" {
		t.Errorf("heading %q", got)
	}
	// Not terminal: the page keeps asking.
	b.waitJS("live status on the reverted screen", `!document.getElementById('live').hidden`)
	b.shot("checkout-reverted")
	b.eval(`window.__sameLoad = 'yes'; ''`)

	// Mined again: paid again, on the same page.
	s.simMine(t, 2)
	b.waitJS("paid again", `!document.getElementById('screen-paid').hidden && document.getElementById('screen-reverted').hidden`)
	if got := b.text("#status-badge"); got != "Paid" {
		t.Errorf("badge after the payment is mined again %q, want Paid", got)
	}
	if b.eval(`window.__sameLoad || 'reloaded'`) != "yes" {
		t.Error("the page reloaded; it must change screens in place")
	}
	b.waitJS("polling stops when paid again", `document.getElementById('live').hidden`)

	// The dashboard lists, filters and labels reverted invoices.
	b.viewport(1280, 900, false)
	b.do("open dashboard", chromedp.Navigate(s.srv.URL+"/dashboard"), chromedp.WaitVisible(chromedp.CSS("#signin-form")))
	b.eval(`document.getElementById('secret-key').value = ''; ''`)
	b.do("sign in", chromedp.SendKeys(chromedp.CSS("#secret-key"), m.SecretKey), chromedp.Click(chromedp.CSS("#signin-submit")))
	b.waitJS("balances", `!!document.querySelector('#balances')`)
	b.do("invoices", chromedp.Click(chromedp.CSS(`#nav a[data-view="invoices"]`)))
	b.waitJS("invoice list", `document.querySelectorAll('#invoices tbody tr').length === 2`)
	if got := b.text(`#invoices tbody tr[data-id="` + gone.ID + `"] .badge[data-status]`); got != "Payment reversed" {
		t.Errorf("list badge of the reverted invoice %q", got)
	}
	if got := b.eval(`(document.querySelector('#status-filter option[value="reverted"]') || {}).textContent || 'missing'`); got != "Payment reversed" {
		t.Errorf("status filter option for reverted: %q", got)
	}
	b.eval(`const f = document.getElementById('status-filter'); f.value = 'reverted'; f.dispatchEvent(new Event('change')); ''`)
	b.waitJS("filtered list", `location.hash.includes('status=reverted') && document.querySelectorAll('#invoices tbody tr').length === 1`)
	if got := b.eval(`document.querySelector('#invoices tbody tr').dataset.id`); got != gone.ID {
		t.Errorf("the reverted filter lists %s, want %s", got, gone.ID)
	}
	if bg := b.eval(`getComputedStyle(document.querySelector('#invoices tbody .badge[data-status]')).backgroundColor`); bg == b.eval(`getComputedStyle(document.querySelector('#status-filter')).backgroundColor`) {
		t.Errorf("the reverted badge has no colour of its own: %s", bg)
	}
	b.shot("dashboard-invoices-reverted")
	b.do("reverted invoice detail", chromedp.Click(chromedp.CSS(`#invoices tbody tr a`)))
	b.waitJS("detail", `(document.getElementById('invoice-detail') || {}).dataset?.status === 'reverted'`)
	if got := b.text(`#invoice-detail .badge[data-status]`); got != "Payment reversed" {
		t.Errorf("detail badge %q", got)
	}
	// The dashboard's language switch keeps the view.
	b.switchLanguage("de")
	b.waitJS("German dashboard", `document.documentElement.lang === 'de' && location.hash.startsWith('#/invoices/') && (document.getElementById('invoice-detail') || {}).dataset?.status === 'reverted'`)
	if got := b.text(`#nav a[data-view="invoices"]`); got != "Rechnungen" {
		t.Errorf("German nav %q", got)
	}
	// Sign out everywhere: another session of the account (a second browser,
	// or a stolen cookie) ends too.
	other := s.sessionCookie(t, m.SecretKey)
	if st := s.withCookie(t, other); st != 200 {
		t.Fatalf("the second session before: %d", st)
	}
	b.do("settings", chromedp.Navigate(s.srv.URL+"/dashboard?lang=de#/settings"), chromedp.WaitVisible(chromedp.CSS("#signout-all")))
	b.do("sign out everywhere", chromedp.Click(chromedp.CSS("#signout-all")), chromedp.WaitVisible(chromedp.CSS("#signin-form")))
	if st := s.withCookie(t, other); st != 401 {
		t.Errorf("the second session after signing out everywhere: %d, want 401", st)
	}
}

// sessionCookie signs in with secretKey outside the browser and returns the cookie.
func (s *stack) sessionCookie(t *testing.T, secretKey string) *http.Cookie {
	t.Helper()
	resp, err := http.Post(s.srv.URL+"/v1/sessions", "application/json", strings.NewReader(`{"secret_key":"`+secretKey+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		return c
	}
	t.Fatalf("sign-in set no cookie: %d", resp.StatusCode)
	return nil
}

// withCookie reads the account with a session cookie and returns the status.
func (s *stack) withCookie(t *testing.T, c *http.Cookie) int {
	t.Helper()
	req, _ := http.NewRequest("GET", s.srv.URL+"/v1/account", nil)
	req.AddCookie(c)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// brandedFlow (issue #19): a shop's branding, a USD price, a description
// and the return link, in a real browser under the page's CSP (a violation
// would be a console problem; the logo's host does not resolve, which is a
// network error, not one).
func brandedFlow(t *testing.T, b *browser, s *stack) {
	m := s.signUp(t, "Branded Shop")
	if code := s.call(t, "PATCH", "/v1/account", m.SecretKey, map[string]any{"display_name": "Mug & Co", "brand_color": "#0A7D5A",
		"logo_url": "https://logo.invalid/mug.png", "default_redirect_url": "https://mugs.example/thanks"}, nil); code != http.StatusOK {
		t.Fatalf("branding: %d", code)
	}
	inv := s.createInvoice(t, m.SecretKey, map[string]any{"asset": "BTC", "price_amount": "30", "price_currency": "USD", "description": "Blue mug, large"})
	if inv.PayAmount != "0.0005" {
		t.Fatalf("pay amount %q, want 0.0005 (30 USD at 60000)", inv.PayAmount)
	}
	b.viewport(480, 900, false)
	b.do("open branded checkout", chromedp.Navigate(s.srv.URL+"/pay/"+inv.ID), chromedp.WaitVisible(chromedp.CSS("#screen-pay")))
	b.waitJS("live status", `!document.getElementById('live').hidden`)
	for sel, want := range map[string]string{".brand": "Mug & Co", "#fiat-price": "30.00 USD", "#description": "Blue mug, large"} {
		if got := b.text(sel); got != want {
			t.Errorf("%s %q, want %q", sel, got, want)
		}
	}
	if got := b.eval(`getComputedStyle(document.documentElement).getPropertyValue('--accent').trim()`); got != "#0a7d5a" {
		t.Errorf("accent %q, want the brand colour", got)
	}
	if got := b.eval(`document.title`); !strings.HasSuffix(got, " · Mug & Co") {
		t.Errorf("title %q", got)
	}
	if b.eval(`String(document.getElementById('logo').hidden)`) != "true" {
		t.Errorf("a logo that cannot load is shown broken")
	}
	b.shot("checkout-branded")
	s.simPay(t, inv.ID, inv.PayAmount)
	s.simMine(t, 2)
	b.waitJS("paid screen", `document.getElementById('checkout').dataset.status === 'paid'`)
	if b.eval(`String(document.getElementById('return-link').checkVisibility())`) != "true" {
		t.Errorf("the return link is not visible once paid")
	}
	if href := b.eval(`document.getElementById('return-link').getAttribute('href')`); href != "https://mugs.example/thanks" {
		t.Errorf("return link %q", href)
	}
	b.shot("checkout-branded-paid")

	// The language switch: the same page in Brazilian Portuguese.
	b.switchLanguage("pt-BR")
	b.waitJS("Portuguese page", `document.documentElement.lang === 'pt-BR' && !document.getElementById('screen-paid').hidden`)
	if got := b.text("#screen-paid h1"); got != "Pagamento concluído" {
		t.Errorf("paid heading in pt-BR %q", got)
	}
	if got := b.text("#return-link"); got != "Voltar à loja" {
		t.Errorf("return link in pt-BR %q", got)
	}
	b.shot("checkout-branded-paid-pt-BR")
}

// switchLanguage follows the language switch's link to lang: the page's
// own click handler makes the link (it keeps the dashboard's view), then
// the browser loads it, as a click would, but waiting for the new page.
func (b *browser) switchLanguage(lang string) {
	b.t.Helper()
	href := b.eval(`{ const a = document.querySelector('.langs a[data-lang="` + lang + `"]');
		a.addEventListener('click', (e) => e.preventDefault(), { once: true }); a.click(); a.href }`)
	if !strings.Contains(href, "lang="+lang) {
		b.t.Fatalf("the language switch links to %q", href)
	}
	b.do("switch to "+lang, chromedp.Navigate(href))
}

// debtFlow (money rule 6): a payment final and withdrawn, then taken away
// by a reorganisation deeper than finality, leaves available negative:
// every dashboard page says so in a banner.
func debtFlow(t *testing.T, b *browser, s *stack) {
	m := s.signUp(t, "Debt Test Shop")
	inv := s.createInvoice(t, m.SecretKey, map[string]any{"asset": "BTC", "amount": "0.05"})
	s.simPay(t, inv.ID, inv.PayAmount)
	s.simMine(t, 3) // two confirmations, and final one block later
	s.waitBalance(t, m.SecretKey, "BTC", "0.049875", "0")
	if st := s.call(t, "POST", "/v1/withdrawals", m.SecretKey, map[string]any{"asset": "BTC", "to_address": "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"}, nil); st != http.StatusCreated && st != http.StatusOK {
		t.Fatalf("withdraw: %d", st)
	}
	s.waitBalance(t, m.SecretKey, "BTC", "0", "0")
	s.simReorg(t, 3, false) // a double spend: the payment is gone for good
	s.waitBalance(t, m.SecretKey, "BTC", "-0.049875", "0")

	b.viewport(1280, 900, false)
	b.do("open dashboard", chromedp.Navigate(s.srv.URL+"/dashboard#/payouts"), chromedp.WaitVisible(chromedp.CSS("#signin-form")))
	b.eval(`document.getElementById('secret-key').value = ''; ''`)
	b.do("sign in", chromedp.SendKeys(chromedp.CSS("#secret-key"), m.SecretKey), chromedp.Click(chromedp.CSS("#signin-submit")))
	b.waitJS("debt banner", `!!document.querySelector('#banners [data-debt="BTC"]') && !!document.getElementById('payouts')`)
	if got := b.text(`#banners [data-debt="BTC"]`); !strings.Contains(got, "0.049875 BTC") {
		t.Errorf("debt banner %q", got)
	}
	b.shot("dashboard-debt")
	b.do("balances", chromedp.Click(chromedp.CSS(`#nav a[data-view="balances"]`)))
	b.waitJS("banner on every page", `document.getElementById('view').dataset.view === 'balances' && !!document.querySelector('#banners [data-debt="BTC"]')`)
	if got := b.text(`#balances tr[data-asset="BTC"] td:nth-child(2)`); got != "-0.049875" {
		t.Errorf("BTC available %q, want the debt -0.049875", got)
	}
}
