package storetest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/acceptcryptohere/gateway/eventstore"
)

// Bench measures appends of one event (each to a new stream, as an
// InvoiceCreated is) by one writer and by 16 concurrent writers.
func Bench(b *testing.B, newStore Factory) {
	for _, writers := range []int{1, 16} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s := newStore(b)
			defer s.Close()
			prefix := "bench-" + rnd() + "-"
			var n atomic.Int64
			payload := []byte(`{"invoice_id":"inv_0123456789","asset":"USDT.ETH","amount":"49.99","fee":"0.124975"}`)
			b.ResetTimer()
			runWriters(b, writers, func() error {
				i := n.Add(1)
				_, err := s.Append(context.Background(), fmt.Sprintf("%s%d", prefix, i), eventstore.NoStream,
					[]eventstore.EventData{{ID: NewEventID(), Type: "InvoiceCreated", Data: payload}})
				return err
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
		})
	}
}

// BenchLongStream measures one more event appended to a stream that
// already holds n (a merchant's funds stream gains one per payout for
// ever): the cost must not grow with n.
func BenchLongStream(b *testing.B, newStore Factory) {
	s := newStore(b)
	defer s.Close()
	ctx := context.Background()
	stream := "long-" + rnd()
	held := 0
	for _, n := range []int{1_000, 10_000, 100_000} {
		for held < n {
			batch := events(min(1000, n-held), "Debited")
			if _, err := s.Append(ctx, stream, eventstore.Any, batch); err != nil {
				b.Fatal(err)
			}
			held += len(batch)
		}
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			for b.Loop() {
				res, err := s.Append(ctx, stream, eventstore.ExpectedVersion(held-1), events(1, "Debited"))
				if err != nil {
					b.Fatal(err)
				}
				held = int(res.NextExpected) + 1
			}
		})
	}
}

// runWriters runs b.N calls of op spread over exactly writers goroutines.
func runWriters(b *testing.B, writers int, op func() error) {
	var next atomic.Int64
	done := make(chan error, writers)
	for w := 0; w < writers; w++ {
		go func() {
			for next.Add(1) <= int64(b.N) {
				if err := op(); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for w := 0; w < writers; w++ {
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}
