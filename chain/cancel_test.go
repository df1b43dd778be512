package chain_test

import (
	"errors"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
)

// Issue 16 item 3: a payout not yet signed can be canceled; its funds are
// released and it is never built. Once signed it cannot.
func TestCancelPayout(t *testing.T) {
	s := setup(t)
	m := s.merchant(t, domain.PayoutSettings{Asset: "USDT.ETH", PayoutAddress: ethAddr, Mode: domain.PayoutManual})
	s.paid(t, m, "USDT.ETH", "10", "")
	s.sync(t)
	res, err := s.h.RequestPayout.Handle(s.ctx, commands.RequestPayout{CommandID: "wd", MerchantID: m, Asset: "USDT.ETH", Kind: domain.PayoutKindWithdrawal})
	if err != nil {
		t.Fatal(err)
	}
	cancel := commands.CancelPayout{CommandID: "cancel-wd", Ref: res.Ref}
	if _, err := s.h.CancelPayout.Handle(s.ctx, cancel); err != nil {
		t.Fatal(err)
	}
	// The same command again is recognised, not an error.
	if _, err := s.h.CancelPayout.Handle(s.ctx, cancel); err != nil {
		t.Fatalf("the cancel retried: %v", err)
	}
	s.sync(t)
	p := s.payouts(t, m)[0]
	if p.Status != domain.PayoutCanceledStatus {
		t.Fatalf("after the cancel: %+v", p)
	}
	if n := s.eth.Builds(p.ID); n != 0 {
		t.Fatalf("a canceled payout was built %d times", n)
	}
	b := s.balance(t, m, "USDT.ETH")
	want(t, "available after the cancel", b.Available, "9.975")
	want(t, "reserved", b.Reserved, "0")

	// A payout on its way cannot be canceled.
	res, err = s.h.RequestPayout.Handle(s.ctx, commands.RequestPayout{CommandID: "wd2", MerchantID: m, Asset: "USDT.ETH", Kind: domain.PayoutKindWithdrawal})
	if err != nil {
		t.Fatal(err)
	}
	s.sync(t)
	if _, err := s.h.CancelPayout.Handle(s.ctx, commands.CancelPayout{CommandID: "cancel-wd2", Ref: res.Ref}); !errors.Is(err, domain.ErrInvalidState) {
		t.Fatalf("canceling a sent payout: %v", err)
	}
	s.sim.Mine(s.ctx, 1)
	s.clock.Advance(2 * time.Second)
	s.sync(t)
	for _, p := range s.payouts(t, m) {
		if p.ID == res.Payout.PayoutID && p.Status != domain.PayoutConfirmedStatus {
			t.Fatalf("the payout that was not canceled: %+v", p)
		}
	}
	if rep := s.audit(t); !rep.OK() {
		t.Fatalf("audit: %v", rep.Problems)
	}
}
