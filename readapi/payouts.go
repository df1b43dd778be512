package readapi

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

// Payout is a payout as the API shows it.
type Payout struct {
	ID              string
	MerchantID      string
	Asset           string
	Kind            domain.PayoutKind
	Amount          domain.Amount
	ToAddress       string
	Status          domain.PayoutStatus
	TxID            string
	NetworkFee      *domain.Amount // nil until signed
	Sent            *domain.Amount
	SourceInvoiceID string
	FailureReason   string
	RequestStream   string
	RequestVersion  int64
	CreatedAt       time.Time
	SentAt          *time.Time
	ConfirmedAt     *time.Time
	FailedAt        *time.Time
	UpdatedAt       time.Time
}

// PayoutFilter selects a page of a merchant's payouts, newest first.
type PayoutFilter struct {
	Status        domain.PayoutStatus // "" for all
	Limit         int                 // 1..100
	StartingAfter string
	// RefundsOf lists only the refunds of this invoice ("" for all payouts).
	RefundsOf string
}

const payoutColumns = `payout_id, merchant_id, asset, kind, amount, to_address, status, txid, network_fee, sent_amount,
	source_invoice_id, failure_reason, request_stream, request_version, created_at, sent_at, confirmed_at, failed_at, updated_at`

func scanPayout(row scanner) (Payout, error) {
	var p Payout
	var kind, status, amount, fee, sent string
	var created, updated int64
	var sentAt, confirmedAt, failedAt sql.NullInt64
	err := row.Scan(&p.ID, &p.MerchantID, &p.Asset, &kind, &amount, &p.ToAddress, &status, &p.TxID, &fee, &sent,
		&p.SourceInvoiceID, &p.FailureReason, &p.RequestStream, &p.RequestVersion, &created, &sentAt, &confirmedAt, &failedAt, &updated)
	if err != nil {
		return Payout{}, err
	}
	p.Kind, p.Status, p.Amount = domain.PayoutKind(kind), domain.PayoutStatus(status), domain.MustAmount(amount)
	if fee != "" {
		f, s := domain.MustAmount(fee), domain.MustAmount(sent)
		p.NetworkFee, p.Sent = &f, &s
	}
	p.CreatedAt, p.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	p.SentAt, p.ConfirmedAt, p.FailedAt = msTime(sentAt), msTime(confirmedAt), msTime(failedAt)
	return p, nil
}

func msTime(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := time.UnixMilli(v.Int64).UTC()
	return &t
}

// PayoutByID errors: domain.ErrNotFound (also for another merchant's payout).
func (s *SQL) PayoutByID(ctx context.Context, merchantID, payoutID string) (Payout, error) {
	p, err := scanPayout(s.queryRow(ctx, `SELECT `+payoutColumns+` FROM payouts WHERE payout_id = ?`, payoutID))
	if errors.Is(err, sql.ErrNoRows) || (err == nil && p.MerchantID != merchantID) {
		return Payout{}, fmt.Errorf("payout %s: %w", payoutID, domain.ErrNotFound)
	}
	if err != nil {
		return Payout{}, fmt.Errorf("payout %s: %w", payoutID, err)
	}
	return p, nil
}

// ListPayouts returns a page newest first. Errors: domain.ErrValidation
// (limit), domain.ErrNotFound (starting_after not the merchant's).
func (s *SQL) ListPayouts(ctx context.Context, merchantID string, f PayoutFilter) ([]Payout, bool, error) {
	if f.Limit < 1 || f.Limit > 100 {
		return nil, false, fmt.Errorf("%w: limit must be between 1 and 100", domain.ErrValidation)
	}
	q := `SELECT ` + payoutColumns + ` FROM payouts WHERE merchant_id = ?`
	args := []any{merchantID}
	if f.RefundsOf != "" {
		q += ` AND source_invoice_id = ? AND kind = ?`
		args = append(args, f.RefundsOf, string(domain.PayoutKindRefund))
	}
	switch f.Status {
	case "":
	case domain.PayoutRequestedStatus: // signed payouts show as requested
		q += ` AND status IN ('requested', 'signed')`
	default:
		q += ` AND status = ?`
		args = append(args, string(f.Status))
	}
	if f.StartingAfter != "" {
		if _, err := s.PayoutByID(ctx, merchantID, f.StartingAfter); err != nil {
			return nil, false, err
		}
		q += ` AND payout_id < ?`
		args = append(args, f.StartingAfter)
	}
	q += ` ORDER BY payout_id DESC LIMIT ?`
	args = append(args, f.Limit+1)
	rows, err := s.db.Read.QueryContext(ctx, s.db.Q(q), args...)
	if err != nil {
		return nil, false, fmt.Errorf("list payouts: %w", err)
	}
	defer rows.Close()
	var page []Payout
	for rows.Next() {
		p, err := scanPayout(rows)
		if err != nil {
			return nil, false, err
		}
		page = append(page, p)
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	hasMore := len(page) > f.Limit
	if hasMore {
		page = page[:f.Limit]
	}
	return page, hasMore, nil
}

// Credited is what the merchant has been credited in asset, excluding the
// debits its funds stream decides (the balances read model's credited).
// Zero when the merchant has no balance row yet.
func (s *SQL) Credited(ctx context.Context, merchantID, asset string) (domain.Amount, error) {
	var c string
	err := s.queryRow(ctx, `SELECT credited FROM balances WHERE merchant_id = ? AND asset = ?`, merchantID, asset).Scan(&c)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Amount{}, nil
	}
	if err != nil {
		return domain.Amount{}, fmt.Errorf("credited: %w", err)
	}
	return domain.MustAmount(c), nil
}

// Waiter waits until the read models include a position
// (projections.Runner implements it).
type Waiter interface {
	WaitFor(ctx context.Context, pos eventstore.Position) error
}

// Credits serves commands.Credits from the balances read model.
type Credits struct {
	SQL  *SQL
	Wait Waiter // nil: never wait (then atLeast must be the zero Position)
	// MaxWait bounds a wait for the read model (default 10 s).
	MaxWait time.Duration
}

// Credited reads the credits once the read model has applied atLeast.
// Errors: context.DeadlineExceeded when it did not within MaxWait (the
// caller retries later rather than deciding on an older view).
func (c Credits) Credited(ctx context.Context, merchantID, asset string, atLeast eventstore.Position) (domain.Amount, error) {
	if atLeast != eventstore.Start {
		if c.Wait == nil {
			return domain.Amount{}, fmt.Errorf("credits: cannot wait for %s without a Waiter", atLeast)
		}
		wait := c.MaxWait
		if wait <= 0 {
			wait = 10 * time.Second
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		err := c.Wait.WaitFor(wctx, atLeast)
		cancel()
		if err != nil {
			return domain.Amount{}, fmt.Errorf("credits: read model behind %s: %w", atLeast, err)
		}
	}
	return c.SQL.Credited(ctx, merchantID, asset)
}

// RefundsOfInvoices returns the merchant's refunds of these invoices, by
// invoice id (an invoice without refunds is absent), in one query.
func (s *SQL) RefundsOfInvoices(ctx context.Context, merchantID string, invoiceIDs []string) (map[string][]Payout, error) {
	out := map[string][]Payout{}
	if len(invoiceIDs) == 0 {
		return out, nil
	}
	q := `SELECT ` + payoutColumns + ` FROM payouts WHERE merchant_id = ? AND kind = ? AND source_invoice_id IN (?` +
		strings.Repeat(`, ?`, len(invoiceIDs)-1) + `) ORDER BY created_at, payout_id`
	args := []any{merchantID, string(domain.PayoutKindRefund)}
	for _, id := range invoiceIDs {
		args = append(args, id)
	}
	rows, err := s.db.Read.QueryContext(ctx, s.db.Q(q), args...)
	if err != nil {
		return nil, fmt.Errorf("refunds of invoices: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		p, err := scanPayout(rows)
		if err != nil {
			return nil, fmt.Errorf("refunds of invoices: %w", err)
		}
		out[p.SourceInvoiceID] = append(out[p.SourceInvoiceID], p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("refunds of invoices: %w", err)
	}
	return out, nil
}
