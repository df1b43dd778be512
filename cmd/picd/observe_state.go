package main

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/acceptcryptohere/gateway/chain/oracle"
	"github.com/acceptcryptohere/gateway/chain/scan"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// chainHeads exposes each scanned chain's node head, as this process's
// watcher last read it, and the scan lag: head minus the height scanned to
// (the checkpoint). A process that does not scan (a follower) has no head
// and shows neither series.
type chainHeads struct {
	db    sqldb.DB
	scans []chainScan
	head  *prometheus.Desc
	lag   *prometheus.Desc
}

func newChainHeads(db sqldb.DB, scans []chainScan) *chainHeads {
	return &chainHeads{db: db, scans: scans,
		head: prometheus.NewDesc("picd_chain_head_height",
			"Height of the node's best block as this process's chain watcher last read it.", []string{"chain"}, nil),
		lag: prometheus.NewDesc("picd_chain_scan_lag_blocks",
			"Blocks between the node's head and the height the chain watcher has scanned to.", []string{"chain"}, nil)}
}

func (c *chainHeads) Describe(ch chan<- *prometheus.Desc) { ch <- c.head; ch <- c.lag }

func (c *chainHeads) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.scans {
		h, ok := scan.LastHead(s.chain)
		if !ok {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.head, prometheus.GaugeValue, float64(h.Height), s.chain)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		cp, err := readScan(ctx, c.db, s)
		cancel()
		if err != nil {
			continue // before the first scan, or unreadable: picd_chain_scan_height says -1
		}
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(max(h.Height-cp.height, 0)), s.chain)
	}
}

// pricePair is a pair whose age is watched: an asset or a fiat currency in
// the oracle's reference currency (every other pair is a cross of two).
type pricePair struct{ base, quote string }

// priceAges exposes, per pair, the seconds since the oracle last gave a
// good price for it: the quote's own age while the oracle answers, and the
// time since the last good one while it refuses (+Inf when it never gave
// one). Asking at each scrape costs the static prices nothing and
// CoinGecko one request per refresh period at most (its answers are
// reused).
type priceAges struct {
	prices oracle.Oracle
	pairs  []pricePair
	now    func() time.Time
	desc   *prometheus.Desc

	mu       sync.Mutex
	lastGood map[pricePair]time.Time
}

func newPriceAges(prices oracle.Oracle, assets domain.Assets, now func() time.Time) *priceAges {
	p := &priceAges{prices: prices, now: now, lastGood: map[pricePair]time.Time{},
		desc: prometheus.NewDesc("picd_price_age_seconds",
			"Seconds since the price oracle last gave a good price for the pair (+Inf: never since start).", []string{"base", "quote"}, nil)}
	for _, a := range assets.List() {
		p.pairs = append(p.pairs, pricePair{a.Code, oracle.USD})
	}
	for code := range domain.DefaultFiats() {
		if code != oracle.USD {
			p.pairs = append(p.pairs, pricePair{code, oracle.USD})
		}
	}
	return p
}

func (p *priceAges) Describe(ch chan<- *prometheus.Desc) { ch <- p.desc }

func (p *priceAges) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pair := range p.pairs {
		if q, err := p.prices.Price(ctx, pair.base, pair.quote); err == nil {
			p.lastGood[pair] = q.At
		}
		age := math.Inf(1)
		if at, ok := p.lastGood[pair]; ok {
			age = max(p.now().Sub(at).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(p.desc, prometheus.GaugeValue, age, pair.base, pair.quote)
	}
}

// registerSettlementGauges adds, beside picd_conversions_waiting_for_price,
// the waits that failed again when retried and the age of the oldest:
// both read from settlement_waits, a table only as long as the backlog.
func (o *observability) registerSettlementGauges(db sqldb.DB, now func() time.Time) {
	query := func(q string, value func(n, oldestMs int64) float64) func() float64 {
		return func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			var n, oldest int64
			var since *int64
			if err := db.Read.QueryRowContext(ctx, q).Scan(&n, &since); err != nil {
				return -1
			}
			if since != nil {
				oldest = *since
			}
			return value(n, oldest)
		}
	}
	o.registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "picd_settlements_failing",
			Help: "Payments whose conversion still had no price when retried (money rule 3): waiting and failing."},
			query(`SELECT count(*), min(since) FROM settlement_waits WHERE attempts > 0`, func(n, _ int64) float64 { return float64(n) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "picd_settlement_oldest_wait_seconds",
			Help: "How long the oldest payment waiting for a price to convert has waited (0 when none waits)."},
			query(`SELECT count(*), min(since) FROM settlement_waits`, func(n, oldestMs int64) float64 {
				if n == 0 {
					return 0
				}
				return max(now().Sub(time.UnixMilli(oldestMs)).Seconds(), 0)
			})))
}
