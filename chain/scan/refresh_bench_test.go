package scan_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/acceptcryptohere/gateway/chain/scan"
)

// BenchmarkRefreshWatched is what a scan that finds no new block costs
// with n invoices in the read model, all created in the last minutes (a
// busy gateway: at 2,000 invoices/s, 1M in ten minutes), and one new
// invoice before each scan, which that scan must watch. The engine's
// fixed work (head, checkpoint, the deposits due) is in it too; what
// grows with n is the refresh of the watched addresses.
func BenchmarkRefreshWatched(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("invoices=%d", n), func(b *testing.B) {
			ctx := context.Background()
			r := newRig(b, scan.Config{StartBlock: 1})
			r.chain.build(0, 3, "a")
			// created_at: the rig's clock (1,000,000 ms) and the 100 s
			// before it; the position: creation order.
			if _, err := r.db.Write.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
				INSERT INTO invoices `+invoiceCols[:len(invoiceCols)-1]+`, created_commit)
				SELECT 'inv_fake' || i, printf('fake%07d', i), 'TST', 1000000 - (? - i) / 10, 3, i FROM n`, n, n); err != nil {
				b.Fatal(err)
			}
			if err := r.scan.ScanOnce(ctx); err != nil {
				b.Fatal(err)
			}
			if got := r.chain.watchedCount(); got != n+1 {
				b.Fatalf("%d addresses watched, want %d", got, n+1)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				addr := fmt.Sprintf("new%07d", i)
				if _, err := r.db.Write.ExecContext(ctx, `INSERT INTO invoices `+invoiceCols[:len(invoiceCols)-1]+`, created_commit)
					VALUES (?, ?, 'TST', 1000000, 3, ?)`, "inv_"+addr, addr, n+1+i); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := r.scan.ScanOnce(ctx); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if !r.chain.isWatched(addr) {
					b.Fatalf("%s is not watched after a scan", addr)
				}
				b.StartTimer()
			}
		})
	}
}

func (c *memChain) watchedCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.watched)
}

func (c *memChain) isWatched(a string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.watched[a]
}
