package custody

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
)

// BenchmarkSignPayoutOverSocket: one payout signed per iteration through
// the Unix socket, each checked against a real SQLite log (its request
// read from the merchant's funds stream, its own stream read) and
// appended to the record. It reports the latency's p50 and p99.
func BenchmarkSignPayoutOverSocket(b *testing.B) {
	f := newFixture(b, nil)
	f.policy.cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	reqs := make([]Request, b.N)
	for i := range reqs {
		id := fmt.Sprintf("po_bench_%d", i)
		m := fmt.Sprintf("mer_%d", i%100)
		f.append(domain.FundsStream(m, "ETH"), domain.PayoutRequested{PayoutID: id, MerchantID: m, Asset: "ETH", Chain: domain.ChainEthereum,
			Decimals: 18, Amount: domain.MustAmount("0.01"), ToAddress: payee.Hex(), Kind: domain.PayoutKindWithdrawal})
		u, _ := UnsignedEthereum(ethPayout(payee, "0.01", uint64(i)))
		reqs[i] = Request{Chain: domain.ChainEthereum, Purpose: PurposePayout, PayoutID: id, MerchantID: m, Asset: "ETH", FromIndex: hotIndex, Unsigned: u}
	}
	path := filepath.Join(b.TempDir(), "s.sock")
	ln, err := ListenUnix(path)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go (&Server{Signer: f.policy}).Serve(ctx, ln)
	c, _ := Dial(path)
	took := make([]time.Duration, b.N)
	b.ResetTimer()
	for i := range reqs {
		start := time.Now()
		if _, err := c.Sign(ctx, reqs[i]); err != nil {
			b.Fatal(err)
		}
		took[i] = time.Since(start)
	}
	b.StopTimer()
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
}
