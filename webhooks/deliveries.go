package webhooks

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
)

// Delivery statuses.
const (
	// StatusPending: not yet acknowledged; next_attempt_at says when it goes.
	StatusPending = "pending"
	// StatusDelivered: the endpoint answered 2xx.
	StatusDelivered = "delivered"
	// StatusFailed: no 2xx within three days of attempts.
	StatusFailed = "failed"
	// StatusGone: the endpoint answered 410 Gone; no further attempts.
	StatusGone = "gone"
	// StatusNoEndpoint: the merchant had no webhook_url when it was due.
	StatusNoEndpoint = "no_endpoint"
)

// ParseStatus accepts a delivery status filter. Errors: domain.ErrValidation.
func ParseStatus(s string) (string, error) {
	switch s {
	case StatusPending, StatusDelivered, StatusFailed, StatusGone, StatusNoEndpoint:
		return s, nil
	}
	return "", fmt.Errorf("%w: status must be one of pending, delivered, failed, gone, no_endpoint", domain.ErrValidation)
}

// Delivery is one webhook (one status event of one invoice) and its attempts.
type Delivery struct {
	ID            string // whd_…, the x-payincrypto-delivery header
	MerchantID    string
	InvoiceID     string
	EventType     string // invoice.paid, …
	EventID       string // the log event it announces
	Status        string
	Body          []byte // exactly the bytes sent (and signed) on every attempt
	AttemptCount  int
	NextAttemptAt *time.Time // nil unless pending
	CreatedAt     time.Time
	UpdatedAt     time.Time
	Attempts      []Attempt // oldest first
}

// Attempt is one POST of a delivery (or of a test event).
type Attempt struct {
	N            int // 1-based
	At           time.Time
	StatusCode   int    // 0 when no response arrived
	Error        string // why the attempt failed ("" on 2xx)
	LatencyMs    int64
	ResponseBody string // at most the first 1 KiB, as valid UTF-8
}

// OK reports whether the endpoint acknowledged the attempt (2xx).
func (a Attempt) OK() bool { return a.StatusCode >= 200 && a.StatusCode < 300 }

// DeliveryJSON is a delivery as GET /v1/webhooks/deliveries shows it.
type DeliveryJSON struct {
	ID            string        `json:"id"`
	Object        string        `json:"object"` // "webhook_delivery"
	EventType     string        `json:"event_type"`
	InvoiceID     string        `json:"invoice_id"`
	Status        string        `json:"status"`
	Attempts      []AttemptJSON `json:"attempts"`
	NextAttemptAt *int64        `json:"next_attempt_at"` // Unix ms; null unless pending
	CreatedAt     int64         `json:"created_at"`      // Unix ms
}

// AttemptJSON is one attempt as the API shows it.
type AttemptJSON struct {
	At           int64   `json:"at"`          // Unix ms
	StatusCode   *int    `json:"status_code"` // null when no response arrived
	Error        *string `json:"error"`       // null on 2xx
	LatencyMs    int64   `json:"latency_ms"`
	ResponseBody string  `json:"response_body"` // first 1 KiB
}

// JSON renders the delivery for the API.
func (d Delivery) JSON() DeliveryJSON {
	out := DeliveryJSON{ID: d.ID, Object: "webhook_delivery", EventType: d.EventType, InvoiceID: d.InvoiceID, Status: d.Status,
		Attempts: make([]AttemptJSON, 0, len(d.Attempts)), CreatedAt: d.CreatedAt.UnixMilli()}
	if d.NextAttemptAt != nil {
		ms := d.NextAttemptAt.UnixMilli()
		out.NextAttemptAt = &ms
	}
	for _, a := range d.Attempts {
		out.Attempts = append(out.Attempts, a.JSON())
	}
	return out
}

// JSON renders the attempt for the API.
func (a Attempt) JSON() AttemptJSON {
	out := AttemptJSON{At: a.At.UnixMilli(), LatencyMs: a.LatencyMs, ResponseBody: a.ResponseBody}
	if a.StatusCode != 0 {
		code := a.StatusCode
		out.StatusCode = &code
	}
	if a.Error != "" {
		e := a.Error
		out.Error = &e
	}
	return out
}

// DeliveryFilter selects a page of ListDeliveries.
type DeliveryFilter struct {
	InvoiceID     string // "" for all
	Status        string // "" for all, else one of the Status constants
	Limit         int    // 1..100; 0 means 20
	StartingAfter string // a delivery id of the previous page's last item
}

const deliveryColumns = `delivery_id, merchant_id, invoice_id, event_type, event_id, status, body, attempt_count, next_attempt_at, created_at, updated_at`

type rowScanner interface{ Scan(dest ...any) error }

func scanDelivery(row rowScanner) (Delivery, error) {
	var d Delivery
	var next sql.NullInt64
	var created, updated int64
	if err := row.Scan(&d.ID, &d.MerchantID, &d.InvoiceID, &d.EventType, &d.EventID, &d.Status, &d.Body, &d.AttemptCount,
		&next, &created, &updated); err != nil {
		return Delivery{}, err
	}
	if next.Valid {
		t := time.UnixMilli(next.Int64).UTC()
		d.NextAttemptAt = &t
	}
	d.CreatedAt, d.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return d, nil
}

// DeliveryByID returns one of the merchant's deliveries with its attempts.
// Errors: domain.ErrNotFound (also for another merchant's delivery).
func (w *Worker) DeliveryByID(ctx context.Context, merchantID, id string) (Delivery, error) {
	d, err := scanDelivery(w.db.Read.QueryRowContext(ctx, w.db.Q(`SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE delivery_id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) || (err == nil && d.MerchantID != merchantID) {
		return Delivery{}, fmt.Errorf("webhook delivery %s: %w", id, domain.ErrNotFound)
	}
	if err != nil {
		return Delivery{}, fmt.Errorf("webhook delivery %s: %w", id, err)
	}
	page := []Delivery{d}
	if err := w.attachAttempts(ctx, page); err != nil {
		return Delivery{}, err
	}
	return page[0], nil
}

// ListDeliveries returns a page of the merchant's deliveries, newest first
// (by log order), each with its attempts, and whether more follow.
// Errors: domain.ErrValidation (limit, status), domain.ErrNotFound
// (starting_after is not one of the merchant's deliveries).
func (w *Worker) ListDeliveries(ctx context.Context, merchantID string, f DeliveryFilter) ([]Delivery, bool, error) {
	if f.Limit == 0 {
		f.Limit = 20
	}
	if f.Limit < 1 || f.Limit > 100 {
		return nil, false, fmt.Errorf("%w: limit must be between 1 and 100", domain.ErrValidation)
	}
	q := `SELECT ` + deliveryColumns + ` FROM webhook_deliveries WHERE merchant_id = ?`
	args := []any{merchantID}
	if f.InvoiceID != "" {
		q += ` AND invoice_id = ?`
		args = append(args, f.InvoiceID)
	}
	if f.Status != "" {
		if _, err := ParseStatus(f.Status); err != nil {
			return nil, false, err
		}
		q += ` AND status = ?`
		args = append(args, f.Status)
	}
	if f.StartingAfter != "" {
		var seq int64
		var owner string
		err := w.db.Read.QueryRowContext(ctx, w.db.Q(`SELECT seq, merchant_id FROM webhook_deliveries WHERE delivery_id = ?`), f.StartingAfter).Scan(&seq, &owner)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && owner != merchantID) {
			return nil, false, fmt.Errorf("starting_after %s: %w", f.StartingAfter, domain.ErrNotFound)
		}
		if err != nil {
			return nil, false, fmt.Errorf("list deliveries: %w", err)
		}
		q += ` AND seq < ?`
		args = append(args, seq)
	}
	q += ` ORDER BY seq DESC LIMIT ?`
	args = append(args, f.Limit+1)
	rows, err := w.db.Read.QueryContext(ctx, w.db.Q(q), args...)
	if err != nil {
		return nil, false, fmt.Errorf("list deliveries: %w", err)
	}
	defer rows.Close()
	var page []Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, false, fmt.Errorf("list deliveries: %w", err)
		}
		page = append(page, d)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("list deliveries: %w", err)
	}
	more := len(page) > f.Limit
	if more {
		page = page[:f.Limit]
	}
	if err := w.attachAttempts(ctx, page); err != nil {
		return nil, false, err
	}
	return page, more, nil
}

func (w *Worker) attachAttempts(ctx context.Context, page []Delivery) error {
	if len(page) == 0 {
		return nil
	}
	index := make(map[string]int, len(page))
	args := make([]any, len(page))
	for i, d := range page {
		index[d.ID] = i
		args[i] = d.ID
	}
	rows, err := w.db.Read.QueryContext(ctx, w.db.Q(`SELECT delivery_id, attempt, at, status_code, error, latency_ms, response_body
		FROM webhook_attempts WHERE delivery_id IN (`+placeholders(len(args))+`) ORDER BY delivery_id, attempt`), args...)
	if err != nil {
		return fmt.Errorf("webhook attempts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var a Attempt
		var at int64
		var code sql.NullInt64
		if err := rows.Scan(&id, &a.N, &at, &code, &a.Error, &a.LatencyMs, &a.ResponseBody); err != nil {
			return fmt.Errorf("webhook attempts: %w", err)
		}
		a.At, a.StatusCode = time.UnixMilli(at).UTC(), int(code.Int64)
		d := &page[index[id]]
		d.Attempts = append(d.Attempts, a)
	}
	return rows.Err()
}

// Retry makes one of the merchant's deliveries due now, whatever its
// status (failed, gone, no_endpoint, pending, or delivered for a resend):
// it goes back to pending and is sent on the worker's next pass, still
// after any earlier pending delivery of the same invoice. When that attempt
// fails the schedule continues only inside the delivery's three-day window;
// past it, one failed attempt makes it failed again.
// Errors: domain.ErrNotFound (also for another merchant's delivery).
func (w *Worker) Retry(ctx context.Context, merchantID, id string) (Delivery, error) {
	nowMs := w.cfg.Now().UnixMilli()
	res, err := w.db.Write.ExecContext(ctx, w.db.Q(`UPDATE webhook_deliveries SET status = ?, next_attempt_at = ?, updated_at = ?
		WHERE delivery_id = ? AND merchant_id = ?`), StatusPending, nowMs, nowMs, id, merchantID)
	if err != nil {
		return Delivery{}, fmt.Errorf("retry webhook delivery %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return Delivery{}, fmt.Errorf("retry webhook delivery %s: %w", id, err)
	} else if n == 0 {
		return Delivery{}, fmt.Errorf("webhook delivery %s: %w", id, domain.ErrNotFound)
	}
	w.Notify()
	return w.DeliveryByID(ctx, merchantID, id)
}

func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}
