package commands

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
)

// The funds views are bounded: the least recently used stream is dropped.
func TestFundsViewsAreBounded(t *testing.T) {
	v := newFundsViews(2)
	a := v.view("payouts-a")
	v.view("payouts-b")
	if v.view("payouts-a") != a {
		t.Fatal("a cached view was made again")
	}
	v.view("payouts-c") // drops b, the least recently used
	if v.recent.Len() != 2 || len(v.streams) != 2 {
		t.Fatalf("%d views, %d streams kept; want 2", v.recent.Len(), len(v.streams))
	}
	if _, ok := v.streams["payouts-b"]; ok {
		t.Fatal("b, the least recently used, was kept")
	}
	if v.view("payouts-a") != a {
		t.Fatal("a, used last but one, was dropped")
	}
}

// A debit retried after its stream's view was dropped is still found in
// the log: the same payout, not a second one.
func TestRetriedDebitAfterItsViewWasDropped(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	d := Deps{Store: store, Assets: domain.DefaultAssets(), Now: func() time.Time { return now }, funds: newFundsViews(1)}
	usdt, _ := d.Assets.Lookup("USDT.ETH")
	debit := func(merchant, commandID string) fundsResult {
		t.Helper()
		stream := domain.FundsStream(merchant, usdt.Code)
		meta := Metadata{CommandID: commandID, MerchantID: merchant, OccurredAt: now}
		amount := domain.MustAmount("30")
		res, err := executeFunds(ctx, d, stream, meta, func(f *domain.Funds) (domain.Event, error) {
			return f.RequestPayout(domain.PayoutRequest{PayoutID: domain.DerivedID("po_", commandID, stream, now), MerchantID: merchant,
				CommandID: commandID, Asset: usdt, Amount: &amount, ToAddress: "0x00000000000000000000000000000000000000bb",
				Kind: domain.PayoutKindWithdrawal}, domain.MustAmount("50"), now)
		})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	first := debit("mer_a", "c1")
	debit("mer_b", "c2") // drops mer_a's view
	if _, ok := d.funds.streams[domain.FundsStream("mer_a", usdt.Code)]; ok {
		t.Fatal("the view was kept beyond the bound")
	}
	// 30 of 50 is taken: deciding again would refuse a second 30.
	again := debit("mer_a", "c1")
	if again.position != first.position || again.event.(domain.PayoutRequested).PayoutID != first.event.(domain.PayoutRequested).PayoutID {
		t.Fatalf("retried debit: %+v, first %+v", again, first)
	}
}
