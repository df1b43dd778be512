package readapi

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shopspring/decimal"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// SQL reads the read models of projections.
type SQL struct {
	db sqldb.DB
	// stmts holds the fixed queries prepared once (query text → *sql.Stmt):
	// SQLite parses and plans a query string on every call otherwise, which
	// was a third of an API key lookup.
	stmts sync.Map
	// Keys, when set, answers MerchantByKey from memory while this process
	// runs the projectors (see KeyCache).
	Keys *KeyCache
	// Accounts, when set, answers ConsolidateTo from memory the same way.
	Accounts *AccountCache
	// noFeedCopies is set once event_feed is seen empty where the feed
	// keeps references (db.LogTable set): nothing writes copies there, so
	// the table stays empty and feed reads skip it.
	noFeedCopies atomic.Bool
}

var _ Reader = (*SQL)(nil)

func NewSQL(db sqldb.DB) *SQL { return &SQL{db: db} }

func (s *SQL) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := s.stmts.Load(q); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.db.Read.PrepareContext(ctx, s.db.Q(q))
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.stmts.LoadOrStore(q, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// queryRow runs a fixed query (prepared once) that returns one row.
func (s *SQL) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	st, err := s.stmt(ctx, q)
	if err != nil {
		// The error surfaces from Scan, as any query error does.
		return s.db.Read.QueryRowContext(ctx, s.db.Q(q), args...)
	}
	return st.QueryRowContext(ctx, args...)
}

const invoiceColumns = `invoice_id, merchant_id, asset, status, amount, pay_amount, pay_address, fee, fee_bps, settle_asset, order_id,
	amount_received, required_confirmations, created_at, expires_at, paid_at, updated_at, settlement_status, settlement_since, settlement_reason,
	created_by, description, metadata, redirect_url, price_currency, price_amount, price_rate, price_source, price_rate_at`

type scanner interface{ Scan(dest ...any) error }

// invoiceRow receives the invoiceColumns of a row.
type invoiceRow struct {
	inv                                                     Invoice
	status, amount, payAmount, fee, received, createdBy, md string
	priceCurrency, priceAmount, priceRate, priceSource      string
	created, expires, updated, priceAt                      int64
	paid, since                                             sql.NullInt64
}

func (r *invoiceRow) dest() []any {
	inv := &r.inv
	return []any{&inv.ID, &inv.MerchantID, &inv.Asset, &r.status, &r.amount, &r.payAmount, &inv.PayAddress, &r.fee, &inv.FeeBps,
		&inv.SettleAsset, &inv.OrderID, &r.received, &inv.RequiredConfirmations, &r.created, &r.expires, &r.paid, &r.updated,
		&inv.Settlement.Status, &r.since, &inv.Settlement.Reason, &r.createdBy,
		&inv.Description, &r.md, &inv.RedirectURL, &r.priceCurrency, &r.priceAmount, &r.priceRate, &r.priceSource, &r.priceAt}
}

// invoice converts what was scanned.
func (r *invoiceRow) invoice() (Invoice, error) {
	inv := r.inv
	if r.md != "" && r.md != "{}" {
		if err := json.Unmarshal([]byte(r.md), &inv.Metadata); err != nil {
			return Invoice{}, fmt.Errorf("invoice %s: metadata: %w", inv.ID, err)
		}
	}
	if r.priceCurrency != "" {
		rate, err := decimal.NewFromString(r.priceRate)
		if err != nil {
			return Invoice{}, fmt.Errorf("invoice %s: price rate: %w", inv.ID, err)
		}
		inv.Price = &domain.InvoicePrice{Currency: r.priceCurrency, Amount: domain.MustAmount(r.priceAmount), Rate: rate, Source: r.priceSource,
			RateAt: time.UnixMilli(r.priceAt).UTC()}
	}
	inv.Status, inv.CreatedBy = domain.Status(r.status), domain.CreatedBy(r.createdBy)
	inv.Amount, inv.PayAmount, inv.Fee, inv.AmountReceived = domain.MustAmount(r.amount), domain.MustAmount(r.payAmount), domain.MustAmount(r.fee), domain.MustAmount(r.received)
	inv.CreatedAt, inv.ExpiresAt, inv.UpdatedAt = time.UnixMilli(r.created).UTC(), time.UnixMilli(r.expires).UTC(), time.UnixMilli(r.updated).UTC()
	if r.paid.Valid {
		t := time.UnixMilli(r.paid.Int64).UTC()
		inv.PaidAt = &t
	}
	if r.since.Valid && inv.Settlement.Status == SettlementWaiting {
		t := time.UnixMilli(r.since.Int64).UTC()
		inv.Settlement.Since = &t
	}
	return inv, nil
}

func scanInvoice(row scanner) (Invoice, error) {
	var r invoiceRow
	if err := row.Scan(r.dest()...); err != nil {
		return Invoice{}, err
	}
	return r.invoice()
}

// paymentColumns are a payment's columns for a LEFT JOIN of payments p
// (with deposit_depths d and chain_tips t) to invoices i: all NULL for an
// invoice without payments. The depth tables make the count live
// (depth.confirmations).
const paymentColumns = `p.deposit_id, p.txid, p.amount, p.confirmations, p.status, p.late, p.detected_at, d.chain, d.block_height, d.final_depth, t.height`

const paymentJoins = ` LEFT JOIN payments p ON p.invoice_id = i.invoice_id
	LEFT JOIN deposit_depths d ON d.invoice_id = p.invoice_id AND d.deposit_id = p.deposit_id
	LEFT JOIN chain_tips t ON t.chain = d.chain`

// paymentRow receives the paymentColumns of a row.
type paymentRow struct {
	depositID, txID, amount, status sql.NullString
	confirmations, detected         sql.NullInt64
	late                            sql.NullBool
	d                               depth
}

func (r *paymentRow) dest() []any {
	return []any{&r.depositID, &r.txID, &r.amount, &r.confirmations, &r.status, &r.late, &r.detected,
		&r.d.chain, &r.d.height, &r.d.final, &r.d.tip}
}

// payment is the row's payment; false when the invoice has none.
func (r *paymentRow) payment() (Payment, bool) {
	if !r.depositID.Valid {
		return Payment{}, false
	}
	p := Payment{DepositID: r.depositID.String, TxID: r.txID.String, Status: r.status.String, Late: r.late.Bool,
		Amount: domain.MustAmount(r.amount.String), DetectedAt: time.UnixMilli(r.detected.Int64).UTC()}
	p.Confirmations = r.d.confirmations(p.Status, int(r.confirmations.Int64))
	return p, true
}

// invoicesWithPayments reads the invoices and their payments from rows of
// invoiceColumns and paymentColumns, one row per payment (or one for an
// invoice without), each invoice's rows together and its payments in
// order: one query instead of a second one for the payments, a round trip
// of every read of an invoice.
func invoicesWithPayments(rows *sql.Rows) ([]Invoice, error) {
	var page []Invoice
	var ir invoiceRow
	var pr paymentRow
	dest := append(ir.dest(), pr.dest()...)
	for rows.Next() {
		ir, pr = invoiceRow{}, paymentRow{}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		if n := len(page); n == 0 || page[n-1].ID != ir.inv.ID {
			inv, err := ir.invoice()
			if err != nil {
				return nil, err
			}
			page = append(page, inv)
		}
		if p, ok := pr.payment(); ok {
			inv := &page[len(page)-1]
			inv.Payments = append(inv.Payments, p)
		}
	}
	return page, rows.Err()
}

// InvoiceByID errors: domain.ErrNotFound.
func (s *SQL) InvoiceByID(ctx context.Context, merchantID, invoiceID string) (Invoice, error) {
	st, err := s.stmt(ctx, `SELECT `+invoicePrefixed+`, `+paymentColumns+` FROM invoices i`+paymentJoins+`
		WHERE i.invoice_id = ? ORDER BY p.detected_at, p.deposit_id`)
	if err != nil {
		return Invoice{}, fmt.Errorf("invoice %s: %w", invoiceID, err)
	}
	rows, err := st.QueryContext(ctx, invoiceID)
	if err != nil {
		return Invoice{}, fmt.Errorf("invoice %s: %w", invoiceID, err)
	}
	defer rows.Close()
	invs, err := invoicesWithPayments(rows)
	if err != nil {
		return Invoice{}, fmt.Errorf("invoice %s: %w", invoiceID, err)
	}
	if len(invs) == 0 || (merchantID != "" && invs[0].MerchantID != merchantID) {
		return Invoice{}, fmt.Errorf("invoice %s: %w", invoiceID, domain.ErrNotFound)
	}
	return invs[0], nil
}

// invoicePrefixed is invoiceColumns of invoices i.
var invoicePrefixed = func() string {
	cols := strings.Split(invoiceColumns, ",")
	for i, c := range cols {
		cols[i] = "i." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}()

// ListInvoices returns a page newest first. StartingAfter must be one of
// the merchant's invoices. Errors: domain.ErrNotFound (starting_after),
// domain.ErrValidation (limit).
func (s *SQL) ListInvoices(ctx context.Context, merchantID string, f InvoiceFilter) ([]Invoice, bool, error) {
	if f.Limit < 1 || f.Limit > 100 {
		return nil, false, fmt.Errorf("%w: limit must be between 1 and 100", domain.ErrValidation)
	}
	q := `SELECT ` + invoiceColumns + ` FROM invoices WHERE merchant_id = ?`
	args := []any{merchantID}
	if f.Status != "" {
		q += ` AND status = ?`
		args = append(args, string(f.Status))
	}
	where, more := f.searchWhere()
	q += where
	args = append(args, more...)
	if f.StartingAfter != "" {
		// Ids sort by creation time, so the cursor is the id itself; it must
		// still be the merchant's, or another merchant could probe ids.
		if _, err := s.InvoiceByID(ctx, merchantID, f.StartingAfter); err != nil {
			return nil, false, err
		}
		q += ` AND invoice_id < ?`
		args = append(args, f.StartingAfter)
	}
	// The page is chosen first, its payments joined to it.
	q = `SELECT ` + invoicePrefixed + `, ` + paymentColumns + ` FROM (` + q + ` ORDER BY invoice_id DESC LIMIT ?) i` + paymentJoins + `
		ORDER BY i.invoice_id DESC, p.detected_at, p.deposit_id`
	args = append(args, f.Limit+1)
	rows, err := s.db.Read.QueryContext(ctx, s.db.Q(q), args...)
	if err != nil {
		return nil, false, fmt.Errorf("list invoices: %w", err)
	}
	defer rows.Close()
	page, err := invoicesWithPayments(rows)
	if err != nil {
		return nil, false, fmt.Errorf("list invoices: %w", err)
	}
	hasMore := len(page) > f.Limit
	if hasMore {
		page = page[:f.Limit]
	}
	return page, hasMore, nil
}

// Balances returns the merchant's balances in asset order of the rows.
func (s *SQL) Balances(ctx context.Context, merchantID string) ([]Balance, error) {
	rows, err := s.db.Read.QueryContext(ctx, s.db.Q(`SELECT asset, available, pending, reserved FROM balances WHERE merchant_id = ? ORDER BY asset`), merchantID)
	if err != nil {
		return nil, fmt.Errorf("balances: %w", err)
	}
	defer rows.Close()
	var out []Balance
	for rows.Next() {
		var b Balance
		var a, p, r string
		if err := rows.Scan(&b.Asset, &a, &p, &r); err != nil {
			return nil, err
		}
		b.Available, b.Pending, b.Reserved = domain.MustAmount(a), domain.MustAmount(p), domain.MustAmount(r)
		out = append(out, b)
	}
	return out, rows.Err()
}

// Account errors: domain.ErrNotFound.
// Branding is what the checkout shows of a merchant. Errors: domain.ErrNotFound.
func (s *SQL) Branding(ctx context.Context, merchantID string) (Branding, error) {
	var b Branding
	err := s.queryRow(ctx, `SELECT display_name, logo_url, brand_color, default_redirect_url FROM merchants WHERE merchant_id = ?`, merchantID).
		Scan(&b.DisplayName, &b.LogoURL, &b.BrandColor, &b.DefaultRedirectURL)
	if errors.Is(err, sql.ErrNoRows) {
		return Branding{}, fmt.Errorf("merchant %s: %w", merchantID, domain.ErrNotFound)
	}
	if err != nil {
		return Branding{}, fmt.Errorf("branding: %w", err)
	}
	return b, nil
}

func (s *SQL) Account(ctx context.Context, merchantID string) (Account, error) {
	var a Account
	var created int64
	err := s.queryRow(ctx, `SELECT merchant_id, name, publishable_key, webhook_url, consolidate_to, created_at,
		display_name, logo_url, brand_color, default_redirect_url FROM merchants WHERE merchant_id = ?`, merchantID).
		Scan(&a.MerchantID, &a.Name, &a.PublishableKey, &a.WebhookURL, &a.ConsolidateTo, &created,
			&a.Branding.DisplayName, &a.Branding.LogoURL, &a.Branding.BrandColor, &a.Branding.DefaultRedirectURL)
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, fmt.Errorf("merchant %s: %w", merchantID, domain.ErrNotFound)
	}
	if err != nil {
		return Account{}, fmt.Errorf("account: %w", err)
	}
	a.CreatedAt = time.UnixMilli(created).UTC()
	rows, err := s.db.Read.QueryContext(ctx, s.db.Q(`SELECT asset, payout_address, mode, instant_min_amount FROM payout_settings WHERE merchant_id = ? ORDER BY asset`), merchantID)
	if err != nil {
		return Account{}, fmt.Errorf("payout settings: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p domain.PayoutSettings
		var mode, min string
		if err := rows.Scan(&p.Asset, &p.PayoutAddress, &mode, &min); err != nil {
			return Account{}, err
		}
		p.Mode, p.InstantMinAmount = domain.PayoutMode(mode), domain.MustAmount(min)
		a.PayoutSettings = append(a.PayoutSettings, p)
	}
	return a, rows.Err()
}

// MerchantByKey errors: domain.ErrNotFound.
func (s *SQL) MerchantByKey(ctx context.Context, kind KeyKind, keyOrHash string) (string, error) {
	col := "secret_key_hash"
	if kind == PublishableKey {
		col = "publishable_key"
	}
	var gen uint64
	if s.Keys != nil {
		id, g, ok := s.Keys.get(keyRef{kind, keyOrHash})
		if ok {
			return id, nil
		}
		gen = g
	}
	var id string
	err := s.queryRow(ctx, `SELECT merchant_id FROM merchants WHERE `+col+` = ?`, keyOrHash).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("key: %w", domain.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("key lookup: %w", err)
	}
	if s.Keys != nil {
		s.Keys.put(keyRef{kind, keyOrHash}, id, gen)
	}
	return id, nil
}

// DueInvoices returns ids of open invoices whose window has closed, for the
// expiry loop.
func (s *SQL) DueInvoices(ctx context.Context, now time.Time, limit int) ([]string, error) {
	rows, err := s.db.Read.QueryContext(ctx, s.db.Q(`SELECT invoice_id FROM invoices WHERE status IN ('new', 'partially_paid') AND expires_at <= ? ORDER BY expires_at LIMIT ?`),
		now.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("due invoices: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// InvoicesByAddress lists the invoices that use address, newest first.
func (s *SQL) InvoicesByAddress(ctx context.Context, address string) ([]domain.AddressInvoice, error) {
	rows, err := s.db.Read.QueryContext(ctx, s.db.Q(`SELECT invoice_id, asset, pay_amount, status FROM invoices WHERE pay_address = ? ORDER BY invoice_id DESC LIMIT 1000`), address)
	if err != nil {
		return nil, fmt.Errorf("invoices by address: %w", err)
	}
	defer rows.Close()
	var out []domain.AddressInvoice
	for rows.Next() {
		var a domain.AddressInvoice
		var pay, status string
		if err := rows.Scan(&a.ID, &a.Asset, &pay, &status); err != nil {
			return nil, err
		}
		a.PayAmount, a.Status = domain.MustAmount(pay), domain.Status(status)
		out = append(out, a)
	}
	return out, rows.Err()
}
