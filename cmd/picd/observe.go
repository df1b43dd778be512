package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/acceptcryptohere/gateway/chain/scan"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// observability wraps the HTTP handler with request ids, one structured log
// line per request, and Prometheus metrics per route.
type observability struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	log      *slog.Logger
}

func newObservability(log *slog.Logger) *observability {
	o := &observability{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "picd_http_requests_total",
			Help: "HTTP requests by route pattern, method and status code."}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "picd_http_request_duration_seconds",
			Help: "HTTP request latency by route pattern and method.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)},
			[]string{"route", "method"}),
		log: log,
	}
	o.registry.MustRegister(o.requests, o.latency, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return o
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Flush keeps streaming responses (Server-Sent Events) working through the wrapper.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func newRequestID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "req_" + hex.EncodeToString(b)
}

func (o *observability) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		outer := r.Pattern // the outer mux's pattern, e.g. "/pay/"
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 64 {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		// chi fills the route pattern into a route context it finds in the
		// request, so the pattern (not the raw path) labels the metrics.
		rctx := chi.NewRouteContext()
		r = r.WithContext(context.WithValue(r.Context(), chi.RouteCtxKey, rctx))
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		route := rctx.RoutePattern()
		if route == "" && outer != "" && outer != "/" {
			// Pages served outside the API's router (/pay/, /dashboard,
			// /v1/sim/) are labelled by the pattern that sent them here:
			// a bounded set, never the raw path.
			route = outer
			if strings.HasSuffix(route, "/") {
				route += "*"
			}
		}
		if route == "" {
			route = "unmatched"
		}
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		elapsed := time.Since(start)
		o.requests.WithLabelValues(route, r.Method, strconv.Itoa(rec.status)).Inc()
		o.latency.WithLabelValues(route, r.Method).Observe(elapsed.Seconds())
		o.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("request_id", id), slog.String("method", r.Method), slog.String("route", route),
			slog.Int("status", rec.status), slog.Float64("latency_ms", float64(elapsed.Microseconds())/1000))
	})
}

// chainScan names the table where a chain watcher keeps its scan
// checkpoint: one row, id 1, with the height scanned to and updated_at
// (Unix ms) of the last time the checkpoint moved.
type chainScan struct {
	chain      string // label: btc, eth, tron
	table      string
	staleAfter time.Duration
	identity   string // the table of the node's identity and mismatch (scan.IdentityTable)
}

// A checkpoint moves only when the watcher scans a new block, so how long
// it may stand still depends on the chain's block time. ETH (12 s blocks)
// and TRON (3 s) move at nearly every poll: 45 s (3 polls of 5 s + 30 s)
// without a move means the watcher or its node is stuck. Bitcoin makes a
// block about every 10 minutes and now and then goes an hour without one;
// a 2 h gap happens about once in years, so only then is it stale.
const (
	scanStaleAfter    = 45 * time.Second
	btcScanStaleAfter = 2 * time.Hour
)

// chainScans lists the chains whose watcher scans a node; simulated chains
// have no checkpoint to watch.
func chainScans(cfg Config) []chainScan {
	var scans []chainScan
	if cfg.BTCRPCHost != "" {
		scans = append(scans, chainScan{"btc", "chain_btc_checkpoint", btcScanStaleAfter, "chain_btc_node_identity"})
	}
	if cfg.ETHRPCURL != "" {
		scans = append(scans, chainScan{"eth", "eth_scan_checkpoint", scanStaleAfter, "eth_node_identity"})
	}
	if cfg.TronAPIURL != "" {
		scans = append(scans, chainScan{"tron", "tron_scan_checkpoint", scanStaleAfter, "tron_node_identity"})
	}
	return scans
}

// scanCheckpoint is where a watcher has scanned to, and when it got there.
type scanCheckpoint struct {
	height    int64
	updatedAt time.Time
}

// readScan reads c's checkpoint. It returns sql.ErrNoRows (wrapped) before
// the watcher's first scan, or the database's error.
func readScan(ctx context.Context, db sqldb.DB, c chainScan) (scanCheckpoint, error) {
	var cp scanCheckpoint
	var updatedMs int64
	// The table name comes from chainScans, never from input.
	err := db.Read.QueryRowContext(ctx, `SELECT height, updated_at FROM `+c.table+` WHERE id = 1`).Scan(&cp.height, &updatedMs)
	if err != nil {
		return cp, fmt.Errorf("%s scan checkpoint: %w", c.chain, err)
	}
	cp.updatedAt = time.UnixMilli(updatedMs)
	return cp, nil
}

// identityMismatch is why c's watcher stopped scanning: its node is of
// another chain ("" while it is not, or before the first check).
func identityMismatch(ctx context.Context, db sqldb.DB, c chainScan) (string, error) {
	return scan.NewIdentityTable(db, c.identity).Mismatch(ctx)
}

// scanReadiness decides the readiness check of one chain from its
// checkpoint (or the error reading it): "ok" while the checkpoint moved
// within staleAfter of now.
func scanReadiness(cp scanCheckpoint, err error, now time.Time, staleAfter time.Duration) (check string, ok bool) {
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "stale: no scan yet", false
	case err != nil:
		return "unknown: checkpoint unreadable", false
	}
	if age := now.Sub(cp.updatedAt); age > staleAfter {
		return fmt.Sprintf("stale: last scan %s ago", age.Round(time.Second)), false
	}
	return "ok", true
}

// registerStateGauges exposes the state the background work leaves in the
// databases: projection lag, webhook queue depth and failures, and each
// chain watcher's scan height and checkpoint age.
// registerLeader adds picd_leader: 1 while this process runs the
// background work (always on SQLite), so a dashboard shows who leads.
func (o *observability) registerLeader(l *leadership) {
	o.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "picd_leader",
		Help: "1 while this process holds the leader lease and runs the background work."}, func() float64 {
		if l.Leading() {
			return 1
		}
		return 0
	}))
}

func (o *observability) registerStateGauges(store eventstore.Store, runner *projections.Runner, db sqldb.DB, scans []chainScan) {
	o.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "picd_projection_lag_seconds",
		Help: "Age of the oldest event the projections have not applied (0 when caught up)."}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		next, err := store.ReadAll(ctx, runner.Position(), 1)
		if err != nil || len(next) == 0 {
			return 0
		}
		return time.Since(next[0].RecordedAt).Seconds()
	}))
	count := func(name, help, query string) {
		o.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			var n int64
			if err := db.Read.QueryRowContext(ctx, query).Scan(&n); err != nil {
				return -1
			}
			return float64(n)
		}))
	}
	count("picd_webhook_queue_depth", "Webhook deliveries waiting to be delivered.",
		`SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'`)
	count("picd_conversions_waiting_for_price", "Payments whose conversion waits for a price (money rule 3); each waits on its own.",
		`SELECT count(*) FROM settlement_waits`)
	// A gauge (a count of rows now), so no _total: promtool reserves that
	// suffix for counters.
	count("picd_webhook_deliveries_failed", "Webhook deliveries that failed for good (schedule exhausted or 410 Gone).",
		`SELECT count(*) FROM webhook_deliveries WHERE status IN ('failed', 'gone')`)
	o.registry.MustRegister(
		&statusCounts{db: db, desc: prometheus.NewDesc("picd_invoices", "Invoices in the read model by status.", []string{"status"}, nil),
			query: `SELECT status, n FROM invoice_status_counts WHERE n <> 0`},
		&statusCounts{db: db, desc: prometheus.NewDesc("picd_payouts", "Payouts in the read model by status.", []string{"status"}, nil),
			query: `SELECT status, n FROM payout_status_counts WHERE n <> 0`})
	for _, c := range scans {
		scan := func(value func(scanCheckpoint) float64) func() float64 {
			return func() float64 {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				cp, err := readScan(ctx, db, c)
				if err != nil {
					return -1
				}
				return value(cp)
			}
		}
		labels := prometheus.Labels{"chain": c.chain}
		o.registry.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "picd_chain_identity_mismatch", ConstLabels: labels,
				Help: "1 while the chain's node follows another chain than the configured or recorded one (scanning stopped; /readyz says why), 0 otherwise, -1 when unreadable."},
				func() float64 {
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
					defer cancel()
					reason, err := identityMismatch(ctx, db, c)
					switch {
					case err != nil:
						return -1
					case reason != "":
						return 1
					}
					return 0
				}),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "picd_chain_scan_height", ConstLabels: labels,
				Help: "Block height the chain watcher has scanned to (-1 before its first scan or when unreadable)."},
				scan(func(cp scanCheckpoint) float64 { return float64(cp.height) })),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "picd_chain_scan_age_seconds", ConstLabels: labels,
				Help: "Seconds since the chain watcher's checkpoint last moved (-1 before its first scan or when unreadable)."},
				scan(func(cp scanCheckpoint) float64 { return max(time.Since(cp.updatedAt).Seconds(), 0) })),
		)
	}
}

func (o *observability) metricsHandler() http.Handler {
	return promhttp.HandlerFor(o.registry, promhttp.HandlerOpts{})
}

// statusCounts is a gauge per status, read from the database at each
// scrape: invoices from the counts their projector keeps (a scrape costs
// the same at any history), payouts by a grouped count (they are few).
type statusCounts struct {
	db    sqldb.DB
	desc  *prometheus.Desc
	query string
}

func (s *statusCounts) Describe(ch chan<- *prometheus.Desc) { ch <- s.desc }

func (s *statusCounts) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rows, err := s.db.Read.QueryContext(ctx, s.query)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(s.desc, err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var status string
		var n int64
		if err := rows.Scan(&status, &n); err != nil {
			ch <- prometheus.NewInvalidMetric(s.desc, err)
			return
		}
		ch <- prometheus.MustNewConstMetric(s.desc, prometheus.GaugeValue, float64(n), status)
	}
}
