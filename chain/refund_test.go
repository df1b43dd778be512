package chain_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/sim"
	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/webhooks"
)

const customer = "0x2222222222222222222222222222222222222222"

// refund requests a refund and fails the test on an error.
func (s *stack) refund(t *testing.T, m, inv, amount string) commands.PayoutRequestedResult {
	t.Helper()
	res, err := s.h.RequestPayout.Refund(s.ctx, commands.RequestRefund{MerchantID: m, InvoiceID: inv, Amount: amount, ToAddress: customer})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// mineAndSettle mines a block and lets the processor confirm what was sent.
func (s *stack) mineAndSettle(t *testing.T) {
	t.Helper()
	if _, err := s.sim.Mine(s.ctx, 1); err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(2 * time.Second)
	s.sync(t)
}

func TestRefundPartialThenFull(t *testing.T) {
	s := setup(t)
	m := s.merchant(t, domain.PayoutSettings{Asset: "USDT.ETH", PayoutAddress: ethAddr, Mode: domain.PayoutManual})
	inv := s.paid(t, m, "USDT.ETH", "100", "") // net 99.75
	s.paid(t, m, "USDT.ETH", "10", "")         // net 9.975: pays the network fees
	s.sync(t)
	want(t, "available before", s.balance(t, m, "USDT.ETH").Available, "109.725")

	part := s.refund(t, m, inv, "40")
	if part.Payout.Kind != domain.PayoutKindRefund || part.Payout.SourceInvoiceID != inv {
		t.Fatalf("refund %+v", part.Payout)
	}
	want(t, "reserved at the request", part.Payout.Amount, "40")
	s.sync(t)
	// The network fee (0.5) is reserved on top once the transaction is signed.
	b := s.balance(t, m, "USDT.ETH")
	want(t, "available while sending", b.Available, "69.225")
	want(t, "reserved while sending", b.Reserved, "40.5")
	s.mineAndSettle(t)
	txs, _ := s.eth.PayoutTxs(s.ctx)
	if len(txs) != 1 || txs[0].Amount != "40" || txs[0].To != customer {
		t.Fatalf("the customer must receive exactly 40: %+v", txs)
	}
	p := s.payouts(t, m)[0]
	if p.Status != domain.PayoutConfirmedStatus || p.Kind != domain.PayoutKindRefund || p.SourceInvoiceID != inv {
		t.Fatalf("payout %+v", p)
	}
	want(t, "sent", *p.Sent, "40")
	want(t, "network fee", *p.NetworkFee, "0.5")

	// The default is what is left of the invoice's net: 99.75 − 40.
	rest, err := s.h.RequestPayout.Refund(s.ctx, commands.RequestRefund{MerchantID: m, InvoiceID: inv, ToAddress: customer})
	if err != nil {
		t.Fatal(err)
	}
	want(t, "the rest", rest.Payout.Amount, "59.75")
	s.sync(t)
	s.mineAndSettle(t)
	b = s.balance(t, m, "USDT.ETH")
	want(t, "available at the end (109.725 − 99.75 − 2 × 0.5)", b.Available, "8.975")
	want(t, "reserved at the end", b.Reserved, "0")
	// Each confirmed refund is an invoice.refunded webhook with the invoice and the refund.
	if err := webhooks.Migrate(s.ctx, s.db); err != nil {
		t.Fatal(err)
	}
	if err := webhooks.NewSubscriber(s.store, s.db, webhooks.SubscriberConfig{Now: s.clock.Now, Logger: quiet}).CatchUp(s.ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := s.db.Read.Query(`SELECT invoice_id, body FROM webhook_deliveries WHERE event_type = 'invoice.refunded' ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	var amounts []string
	for rows.Next() {
		var invID string
		var raw []byte
		if err := rows.Scan(&invID, &raw); err != nil {
			t.Fatal(err)
		}
		var b struct {
			Type string
			Data struct {
				ID     string
				Status string
			}
			Refund struct {
				Amount     string
				NetworkFee string `json:"network_fee"`
				ToAddress  string `json:"to_address"`
			}
		}
		if err := json.Unmarshal(raw, &b); err != nil {
			t.Fatal(err)
		}
		if invID != inv || b.Type != "invoice.refunded" || b.Data.ID != inv || b.Data.Status != "paid" || b.Refund.NetworkFee != "0.5" || b.Refund.ToAddress != customer {
			t.Fatalf("delivery %s", raw)
		}
		amounts = append(amounts, b.Refund.Amount)
	}
	rows.Close()
	if fmt.Sprint(amounts) != "[40 59.75]" {
		t.Fatalf("invoice.refunded deliveries: %v", amounts)
	}
	if _, err := s.h.RequestPayout.Refund(s.ctx, commands.RequestRefund{MerchantID: m, InvoiceID: inv, Amount: "0.01", ToAddress: customer}); !errors.Is(err, domain.ErrRefundExceeded) {
		t.Fatalf("a refund beyond what the invoice received: %v", err)
	}
	if rep := s.audit(t); !rep.OK() {
		t.Fatalf("audit: %v", rep.Problems)
	}
}

func TestRefundErrors(t *testing.T) {
	s := setup(t)
	m := s.merchant(t, domain.PayoutSettings{Asset: "USDT.ETH", PayoutAddress: ethAddr, Mode: domain.PayoutManual})
	inv := s.paid(t, m, "USDT.ETH", "10", "")
	s.sync(t)
	for _, c := range []struct {
		name    string
		cmd     commands.RequestRefund
		wantErr error
	}{
		{"over the limit", commands.RequestRefund{InvoiceID: inv, Amount: "9.976", ToAddress: customer}, domain.ErrRefundExceeded},
		{"no address", commands.RequestRefund{InvoiceID: inv, Amount: "1"}, domain.ErrValidation},
		{"malformed address", commands.RequestRefund{InvoiceID: inv, Amount: "1", ToAddress: "not an address"}, domain.ErrValidation},
		{"zero", commands.RequestRefund{InvoiceID: inv, Amount: "0", ToAddress: customer}, domain.ErrInvalidAmount},
		{"unknown invoice", commands.RequestRefund{InvoiceID: "inv_nope", Amount: "1", ToAddress: customer}, domain.ErrNotFound},
	} {
		c.cmd.MerchantID = m
		if _, err := s.h.RequestPayout.Refund(s.ctx, c.cmd); !errors.Is(err, c.wantErr) {
			t.Errorf("%s: %v, want %v", c.name, err, c.wantErr)
		}
	}
	// Another merchant's invoice is not found.
	other := s.merchant(t)
	if _, err := s.h.RequestPayout.Refund(s.ctx, commands.RequestRefund{MerchantID: other, InvoiceID: inv, Amount: "1", ToAddress: customer}); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("another merchant's invoice: %v", err)
	}
	// Nothing available: the balance was withdrawn.
	if _, err := s.h.RequestPayout.Handle(s.ctx, commands.RequestPayout{MerchantID: m, Asset: "USDT.ETH", Kind: domain.PayoutKindWithdrawal}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.h.RequestPayout.Refund(s.ctx, commands.RequestRefund{MerchantID: m, InvoiceID: inv, Amount: "1", ToAddress: customer}); !errors.Is(err, domain.ErrInsufficientFunds) {
		t.Errorf("nothing available: %v", err)
	}
}

func TestConcurrentRefundsNeverExceedTheInvoice(t *testing.T) {
	s := setup(t)
	m := s.merchant(t, domain.PayoutSettings{Asset: "USDT.ETH", PayoutAddress: ethAddr, Mode: domain.PayoutManual})
	inv := s.paid(t, m, "USDT.ETH", "100", "") // net 99.75
	s.paid(t, m, "USDT.ETH", "100", "")        // enough available for more
	s.sync(t)
	const n = 12
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, errs[i] = s.h.RequestPayout.Refund(s.ctx, commands.RequestRefund{CommandID: fmt.Sprint("r", i), MerchantID: m, InvoiceID: inv,
				Amount: "30", ToAddress: customer})
		}(i)
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, domain.ErrRefundExceeded):
		default:
			t.Fatalf("unexpected: %v", err)
		}
	}
	if ok != 3 {
		t.Fatalf("%d refunds of 30 out of an invoice of net 99.75 succeeded, want 3", ok)
	}
	s.sync(t)
	s.mineAndSettle(t)
	if rep := s.audit(t); !rep.OK() {
		t.Fatalf("audit: %v", rep.Problems)
	}
}

func TestRefundWhoseBroadcastFailsReleasesTheFunds(t *testing.T) {
	s := setup(t)
	poor, err := sim.NewSender(s.ctx, s.db, sim.SenderConfig{Chain: domain.ChainEthereum, Now: s.clock.Now,
		NetworkFee: map[string]domain.Amount{"USDT.ETH": domain.MustAmount("0.5")},
		HotWallet:  map[string]domain.Amount{"USDT.ETH": domain.MustAmount("1")}})
	if err != nil {
		t.Fatal(err)
	}
	s.proc = s.processor(poor)
	m := s.merchant(t, domain.PayoutSettings{Asset: "USDT.ETH", PayoutAddress: ethAddr, Mode: domain.PayoutManual})
	inv := s.paid(t, m, "USDT.ETH", "10", "")
	s.sync(t)
	s.refund(t, m, inv, "5")
	s.sync(t)
	p := s.payouts(t, m)[0]
	if p.Status != domain.PayoutFailedStatus || p.Kind != domain.PayoutKindRefund {
		t.Fatalf("%+v", p)
	}
	b := s.balance(t, m, "USDT.ETH")
	want(t, "available after the release", b.Available, "9.975")
	want(t, "reserved", b.Reserved, "0")
	// A failed refund does not count against the invoice: the whole net can be refunded again.
	s.proc = s.processor(s.eth)
	full, err := s.h.RequestPayout.Refund(s.ctx, commands.RequestRefund{MerchantID: m, InvoiceID: inv, Amount: "9", ToAddress: customer})
	if err != nil {
		t.Fatal(err)
	}
	want(t, "refund after a failed one", full.Payout.Amount, "9")
	s.sync(t)
	s.mineAndSettle(t)
	want(t, "available at the end", s.balance(t, m, "USDT.ETH").Available, "0.475")
	if rep := s.audit(t); !rep.OK() {
		t.Fatalf("audit: %v", rep.Problems)
	}
}

// rejecting is a sender whose node refuses every broadcast for good.
type rejecting struct{ *sim.Sender }

func (rejecting) Broadcast(context.Context, chain.Signed) error {
	return fmt.Errorf("%w: inputs already spent (simulated)", chain.ErrPermanent)
}

func TestRefundWhoseSignedBroadcastFailsReleasesAmountAndFee(t *testing.T) {
	s := setup(t)
	s.proc = s.processor(rejecting{s.eth})
	m := s.merchant(t, domain.PayoutSettings{Asset: "USDT.ETH", PayoutAddress: ethAddr, Mode: domain.PayoutManual})
	inv := s.paid(t, m, "USDT.ETH", "10", "")
	s.sync(t)
	s.refund(t, m, inv, "9.975")
	s.sync(t)
	p := s.payouts(t, m)[0]
	if p.Status != domain.PayoutFailedStatus || p.TxID == "" {
		t.Fatalf("a signed refund whose broadcast is refused: %+v", p)
	}
	b := s.balance(t, m, "USDT.ETH")
	want(t, "available after the release (amount and fee)", b.Available, "9.975")
	want(t, "reserved", b.Reserved, "0")
	if txs, _ := s.eth.PayoutTxs(s.ctx); len(txs) != 0 {
		t.Fatalf("nothing may reach the chain: %+v", txs)
	}
	if rep := s.audit(t); !rep.OK() {
		t.Fatalf("audit: %v", rep.Problems)
	}
}

// TestAuditCatchesARefundBeyondTheInvoice: a refund written past the
// command's check (a forged or buggy log) is a problem for picd audit.
func TestAuditCatchesARefundBeyondTheInvoice(t *testing.T) {
	s := setup(t)
	m := s.merchant(t, domain.PayoutSettings{Asset: "USDT.ETH", PayoutAddress: ethAddr, Mode: domain.PayoutManual})
	inv := s.paid(t, m, "USDT.ETH", "10", "") // net 9.975
	s.paid(t, m, "USDT.ETH", "10", "")
	s.sync(t)
	s.refund(t, m, inv, "9")
	// Events between the refund and the forged one: an audit that has let
	// the invoice go since must remember the refund.
	s.paid(t, m, "USDT.ETH", "10", "")
	s.sync(t)
	if rep := s.audit(t); !rep.OK() {
		t.Fatalf("audit: %v", rep.Problems)
	}
	usdt, _ := domain.DefaultAssets().Lookup("USDT.ETH")
	amount := domain.MustAmount("1")
	forged, err := (&domain.Funds{}).RequestRefund(domain.PayoutRequest{PayoutID: "po_forged", MerchantID: m, CommandID: "forged", Asset: usdt,
		Amount: &amount, ToAddress: customer, SourceInvoiceID: inv}, domain.MustAmount("100"), domain.MustAmount("100"), s.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(forged)
	if err != nil {
		t.Fatal(err)
	}
	stream := commands.FundsStream(m, "USDT.ETH")
	recs, err := s.store.ReadStream(s.ctx, stream, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.store.Append(s.ctx, stream, eventstore.ExpectedVersion(len(recs)-1),
		[]eventstore.EventData{{ID: "01a00000-0000-7000-8000-00000000f0f0", Type: domain.TypePayoutRequested, Data: data}}); err != nil {
		t.Fatal(err)
	}
	rep := s.audit(t)
	found := false
	for _, p := range rep.Problems {
		found = found || strings.Contains(p, "refunds of invoice "+inv+" reach 10, more than its net 9.975")
	}
	if !found {
		t.Fatalf("the audit does not see a refund beyond the invoice's net: %v", rep.Problems)
	}
}

// plain hides BuildFeeOnTop: a chain whose sender cannot send an exact amount.
type plain struct{ chain.Sender }

func TestRefundOnAChainWithoutFeeOnTopFailsCleanly(t *testing.T) {
	s := setup(t)
	s.proc = s.processor(plain{s.eth})
	m := s.merchant(t, domain.PayoutSettings{Asset: "USDT.ETH", PayoutAddress: ethAddr, Mode: domain.PayoutManual})
	inv := s.paid(t, m, "USDT.ETH", "10", "")
	s.sync(t)
	s.refund(t, m, inv, "5")
	s.sync(t)
	p := s.payouts(t, m)[0]
	if p.Status != domain.PayoutFailedStatus || !strings.Contains(p.FailureReason, "not supported") || p.TxID != "" {
		t.Fatalf("%+v", p)
	}
	b := s.balance(t, m, "USDT.ETH")
	want(t, "available after the release", b.Available, "9.975")
	want(t, "reserved", b.Reserved, "0")
	if txs, _ := s.eth.PayoutTxs(s.ctx); len(txs) != 0 {
		t.Fatalf("nothing may reach the chain: %+v", txs)
	}
	if rep := s.audit(t); !rep.OK() {
		t.Fatalf("audit: %v", rep.Problems)
	}
}
