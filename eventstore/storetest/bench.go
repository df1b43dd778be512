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
