package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// report is picload's result. The flat fields before Payments keep the
// names of picload's first version.
type report struct {
	Requests     int     `json:"requests"` // invoices attempted
	Failures     int     `json:"failures"`
	Clients      int     `json:"clients"`
	Seconds      float64 `json:"seconds"`
	InvoicesPerS float64 `json:"invoices_per_s"`
	P50Ms        float64 `json:"p50_ms"`
	P99Ms        float64 `json:"p99_ms"`
	P999Ms       float64 `json:"p999_ms"`
	MaxMs        float64 `json:"max_ms"`

	RatePerS    float64        `json:"rate_per_s"` // asked for; 0: as fast as possible
	Merchants   int            `json:"merchants"`
	Created     int            `json:"created"`
	StatusCodes map[string]int `json:"status_codes"`
	LastError   string         `json:"last_error,omitempty"`

	Payments        int      `json:"payments"`
	PaymentFailures int      `json:"payment_failures"`
	PaymentsPerS    float64  `json:"payments_per_s"`
	PayMs           *latency `json:"pay_ms,omitempty"`
	Confirmed       int      `json:"confirmed"`
	MineErrors      int      `json:"mine_errors"`

	ProjectionLagMs   *latency `json:"projection_lag_ms,omitempty"` // over the samples
	LagSamples        int      `json:"lag_samples"`
	LagSource         string   `json:"lag_source,omitempty"` // metrics or readyz
	WebhookQueueDepth float64  `json:"webhook_queue_depth_max"`

	Webhooks *webhookStats `json:"webhooks,omitempty"`
}

// latency is a distribution in milliseconds.
type latency struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// webhookStats is what the receiver saw, compared with the gateway's delivery log.
type webhookStats struct {
	Received          int `json:"received"`            // distinct delivery ids
	Arrivals          int `json:"arrivals"`            // requests, duplicates included
	DuplicateIDs      int `json:"duplicate_ids"`       // ids that arrived more than once
	InLog             int `json:"in_log"`              // deliveries in GET /v1/webhooks/deliveries
	MissingFromLog    int `json:"missing_from_log"`    // in the log, never received
	MissingForPayment int `json:"missing_for_payment"` // confirming or paid webhook of a paid invoice never received
	NotInLog          int `json:"not_in_log"`          // received, but not in the log
	BadSignatures     int `json:"bad_signatures"`
	Malformed         int `json:"malformed"`
	// EventToReceiptMs: from the status event (the body's created_at) to the receiver.
	EventToReceiptMs *latency `json:"event_to_receipt_ms,omitempty"`
	// PayToPaidMs: from sending the payment to receiving invoice.paid;
	// includes the wait for the next block (-mine-every).
	PayToPaidMs *latency `json:"pay_to_paid_ms,omitempty"`
	// BlockToPaidMs: from asking for the block that confirmed the payment
	// to receiving invoice.paid.
	BlockToPaidMs *latency `json:"block_to_paid_ms,omitempty"`
	// PayToConfirmingMs: from sending the payment to receiving invoice.confirming.
	PayToConfirmingMs *latency `json:"pay_to_confirming_ms,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// quantile of sorted values: the smallest value with at least q of them at or below it.
func quantile(sorted []float64, q float64) float64 {
	i := int(float64(len(sorted))*q+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func dist(values []float64) *latency {
	if len(values) == 0 {
		return nil
	}
	sort.Float64s(values)
	return &latency{N: len(values), P50: quantile(values, 0.5), P99: quantile(values, 0.99), P999: quantile(values, 0.999), Max: values[len(values)-1]}
}

func durations(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = ms(d)
	}
	return out
}

// fill copies the load's figures into the report.
func (s *state) fill(r *report, payEndS float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.Created, r.Failures = len(s.createLat), s.createFail
	r.Requests = r.Created + r.Failures
	for code, n := range s.codes {
		r.StatusCodes[code] = n
	}
	if r.Seconds > 0 {
		r.InvoicesPerS = float64(r.Created) / r.Seconds
	}
	if d := dist(durations(s.createLat)); d != nil {
		r.P50Ms, r.P99Ms, r.P999Ms, r.MaxMs = d.P50, d.P99, d.P999, d.Max
	}
	r.Payments, r.PaymentFailures = len(s.payLat), s.payFail
	if payEndS > 0 {
		r.PaymentsPerS = float64(r.Payments) / payEndS
	}
	r.PayMs = dist(durations(s.payLat))
	for id := range s.payStart {
		if _, ok := s.mineStart[id]; ok {
			r.Confirmed++
		}
	}
	r.MineErrors = s.mineErrors
	lags := make([]float64, len(s.lagSamples))
	for i, v := range s.lagSamples {
		lags[i] = v * 1000
	}
	r.LagSamples, r.LagSource = len(lags), s.lagSource
	r.ProjectionLagMs = dist(lags)
	r.WebhookQueueDepth = s.queueMax
	if e, ok := s.lastErr.Load().(string); ok {
		r.LastError = e
	}
}

var behindBy = regexp.MustCompile(`behind by ([0-9a-z.]+)`)

// sampleLag reads picd_projection_lag_seconds (and the webhook queue depth)
// from the metrics (g.metricsURL) until ctx ends; without them it reads /readyz, whose
// "behind by" is coarse (whole seconds, only past 30 s).
func (s *state) sampleLag(ctx context.Context, g *gw, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if lag, queue, ok := readMetrics(ctx, g); ok {
			s.mu.Lock()
			s.lagSamples, s.lagSource = append(s.lagSamples, lag), "metrics"
			s.queueMax = max(s.queueMax, queue)
			s.mu.Unlock()
			continue
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", g.url+"/readyz", nil)
		resp, err := g.client.Do(req)
		if err != nil {
			continue
		}
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		lag := 0.0
		if m := behindBy.FindStringSubmatch(string(raw)); m != nil {
			if d, err := time.ParseDuration(m[1]); err == nil {
				lag = d.Seconds()
			}
		}
		s.mu.Lock()
		s.lagSamples, s.lagSource = append(s.lagSamples, lag), "readyz"
		s.mu.Unlock()
	}
}

func readMetrics(ctx context.Context, g *gw) (lag, queue float64, ok bool) {
	if g.metricsURL == "" {
		return 0, 0, false
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", g.metricsURL, nil)
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, 0, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, 0, false
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	found := false
	for sc.Scan() {
		line := sc.Text()
		if v, has := strings.CutPrefix(line, "picd_projection_lag_seconds "); has {
			lag, _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
			found = true
		} else if v, has := strings.CutPrefix(line, "picd_webhook_queue_depth "); has {
			queue, _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return lag, queue, found
}

// webhookReport compares the receiver's arrivals with the delivery log and
// the payments made.
func webhookReport(ctx context.Context, g *gw, merchants []merchant, rc *receiver, s *state) (*webhookStats, error) {
	arrivals, badSig, malformed := rc.snapshot()
	w := &webhookStats{Received: len(arrivals), BadSignatures: badSig, Malformed: malformed}
	logged := map[string]bool{}
	for _, m := range merchants {
		ids, err := deliveryLog(ctx, g, m.key)
		if err != nil {
			return w, err
		}
		for _, id := range ids {
			logged[id] = true
		}
	}
	w.InLog = len(logged)
	var eventLat []float64
	for id, a := range arrivals {
		w.Arrivals += a.count
		if a.count > 1 {
			w.DuplicateIDs++
		}
		if !logged[id] {
			w.NotInLog++
		}
		eventLat = append(eventLat, max(ms(a.first.Sub(a.createdAt)), 0))
	}
	for id := range logged {
		if _, ok := arrivals[id]; !ok {
			w.MissingFromLog++
		}
	}
	w.EventToReceiptMs = dist(eventLat)
	s.mu.Lock()
	defer s.mu.Unlock()
	var payToPaid, blockToPaid, payToConfirming []float64
	for id, paidAt := range s.payStart {
		if t, ok := rc.arrivedAt(id, "invoice.confirming"); ok {
			payToConfirming = append(payToConfirming, max(ms(t.Sub(paidAt)), 0))
		} else {
			w.MissingForPayment++
		}
		t, ok := rc.arrivedAt(id, "invoice.paid")
		if !ok {
			w.MissingForPayment++
			continue
		}
		payToPaid = append(payToPaid, max(ms(t.Sub(paidAt)), 0))
		if b, ok := s.mineStart[id]; ok {
			blockToPaid = append(blockToPaid, max(ms(t.Sub(b)), 0))
		}
	}
	w.PayToPaidMs, w.BlockToPaidMs, w.PayToConfirmingMs = dist(payToPaid), dist(blockToPaid), dist(payToConfirming)
	return w, nil
}

// deliveryLog pages through GET /v1/webhooks/deliveries.
func deliveryLog(ctx context.Context, g *gw, key string) ([]string, error) {
	var ids []string
	after := ""
	for page := 0; page < 100_000; page++ {
		var p struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
			HasMore bool `json:"has_more"`
		}
		path := "/v1/webhooks/deliveries?limit=100"
		if after != "" {
			path += "&starting_after=" + after
		}
		if _, err := g.call(ctx, "GET", path, key, nil, &p); err != nil {
			return ids, fmt.Errorf("delivery log: %w", err)
		}
		for _, d := range p.Data {
			ids = append(ids, d.ID)
		}
		if !p.HasMore || len(p.Data) == 0 {
			return ids, nil
		}
		after = p.Data[len(p.Data)-1].ID
	}
	return ids, fmt.Errorf("delivery log: too many pages")
}

// problems is an error when the run shows a failure.
func (r *report) problems() error {
	var p []string
	if r.Failures > 0 {
		p = append(p, fmt.Sprintf("%d invoice requests failed", r.Failures))
	}
	if r.PaymentFailures > 0 {
		p = append(p, fmt.Sprintf("%d payments failed", r.PaymentFailures))
	}
	if r.Payments > r.Confirmed {
		p = append(p, fmt.Sprintf("%d payments never confirmed", r.Payments-r.Confirmed))
	}
	if w := r.Webhooks; w != nil {
		if n := w.MissingFromLog + w.MissingForPayment; n > 0 {
			p = append(p, fmt.Sprintf("webhooks missing: %d in the log, %d for payments", w.MissingFromLog, w.MissingForPayment))
		}
		if w.DuplicateIDs > 0 {
			p = append(p, fmt.Sprintf("%d webhook delivery ids arrived more than once", w.DuplicateIDs))
		}
		if w.BadSignatures+w.Malformed+w.NotInLog > 0 {
			p = append(p, fmt.Sprintf("webhooks: %d bad signatures, %d malformed, %d not in the log", w.BadSignatures, w.Malformed, w.NotInLog))
		}
	}
	if len(p) == 0 {
		return nil
	}
	if r.LastError != "" {
		p = append(p, "last error: "+r.LastError)
	}
	return fmt.Errorf("%s", strings.Join(p, "; "))
}

func (l *latency) row() string {
	if l == nil {
		return "-"
	}
	return fmt.Sprintf("p50 %.1f  p99 %.1f  p999 %.1f  max %.1f  (n=%d)", l.P50, l.P99, l.P999, l.Max, l.N)
}

// printTable writes the report for people.
func (r *report) printTable(w io.Writer) {
	row := func(k, v string) { fmt.Fprintf(w, "%-34s %s\n", k, v) }
	rate := "as fast as possible"
	if r.RatePerS > 0 {
		rate = fmt.Sprintf("%.0f/s", r.RatePerS)
	}
	row("invoices created", fmt.Sprintf("%d of %d (%d failed) in %.2f s, %d clients, %d merchants, rate %s",
		r.Created, r.Requests, r.Failures, r.Seconds, r.Clients, r.Merchants, rate))
	row("throughput", fmt.Sprintf("%.0f invoices/s", r.InvoicesPerS))
	row("create latency ms", fmt.Sprintf("p50 %.1f  p99 %.1f  p999 %.1f  max %.1f", r.P50Ms, r.P99Ms, r.P999Ms, r.MaxMs))
	codes := make([]string, 0, len(r.StatusCodes))
	for c, n := range r.StatusCodes {
		codes = append(codes, fmt.Sprintf("%s:%d", c, n))
	}
	sort.Strings(codes)
	row("status codes", strings.Join(codes, " "))
	if r.Payments+r.PaymentFailures > 0 {
		row("payments", fmt.Sprintf("%d (%d failed), %.0f/s, %d confirmed, %d mine errors", r.Payments, r.PaymentFailures, r.PaymentsPerS, r.Confirmed, r.MineErrors))
		row("pay latency ms", r.PayMs.row())
	}
	row("projection lag ms ("+r.LagSource+")", r.ProjectionLagMs.row())
	if w := r.Webhooks; w != nil {
		row("webhook queue depth (max)", fmt.Sprintf("%.0f", r.WebhookQueueDepth))
		row("webhooks received", fmt.Sprintf("%d ids, %d requests, %d in the log", w.Received, w.Arrivals, w.InLog))
		row("webhooks duplicated / missing", fmt.Sprintf("%d duplicate ids; missing %d from the log, %d for payments; %d not in the log",
			w.DuplicateIDs, w.MissingFromLog, w.MissingForPayment, w.NotInLog))
		row("webhook signatures", fmt.Sprintf("%d bad, %d malformed", w.BadSignatures, w.Malformed))
		row("webhook event→receipt ms", w.EventToReceiptMs.row())
		row("webhook pay→invoice.paid ms", w.PayToPaidMs.row())
		row("webhook block→invoice.paid ms", w.BlockToPaidMs.row())
		row("webhook pay→invoice.confirming ms", w.PayToConfirmingMs.row())
	}
	if r.LastError != "" {
		row("last error", r.LastError)
	}
}
