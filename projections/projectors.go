package projections

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

// Merchants projects merchants, their key hashes and payout settings.
type Merchants struct{}

func (Merchants) Name() string { return "merchants" }

func (Merchants) Apply(ctx context.Context, tx Tx, _ eventstore.RecordedEvent, ev domain.Event) error {
	var err error
	switch e := ev.(type) {
	case domain.MerchantRegistered:
		_, err = tx.Exec(ctx, `INSERT INTO merchants (merchant_id, name, publishable_key, secret_key_hash, webhook_url, webhook_secret,
			webhook_secret_sealed, webhook_secret_exposed, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.MerchantID, e.Name, e.PublishableKey, e.SecretKeyHash, e.WebhookURL, e.WebhookSecret,
			e.WebhookSecretSealed, exposed(e.WebhookSecret), e.RegisteredAt.UnixMilli())
	case domain.APIKeysRotated:
		_, err = tx.Exec(ctx, `UPDATE merchants SET publishable_key = ?, secret_key_hash = ? WHERE merchant_id = ?`, e.PublishableKey, e.SecretKeyHash, e.MerchantID)
	case domain.WebhookSecretRotated:
		if e.Rekeyed { // the same secret, sealed: it stays exposed
			_, err = tx.Exec(ctx, `UPDATE merchants SET webhook_secret = '', webhook_secret_sealed = ? WHERE merchant_id = ?`, e.WebhookSecretSealed, e.MerchantID)
			break
		}
		_, err = tx.Exec(ctx, `UPDATE merchants SET webhook_secret = ?, webhook_secret_sealed = ?, webhook_secret_exposed = ? WHERE merchant_id = ?`,
			e.WebhookSecret, e.WebhookSecretSealed, exposed(e.WebhookSecret), e.MerchantID)
	case domain.AccountSettingsChanged:
		_, err = tx.Exec(ctx, `UPDATE merchants SET webhook_url = ?, consolidate_to = ?, display_name = ?, logo_url = ?, brand_color = ?,
			default_redirect_url = ? WHERE merchant_id = ?`, e.WebhookURL, e.ConsolidateTo, e.DisplayName, e.LogoURL, e.BrandColor,
			e.DefaultRedirectURL, e.MerchantID)
	case domain.PayoutSettingsChanged:
		_, err = tx.Exec(ctx, `INSERT INTO payout_settings (merchant_id, asset, payout_address, mode, instant_min_amount, updated_at) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (merchant_id, asset) DO UPDATE SET payout_address = excluded.payout_address, mode = excluded.mode,
			instant_min_amount = excluded.instant_min_amount, updated_at = excluded.updated_at`,
			e.MerchantID, e.Asset, e.PayoutAddress, string(e.Mode), e.InstantMinAmount.String(), e.ChangedAt.UnixMilli())
	}
	return err
}

// exposed is webhook_secret_exposed for a secret an event holds in clear.
func exposed(clearSecret string) int {
	if clearSecret != "" {
		return 1
	}
	return 0
}

// Invoices projects invoices and their payments.
type Invoices struct{}

func (Invoices) Name() string { return "invoices" }

func (Invoices) Apply(ctx context.Context, tx Tx, rec eventstore.RecordedEvent, ev domain.Event) error {
	var err error
	switch e := ev.(type) {
	case domain.InvoiceCreated:
		var priceCurrency, priceAmount, priceRate, priceSource string
		var priceAt int64
		if p := e.Price; p != nil {
			priceCurrency, priceAmount, priceRate, priceSource, priceAt = p.Currency, p.Amount.String(), p.Rate.String(), p.Source, p.RateAt.UnixMilli()
		}
		// New invoices are inserted together (FlushBatch, or before any
		// other invoice event of the batch touches the table).
		tx.bufferRow("invoice_rows", `INSERT INTO invoices (invoice_id, merchant_id, asset, status, amount, pay_amount, pay_address, fee, fee_bps,
			settle_asset, order_id, amount_received, required_confirmations, created_at, expires_at, updated_at, created_by,
			description, metadata, redirect_url, price_currency, price_amount, price_rate, price_source, price_rate_at)`,
			e.InvoiceID, e.MerchantID, e.Asset, string(domain.StatusNew), e.Amount.String(), e.PayAmount.String(), e.PayAddress,
			e.Fee.Fee.String(), e.Fee.Bps, e.SettleAsset, e.OrderID, "0", e.RequiredConfirmations,
			e.CreatedAt.UnixMilli(), e.ExpiresAt.UnixMilli(), e.CreatedAt.UnixMilli(), string(e.Creator()),
			e.Description, metadataJSON(e.Metadata), e.RedirectURL, priceCurrency, priceAmount, priceRate, priceSource, priceAt)
		countStatus(tx, domain.StatusNew, 1)
		received(tx)[e.InvoiceID] = noneReceived
		return nil
	case domain.DepositDetected, domain.DepositConfirmed, domain.DepositReverted, domain.InvoiceStatusChanged,
		domain.ConversionWaiting, domain.ConversionAbandoned, domain.PaymentConverted:
		if err := tx.flushRows(ctx, "invoice_rows"); err != nil {
			return err
		}
	}
	switch e := ev.(type) {
	case domain.DepositDetected:
		_, err = tx.Exec(ctx, `INSERT INTO payments (invoice_id, deposit_id, txid, amount, confirmations, status, late, detected_at)
			VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)
			ON CONFLICT (invoice_id, deposit_id) DO UPDATE SET amount = excluded.amount, confirmations = excluded.confirmations,
			status = 'pending', late = excluded.late`,
			e.InvoiceID, e.DepositID, e.TxID, e.Amount.String(), e.Confirmations, e.Late, e.DetectedAt.UnixMilli())
		if err == nil {
			err = addReceived(ctx, tx, e.InvoiceID, e.Amount, e.DetectedAt.UnixMilli())
		}
	case domain.DepositConfirmed:
		_, err = tx.Exec(ctx, `UPDATE payments SET status = 'confirmed', confirmations = ? WHERE invoice_id = ? AND deposit_id = ?`,
			e.Confirmations, e.InvoiceID, e.DepositID)
		if err == nil { // the invoice's fee is what it charged (money rule 1)
			_, err = tx.Exec(ctx, `UPDATE invoices SET fee = ?, fee_bps = ? WHERE invoice_id = ?`, e.Fee.Fee.String(), e.Fee.Bps, e.InvoiceID)
		}
	case domain.DepositReverted:
		_, err = tx.Exec(ctx, `UPDATE payments SET status = 'reverted' WHERE invoice_id = ? AND deposit_id = ?`, e.InvoiceID, e.DepositID)
		if err == nil && e.Fee != nil {
			_, err = tx.Exec(ctx, `UPDATE invoices SET fee = ? WHERE invoice_id = ?`, e.Fee.Fee.String(), e.InvoiceID)
		}
		if err == nil {
			err = addReceived(ctx, tx, e.InvoiceID, e.Amount.Neg(), e.RevertedAt.UnixMilli())
		}
	case domain.ConversionWaiting:
		_, err = tx.Exec(ctx, `UPDATE invoices SET settlement_status = 'waiting_for_price', settlement_since = ?, settlement_reason = ?
			WHERE invoice_id = ? AND settlement_status IN ('', 'converted')`, e.Since.UnixMilli(), e.Reason, e.InvoiceID)
	case domain.PaymentConverted:
		_, err = tx.Exec(ctx, `UPDATE invoices SET settlement_status = 'converted', settlement_since = NULL, settlement_reason = ''
			WHERE invoice_id = ? AND settlement_status <> 'unconverted'`, e.InvoiceID)
	case domain.ConversionAbandoned:
		_, err = tx.Exec(ctx, `UPDATE invoices SET settlement_status = 'unconverted', settlement_reason = ?, fee = ?, fee_bps = ?
			WHERE invoice_id = ?`, e.Reason, e.Fee.Fee.String(), e.Fee.Bps, e.InvoiceID)
	case domain.InvoiceStatusChanged:
		countStatus(tx, e.From, -1)
		countStatus(tx, e.To, 1)
		var paidAt any
		if e.To == domain.StatusPaid {
			paidAt = e.At.UnixMilli()
		}
		_, err = tx.Exec(ctx, `UPDATE invoices SET status = ?, paid_at = COALESCE(?, paid_at), updated_at = ? WHERE invoice_id = ?`,
			string(e.To), paidAt, e.At.UnixMilli(), e.InvoiceID)
	}
	return err
}

// metadataJSON is an invoice's metadata column: a JSON object, "{}" when none.
func metadataJSON(md map[string]string) string {
	if len(md) == 0 {
		return "{}"
	}
	b, err := json.Marshal(md)
	if err != nil { // a map of strings always encodes
		panic(fmt.Sprintf("projections: metadata: %v", err))
	}
	return string(b)
}

// FlushBatch writes the batch's new invoices and what it changed in the
// counts by status.
func (Invoices) FlushBatch(ctx context.Context, tx Tx) error {
	if err := tx.flushRows(ctx, "invoice_rows"); err != nil {
		return err
	}
	counts, _ := tx.batch[statusCountsKey].(map[domain.Status]int64)
	delete(tx.batch, statusCountsKey)
	statuses := make([]string, 0, len(counts))
	for s, n := range counts {
		if n != 0 {
			statuses = append(statuses, string(s))
		}
	}
	slices.Sort(statuses) // the same lock order in every batch
	for _, s := range statuses {
		if _, err := tx.Exec(ctx, `INSERT INTO invoice_status_counts (status, n) VALUES (?, ?)
			ON CONFLICT (status) DO UPDATE SET n = invoice_status_counts.n + excluded.n`, s, counts[domain.Status(s)]); err != nil {
			return err
		}
	}
	return nil
}

const statusCountsKey = "invoice_status_counts"

// countStatus adds n to the batch's change of the invoices in status s,
// written once per status at the end of the batch.
func countStatus(tx Tx, s domain.Status, n int64) {
	counts, _ := tx.batch[statusCountsKey].(map[domain.Status]int64)
	if counts == nil {
		counts = map[domain.Status]int64{}
		tx.batch[statusCountsKey] = counts
	}
	counts[s] += n
}

const receivedKey = "invoice_received"

// noneReceived is a new invoice's amount_received, as its row says.
var noneReceived = domain.MustAmount("0")

// received is the batch's copy of the invoices' amount_received that it
// read or wrote, so an invoice created or paid earlier in the batch is not
// read back.
func received(tx Tx) map[string]domain.Amount {
	m, _ := tx.batch[receivedKey].(map[string]domain.Amount)
	if m == nil {
		m = map[string]domain.Amount{}
		tx.batch[receivedKey] = m
	}
	return m
}

func addReceived(ctx context.Context, tx Tx, invoiceID string, delta domain.Amount, atMs int64) error {
	known := received(tx)
	cur, ok := known[invoiceID]
	if !ok {
		var s string
		if err := tx.QueryRow(ctx, `SELECT amount_received FROM invoices WHERE invoice_id = ?`, invoiceID).Scan(&s); err != nil {
			return fmt.Errorf("invoice %s: %w", invoiceID, err)
		}
		cur = domain.MustAmount(s)
	}
	total := cur.Add(delta)
	known[invoiceID] = total
	_, err := tx.Exec(ctx, `UPDATE invoices SET amount_received = ?, updated_at = ? WHERE invoice_id = ?`, total.String(), atMs, invoiceID)
	return err
}

// Balances projects every merchant's available, pending and reserved
// balance per asset from the ledger postings of money events, and nothing
// else: the balance is what the postings say. It also keeps credited, the
// sum of the postings to available other than the debits that the funds
// streams decide (see commands.Credits).
type Balances struct{}

func (Balances) Name() string { return "balances" }

// balanceDelta is one event's change to one merchant's asset.
type balanceDelta struct {
	merchantID, asset                      string
	available, pending, reserved, credited domain.Amount
}

func (Balances) Apply(ctx context.Context, tx Tx, _ eventstore.RecordedEvent, ev domain.Event) error {
	m, ok := ev.(domain.MoneyEvent)
	if !ok {
		return nil
	}
	var deltas []*balanceDelta
	for _, p := range m.LedgerPostings() {
		merchantID, bucket, ok := merchantAccount(p.Account)
		if !ok {
			continue
		}
		var d *balanceDelta
		for _, x := range deltas {
			if x.merchantID == merchantID && x.asset == p.Asset {
				d = x
			}
		}
		if d == nil {
			d = &balanceDelta{merchantID: merchantID, asset: p.Asset}
			deltas = append(deltas, d)
		}
		switch bucket {
		case "available":
			d.available = d.available.Add(p.Amount)
			if !IsFundsDebit(ev, p) {
				d.credited = d.credited.Add(p.Amount)
			}
		case "pending":
			d.pending = d.pending.Add(p.Amount)
		case "reserved":
			d.reserved = d.reserved.Add(p.Amount)
		}
	}
	for _, d := range deltas {
		if err := addBalance(ctx, tx, d); err != nil {
			return err
		}
	}
	return nil
}

// IsFundsDebit reports whether posting p of ev is a debit that a funds
// stream decided: a payout request's, or a conversion's from-leg. Those
// are subtracted by the stream itself and are not part of credited.
func IsFundsDebit(ev domain.Event, p domain.Posting) bool {
	switch e := ev.(type) {
	case domain.PayoutRequested:
		return true
	case domain.ConversionExecuted:
		return p.Asset == e.From
	}
	return false
}

// merchantAccount splits "merchant:<id>:available|pending|reserved".
func merchantAccount(account string) (merchantID, bucket string, ok bool) {
	rest, found := strings.CutPrefix(account, "merchant:")
	if !found {
		return "", "", false
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return "", "", false
	}
	bucket = rest[i+1:]
	return rest[:i], bucket, bucket == "available" || bucket == "pending" || bucket == "reserved"
}

// balanceRow is one merchant's balance of one asset as a batch has made it.
type balanceRow struct {
	merchantID, asset                      string
	available, pending, reserved, credited domain.Amount
}

const balancesKey = "balances"

// addBalance changes a balance in the batch's copy: each balance a batch
// touches is read once and written once, at the end of the batch
// (FlushBatch), however many of its events move it.
func addBalance(ctx context.Context, tx Tx, d *balanceDelta) error {
	rows, _ := tx.batch[balancesKey].(map[[2]string]*balanceRow)
	if rows == nil {
		rows = map[[2]string]*balanceRow{}
		tx.batch[balancesKey] = rows
	}
	key := [2]string{d.merchantID, d.asset}
	b := rows[key]
	if b == nil {
		var available, pending, reserved, credited string
		err := tx.QueryRow(ctx, `SELECT available, pending, reserved, credited FROM balances WHERE merchant_id = ? AND asset = ?`,
			d.merchantID, d.asset).Scan(&available, &pending, &reserved, &credited)
		if errors.Is(err, sql.ErrNoRows) {
			available, pending, reserved, credited = "0", "0", "0", "0"
		} else if err != nil {
			return err
		}
		b = &balanceRow{merchantID: d.merchantID, asset: d.asset, available: domain.MustAmount(available),
			pending: domain.MustAmount(pending), reserved: domain.MustAmount(reserved), credited: domain.MustAmount(credited)}
		rows[key] = b
	}
	b.available = b.available.Add(d.available)
	b.pending = b.pending.Add(d.pending)
	b.reserved = b.reserved.Add(d.reserved)
	b.credited = b.credited.Add(d.credited)
	return nil
}

// FlushBatch writes the balances the batch changed, in key order (the
// same lock order in every batch).
func (Balances) FlushBatch(ctx context.Context, tx Tx) error {
	rows, _ := tx.batch[balancesKey].(map[[2]string]*balanceRow)
	delete(tx.batch, balancesKey)
	keys := slices.SortedFunc(maps.Keys(rows), func(a, b [2]string) int {
		return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1]))
	})
	for _, k := range keys {
		b := rows[k]
		if _, err := tx.Exec(ctx, `INSERT INTO balances (merchant_id, asset, available, pending, reserved, credited) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (merchant_id, asset) DO UPDATE SET available = excluded.available, pending = excluded.pending,
			reserved = excluded.reserved, credited = excluded.credited`,
			b.merchantID, b.asset, b.available.String(), b.pending.String(), b.reserved.String(), b.credited.String()); err != nil {
			return err
		}
	}
	return nil
}

// Payouts projects payouts: instant ones and withdrawals, with their status.
type Payouts struct{}

func (Payouts) Name() string     { return "payouts" }
func (Payouts) Tables() []string { return []string{"payouts"} }

func (Payouts) Apply(ctx context.Context, tx Tx, rec eventstore.RecordedEvent, ev domain.Event) error {
	var err error
	switch e := ev.(type) {
	case domain.PayoutRequested:
		at := e.RequestedAt.UnixMilli()
		_, err = tx.Exec(ctx, `INSERT INTO payouts (payout_id, merchant_id, asset, kind, amount, to_address, status, source_invoice_id,
			request_stream, request_version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.PayoutID, e.MerchantID, e.Asset, string(e.Kind), e.Amount.String(), e.ToAddress, string(domain.PayoutRequestedStatus),
			e.SourceInvoiceID, rec.Stream, rec.Version, at, at)
	case domain.PayoutSigned:
		_, err = tx.Exec(ctx, `UPDATE payouts SET status = ?, txid = ?, network_fee = ?, sent_amount = ?, updated_at = ? WHERE payout_id = ?`,
			string(domain.PayoutSignedStatus), e.TxID, e.NetworkFee.String(), e.Sent.String(), e.SignedAt.UnixMilli(), e.PayoutID)
	case domain.PayoutSent:
		_, err = tx.Exec(ctx, `UPDATE payouts SET status = ?, sent_at = ?, updated_at = ? WHERE payout_id = ?`,
			string(domain.PayoutSentStatus), e.SentAt.UnixMilli(), e.SentAt.UnixMilli(), e.PayoutID)
	case domain.PayoutConfirmed:
		_, err = tx.Exec(ctx, `UPDATE payouts SET status = ?, txid = ?, network_fee = ?, sent_amount = ?, confirmed_at = ?, updated_at = ? WHERE payout_id = ?`,
			string(domain.PayoutConfirmedStatus), e.TxID, e.NetworkFee.String(), e.Sent.String(), e.ConfirmedAt.UnixMilli(), e.ConfirmedAt.UnixMilli(), e.PayoutID)
	case domain.PayoutFailed:
		_, err = tx.Exec(ctx, `UPDATE payouts SET status = ?, failure_reason = ?, failed_at = ?, updated_at = ? WHERE payout_id = ?`,
			string(domain.PayoutFailedStatus), e.Reason, e.FailedAt.UnixMilli(), e.FailedAt.UnixMilli(), e.PayoutID)
	case domain.PayoutCanceled:
		_, err = tx.Exec(ctx, `UPDATE payouts SET status = ?, updated_at = ? WHERE payout_id = ?`,
			string(domain.PayoutCanceledStatus), e.CanceledAt.UnixMilli(), e.PayoutID)
	}
	return err
}
