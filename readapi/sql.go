package readapi

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
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

func scanInvoice(row scanner) (Invoice, error) {
	var inv Invoice
	var status, amount, payAmount, fee, received, createdBy, metadata string
	var priceCurrency, priceAmount, priceRate, priceSource string
	var created, expires, updated, priceAt int64
	var paid, since sql.NullInt64
	err := row.Scan(&inv.ID, &inv.MerchantID, &inv.Asset, &status, &amount, &payAmount, &inv.PayAddress, &fee, &inv.FeeBps,
		&inv.SettleAsset, &inv.OrderID, &received, &inv.RequiredConfirmations, &created, &expires, &paid, &updated,
		&inv.Settlement.Status, &since, &inv.Settlement.Reason, &createdBy,
		&inv.Description, &metadata, &inv.RedirectURL, &priceCurrency, &priceAmount, &priceRate, &priceSource, &priceAt)
	if err != nil {
		return Invoice{}, err
	}
	if metadata != "" && metadata != "{}" {
		if err := json.Unmarshal([]byte(metadata), &inv.Metadata); err != nil {
			return Invoice{}, fmt.Errorf("invoice %s: metadata: %w", inv.ID, err)
		}
	}
	if priceCurrency != "" {
		rate, err := decimal.NewFromString(priceRate)
		if err != nil {
			return Invoice{}, fmt.Errorf("invoice %s: price rate: %w", inv.ID, err)
		}
		inv.Price = &domain.InvoicePrice{Currency: priceCurrency, Amount: domain.MustAmount(priceAmount), Rate: rate, Source: priceSource,
			RateAt: time.UnixMilli(priceAt).UTC()}
	}
	inv.Status, inv.CreatedBy = domain.Status(status), domain.CreatedBy(createdBy)
	inv.Amount, inv.PayAmount, inv.Fee, inv.AmountReceived = domain.MustAmount(amount), domain.MustAmount(payAmount), domain.MustAmount(fee), domain.MustAmount(received)
	inv.CreatedAt, inv.ExpiresAt, inv.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(expires).UTC(), time.UnixMilli(updated).UTC()
	if paid.Valid {
		t := time.UnixMilli(paid.Int64).UTC()
		inv.PaidAt = &t
	}
	if since.Valid && inv.Settlement.Status == SettlementWaiting {
		t := time.UnixMilli(since.Int64).UTC()
		inv.Settlement.Since = &t
	}
	return inv, nil
}

// InvoiceByID errors: domain.ErrNotFound.
func (s *SQL) InvoiceByID(ctx context.Context, merchantID, invoiceID string) (Invoice, error) {
	inv, err := scanInvoice(s.queryRow(ctx, `SELECT `+invoiceColumns+` FROM invoices WHERE invoice_id = ?`, invoiceID))
	if errors.Is(err, sql.ErrNoRows) || (err == nil && merchantID != "" && inv.MerchantID != merchantID) {
		return Invoice{}, fmt.Errorf("invoice %s: %w", invoiceID, domain.ErrNotFound)
	}
	if err != nil {
		return Invoice{}, fmt.Errorf("invoice %s: %w", invoiceID, err)
	}
	if err := s.attachPayments(ctx, []*Invoice{&inv}); err != nil {
		return Invoice{}, err
	}
	return inv, nil
}

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
	q += ` ORDER BY invoice_id DESC LIMIT ?`
	args = append(args, f.Limit+1)
	rows, err := s.db.Read.QueryContext(ctx, s.db.Q(q), args...)
	if err != nil {
		return nil, false, fmt.Errorf("list invoices: %w", err)
	}
	defer rows.Close()
	var page []Invoice
	for rows.Next() {
		inv, err := scanInvoice(rows)
		if err != nil {
			return nil, false, err
		}
		page = append(page, inv)
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	hasMore := len(page) > f.Limit
	if hasMore {
		page = page[:f.Limit]
	}
	ptrs := make([]*Invoice, len(page))
	for i := range page {
		ptrs[i] = &page[i]
	}
	return page, hasMore, s.attachPayments(ctx, ptrs)
}

func (s *SQL) attachPayments(ctx context.Context, invs []*Invoice) error {
	if len(invs) == 0 {
		return nil
	}
	byID := make(map[string]*Invoice, len(invs))
	args := make([]any, len(invs))
	for i, inv := range invs {
		byID[inv.ID] = inv
		args[i] = inv.ID
	}
	// The chain scan engine's depth tables make the count live (liveConfirmations).
	q := `SELECT p.invoice_id, p.deposit_id, p.txid, p.amount, p.confirmations, p.status, p.late, p.detected_at,
		d.chain, d.block_height, d.final_depth, t.height
		FROM payments p
		LEFT JOIN deposit_depths d ON d.invoice_id = p.invoice_id AND d.deposit_id = p.deposit_id
		LEFT JOIN chain_tips t ON t.chain = d.chain
		WHERE p.invoice_id IN (?` + strings.Repeat(`, ?`, len(invs)-1) + `) ORDER BY p.detected_at, p.deposit_id`
	rows, err := s.db.Read.QueryContext(ctx, s.db.Q(q), args...)
	if err != nil {
		return fmt.Errorf("payments: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var invoiceID, amount string
		var p Payment
		var detected int64
		var d depth
		if err := rows.Scan(&invoiceID, &p.DepositID, &p.TxID, &amount, &p.Confirmations, &p.Status, &p.Late, &detected,
			&d.chain, &d.height, &d.final, &d.tip); err != nil {
			return err
		}
		p.Confirmations = d.confirmations(p.Status, p.Confirmations)
		p.Amount, p.DetectedAt = domain.MustAmount(amount), time.UnixMilli(detected).UTC()
		inv := byID[invoiceID]
		inv.Payments = append(inv.Payments, p)
	}
	return rows.Err()
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
