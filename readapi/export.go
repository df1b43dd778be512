package readapi

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
)

// The CSV exports' reads (issue #20): each walks one query's rows and hands
// them to fn one at a time, oldest first, so an export of any size holds
// one row in memory. A zero from or to leaves that end of the period open.

// ExportInvoices calls fn for each of the merchant's invoices created in
// [from, to). Payments are not attached: the export has one row per invoice.
func (s *SQL) ExportInvoices(ctx context.Context, merchantID string, from, to time.Time, fn func(Invoice) error) error {
	where, args := period("created_at", from, to)
	rows, err := s.db.Read.QueryContext(ctx, s.db.Q(`SELECT `+invoiceColumns+` FROM invoices WHERE merchant_id = ?`+where+` ORDER BY invoice_id`),
		append([]any{merchantID}, args...)...)
	if err != nil {
		return fmt.Errorf("export invoices: %w", err)
	}
	return each(rows, scanInvoice, fn)
}

// ExportPayouts calls fn for each of the merchant's payouts (instant ones,
// withdrawals, refunds) created in [from, to).
func (s *SQL) ExportPayouts(ctx context.Context, merchantID string, from, to time.Time, fn func(Payout) error) error {
	where, args := period("created_at", from, to)
	rows, err := s.db.Read.QueryContext(ctx, s.db.Q(`SELECT `+payoutColumns+` FROM payouts WHERE merchant_id = ?`+where+` ORDER BY payout_id`),
		append([]any{merchantID}, args...)...)
	if err != nil {
		return fmt.Errorf("export payouts: %w", err)
	}
	return each(rows, scanPayout, fn)
}

// LedgerEntry is one posting to one of the merchant's accounts: what an
// accountant reconciles the balances with.
type LedgerEntry struct {
	Seq        int64 // the event feed's cursor (GET /v1/events)
	RecordedAt time.Time
	EventID    string
	EventType  string
	Stream     string // the invoice or payout the event belongs to
	Account    string // available, pending or reserved
	Asset      string
	Amount     domain.Amount // signed: a credit is positive
}

// ExportLedger calls fn for each posting to the merchant's own accounts in
// the events recorded in [from, to), in log order. The postings to the
// gateway's accounts (fees, the chain) in the same events are left out:
// their sum is the other side of the merchant's.
func (s *SQL) ExportLedger(ctx context.Context, merchantID string, from, to time.Time, fn func(LedgerEntry) error) error {
	prefix := "merchant:" + merchantID + ":"
	err := s.feedEvents(ctx, merchantID, 0, 0, from, to, func(ev FeedEvent) error {
		// Only money events carry postings; the rest decode to none.
		var body struct {
			Postings []domain.Posting `json:"postings"`
		}
		if err := json.Unmarshal(ev.Data, &body); err != nil {
			return fmt.Errorf("event %s: %w", ev.EventID, err)
		}
		e := LedgerEntry{Seq: ev.Seq, RecordedAt: ev.RecordedAt, EventID: ev.EventID, EventType: ev.Type, Stream: ev.Stream}
		for _, p := range body.Postings {
			account, ok := strings.CutPrefix(p.Account, prefix)
			if !ok {
				continue
			}
			e.Account, e.Asset, e.Amount = account, p.Asset, p.Amount
			if err := fn(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("export ledger: %w", err)
	}
	return nil
}

// period is the condition on column (Unix milliseconds) of the rows in
// [from, to), each bound only where it is set, and its arguments.
func period(column string, from, to time.Time) (string, []any) {
	return between(column, from.UnixMilli(), to.UnixMilli(), !from.IsZero(), !to.IsZero())
}

// between is the condition on column of the rows in [lo, hi), each bound
// only where it is set (has), and its arguments.
func between(column string, lo, hi any, hasLo, hasHi bool) (string, []any) {
	var q string
	var args []any
	if hasLo {
		q += ` AND ` + column + ` >= ?`
		args = append(args, lo)
	}
	if hasHi {
		q += ` AND ` + column + ` < ?`
		args = append(args, hi)
	}
	return q, args
}

// each scans every row and hands it to fn; it closes rows.
func each[T any](rows *sql.Rows, scan func(scanner) (T, error), fn func(T) error) error {
	defer rows.Close()
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return err
		}
		if err := fn(v); err != nil {
			return err
		}
	}
	return rows.Err()
}
