package custody

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

// BenchmarkFindPayout: the signer finding a payout's request in a funds
// stream of n payouts (#23: a busy merchant's stream grows by one event a
// payout, for ever).
func BenchmarkFindPayout(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		f := newFixture(b, nil)
		stream := domain.FundsStream(merchant, "ETH")
		meta, _ := json.Marshal(map[string]int{"schema_version": domain.SchemaVersionOf(domain.TypePayoutRequested)})
		for start := 0; start < n; start += 1000 {
			var batch []eventstore.EventData
			for i := start; i < min(start+1000, n); i++ {
				data, _ := json.Marshal(domain.PayoutRequested{PayoutID: fmt.Sprintf("po_%d", i), MerchantID: merchant, Asset: "ETH",
					Chain: domain.ChainEthereum, Decimals: 18, Amount: domain.MustAmount("0.01"), ToAddress: payee.Hex(), Kind: domain.PayoutKindWithdrawal})
				batch = append(batch, eventstore.EventData{ID: fmt.Sprintf("evt_%d", i), Type: domain.TypePayoutRequested, Data: data, Metadata: meta})
			}
			if _, err := f.store.Append(context.Background(), stream, eventstore.Any, batch); err != nil {
				b.Fatal(err)
			}
		}
		last := Request{PayoutID: fmt.Sprintf("po_%d", n-1), MerchantID: merchant, Asset: "ETH"}
		at := last
		at.FundsVersion = At(int64(n - 1))
		for _, c := range []struct {
			name string
			req  Request
		}{{"stream", last}, {"at-version", at}} {
			b.Run(fmt.Sprintf("payouts=%d/%s", n, c.name), func(b *testing.B) {
				for b.Loop() {
					if _, err := f.policy.findPayout(context.Background(), c.req); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
