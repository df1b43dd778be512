package domain

import (
	"errors"
	"math/big"
	"math/rand"
	"testing"
)

func TestRefundLimitAndDefault(t *testing.T) {
	usdt, _ := DefaultAssets().Lookup("USDT.ETH")
	f := &Funds{}
	req := func(amount string) PayoutRequest {
		r := PayoutRequest{PayoutID: "po_" + amount, MerchantID: "m", CommandID: "c" + amount, Asset: usdt, ToAddress: "0xc", SourceInvoiceID: "inv_1"}
		if amount != "" {
			a := MustAmount(amount)
			r.Amount = &a
		}
		return r
	}
	credited, room := MustAmount("500"), MustAmount("99.75")
	if _, err := f.RequestRefund(req("99.750001"), credited, room, tPay); !errors.Is(err, ErrRefundExceeded) || !errors.Is(err, ErrInvalidState) {
		t.Fatalf("over the room: %v", err)
	}
	p, err := f.RequestRefund(req(""), credited, room, tPay)
	if err != nil || p.Amount.String() != "99.75" || p.Kind != PayoutKindRefund || p.SourceInvoiceID != "inv_1" || CheckBalanced(p.Postings) != nil {
		t.Fatalf("default refund: %+v %v", p, err)
	}
	f.Apply(p)
	if got := f.Refunds("inv_1"); len(got) != 1 || got[0].PayoutID != p.PayoutID {
		t.Fatalf("refunds of the invoice: %+v", got)
	}
	if _, err := f.RequestRefund(req(""), credited, Amount{}, tPay); !errors.Is(err, ErrRefundExceeded) {
		t.Fatalf("nothing left: %v", err)
	}
	// Within the room but not within the available balance.
	if _, err := f.RequestRefund(req("10"), MustAmount("100"), room, tPay); !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("not available: %v", err)
	}
	if _, err := f.RequestRefund(req("0"), credited, room, tPay); !errors.Is(err, ErrInvalidAmount) {
		t.Fatalf("zero: %v", err)
	}
}

// TestRefundPostings: whatever the amount and the fee, the customer gets
// exactly the amount, the merchant pays amount + fee, and every event's
// postings sum to zero; a failure after signing gives both back.
func TestRefundPostings(t *testing.T) {
	usdt, _ := DefaultAssets().Lookup("USDT.ETH")
	rng := rand.New(rand.NewSource(7))
	for i := 0; i < 200; i++ {
		a := FromBaseUnits(big.NewInt(int64(1+rng.Intn(1_000_000_000))), usdt.Decimals)
		fee := FromBaseUnits(big.NewInt(int64(rng.Intn(3_000_000))), usdt.Decimals)
		f := &Funds{}
		req, err := f.RequestRefund(PayoutRequest{PayoutID: "po", MerchantID: "m", Asset: usdt, Amount: &a, ToAddress: "0xc", SourceInvoiceID: "inv"},
			a, a, tPay)
		if err != nil {
			t.Fatal(err)
		}
		p := &Payout{}
		p.Apply(req)
		evs, err := p.Sign(SignedTx{TxID: "tx", Raw: "00", NetworkFee: fee}, tPay)
		if err != nil {
			t.Fatal(err)
		}
		signed := evs[0].(PayoutSigned)
		if !signed.Sent.Equal(a) || (fee.IsZero() != (len(signed.Postings) == 0)) {
			t.Fatalf("signed %+v for %s + %s", signed, a, fee)
		}
		p.Apply(signed)
		if !p.Reserved().Equal(a.Add(fee)) {
			t.Fatalf("reserved %s, want %s", p.Reserved(), a.Add(fee))
		}
		failed := *p
		fevs, err := failed.Fail("refused", tPay)
		if err != nil {
			t.Fatal(err)
		}
		cevs, err := p.Confirm(1, 1, tPay)
		if err != nil {
			t.Fatal(err)
		}
		c := cevs[0].(PayoutConfirmed)
		if !c.NetOfNetworkFee || c.Kind != PayoutKindRefund || c.InvoiceID != "inv" || !c.Sent.Equal(a) {
			t.Fatalf("confirmed %+v", c)
		}
		sum := func(evs ...MoneyEvent) map[string]Amount {
			out := map[string]Amount{}
			for _, e := range evs {
				if err := CheckBalanced(e.LedgerPostings()); err != nil {
					t.Fatal(err)
				}
				for _, p := range e.LedgerPostings() {
					out[p.Account] = out[p.Account].Add(p.Amount)
				}
			}
			return out
		}
		got := sum(req, signed, c)
		if !got[AvailableAccount("m")].Equal(a.Add(fee).Neg()) || !got[ReservedAccount("m")].IsZero() || !got[ExternalAccount].Equal(a) ||
			!got[NetworkFeeAccount].Equal(fee) {
			t.Fatalf("confirmed refund of %s + fee %s: %v", a, fee, got)
		}
		got = sum(req, signed, fevs[0].(PayoutFailed))
		if !got[AvailableAccount("m")].IsZero() || !got[ReservedAccount("m")].IsZero() {
			t.Fatalf("failed refund of %s + fee %s: %v", a, fee, got)
		}
	}
}
