package domain

import (
	"errors"
	"math/rand"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

var tPay = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func TestFundsNeverDebitTwice(t *testing.T) {
	usdt, _ := DefaultAssets().Lookup("USDT.ETH")
	f := &Funds{}
	credited := MustAmount("100")
	req := PayoutRequest{PayoutID: "po_1", MerchantID: "m", CommandID: "c1", Asset: usdt, ToAddress: "0xabc", Kind: PayoutKindWithdrawal}
	p, err := f.RequestPayout(req, credited, tPay)
	if err != nil || p.Amount.String() != "100" || CheckBalanced(p.Postings) != nil {
		t.Fatalf("whole balance: %+v %v", p, err)
	}
	f.Apply(p)
	req.PayoutID, req.CommandID = "po_2", "c2"
	if _, err := f.RequestPayout(req, credited, tPay); !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("second debit of the same funds: %v", err)
	}
	more := MustAmount("0.0000001")
	req.Amount = &more
	if _, err := f.RequestPayout(req, MustAmount("200"), tPay); !errors.Is(err, ErrInvalidAmount) {
		t.Fatalf("too precise: %v", err)
	}
	req.Amount, req.ToAddress = nil, ""
	if _, err := f.RequestPayout(req, MustAmount("200"), tPay); !errors.Is(err, ErrValidation) {
		t.Fatalf("no address: %v", err)
	}
}

func TestPayoutLifecycle(t *testing.T) {
	btc, _ := DefaultAssets().Lookup("BTC")
	f := &Funds{}
	req, err := f.RequestPayout(PayoutRequest{PayoutID: "po_1", MerchantID: "m", Asset: btc, ToAddress: "bc1q", Kind: PayoutKindInstant}, MustAmount("0.5"), tPay)
	if err != nil {
		t.Fatal(err)
	}
	p := &Payout{}
	p.Apply(req)
	if _, err := p.Sign(SignedTx{TxID: "tx", Raw: "00", NetworkFee: MustAmount("0.5")}, tPay); !errors.Is(err, ErrInvalidAmount) {
		t.Fatalf("fee = amount: %v", err)
	}
	evs, err := p.Sign(SignedTx{TxID: "tx", Raw: "00", NetworkFee: MustAmount("0.0001")}, tPay)
	if err != nil {
		t.Fatal(err)
	}
	p.Apply(evs[0])
	if again, err := p.Sign(SignedTx{TxID: "tx", Raw: "00"}, tPay); err != nil || again != nil {
		t.Fatalf("same tx again: %v %v", again, err)
	}
	if _, err := p.Sign(SignedTx{TxID: "other", Raw: "01"}, tPay); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("a second transaction: %v", err)
	}
	evs, _ = p.MarkSent(tPay)
	p.Apply(evs[0])
	// A sent payout fails only when its sender proves the transaction dead;
	// the decision is possible (not applied here: the payout goes on).
	if evs, err := p.Fail("reverted on chain", tPay); err != nil || len(evs) != 1 {
		t.Fatalf("failing a sent payout: %v %v", evs, err)
	}
	if _, err := p.Confirm(1, 2, tPay); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("too shallow: %v", err)
	}
	evs, err = p.Confirm(2, 2, tPay)
	if err != nil {
		t.Fatal(err)
	}
	c := evs[0].(PayoutConfirmed)
	if c.Sent.String() != "0.4999" || c.NetOfNetworkFee || CheckBalanced(c.Postings) != nil {
		t.Fatalf("confirmed %+v", c)
	}
	p.Apply(c)
	if _, err := p.Fail("late", tPay); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("failing a confirmed payout: %v", err)
	}
}

// A token payout whose network fee is the native coin its transaction
// burns, converted into the token (TRON, priced through the oracle), posts
// that fee to the operator's revenue when it confirms, not to the
// network: the network took none of the token. A refund's too. A fee the
// network took in the payout's own coin still goes to network:fees.
func TestConvertedNetworkFeeIsTheOperatorsRevenue(t *testing.T) {
	usdt, _ := DefaultAssets().Lookup("USDT.TRON")
	for _, kind := range []PayoutKind{PayoutKindWithdrawal, PayoutKindRefund} {
		for _, converted := range []bool{true, false} {
			f := &Funds{}
			req, err := f.RequestPayout(PayoutRequest{PayoutID: "po_1", MerchantID: "m", Asset: usdt, ToAddress: "T1", Kind: kind},
				MustAmount("50"), tPay)
			if err != nil {
				t.Fatal(err)
			}
			p := &Payout{}
			p.Apply(req)
			evs, err := p.Sign(SignedTx{TxID: "tx", Raw: "00", NetworkFee: MustAmount("1.5"), FeeConverted: converted}, tPay)
			if err != nil {
				t.Fatal(err)
			}
			s := evs[0].(PayoutSigned)
			if s.FeeConverted != converted || s.Tx().FeeConverted != converted {
				t.Fatalf("%s signed %+v, converted %v", kind, s, converted)
			}
			p.Apply(s)
			evs, err = p.Confirm(1, 1, tPay)
			if err != nil {
				t.Fatal(err)
			}
			c := evs[0].(PayoutConfirmed)
			want, other := NetworkFeeRevenueAccount, NetworkFeeAccount
			if !converted {
				want, other = other, want
			}
			var got, elsewhere Amount
			for _, ps := range c.Postings {
				switch ps.Account {
				case want:
					got = got.Add(ps.Amount)
				case other:
					elsewhere = elsewhere.Add(ps.Amount)
				}
			}
			if CheckBalanced(c.Postings) != nil || got.String() != "1.5" || !elsewhere.IsZero() {
				t.Fatalf("%s (converted %v) confirmed with postings %+v: want the fee 1.5 in %s", kind, converted, c.Postings, want)
			}
		}
	}
	// A fee of 0 is no conversion: nothing to post.
	f := &Funds{}
	req, _ := f.RequestPayout(PayoutRequest{PayoutID: "po_2", MerchantID: "m", Asset: usdt, ToAddress: "T1", Kind: PayoutKindWithdrawal}, MustAmount("5"), tPay)
	p := &Payout{}
	p.Apply(req)
	evs, err := p.Sign(SignedTx{TxID: "tx", Raw: "00", FeeConverted: true}, tPay)
	if err != nil || evs[0].(PayoutSigned).FeeConverted {
		t.Fatalf("a zero fee signed as converted: %+v %v", evs, err)
	}
}

// Conversions balance per asset and recompute from their inputs, for any
// amount and rate.
func TestConversionsBalanceAndVerify(t *testing.T) {
	assets := DefaultAssets()
	list := assets.List()
	rng := rand.New(rand.NewSource(7))
	for i := 0; i < 2000; i++ {
		from, to := list[rng.Intn(len(list))], list[rng.Intn(len(list))]
		if from.Code == to.Code {
			continue
		}
		amount := AmountFromDecimal(decimal.New(rng.Int63n(1e12)+1, -from.Decimals))
		rate := decimal.New(rng.Int63n(1e15)+1, -int32(rng.Intn(18)))
		f := &Funds{}
		reason := []string{ConversionSettleAs, ConversionConsolidate}[rng.Intn(2)]
		c, err := f.Convert(ConversionRequest{ConversionID: "cnv", MerchantID: "m", From: from, To: to, Amount: &amount,
			Price: PriceQuote{Base: from.Code, Quote: to.Code, Rate: rate, Source: "test", At: tPay}, FeeBps: ConversionFeeFor(reason), Reason: reason},
			AmountFromDecimal(decimal.New(1, 20)), tPay)
		if errors.Is(err, ErrInvalidAmount) {
			continue // rounds to nothing
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckBalanced(c.Postings); err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		if err := c.Verify(); err != nil {
			t.Fatal(err)
		}
		if c.Net.IsNegative() || c.ToAmount.Cmp(AmountFromDecimal(amount.Decimal().Mul(rate))) > 0 {
			t.Fatalf("converted more than the rate: %+v", c)
		}
	}
}
