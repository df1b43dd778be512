package commands

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
)

// BenchmarkFundsDebit: one more payout request on a merchant's funds
// stream of n payouts (#23), with the stream's view folded already in this
// process (warm) and as the first debit after a start: from the stream's
// snapshot (cold) or, on a store without snapshots, the whole stream read
// and folded (cold-whole-stream).
func BenchmarkFundsDebit(b *testing.B) {
	ctx := context.Background()
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for _, n := range []int{1_000, 10_000, 100_000} {
		store, err := sqlite.Open(filepath.Join(b.TempDir(), "events.db"))
		if err != nil {
			b.Fatal(err)
		}
		d := Deps{Store: store, Assets: domain.DefaultAssets(), Now: func() time.Time { return now }}
		usdt, _ := d.Assets.Lookup("USDT.ETH")
		stream := domain.FundsStream("mer_a", usdt.Code)
		one := domain.MustAmount("1")
		request := func(f *domain.Funds, id string) (domain.Event, error) {
			return f.RequestPayout(domain.PayoutRequest{PayoutID: "po_" + id, MerchantID: "mer_a", CommandID: id, Asset: usdt, Amount: &one,
				ToAddress: "0x00000000000000000000000000000000000000bb", Kind: domain.PayoutKindWithdrawal}, domain.MustAmount("1000000000"), now)
		}
		f := &domain.Funds{}
		for start := 0; start < n; start += 1000 {
			var batch []eventstore.EventData
			for i := start; i < min(start+1000, n); i++ {
				id := fmt.Sprintf("c%d", i)
				ev, err := request(f, id)
				if err != nil {
					b.Fatal(err)
				}
				f.Apply(ev)
				data, err := encode([]domain.Event{ev}, stream, Metadata{CommandID: id, MerchantID: "mer_a", OccurredAt: now})
				if err != nil {
					b.Fatal(err)
				}
				batch = append(batch, data...)
			}
			if _, err := store.Append(ctx, stream, eventstore.Any, batch); err != nil {
				b.Fatal(err)
			}
		}
		next := n
		debit := func(b *testing.B, d Deps) {
			id := fmt.Sprintf("c%d", next)
			next++
			if _, err := executeFunds(ctx, d, stream, Metadata{CommandID: id, MerchantID: "mer_a", OccurredAt: now},
				func(f *domain.Funds) (domain.Event, error) { return request(f, id) }); err != nil {
				b.Fatal(err)
			}
		}
		// Without snapshots (the store's Snapshots hidden), as on EventStoreDB.
		whole := d
		whole.Store = struct{ eventstore.Store }{store}
		b.Run(fmt.Sprintf("payouts=%d/cold-whole-stream", n), func(b *testing.B) {
			for b.Loop() {
				whole.funds = newFundsViews(maxFundsViews)
				debit(b, whole)
			}
		})
		d.funds = newFundsViews(maxFundsViews)
		debit(b, d) // folds the stream and saves its snapshot
		b.Run(fmt.Sprintf("payouts=%d/cold", n), func(b *testing.B) {
			for b.Loop() {
				d.funds = newFundsViews(maxFundsViews)
				debit(b, d)
			}
		})
		d.funds = newFundsViews(maxFundsViews)
		debit(b, d) // folds the stream
		b.Run(fmt.Sprintf("payouts=%d/warm", n), func(b *testing.B) {
			for b.Loop() {
				debit(b, d)
			}
		})
		store.Close()
	}
}
