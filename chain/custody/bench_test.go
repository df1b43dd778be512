package custody

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
)

// BenchmarkSignPayoutOverSocket: one payout signed per iteration through
// the Unix socket, each checked against a real SQLite log (its request
// read from the merchant's funds stream, its own stream read) and
// appended to the record. It reports the latency's p50 and p99 and the
// payouts signed per second, one client asking after another.
func BenchmarkSignPayoutOverSocket(b *testing.B) {
	benchmarkSignPayout(b, func(f *fixture) *Client {
		path := filepath.Join(b.TempDir(), "s.sock")
		ln, err := ListenUnix(path)
		if err != nil {
			b.Fatal(err)
		}
		serve(b, f, ln)
		c, _ := Dial(path)
		return c
	})
}

// BenchmarkSignPayoutOverMutualTLS is BenchmarkSignPayoutOverSocket on
// TCP (loopback) with mutual TLS 1.3, certificates from WriteCerts; the
// client keeps its connection, as picd serve's does.
func BenchmarkSignPayoutOverMutualTLS(b *testing.B) {
	benchmarkSignPayout(b, func(f *fixture) *Client {
		dir := writeCerts(b, "127.0.0.1")
		addr := tlsSigner(b, f, dir)
		return clientOf(b, addr, dir, dir)
	})
}

func serve(b *testing.B, f *fixture, ln net.Listener) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = (&Server{Signer: f.policy, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Serve(ctx, ln)
	}()
	b.Cleanup(func() { cancel(); <-done })
}

func benchmarkSignPayout(b *testing.B, client func(*fixture) *Client) {
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
	c := client(f)
	ctx := context.Background()
	if _, err := c.Keys(ctx); err != nil { // connected (and, over TLS, the handshake done) before timing
		b.Fatal(err)
	}
	took := make([]time.Duration, b.N)
	b.ResetTimer()
	all := time.Now()
	for i := range reqs {
		start := time.Now()
		if _, err := c.Sign(ctx, reqs[i]); err != nil {
			b.Fatal(err)
		}
		took[i] = time.Since(start)
	}
	elapsed := time.Since(all)
	b.StopTimer()
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "payouts/s")
}
