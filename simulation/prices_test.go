package simulation

import (
	"errors"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/readapi"
)

func (e *docEnv) setPrices(up bool) {
	e.w.prices.mu.Lock()
	e.w.prices.up = up
	e.w.prices.mu.Unlock()
}

func (e *docEnv) settlement(t *testing.T, invoiceID string) readapi.Settlement {
	inv, err := e.w.reader.InvoiceByID(e.w.ctx, "", invoiceID)
	e.must(t, err)
	return inv.Settlement
}

// TestPriceOutageHoldsBackNobody is money rule 3: a conversion with no
// price waits on its own (shown on the invoice, counted), every other
// payment settles; it converts when a price is back, and after the
// longest wait it is credited unconverted at 25 bps.
func TestPriceOutageHoldsBackNobody(t *testing.T) {
	e := &docEnv{w: newWorld(t, 7)}
	converting := e.merchant(t)
	other := e.merchant(t, domain.PayoutSettings{Asset: "USDT.TRON", PayoutAddress: "payout", Mode: domain.PayoutInstant})
	first := e.invoice(t, converting, "USDT.TRON", "10", "BTC")
	e.setPrices(false)
	if _, err := e.w.h.CreateInvoice.Handle(e.w.ctx, commands.CreateInvoice{MerchantID: converting, Asset: "USDT.TRON", Amount: "1",
		SettleAs: "BTC"}); !errors.Is(err, domain.ErrPriceUnavailable) {
		t.Fatalf("an invoice to convert with no price: %v, want price unavailable", err)
	}
	plain := e.invoice(t, other, "USDT.TRON", "20", "")
	e.pay(t, first.InvoiceID, "10")
	e.pay(t, plain.InvoiceID, "20")
	e.mine(t, 3)
	if got := e.instantPayout(t, other, "USDT.TRON", plain.InvoiceID); got != "19.95" {
		t.Fatalf("the other merchant's instant payout: %s, want 19.95 while the conversion waits", got)
	}
	st := e.settlement(t, first.InvoiceID)
	if st.Status != readapi.SettlementWaiting || st.Since == nil || !st.Since.Equal(e.w.clock.Now().Truncate(time.Millisecond)) {
		t.Fatalf("settlement %+v, want waiting_for_price since now", st)
	}
	if n, err := e.w.settle.Waiting(e.w.ctx); err != nil || n != 1 {
		t.Fatalf("waiting conversions: %d %v, want 1", n, err)
	}
	if got := e.available(t, converting, "USDT.TRON"); got != "9.95" {
		t.Fatalf("waiting USDT.TRON: %s, want 9.95 (charged 0.5 %% once)", got)
	}

	// The price is back: the next retry converts it.
	e.setPrices(true)
	e.w.clock.Advance(10 * time.Second)
	e.must(t, e.w.sync())
	if st := e.settlement(t, first.InvoiceID); st.Status != readapi.SettlementConverted {
		t.Fatalf("settlement %+v after the price came back, want converted", st)
	}
	if e.available(t, converting, "USDT.TRON") != "0" || e.available(t, converting, "BTC") == "0" {
		t.Fatalf("after the conversion: USDT.TRON %s, BTC %s", e.available(t, converting, "USDT.TRON"), e.available(t, converting, "BTC"))
	}

	// No price for longer than PIC_CONVERSION_MAX_WAIT: credited unconverted.
	second := e.invoice(t, converting, "USDT.TRON", "10", "BTC")
	e.setPrices(false)
	e.pay(t, second.InvoiceID, "10")
	e.mine(t, 3)
	for waited := time.Duration(0); waited <= maxWait; waited += 10 * time.Minute {
		e.w.clock.Advance(10 * time.Minute)
		e.must(t, e.w.sync())
	}
	inv, err := e.w.reader.InvoiceByID(e.w.ctx, "", second.InvoiceID)
	e.must(t, err)
	if inv.Settlement.Status != readapi.SettlementUnconverted || inv.Settlement.Reason == "" || inv.FeeBps != 25 || inv.Fee.String() != "0.025" {
		t.Fatalf("after the longest wait: settlement %+v, fee %s at %d bps; want unconverted with a reason, 0.025 at 25", inv.Settlement, inv.Fee, inv.FeeBps)
	}
	if got := e.available(t, converting, "USDT.TRON"); got != "9.975" {
		t.Fatalf("unconverted USDT.TRON: %s, want 9.975", got)
	}
	if n, _ := e.w.settle.Waiting(e.w.ctx); n != 0 {
		t.Fatalf("%d conversions still wait", n)
	}
}
