// Package webhooks delivers invoice status changes to merchants: a
// Subscriber of the global log turns each status event into a durable
// delivery row, and a Worker POSTs due deliveries, signed with the
// merchant's webhook secret, retrying on a fixed backoff schedule and
// recording every attempt. The queries behind the delivery log
// (ListDeliveries, DeliveryByID, Retry, SendTest) are the Worker's methods.
//
// Guarantees:
//   - one delivery per status event, with a stable id (DeliveryID); the
//     subscriber's checkpoint and the deliveries commit together;
//   - at least once: a delivery is pending until an attempt is recorded, so a
//     crash mid-send resends it after restart (receivers de-duplicate on
//     x-payincrypto-delivery);
//   - per invoice, a delivery is sent only after every earlier one (in log
//     order) is delivered, failed, gone or skipped;
//   - a slow endpoint holds at most Config.PerMerchant of the
//     Config.Workers senders, so other merchants are not delayed;
//   - URL and secret are read at send time, so a URL change or a secret
//     rotation applies to pending retries.
//
// Run one Worker per database: two workers on one database may send a due
// delivery twice (still at least once, still the same delivery id).
package webhooks

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/follow"
	"github.com/acceptcryptohere/gateway/sqldb"
)

const (
	// maxResponseBody is the prefix of a response kept with an attempt.
	maxResponseBody = 1 << 10
	// maxDrain bounds what is read past the prefix so the connection can be
	// reused; a longer body is abandoned with its connection.
	maxDrain = 64 << 10
	// maxErrorText bounds an attempt's error text.
	maxErrorText = 300
	// passLimit bounds the due deliveries one Pass looks at.
	passLimit = 500
)

// Config configures a Worker. Zero values take the defaults in brackets.
type Config struct {
	// AllowPrivate lets deliveries reach loopback, private and link-local
	// addresses (PIC_WEBHOOK_ALLOW_PRIVATE=true; for tests and local setups).
	AllowPrivate bool
	// Client sends the requests [NewHTTPClient(AllowPrivate)]. A custom
	// client bypasses the address check unless it brings its own.
	Client *http.Client
	// AttemptTimeout bounds one attempt: connect, send, response [10 s].
	AttemptTimeout time.Duration
	// Workers bounds the requests in flight in total [32].
	Workers int
	// PerMerchant bounds one merchant's requests in flight [2].
	PerMerchant int
	// PollInterval is the longest the worker sleeps without looking at the
	// database, for deliveries another process made due [2 s].
	PollInterval time.Duration
	// Now is the clock of attempts and schedules [time.Now].
	Now func() time.Time
	// After is the worker's timer [time.After]. Tests pass one that
	// advances their clock, to run days of schedule in milliseconds.
	After func(time.Duration) <-chan time.Time
	// Jitter returns the random extra added to a scheduled pause d
	// [uniform in 0..d/10].
	Jitter    func(d time.Duration) time.Duration
	UserAgent string // ["AcceptCryptoHERE-Webhooks/1"]
	Logger    *slog.Logger
	// Secrets opens the merchants' sealed webhook secrets (picd: the data
	// directory's secrets.key or PIC_SECRETS_KEY). Without it only clear
	// secrets of logs from before sealing can sign; a delivery whose
	// secret does not open waits, and the error goes to Logger.
	Secrets *SecretBox
}

// Worker sends due deliveries and answers the delivery-log queries.
type Worker struct {
	db       sqldb.DB
	cfg      Config
	wake     chan struct{}
	attempts AttemptCounts
}

// AttemptCounts are the attempts this worker recorded since it started, by
// what they left the delivery as: delivered; retry (pending, scheduled
// again); failed (no retry left, or 410 Gone).
type AttemptCounts struct {
	Delivered, Retry, Failed atomic.Int64
}

// Attempts is the worker's running count of recorded attempts.
func (w *Worker) Attempts() *AttemptCounts { return &w.attempts }

// count adds one attempt that left its delivery in status.
func (c *AttemptCounts) count(status string) {
	switch status {
	case StatusDelivered:
		c.Delivered.Add(1)
	case StatusPending:
		c.Retry.Add(1)
	default:
		c.Failed.Add(1)
	}
}

// NewWorker prepares a worker over the read-model database (Migrate and
// projections.Migrate first); Run starts sending.
func NewWorker(db sqldb.DB, cfg Config) *Worker {
	if cfg.Client == nil {
		cfg.Client = NewHTTPClient(cfg.AllowPrivate)
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = 10 * time.Second
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 32
	}
	if cfg.PerMerchant <= 0 {
		cfg.PerMerchant = 2
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.After == nil {
		cfg.After = time.After
	}
	if cfg.Jitter == nil {
		cfg.Jitter = defaultJitter
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "AcceptCryptoHERE-Webhooks/1"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Worker{db: db, cfg: cfg, wake: make(chan struct{}, 1)}
}

// Notify tells a running worker that deliveries may have become due (the
// subscriber created some, or one was retried). It never blocks.
func (w *Worker) Notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// job is a due delivery.
type job struct {
	id, merchantID, invoiceID, eventType string
	body                                 []byte
	attempts                             int
	createdAt                            time.Time
}

type outcomeKind int

const (
	sent       outcomeKind = iota // an attempt was made
	noEndpoint                    // the merchant has no webhook_url
	notReady                      // the merchant is not in the read model yet
	discarded                     // the worker is stopping; nothing to record
)

type outcome struct {
	job        job
	kind       outcomeKind
	attempt    Attempt
	retryAfter time.Duration
}

// readyWhere selects pending deliveries with no earlier pending delivery of
// the same invoice, except those already in flight and those of merchants
// at their limit.
func readyWhere(busyIDs, busyMerchants []string) (string, []any) {
	q := `d.status = 'pending' AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p
		WHERE p.invoice_id = d.invoice_id AND p.status = 'pending' AND p.seq < d.seq)`
	var args []any
	if len(busyIDs) > 0 {
		q += ` AND d.delivery_id NOT IN (` + placeholders(len(busyIDs)) + `)`
		for _, id := range busyIDs {
			args = append(args, id)
		}
	}
	if len(busyMerchants) > 0 {
		q += ` AND d.merchant_id NOT IN (` + placeholders(len(busyMerchants)) + `)`
		for _, m := range busyMerchants {
			args = append(args, m)
		}
	}
	return q, args
}

// due returns up to limit deliveries ready to send at now, earliest first.
func (w *Worker) due(ctx context.Context, now time.Time, busyIDs, busyMerchants []string, limit int) ([]job, error) {
	where, args := readyWhere(busyIDs, busyMerchants)
	args = append(args, now.UnixMilli(), limit)
	rows, err := w.db.Read.QueryContext(ctx, w.db.Q(`SELECT d.delivery_id, d.merchant_id, d.invoice_id, d.event_type, d.body, d.attempt_count, d.created_at
		FROM webhook_deliveries d WHERE `+where+` AND d.next_attempt_at <= ? ORDER BY d.next_attempt_at, d.seq LIMIT ?`), args...)
	if err != nil {
		return nil, fmt.Errorf("webhooks: due deliveries: %w", err)
	}
	defer rows.Close()
	var jobs []job
	for rows.Next() {
		var j job
		var created int64
		if err := rows.Scan(&j.id, &j.merchantID, &j.invoiceID, &j.eventType, &j.body, &j.attempts, &created); err != nil {
			return nil, fmt.Errorf("webhooks: due deliveries: %w", err)
		}
		j.createdAt = time.UnixMilli(created).UTC()
		jobs = append(jobs, j)
	}
	return jobs, rows.Err()
}

// nextDue is when the earliest ready delivery becomes due.
func (w *Worker) nextDue(ctx context.Context, busyIDs, busyMerchants []string) (time.Time, bool, error) {
	where, args := readyWhere(busyIDs, busyMerchants)
	var next sql.NullInt64
	if err := w.db.Read.QueryRowContext(ctx, w.db.Q(`SELECT MIN(d.next_attempt_at) FROM webhook_deliveries d WHERE `+where), args...).Scan(&next); err != nil {
		return time.Time{}, false, fmt.Errorf("webhooks: next due delivery: %w", err)
	}
	if !next.Valid {
		return time.Time{}, false, nil
	}
	return time.UnixMilli(next.Int64), true, nil
}

// Run sends deliveries as they become due until ctx ends, then waits for
// the attempts in flight (they are cancelled; a cancelled attempt is not
// recorded, so the delivery is sent again after a restart) and returns
// ctx's error. Database errors are logged and retried.
//
// Each turn collects the finished attempts, records them, dispatches due
// deliveries to free senders, and otherwise schedules a wake-up for the
// next due delivery and waits.
func (w *Worker) Run(ctx context.Context) error {
	d := newDispatcher(w)
	failures := 0
	fail := func(what string, err error) {
		w.cfg.Logger.Error("webhooks: "+what, "err", err)
		failures++
		follow.Retry.Wait(ctx, failures)
	}
	for {
		d.collect()
		if err := d.record(ctx); err != nil {
			if ctx.Err() != nil {
				break
			}
			fail("record attempts", err)
			continue
		}
		if ctx.Err() != nil {
			break
		}
		busyIDs, busyMerchants := d.busy()
		launched, err := d.dispatch(ctx, busyIDs, busyMerchants)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			fail("dispatch", err)
			continue
		}
		failures = 0
		if launched > 0 {
			continue // more may be due
		}
		d.wait(ctx, d.schedule(ctx, busyIDs, busyMerchants))
	}
	d.shutdown(ctx)
	return ctx.Err()
}

// dispatcher is the state of one Run: the attempts in flight, per delivery
// and per merchant, and the finished ones not yet recorded.
type dispatcher struct {
	w           *Worker
	results     chan outcome      // at most Workers in flight: sends never block
	inFlight    map[string]string // delivery id -> merchant id
	perMerchant map[string]int
	unrecorded  []outcome
	wg          sync.WaitGroup
}

func newDispatcher(w *Worker) *dispatcher {
	return &dispatcher{w: w, results: make(chan outcome, w.cfg.Workers), inFlight: make(map[string]string, w.cfg.Workers),
		perMerchant: make(map[string]int)}
}

// collect takes the finished attempts without waiting.
func (d *dispatcher) collect() {
	for {
		select {
		case o := <-d.results:
			d.unrecorded = append(d.unrecorded, o)
		default:
			return
		}
	}
}

// record writes the collected outcomes in one transaction and frees their
// senders; on an error they stay collected for the next turn.
func (d *dispatcher) record(ctx context.Context) error {
	if len(d.unrecorded) == 0 {
		return nil
	}
	if err := d.w.record(ctx, d.unrecorded); err != nil {
		return err
	}
	for _, o := range d.unrecorded {
		m := d.inFlight[o.job.id]
		delete(d.inFlight, o.job.id)
		if d.perMerchant[m]--; d.perMerchant[m] <= 0 {
			delete(d.perMerchant, m)
		}
	}
	d.unrecorded = d.unrecorded[:0]
	return nil
}

// busy lists the deliveries in flight and the merchants at their limit,
// which the queries for due deliveries leave out.
func (d *dispatcher) busy() (busyIDs, busyMerchants []string) {
	busyIDs = make([]string, 0, len(d.inFlight))
	for id := range d.inFlight {
		busyIDs = append(busyIDs, id)
	}
	for m, n := range d.perMerchant {
		if n >= d.w.cfg.PerMerchant {
			busyMerchants = append(busyMerchants, m)
		}
	}
	return busyIDs, busyMerchants
}

func (d *dispatcher) free() int { return d.w.cfg.Workers - len(d.inFlight) }

// dispatch starts an attempt for each due delivery while senders are free
// (at most PerMerchant per merchant) and returns how many it started.
func (d *dispatcher) dispatch(ctx context.Context, busyIDs, busyMerchants []string) (int, error) {
	free := d.free()
	if free <= 0 {
		return 0, nil
	}
	w := d.w
	jobs, err := w.due(ctx, w.cfg.Now(), busyIDs, busyMerchants, min(4*free, passLimit))
	if err != nil {
		return 0, err
	}
	launched := 0
	for _, j := range jobs {
		if len(d.inFlight) >= w.cfg.Workers {
			break
		}
		if d.perMerchant[j.merchantID] >= w.cfg.PerMerchant {
			continue
		}
		d.inFlight[j.id] = j.merchantID
		d.perMerchant[j.merchantID]++
		launched++
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			o := w.send(ctx, j)
			if ctx.Err() != nil {
				o.kind = discarded
			}
			d.results <- o
		}()
	}
	return launched, nil
}

// schedule returns the timer of the next look at the database: when the
// earliest ready delivery is due, at most PollInterval away. It is nil
// when no sender is free, or when nothing is ready and attempts are in
// flight: their results wake the worker.
func (d *dispatcher) schedule(ctx context.Context, busyIDs, busyMerchants []string) <-chan time.Time {
	if d.free() <= 0 {
		return nil
	}
	w := d.w
	next, ok, err := w.nextDue(ctx, busyIDs, busyMerchants)
	switch {
	case err != nil:
		w.cfg.Logger.Error("webhooks: next due", "err", err)
		return w.cfg.After(w.cfg.PollInterval)
	case ok:
		return w.cfg.After(min(max(next.Sub(w.cfg.Now()), time.Millisecond), w.cfg.PollInterval))
	case len(d.inFlight) == 0:
		return w.cfg.After(w.cfg.PollInterval)
	}
	return nil
}

// wait blocks until an attempt finishes, Notify, the timer or ctx's end.
func (d *dispatcher) wait(ctx context.Context, timer <-chan time.Time) {
	select {
	case o := <-d.results:
		d.unrecorded = append(d.unrecorded, o)
	case <-d.w.wake:
	case <-timer:
	case <-ctx.Done():
	}
}

// shutdown waits for the attempts in flight and records what they did,
// with a few seconds past ctx's end.
func (d *dispatcher) shutdown(ctx context.Context) {
	d.wg.Wait()
	close(d.results)
	for o := range d.results {
		d.unrecorded = append(d.unrecorded, o)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := d.w.record(rctx, d.unrecorded); err != nil {
		d.w.cfg.Logger.Error("webhooks: record attempts at shutdown", "err", err)
	}
}

// Pass sends every delivery due now (at most Config.PerMerchant per
// merchant and Config.Workers at a time), waits for the attempts and
// records them. It returns how many deliveries it handled. Tools and tests
// use it instead of Run; a later delivery of an invoice whose earlier one
// was just delivered goes on the next Pass.
func (w *Worker) Pass(ctx context.Context) (int, error) {
	jobs, err := w.due(ctx, w.cfg.Now(), nil, nil, passLimit)
	if err != nil {
		return 0, err
	}
	perMerchant := map[string]int{}
	var chosen []job
	for _, j := range jobs {
		if perMerchant[j.merchantID] < w.cfg.PerMerchant {
			perMerchant[j.merchantID]++
			chosen = append(chosen, j)
		}
	}
	outs := make([]outcome, len(chosen))
	sem := make(chan struct{}, w.cfg.Workers)
	var wg sync.WaitGroup
	for i, j := range chosen {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			outs[i] = w.send(ctx, j)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return len(outs), w.record(ctx, outs)
}

// endpoint is where a merchant's webhooks go, read at send time.
type endpoint struct{ merchantID, url, secret string }

// errNoSecretsKey: a sealed secret and no Config.Secrets to open it.
var errNoSecretsKey = errors.New("webhooks: the webhook secret is sealed and this worker has no secrets key (Config.Secrets)")

// endpoint reads the merchant's URL and opens its sealed secret (a log from
// before sealing has it in clear).
// Errors: domain.ErrNotFound when the merchant is not (yet) in the read
// model; ErrSecretsKey, ErrSealedSecret or errNoSecretsKey when its secret
// does not open.
func (w *Worker) endpoint(ctx context.Context, merchantID string) (endpoint, error) {
	ep := endpoint{merchantID: merchantID}
	var sealed string
	err := w.db.Read.QueryRowContext(ctx, w.db.Q(`SELECT webhook_url, webhook_secret, webhook_secret_sealed FROM merchants WHERE merchant_id = ?`), merchantID).
		Scan(&ep.url, &ep.secret, &sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return ep, fmt.Errorf("merchant %s: %w", merchantID, domain.ErrNotFound)
	}
	if err != nil {
		return ep, fmt.Errorf("merchant %s: %w", merchantID, err)
	}
	if sealed != "" {
		if w.cfg.Secrets == nil {
			return ep, fmt.Errorf("merchant %s: %w", merchantID, errNoSecretsKey)
		}
		if ep.secret, err = w.cfg.Secrets.Open(merchantID, sealed); err != nil {
			return ep, fmt.Errorf("merchant %s: %w", merchantID, err)
		}
	}
	return ep, nil
}

func (w *Worker) send(ctx context.Context, j job) outcome {
	ep, err := w.endpoint(ctx, j.merchantID)
	if err != nil {
		if !errors.Is(err, domain.ErrNotFound) && ctx.Err() == nil {
			w.cfg.Logger.Error("webhooks: merchant endpoint", "delivery_id", j.id, "err", err)
		}
		return outcome{job: j, kind: notReady}
	}
	if ep.url == "" {
		return outcome{job: j, kind: noEndpoint}
	}
	// A leader that was paused past its lease sends nothing it read before:
	// the process that took over sends it (issue #27).
	if !sqldb.Held(ctx) {
		return outcome{job: j, kind: notReady}
	}
	a, retryAfter := w.post(ctx, ep, j.eventType, j.id, j.body)
	return outcome{job: j, kind: sent, attempt: a, retryAfter: retryAfter}
}

// post makes one attempt. It returns the attempt and the response's
// Retry-After (0 when none).
func (w *Worker) post(ctx context.Context, ep endpoint, eventType, deliveryID string, body []byte) (Attempt, time.Duration) {
	a := Attempt{At: w.cfg.Now()}
	if err := domain.ValidateWebhookURL(ep.url); err != nil {
		a.Error = "webhook_url is not an absolute http or https URL"
		return a, 0
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.AttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(leaseChecked(ctx), http.MethodPost, ep.url, bytes.NewReader(body))
	if err != nil {
		a.Error = "webhook_url is not a valid URL"
		return a, 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", w.cfg.UserAgent)
	req.Header.Set(HeaderEvent, eventType)
	req.Header.Set(HeaderSignature, Sign(body, ep.secret))
	req.Header.Set(HeaderDelivery, deliveryID)
	start := time.Now()
	resp, err := w.cfg.Client.Do(req)
	if err != nil {
		a.LatencyMs = time.Since(start).Milliseconds()
		a.Error = attemptError(err, w.cfg.AttemptTimeout)
		if ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			w.cfg.Logger.Info("webhooks: attempt failed", "delivery_id", deliveryID, "merchant_id", ep.merchantID,
				"shown", a.Error, "err", err)
		}
		return a, 0
	}
	prefix, readErr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if readErr == nil {
		_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
	}
	resp.Body.Close()
	a.LatencyMs = time.Since(start).Milliseconds()
	a.StatusCode = resp.StatusCode
	a.ResponseBody = cleanText(prefix)
	switch {
	case a.OK():
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		a.Error = "redirect not followed: " + resp.Status
	default:
		a.Error = bounded("HTTP " + resp.Status)
	}
	return a, parseRetryAfter(resp.Header.Get("Retry-After"), a.At)
}

// attemptError is what the merchant is shown of an attempt that got no
// response: a category, never a resolved address, a port, the resolver's
// address or Go's error text (which has them all); the operator's log has
// the details. The categories stand in the stored delivery log and in
// POST /v1/webhooks/test's answer.
func attemptError(err error, timeout time.Duration) string {
	var dnsErr *net.DNSError
	var netErr net.Error
	var recordErr tls.RecordHeaderError
	var certErr *tls.CertificateVerificationError
	var alert tls.AlertError
	switch {
	case errors.Is(err, ErrForbiddenAddress):
		return "refused: private address"
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return "dns: host not found"
		}
		return "dns: lookup failed"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Sprintf("timeout: no response within %s", timeout)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed by the endpoint"
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return "network unreachable"
	case errors.As(err, &certErr):
		return "tls: certificate not trusted"
	case errors.As(err, &recordErr), errors.As(err, &alert), errors.Is(err, http.ErrSchemeMismatch):
		return "tls: handshake failed"
	}
	return "connection failed"
}

func bounded(s string) string {
	if len(s) > maxErrorText {
		s = s[:maxErrorText]
	}
	return cleanText([]byte(s))
}

// cleanText makes bytes storable as TEXT on both databases: valid UTF-8
// without NUL.
func cleanText(b []byte) string {
	return strings.ReplaceAll(strings.ToValidUTF8(string(b), "\uFFFD"), "\x00", "")
}

// record writes the outcomes in one transaction (one fsync for a batch).
func (w *Worker) record(ctx context.Context, outs []outcome) error {
	tx, err := w.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	nowMs := w.cfg.Now().UnixMilli()
	var statuses []string // of the attempts, counted once committed
	for _, o := range outs {
		switch o.kind {
		case discarded:
			continue
		case notReady:
			_, err = tx.ExecContext(ctx, w.db.Q(`UPDATE webhook_deliveries SET next_attempt_at = ?, updated_at = ? WHERE delivery_id = ? AND status = 'pending'`),
				w.cfg.Now().Add(notReadyDelay).UnixMilli(), nowMs, o.job.id)
		case noEndpoint:
			_, err = tx.ExecContext(ctx, w.db.Q(`UPDATE webhook_deliveries SET status = ?, next_attempt_at = NULL, updated_at = ? WHERE delivery_id = ? AND status = 'pending'`),
				StatusNoEndpoint, nowMs, o.job.id)
		case sent:
			var status string
			status, err = w.recordAttempt(ctx, tx, o, nowMs)
			statuses = append(statuses, status)
		}
		if err != nil {
			return fmt.Errorf("webhooks: record %s: %w", o.job.id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	for _, status := range statuses {
		w.attempts.count(status)
	}
	return nil
}

// recordAttempt records one attempt and returns the delivery's new status.
func (w *Worker) recordAttempt(ctx context.Context, tx *sql.Tx, o outcome, nowMs int64) (string, error) {
	a := o.attempt
	status, next := StatusPending, sql.NullInt64{}
	switch {
	case a.OK():
		status = StatusDelivered
	case a.StatusCode == http.StatusGone:
		status = StatusGone
	default:
		if at, ok := nextAttempt(o.job.attempts+1, o.job.createdAt, a.At, o.retryAfter, w.cfg.Jitter); ok {
			next = sql.NullInt64{Int64: at.UnixMilli(), Valid: true}
		} else {
			status = StatusFailed
		}
	}
	var n int
	if err := tx.QueryRowContext(ctx, w.db.Q(`UPDATE webhook_deliveries SET attempt_count = attempt_count + 1, status = ?, next_attempt_at = ?, updated_at = ?
		WHERE delivery_id = ? RETURNING attempt_count`), status, next, nowMs, o.job.id).Scan(&n); err != nil {
		return "", err
	}
	var code sql.NullInt64
	if a.StatusCode != 0 {
		code = sql.NullInt64{Int64: int64(a.StatusCode), Valid: true}
	}
	_, err := tx.ExecContext(ctx, w.db.Q(`INSERT INTO webhook_attempts (delivery_id, attempt, at, status_code, error, latency_ms, response_body)
		VALUES (?, ?, ?, ?, ?, ?, ?)`), o.job.id, n, a.At.UnixMilli(), code, a.Error, a.LatencyMs, a.ResponseBody)
	return status, err
}

// SendTest POSTs a signed test event ({"type":"test",…}) to the merchant's
// current webhook_url once, synchronously, and returns the attempt: a
// failed attempt is not an error (see Attempt.OK and Attempt.Error). It
// goes through the same client, address check and timeout as deliveries
// and is not stored or retried.
// Errors: domain.ErrNotFound (merchant), domain.ErrValidation (no webhook_url).
func (w *Worker) SendTest(ctx context.Context, merchantID string) (Attempt, error) {
	ep, err := w.endpoint(ctx, merchantID)
	if err != nil {
		return Attempt{}, err
	}
	if ep.url == "" {
		return Attempt{}, fmt.Errorf("%w: the account has no webhook_url", domain.ErrValidation)
	}
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return Attempt{}, err
	}
	id := "whd_test_" + hex.EncodeToString(b)
	raw, err := json.Marshal(body{Type: EventTest, CreatedAt: w.cfg.Now().UnixMilli(), Data: testData{Object: "test", ID: id, MerchantID: merchantID,
		Message: "A test event from Accept Crypto HERE. Verify its signature as you would an invoice event."}})
	if err != nil {
		return Attempt{}, err
	}
	a, _ := w.post(ctx, ep, EventTest, id, raw)
	a.N = 1
	return a, nil
}

type testData struct {
	Object     string `json:"object"`
	ID         string `json:"id"`
	MerchantID string `json:"merchant_id"`
	Message    string `json:"message"`
}

// leaseChecked checks the lease again when the transport has the connection
// the request is about to be written on, and closes it when the lease is
// lost: a leader paused between send's check and the write sends nothing
// when it wakes (issue #27).
func leaseChecked(ctx context.Context) context.Context {
	if sqldb.FenceOf(ctx) == nil {
		return ctx
	}
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(c httptrace.GotConnInfo) {
		if !sqldb.Held(ctx) {
			_ = c.Conn.Close()
		}
	}})
}
