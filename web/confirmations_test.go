package web

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// confirmationsSeen is an invoice's count on the merchant's and the
// checkout's endpoints.
type confirmationsSeen struct {
	Merchant, Public           int
	MerchantPayment, PublicPay int
	PaymentStatus              string
}

func (s *stack) confirmationsSeen(t *testing.T, key, invoiceID string) confirmationsSeen {
	t.Helper()
	type payment struct {
		Confirmations int    `json:"confirmations"`
		Status        string `json:"status"`
	}
	var priv, pub struct {
		Confirmations int       `json:"confirmations"`
		Payments      []payment `json:"payments"`
	}
	if st := s.call(t, "GET", "/v1/invoices/"+invoiceID, key, nil, &priv); st != http.StatusOK {
		t.Fatalf("GET invoice: %d", st)
	}
	if st := s.call(t, "GET", "/v1/public/invoices/"+invoiceID, "", nil, &pub); st != http.StatusOK {
		t.Fatalf("GET public invoice: %d", st)
	}
	got := confirmationsSeen{Merchant: priv.Confirmations, Public: pub.Confirmations, MerchantPayment: -1, PublicPay: -1}
	if len(priv.Payments) == 1 {
		got.MerchantPayment, got.PaymentStatus = priv.Payments[0].Confirmations, priv.Payments[0].Status
	}
	if len(pub.Payments) == 1 {
		got.PublicPay = pub.Payments[0].Confirmations
	}
	return got
}

// waitConfirmations waits until both endpoints show the invoice's one
// payment with n confirmations (invoice and payment) in status ("" for
// any): the projections run behind the chain.
func (s *stack) waitConfirmations(t *testing.T, key, invoiceID, status string, n int) {
	t.Helper()
	want := confirmationsSeen{Merchant: n, Public: n, MerchantPayment: n, PublicPay: n, PaymentStatus: status}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := s.confirmationsSeen(t, key, invoiceID)
		if status == "" {
			got.PaymentStatus = ""
		}
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("confirmations: %+v, want %+v", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConfirmationsMoveEveryBlock: the count the merchant's API and the
// checkout's public endpoint show moves with every simulated block (the
// real scan engine over the simulator), stays when a reorg leaves the
// payment's block, counts again from its new block when a reorg takes it,
// stops where the payment became final, and is 0 for a reverted payment.
func TestConfirmationsMoveEveryBlock(t *testing.T) {
	s := newStack(t)
	m := s.signUp(t, "Depth Shop")
	key := m.SecretKey
	// ETH on the simulator: paid at 12 confirmations, final at 13.
	inv := s.createInvoice(t, key, map[string]any{"asset": "ETH", "amount": "0.5"})
	s.simPay(t, inv.ID, inv.PayAmount)
	s.waitConfirmations(t, key, inv.ID, "pending", 0)
	for n := 1; n <= 3; n++ {
		s.simMine(t, 1)
		s.waitConfirmations(t, key, inv.ID, "pending", n)
	}

	// Above the payment's block: the count stays.
	if _, err := s.sim.Reorg(context.Background(), 1, true); err != nil {
		t.Fatal(err)
	}
	s.simMine(t, 1)
	s.waitConfirmations(t, key, inv.ID, "pending", 4)

	// Its block replaced: in no block (back in the mempool), then counted
	// from the block that mines it again.
	s.simReorg(t, 4, true)
	s.waitConfirmations(t, key, inv.ID, "", 0)
	for n := 1; n <= 2; n++ {
		s.simMine(t, 1)
		s.waitConfirmations(t, key, inv.ID, "pending", n)
	}

	// Paid at 12; final at 13, where the count stops.
	s.simMine(t, 10)
	s.waitConfirmations(t, key, inv.ID, "confirmed", 12)
	s.simMine(t, 1)
	s.waitConfirmations(t, key, inv.ID, "confirmed", 13)
	s.simMine(t, 2)
	time.Sleep(200 * time.Millisecond)
	s.waitConfirmations(t, key, inv.ID, "confirmed", 13)

	// A double spend: the payment is reverted and shows 0, block after block.
	gone := s.createInvoice(t, key, map[string]any{"asset": "ETH", "amount": "0.25"})
	s.simPay(t, gone.ID, gone.PayAmount)
	s.simMine(t, 2)
	s.waitConfirmations(t, key, gone.ID, "pending", 2)
	s.simReorg(t, 2, false)
	s.waitConfirmations(t, key, gone.ID, "reverted", 0)
	s.simMine(t, 1)
	time.Sleep(200 * time.Millisecond)
	s.waitConfirmations(t, key, gone.ID, "reverted", 0)
	// The first invoice's final payment is far below the reorg: unchanged.
	s.waitConfirmations(t, key, inv.ID, "confirmed", 13)

	// Every simulated chain counts the same way (BTC is paid at 2).
	for _, c := range []struct{ asset, amount, second string }{
		{"BTC", "0.01", "confirmed"}, {"USDT.ETH", "20", "pending"}, {"USDT.TRON", "20", "pending"},
	} {
		other := s.createInvoice(t, key, map[string]any{"asset": c.asset, "amount": c.amount})
		s.simPay(t, other.ID, other.PayAmount)
		s.waitConfirmations(t, key, other.ID, "pending", 0)
		s.simMine(t, 1)
		s.waitConfirmations(t, key, other.ID, "pending", 1)
		s.simMine(t, 1)
		s.waitConfirmations(t, key, other.ID, c.second, 2)
	}
}

// TestBrowserConfirmationsByBlock: the checkout's confirming screen shows
// "N of M confirmations" moving with each mined block, in place.
func TestBrowserConfirmationsByBlock(t *testing.T) {
	b := newBrowser(t)
	s := newStack(t)
	m := s.signUp(t, "Block Shop")
	inv := s.createInvoice(t, m.SecretKey, map[string]any{"asset": "ETH", "amount": "0.5"})
	b.viewport(480, 900, false)
	b.do("open checkout", chromedp.Navigate(s.srv.URL+"/pay/"+inv.ID), chromedp.WaitVisible(chromedp.CSS("#screen-pay")))
	b.eval(`window.__sameLoad = 'yes'; ''`)
	s.simPay(t, inv.ID, inv.PayAmount)
	showing := func(n int) {
		t.Helper()
		want := fmt.Sprintf("%d of 12 confirmations", n)
		b.waitJS(want, `!document.getElementById('screen-confirming').hidden && document.getElementById('confirm-count').textContent === `+
			jsString(want)+` && document.getElementById('confirm-progress').value === `+fmt.Sprint(n)+
			` && document.querySelector('#tx-list .tx-conf').textContent === `+jsString(fmt.Sprintf("%d / 12 confirmations", n)))
	}
	showing(0)
	for n := 1; n <= 3; n++ {
		s.simMine(t, 1)
		showing(n)
	}
	// A reorg that takes the payment's block: counted again from its new block.
	s.simReorg(t, 3, true)
	s.simMine(t, 1)
	showing(1)
	s.simMine(t, 1)
	showing(2)
	if b.eval(`window.__sameLoad || 'reloaded'`) != "yes" {
		t.Error("the page reloaded; the count must move in place")
	}
	b.switchLanguage("de")
	if got := b.text("#confirm-count"); got != "2 von 12 Bestätigungen" {
		t.Errorf("German count %q, want 2 von 12 Bestätigungen", got)
	}
	if p := b.consoleProblems(); len(p) > 0 {
		t.Errorf("the page reported errors: %v", p)
	}
}
