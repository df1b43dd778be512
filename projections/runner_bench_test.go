package projections_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// BenchmarkLiveCatchUp runs the live runner (Run: read-ahead, shared
// statements, fencing) over a log of PIC_BENCH_EVENTS events (default
// 100,000) into empty read models on the embedded store, until it has
// applied the whole log. Each round starts from a fresh copy of a log that
// never had read models.
func BenchmarkLiveCatchUp(b *testing.B) {
	n := 100000
	if v, err := strconv.Atoi(os.Getenv("PIC_BENCH_EVENTS")); err == nil && v > 0 {
		n = v
	}
	src := filepath.Join(os.TempDir(), fmt.Sprintf("pic-bench-pristine-%d.db", n))
	if _, err := os.Stat(src); err != nil {
		tmp := src + ".building"
		os.Remove(tmp)
		s, err := sqlite.Open(tmp)
		if err != nil {
			b.Fatal(err)
		}
		fillLog(b, s, n/5)
		s.Close()
		if err := os.Rename(tmp, src); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	b.ResetTimer()
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		path := filepath.Join(b.TempDir(), "pic.db")
		copyFile(b, src, path)
		store, err := sqlite.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		db := sqldb.DB{Read: store.DB(), Write: store.WriteDB(), Dialect: sqldb.SQLite}
		if err := projections.Migrate(ctx, db); err != nil {
			b.Fatal(err)
		}
		last := lastPosition(b, store)
		r := projections.NewRunner(store, db, nil)
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		b.StartTimer()
		go func() { done <- r.Run(runCtx) }()
		if err := r.WaitFor(ctx, last); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		cancel()
		<-done
		store.Close()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func lastPosition(b *testing.B, s eventstore.Store) eventstore.Position {
	pos := eventstore.Start
	for {
		recs, err := s.ReadAll(context.Background(), pos, 10000)
		if err != nil {
			b.Fatal(err)
		}
		if len(recs) == 0 {
			return pos
		}
		pos = recs[len(recs)-1].Position
	}
}

func copyFile(b *testing.B, from, to string) {
	in, err := os.Open(from)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
}
