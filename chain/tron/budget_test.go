package tron_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/chain/tron"
	"github.com/acceptcryptohere/gateway/domain"
)

// trongridDailyQuota is the request budget of issue #26: TronGrid's free
// tier is 100,000 requests a day; the gateway keeps within 30,000.
const trongridDailyQuota = 30_000

// economy is the watcher's configuration in picd (cmd/picd/chains.go).
var economy = tron.Config{SolidEveryBlocks: tron.DefaultSolidEveryBlocks}

// simulateRequests runs the watcher's Run loop step by step on an
// injected clock for span against the fake node, mining a block every 3 s
// with the solidified block 19 behind (mainnet's), and opening
// invoicesPerDay USDT.TRON invoices, each paid a minute after it opens. It
// returns the node requests the watcher made and the invoices paid.
func simulateRequests(t testing.TB, span time.Duration, invoicesPerDay int) (requests uint64, paid int) {
	e := setup(t, economy)
	e.node.SetSolidLag(19)
	e.node.fund(keyAddress(e.payer), 100_000_000_000, 1_000_000_000)
	clock := func() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now }
	stats := tron.NewRequestStats(clock)
	client := tron.NewClient(e.node.url(), "", 5*time.Second).WithStats(stats)
	w := e.newWatcher(client)

	start, startHeight := clock(), e.node.height()
	type open struct {
		id, addr string
		payAt    time.Time
	}
	var due []open
	var ids []string
	next := start
	every := time.Duration(0)
	if invoicesPerDay > 0 {
		every = 24 * time.Hour / time.Duration(invoicesPerDay)
	}
	for elapsed := time.Duration(0); elapsed < span; elapsed = clock().Sub(start) {
		now := clock()
		if every > 0 && !now.Before(next) {
			id, addr := e.invoice("USDT.TRON", "0.5", 0)
			due, ids = append(due, open{id, addr, now.Add(time.Minute)}), append(ids, id)
			next = next.Add(every)
		}
		for len(due) > 0 && !now.Before(due[0].payAt) {
			e.payUSDT(due[0].addr, "0.5")
			due = due[1:]
		}
		if want := startHeight + int64(elapsed/(3*time.Second)); e.node.height() < want {
			e.node.mine(int(want - e.node.height()))
		}
		e.catchUp()
		wait := w.Step(e.ctx)
		e.catchUp()
		e.advance(max(wait, time.Millisecond))
	}
	for _, id := range ids {
		if e.get(id).Status == domain.StatusPaid {
			paid++
		}
	}
	return stats.Total(), paid
}

// The watcher's requests per day against the fake over simulated time:
// idle, and at 1,000 invoices a day (every one paid and credited). The
// test runs two simulated hours of each and holds the day's figure, 12
// times that, to the budget; BenchmarkTronRequestsPerDay runs whole days.
func TestTronRequestBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates hours of chain")
	}
	for _, c := range []struct {
		name    string
		perDay  int
		atLeast int
	}{{"idle", 0, 0}, {"1000 invoices a day", 1000, 80}} {
		t.Run(c.name, func(t *testing.T) {
			reqs, paid := simulateRequests(t, 2*time.Hour, c.perDay)
			perDay := reqs * 12
			t.Logf("%s: %d requests in 2 h, %d a day; %d invoices paid", c.name, reqs, perDay, paid)
			if perDay > trongridDailyQuota || paid < c.atLeast {
				t.Fatalf("%s: %d requests a day (budget %d), %d invoices paid", c.name, perDay, trongridDailyQuota, paid)
			}
		})
	}
}

// BenchmarkTronRequestsPerDay simulates whole days (go test -run '^$'
// -bench TronRequestsPerDay -benchtime 1x ./chain/tron/) and reports the
// requests of each.
func BenchmarkTronRequestsPerDay(b *testing.B) {
	for _, perDay := range []int{0, 1000} {
		b.Run(fmt.Sprintf("invoices=%d", perDay), func(b *testing.B) {
			for range b.N {
				reqs, paid := simulateRequests(b, 24*time.Hour, perDay)
				b.ReportMetric(float64(reqs), "requests/day")
				b.ReportMetric(float64(paid), "paid/day")
			}
		})
	}
}

// TronGrid past a key's rate answers HTTP 429: the request is counted as
// throttled and the watcher backs off (the pause doubles per throttled
// scan in a row), then resumes and misses nothing.
func TestThrottledBackoff(t *testing.T) {
	e := setup(t, economy)
	clock := func() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now }
	stats := tron.NewRequestStats(clock)
	w := e.newWatcher(tron.NewClient(e.node.url(), "", 5*time.Second).WithStats(stats))
	id, addr := e.invoice("USDT.TRON", "7", 0)
	e.payUSDT(addr, "7")
	e.node.mine(confirmations)
	e.node.ThrottleNext(3)
	var waits []time.Duration
	for range 3 {
		waits = append(waits, w.Step(e.ctx))
	}
	if waits[0] != 5*time.Second || waits[1] != 10*time.Second || waits[2] != 20*time.Second || stats.Throttled() != 3 {
		t.Fatalf("waits %v, throttled %d", waits, stats.Throttled())
	}
	if wait := w.Step(e.ctx); wait != 5*time.Second {
		t.Fatalf("after the throttle: %v", wait)
	}
	e.catchUp()
	e.wantStatus(id, domain.StatusPaid)
}
