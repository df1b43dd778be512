package domain

import (
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func newTestInvoice(t testing.TB, amount string, settle string) *Invoice {
	assets := DefaultAssets()
	usdt, _ := assets.Lookup("USDT.ETH")
	created, err := CreateInvoice(NewInvoice{InvoiceID: "inv_1", MerchantID: "mer_1", Asset: usdt,
		Amount: MustAmount(amount), PayAmount: MustAmount(amount), PayAddress: "0xabc", SettleAsset: settle}, assets, t0)
	if err != nil {
		t.Fatal(err)
	}
	inv := &Invoice{}
	inv.Apply(created)
	return inv
}

// apply returns a function that takes a decision's results and applies them.
func apply(t testing.TB, inv *Invoice) func([]Event, error) []Event {
	return func(evs []Event, err error) []Event {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			inv.Apply(e)
		}
		return evs
	}
}

func TestCreateInvoiceFee(t *testing.T) {
	inv := newTestInvoice(t, "49.99", "")
	c := inv.Created()
	if c.Fee.Fee.String() != "0.124975" || c.Fee.Bps != 25 {
		t.Fatalf("fee = %+v", c.Fee)
	}
	if !c.ExpiresAt.Equal(t0.Add(DefaultExpiresIn)) {
		t.Fatalf("expires at %v", c.ExpiresAt)
	}
	conv := newTestInvoice(t, "49.99", "BTC")
	if conv.Created().Fee.Fee.String() != "0.24995" || conv.Created().Fee.Bps != 50 {
		t.Fatalf("conversion fee = %+v", conv.Created().Fee)
	}
}

func TestCreateInvoiceRejects(t *testing.T) {
	assets := DefaultAssets()
	btc, _ := assets.Lookup("BTC")
	base := NewInvoice{InvoiceID: "inv_1", MerchantID: "mer_1", Asset: btc, Amount: MustAmount("1"), PayAmount: MustAmount("1"), PayAddress: "bc1q"}
	cases := map[string]struct {
		mod  func(*NewInvoice)
		want error
	}{
		"zero amount":     {func(n *NewInvoice) { n.Amount, n.PayAmount = Amount{}, Amount{} }, ErrInvalidAmount},
		"too precise":     {func(n *NewInvoice) { n.Amount = MustAmount("0.000000001"); n.PayAmount = n.Amount }, ErrInvalidAmount},
		"unknown settle":  {func(n *NewInvoice) { n.SettleAsset = "DOGE" }, ErrUnsupportedAsset},
		"short expiry":    {func(n *NewInvoice) { n.ExpiresIn = time.Second }, ErrValidation},
		"long expiry":     {func(n *NewInvoice) { n.ExpiresIn = 30 * 24 * time.Hour }, ErrValidation},
		"control orderid": {func(n *NewInvoice) { n.OrderID = "a\nb" }, ErrValidation},
	}
	for name, tc := range cases {
		n := base
		tc.mod(&n)
		if _, err := CreateInvoice(n, assets, t0); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}

func statusOf(evs []Event) []Status {
	var out []Status
	for _, e := range evs {
		if s, ok := e.(InvoiceStatusChanged); ok {
			out = append(out, s.To)
		}
	}
	return out
}

func TestInvoiceLifecycle(t *testing.T) {
	inv := newTestInvoice(t, "10", "")
	evs := apply(t, inv)(inv.ObserveDeposit(ObservedDeposit{DepositID: "tx1:0", TxID: "tx1", Amount: MustAmount("4")}, t0))
	if got := statusOf(evs); !reflect.DeepEqual(got, []Status{StatusPartiallyPaid}) {
		t.Fatalf("after 4 of 10: %v", got)
	}
	evs = apply(t, inv)(inv.ObserveDeposit(ObservedDeposit{DepositID: "tx2:0", TxID: "tx2", Amount: MustAmount("6")}, t0))
	if got := statusOf(evs); !reflect.DeepEqual(got, []Status{StatusConfirming}) {
		t.Fatalf("after 10 of 10: %v", got)
	}
	if _, err := inv.Expire(t0.Add(2 * time.Hour)); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("expiring a confirming invoice: %v", err)
	}
	if _, err := inv.ConfirmDeposit("tx1:0", 1, "", t0); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("confirming with too few confirmations: %v", err)
	}
	apply(t, inv)(inv.ConfirmDeposit("tx1:0", 12, "", t0))
	if inv.Status() != StatusConfirming {
		t.Fatalf("one of two confirmed: %s", inv.Status())
	}
	evs = apply(t, inv)(inv.ConfirmDeposit("tx2:0", 12, "", t0))
	if got := statusOf(evs); !reflect.DeepEqual(got, []Status{StatusPaid}) {
		t.Fatalf("after both confirmed: %v", got)
	}
	// A late payment is credited but the status stays paid.
	evs = apply(t, inv)(inv.ObserveDeposit(ObservedDeposit{DepositID: "tx3:0", Amount: MustAmount("1")}, t0))
	if len(statusOf(evs)) != 0 || !evs[0].(DepositDetected).Late {
		t.Fatalf("late deposit events: %+v", evs)
	}
	if inv.AmountReceived().String() != "11" {
		t.Fatalf("received = %s", inv.AmountReceived())
	}
}

func TestRevertBeforeConfirmationReopens(t *testing.T) {
	inv := newTestInvoice(t, "10", "")
	apply(t, inv)(inv.ObserveDeposit(ObservedDeposit{DepositID: "a", Amount: MustAmount("10")}, t0))
	evs := apply(t, inv)(inv.RevertDeposit("a", "reorg", t0))
	if got := statusOf(evs); !reflect.DeepEqual(got, []Status{StatusNew}) {
		t.Fatalf("after revert: %v", got)
	}
	// The same transaction mined again after the reorg counts again.
	evs = apply(t, inv)(inv.ObserveDeposit(ObservedDeposit{DepositID: "a", Amount: MustAmount("4")}, t0))
	if got := statusOf(evs); !reflect.DeepEqual(got, []Status{StatusPartiallyPaid}) || inv.AmountReceived().String() != "4" {
		t.Fatalf("re-observed after revert: %v, received %s", got, inv.AmountReceived())
	}
	evs = apply(t, inv)(inv.Expire(t0.Add(DefaultExpiresIn)))
	if got := statusOf(evs); !reflect.DeepEqual(got, []Status{StatusExpired}) {
		t.Fatalf("expire: %v", got)
	}
}

// TestPostingsProperty drives random command sequences against invoices and
// checks that every money event balances per asset, that replaying the
// events gives the live state, and that the ledger's merchant and fee
// accounts agree with the deposits.
func TestPostingsProperty(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for round := 0; round < 500; round++ {
		settle := ""
		if rng.Intn(3) == 0 {
			settle = "BTC"
		}
		inv := newTestInvoice(t, fmt.Sprintf("%d.%06d", rng.Intn(100), rng.Intn(1000000)+1), settle)
		log := []Event{inv.Created()}
		ids := []string{}
		now := t0
		for step := 0; step < 20; step++ {
			now = now.Add(time.Duration(rng.Intn(600)) * time.Second)
			var evs []Event
			var err error
			switch op := rng.Intn(5); {
			case op == 0 || len(ids) == 0:
				id := fmt.Sprintf("d%d", step)
				if len(ids) > 0 && rng.Intn(3) == 0 {
					id = ids[rng.Intn(len(ids))] // seen again, maybe after a reorg
				} else {
					ids = append(ids, id)
				}
				evs, err = inv.ObserveDeposit(ObservedDeposit{DepositID: id, Amount: MustAmount(fmt.Sprintf("%d.%06d", rng.Intn(30), rng.Intn(1000000)+1))}, now)
			case op == 1:
				evs, err = inv.ConfirmDeposit(ids[rng.Intn(len(ids))], 12+rng.Intn(3), "", now)
			case op == 2:
				evs, err = inv.RevertDeposit(ids[rng.Intn(len(ids))], "reorg", now)
			case op == 3:
				evs, err = inv.FinalizeDeposit(ids[rng.Intn(len(ids))], 13, now)
			default:
				evs, err = inv.Expire(now)
			}
			if err != nil && !errors.Is(err, ErrInvalidState) {
				t.Fatalf("round %d step %d: %v", round, step, err)
			}
			for _, e := range evs {
				inv.Apply(e)
				log = append(log, e)
			}
		}
		balances := map[string]Amount{}
		for _, e := range log {
			if m, ok := e.(MoneyEvent); ok {
				if err := CheckBalanced(m.LedgerPostings()); err != nil {
					t.Fatalf("round %d: %s: %v", round, e.EventType(), err)
				}
				for _, p := range m.LedgerPostings() {
					balances[p.Account] = balances[p.Account].Add(p.Amount)
				}
			}
			if c, ok := e.(DepositConfirmed); ok {
				if err := c.Fee.Verify(); err != nil {
					t.Fatal(err)
				}
			}
		}
		replayed := &Invoice{}
		for _, e := range log {
			replayed.Apply(e)
		}
		if !reflect.DeepEqual(replayed, inv) {
			t.Fatalf("round %d: replay differs from live state", round)
		}
		// Ledger agrees with the aggregate (money rules 1 and 4): the fee
		// account holds the fee of everything credited; pending holds what
		// is seen and not confirmed, and the net of what is confirmed and
		// not final; available the net of what is final.
		var pending, available, credited Amount
		for _, d := range inv.deposits {
			switch {
			case d.reverted:
			case !d.confirmed:
				pending = pending.Add(d.amount)
			case !d.final:
				pending, credited = pending.Add(d.amount.Sub(d.charged)), credited.Add(d.amount)
			default:
				available, credited = available.Add(d.amount.Sub(d.charged)), credited.Add(d.amount)
			}
		}
		if !balances[PendingAccount("mer_1")].Equal(pending) {
			t.Fatalf("round %d: pending %s, deposits say %s", round, balances[PendingAccount("mer_1")], pending)
		}
		if !balances[AvailableAccount("mer_1")].Equal(available) {
			t.Fatalf("round %d: available %s, deposits say %s", round, balances[AvailableAccount("mer_1")], available)
		}
		if want := ComputeFee(credited, inv.FeeBps(), 6).Fee; !balances[FeeAccount].Equal(want) || !inv.Charged().Equal(want) {
			t.Fatalf("round %d: fees %s (charged %s), the fee of %s credited is %s", round, balances[FeeAccount], inv.Charged(), credited, want)
		}
	}
}

func TestEventsRoundTripJSON(t *testing.T) {
	inv := newTestInvoice(t, "49.99", "")
	evs, _ := inv.ObserveDeposit(ObservedDeposit{DepositID: "x", Amount: MustAmount("49.99")}, t0)
	evs = append([]Event{inv.Created()}, evs...)
	for _, e := range evs {
		data, err := Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Decode(e.EventType(), data)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(normalize(t, back), normalize(t, e)) {
			t.Fatalf("%s does not round-trip:\n%#v\n%#v", e.EventType(), back, e)
		}
	}
}

func normalize(t *testing.T, e Event) string {
	b, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestUniquePayAmount(t *testing.T) {
	taken := map[string]bool{"49.99": true, "49.990001": true}
	if got := UniquePayAmount(MustAmount("49.99"), 6, taken); got.String() != "49.990002" {
		t.Fatalf("got %s", got)
	}
	r := &AddressReservations{}
	r.Apply(AddressReserved{PayAmount: MustAmount("1"), OpenUntil: t0.Add(time.Hour)})
	r.Apply(AddressReserved{PayAmount: MustAmount("2"), OpenUntil: t0})
	if got := r.Taken(t0); !got["1"] || got["2"] {
		t.Fatalf("taken = %v", got)
	}
}

// A log written before the money rules confirmed a deposit straight into
// available with the fee of that deposit alone: replayed today, the
// deposit is final (nothing is credited twice) and a reversal gives back
// exactly what was credited.
func TestLegacyConfirmationIsFinal(t *testing.T) {
	inv := newTestInvoice(t, "10.000002", "")
	apply(t, inv)(inv.ObserveDeposit(ObservedDeposit{DepositID: "d1", Amount: MustAmount("10.000002")}, t0))
	fee := ComputeFee(MustAmount("10.000002"), FeeBps, 6)
	net := MustAmount("10.000002").Sub(fee.Fee)
	legacy := DepositConfirmed{InvoiceID: "inv_1", MerchantID: "mer_1", DepositID: "d1", Asset: "USDT.ETH", Amount: MustAmount("10.000002"),
		Confirmations: 12, Fee: fee, Net: net, ConfirmedAt: t0, Postings: []Posting{
			{Account: PendingAccount("mer_1"), Asset: "USDT.ETH", Amount: MustAmount("10.000002").Neg()},
			{Account: AvailableAccount("mer_1"), Asset: "USDT.ETH", Amount: net},
			{Account: FeeAccount, Asset: "USDT.ETH", Amount: fee.Fee},
		}}
	if !legacy.Legacy() {
		t.Fatal("not recognised as a legacy confirmation")
	}
	inv.Apply(legacy)
	if evs, err := inv.FinalizeDeposit("d1", 100, t0); err != nil || len(evs) != 0 {
		t.Fatalf("finalizing a legacy confirmation: %v %v, want nothing", evs, err)
	}
	evs, err := inv.RevertDeposit("d1", "reorg", t0)
	if err != nil {
		t.Fatal(err)
	}
	rev := evs[0].(DepositReverted)
	sums := map[string]Amount{}
	for _, p := range append(legacy.Postings, rev.Postings...) {
		sums[p.Account] = sums[p.Account].Add(p.Amount)
	}
	if !sums[AvailableAccount("mer_1")].IsZero() || !sums[FeeAccount].IsZero() {
		t.Fatalf("after the reversal: available %s, fees %s; want both 0", sums[AvailableAccount("mer_1")], sums[FeeAccount])
	}
}
