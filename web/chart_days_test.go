package web

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// TestBrowserChartDays: the dashboard's chart counts the server's UTC
// days, whatever the browser's clock and time zone. The server is just
// past a UTC midnight that the browser's clock has not reached yet, and
// the browser is in a time zone behind UTC, then in one ahead of it: a
// payment the server saw today is today's bar (the last), labelled with
// the server's UTC date, and the chart says its days are UTC.
// Its own stack: the clock is moved a day forward.
func TestBrowserChartDays(t *testing.T) {
	b := newBrowser(t)
	s := newStack(t)
	wall := time.Now().UTC()
	s.clock.Advance(wall.Truncate(24 * time.Hour).Add(25 * time.Hour).Sub(wall)) // 01:00 UTC, the next day
	m := s.signUp(t, "Chart Days Shop")
	inv := s.createInvoice(t, m.SecretKey, map[string]any{"asset": "BTC", "amount": "0.01"})
	s.simPay(t, inv.ID, inv.PayAmount)
	s.simMine(t, 3) // two confirmations, and final one block later
	s.waitBalance(t, m.SecretKey, "BTC", "0.009975", "0")
	serverToday := s.clock.Now().UTC()
	today := serverToday.Format("01-02")
	first := serverToday.AddDate(0, 0, -13).Format("01-02")

	b.viewport(1280, 900, false)
	for i, zone := range []string{"America/Los_Angeles", "Pacific/Kiritimati"} {
		b.do("time zone "+zone, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: zone})
			return err
		}))
		if i == 0 {
			b.do("open dashboard", chromedp.Navigate(s.srv.URL+"/dashboard"), chromedp.WaitVisible(chromedp.CSS("#signin-form")))
			b.do("sign in", chromedp.SendKeys(chromedp.CSS("#secret-key"), m.SecretKey), chromedp.Click(chromedp.CSS("#signin-submit")))
		} else {
			b.do("reload dashboard", chromedp.Reload())
		}
		b.waitJS("chart in "+zone, `!!document.querySelector('#chart') && document.getElementById('view').dataset.view === 'balances'`)
		if got := b.eval(`Intl.DateTimeFormat().resolvedOptions().timeZone`); got != zone {
			t.Fatalf("the browser's time zone is %q, want %q", got, zone)
		}
		if got := b.text("#chart h2"); !strings.Contains(got, "UTC") {
			t.Errorf("%s: chart heading %q does not say its days are UTC", zone, got)
		}
		bars := b.eval(`[...document.querySelectorAll('#chart figure[data-asset="BTC"] rect.bar')].map(r => r.textContent).join('|')`)
		titles := strings.Split(bars, "|")
		if len(titles) != 14 {
			t.Fatalf("%s: the BTC chart has %d bars (%q), want 14; chart: %q", zone, len(titles), bars, b.text("#chart"))
		}
		if want := today + ": 0.01 BTC"; titles[13] != want {
			t.Errorf("%s: today's bar %q, want %q", zone, titles[13], want)
		}
		if want := first + ": 0 BTC"; titles[0] != want {
			t.Errorf("%s: the first bar %q, want %q", zone, titles[0], want)
		}
		axis := b.eval(`[...document.querySelectorAll('#chart figure[data-asset="BTC"] svg > text')].map(e => e.textContent).join(' … ')`)
		if want := first + " … " + today; axis != want {
			t.Errorf("%s: chart axis %q, want %q", zone, axis, want)
		}
	}
	if p := b.consoleProblems(); len(p) > 0 {
		t.Errorf("the page reported errors: %v", p)
	}
}
